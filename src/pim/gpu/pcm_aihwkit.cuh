// The AIHWKIT PCM tiles' kernels (src/pim/pcm_aihwkit, launched from src/pim/gpu/pcm.rs). Part of the one PTX
// module of kernels.cu, which includes this file after its shared helpers (clampf, warp_max, normal4_at, WarpTile).

// 16-byte loads and stores (the caller guarantees the alignment).
__device__ __forceinline__ float4 ld4(const float* p) { return *reinterpret_cast<const float4*>(p); }
__device__ __forceinline__ void st4(float* p, float4 v) { *reinterpret_cast<float4*>(p) = v; }

// ---- PCM with AIHWKIT's model (src/pim/pcm_aihwkit): the per-call read and the forward IO of one tile. ----

// Symmetric converter of pcm_aihwkit/io.rs `quantize`: round half to even onto the grid of `step` (0: none),
// clamped to ±bound.
__device__ __forceinline__ float io_quantize(float v, float step, float bound) {
    float q = step > 0.0f ? rintf(v / step) * step : v;
    return clampf(q, -bound, bound);
}

// physics.rs `read` in two steps: what depends only on the drift time, once per layer and time (pim_pcm_drift),
// and the fresh read noise of every call (pim_pcm_read). planes = [g+ | g− | ν+ | ν−] (n each) → drifted =
// [g_d+ | g_d− | σ+ | σ−]: each device's drifted conductance and its read noise's standard deviation
// |g_d|·q_s(g)·read_sigma_factor.
extern "C" __global__ void pim_pcm_drift(const float* planes, float* drifted, long long n, float log_drift, float read_sigma_factor,
                                         float g_max) {
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
        for (int side = 0; side < 2; side++) {
            float g = planes[side * n + i], nu = planes[(2 + side) * n + i];
            float g_d = log_drift > 0.0f ? g * expf(-nu * log_drift) : g;
            float rel = fmaxf(g / g_max, 0.0f);
            float q_s = fminf(0.0088f / fmaxf(powf(rel, 0.65f), 1e-3f), 0.2f);
            drifted[side * n + i] = g_d;
            drifted[(2 + side) * n + i] = fabsf(g_d) * (q_s * read_sigma_factor);
        }
    }
}

// chip.rs `Chip::read`: normalised weights wc[i] = (G+ − G−)/g_max from the drifted planes; with `noisy`, each
// conductance g_d + σ·ξ floored at 0, ξ from Philox block i/2 (two devices per block of four normals).
extern "C" __global__ void pim_pcm_read(const float* drifted, float* wc, long long n, int noisy, float g_max, uint32_t key0,
                                        uint32_t key1, uint32_t stream) {
    float inv_g = 1.0f / g_max;
    long long pairs = (n + 1) / 2;
    for (long long p = (long long)blockIdx.x * blockDim.x + threadIdx.x; p < pairs; p += (long long)gridDim.x * blockDim.x) {
        float4 z = noisy ? normal4_at(key0, key1, stream, p) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        float zs[4] = {z.x, z.y, z.z, z.w};
        for (int e = 0; e < 2 && 2 * p + e < n; e++) {
            long long i = 2 * p + e;
            float gp = drifted[i], gn = drifted[n + i];
            if (noisy) {
                gp = fmaxf(gp + drifted[2 * n + i] * zs[2 * e], 0.0f);
                gn = fmaxf(gn + drifted[3 * n + i] * zs[2 * e + 1], 0.0f);
            }
            wc[i] = (gp - gn) * inv_g;
        }
    }
}

// io.rs `chunk` + `dac` for every input chunk (K-chunks of tc columns) at once: xq [rows, k] is x through the
// DAC, each (row, chunk) divided by its input scale scale[c · rows + row]: 0 for an all-zero chunk row (its
// output is 0), else max |x| (abs-max) or 1. One warp per (row, chunk).
extern "C" __global__ void pim_pcm_dac(const float* x, int rows, int k, int tc, int chunks, float* xq, float* scale, int abs_max,
                                       float inp_step) {
    WarpTile t;  // the (row, chunk) of the warp: columns [o0, o1)
    if (!warp_tile(rows, k, tc, &t)) return;
    const float* xr = x + t.row * k + t.o0;
    float m = 0.0f;
    int lane = t.lane, kt = t.o1 - t.o0;
    for (int j = lane; j < kt; j += WARP) m = fmaxf(m, fabsf(xr[j]));
    m = warp_max(m);
    float s = m == 0.0f ? 0.0f : (abs_max ? m : 1.0f);
    if (lane == 0) scale[(long long)t.tile * rows + t.row] = s;
    for (int j = lane; j < kt; j += WARP) xq[t.row * k + t.o0 + j] = s > 0.0f ? io_quantize(xr[j] / s, inp_step, 1.0f) : 0.0f;
}

// Bound management stops halving the input at this reduction (io.rs `MAX_BM_REDUCTION`).
#define MAX_BM_REDUCTION 32.0f

// The output converter's settings and noise stream; `inv_step` = 1/step (0 without a step).
struct Adc {
    float noise, step, bound;
    uint32_t key0, key1, stream;
    float inv_step;
};

// The first Philox block of the output noise of chunk c's round `round` on a row: output o of a tile starting
// at o0 takes component (o − o0) % 4 of block counter + o0 + 4·⌊(o − o0)/4⌋.
__device__ __forceinline__ long long adc_counter(int c, int round, long long row, int rows, int n) {
    return (((long long)c * 8 + round) * rows + row) * n;
}

// Outputs o4..o4+3 of a row (0 past o1): one 16-byte load where `vec` says the row allows it. The loads of
// a tile row are all issued before any of its arithmetic, so that they are in flight together.
__device__ __forceinline__ float4 load4(const float* yr, int o4, int o1, bool vec) {
    if (vec && o4 + 3 < o1) return *reinterpret_cast<const float4*>(yr + o4);
    return make_float4(o4 < o1 ? yr[o4] : 0.0f, o4 + 1 < o1 ? yr[o4 + 1] : 0.0f, o4 + 2 < o1 ? yr[o4 + 2] : 0.0f,
                       o4 + 3 < o1 ? yr[o4 + 3] : 0.0f);
}

__device__ __forceinline__ void store4(float* yr, int o4, int o1, float4 v) {
    float vs[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
    for (int e = 0; e < 4; e++)
        if (o4 + e < o1) yr[o4 + e] = vs[e];
}

// Outputs o4..o4+3 (those below o1) of a tile row through output noise and the ADC: the converted values,
// clamped to ±bound, and *saturated set where one was beyond it.
__device__ __forceinline__ float4 adc4(float4 y, int o4, int o1, const Adc& a, long long counter, int* saturated) {
    float4 z = a.noise > 0.0f ? normal4_at(a.key0, a.key1, a.stream, counter + o4) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    float ys[4] = {y.x, y.y, y.z, y.w}, zs[4] = {z.x, z.y, z.z, z.w}, q[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
    for (int e = 0; e < 4; e++) {
        if (o4 + e < o1) {
            float v = ys[e];
            if (a.noise > 0.0f) v += a.noise * zs[e];
            // io_quantize without its bound, times the reciprocal: v comes from a GEMM whose last bits are the
            // GPU's own anyway, so an exact division would not make it the CPU's.
            float u = a.step > 0.0f ? rintf(v * a.inv_step) * a.step : v;
            *saturated |= fabsf(u) > a.bound;
            q[e] = clampf(u, -a.bound, a.bound);
        }
    }
    return make_float4(q[0], q[1], q[2], q[3]);
}

// A tile row's accepted outputs: acc[e] += (q·red·s)·factor[o4 + e] (saturating), and the pass mask (may be
// null; bytes: a quarter of the traffic of floats) 0 where the ADC clipped. accept1: one output, its pass byte.
__device__ __forceinline__ uint8_t accept1(float q, float red, float s, float f, float bound, float* acc) {
    float v = clampf(q * red * s, -FLT_MAX, FLT_MAX);
    *acc = clampf(*acc + clampf(v * f, -FLT_MAX, FLT_MAX), -FLT_MAX, FLT_MAX);
    return fabsf(q) >= bound ? 0 : 1;
}

__device__ __forceinline__ void accept4(float4 q4, int o4, int o1, float red, float s, const float* factor, float bound, float* acc,
                                        uint8_t* pass) {
    float q[4] = {q4.x, q4.y, q4.z, q4.w};
#pragma unroll
    for (int e = 0; e < 4; e++) {
        if (o4 + e < o1) {
            uint8_t passed = accept1(q[e], red, s, factor[o4 + e], bound, &acc[e]);
            if (pass) pass[o4 + e] = passed;
        }
    }
}

// float4s per lane: a tile of up to HELD·4·WARP = 512 outputs keeps its converted values and sums in registers.
#define HELD 4

// Round 0 of io.rs `tile` for every tile of a layer, and the K-partial sums: y [chunks, rows, n] holds each input
// chunk's product with the layer's weights (tiles of tw outputs; tile (rt, c) is the row tile rt of chunk c).
// One warp per (row, row tile), chunk after chunk: noise and ADC; a (row, tile) that saturates with `iterative`
// bound management is left pending (pending[(rt · chunks + c) · rows + row] = 1) and its (row, row tile) listed
// once in retry_items (row · row tiles + rt, counted by retry_count) for pim_pcm_retry; every other adds
// (y·scale)·factor[c · n + o] to out[row, o] (zero on entry) and writes its pass mask (pass [chunks, rows, n],
// may be null; 1 for a row with no input). y may be overwritten.
extern "C" __global__ void pim_pcm_finalize(float* y, int rows, int n, int tw, int chunks, const float* scale, const float* factor,
                                            float* out, uint8_t* pass, uint32_t* pending, uint32_t* retry_items,
                                            uint32_t* retry_count, int iterative, float out_noise, float out_step,
                                            float out_bound, uint32_t key0, uint32_t key1, uint32_t stream) {
    WarpTile w;
    if (!warp_tile(rows, n, tw, &w)) return;
    int lane = w.lane, o0 = w.o0, o1 = w.o1, rt = w.tile;
    long long row = w.row;
    Adc a = {out_noise, out_step, out_bound, key0, key1, stream, out_step > 0.0f ? 1.0f / out_step : 0.0f};
    bool held = o1 - o0 <= HELD * 4 * WARP, vec = n % 4 == 0 && tw % 4 == 0;
    float acc[HELD][4] = {};
    bool any_pending = false;
    for (int c = 0; c < chunks; c++) {
        long long at = ((long long)c * rows + row) * n;
        float* yr = y + at;
        uint8_t* pr = pass ? pass + at : nullptr;
        uint32_t* flag = &pending[((long long)rt * chunks + c) * rows + row];
        float s = scale[(long long)c * rows + row];
        if (!(s > 0.0f)) {
            if (lane == 0) *flag = 0u;
            if (pr)
                for (int o = o0 + lane; o < o1; o += WARP) pr[o] = 1;
            continue;
        }
        long long counter = adc_counter(c, 0, row, rows, n);
        const float* fc = factor + (long long)c * n;
        int saturated = 0;
        float4 q[HELD];
        if (held) {
            // The breaks are the same for the whole warp (a narrower tile): no predicated-off work is issued.
#pragma unroll
            for (int h = 0; h < HELD; h++) {
                if (o0 + 4 * WARP * h >= o1) break;
                q[h] = load4(yr, o0 + 4 * (lane + WARP * h), o1, vec);
            }
#pragma unroll
            for (int h = 0; h < HELD; h++) {
                if (o0 + 4 * WARP * h >= o1) break;
                int o4 = o0 + 4 * (lane + WARP * h);
                if (o4 < o1) q[h] = adc4(q[h], o4, o1, a, counter, &saturated);
            }
        } else {
            for (int o4 = o0 + 4 * lane; o4 < o1; o4 += 4 * WARP)
                store4(yr, o4, o1, adc4(load4(yr, o4, o1, vec), o4, o1, a, counter, &saturated));
        }
        if (__any_sync(0xffffffffu, saturated) && iterative) {
            if (lane == 0) *flag = 1u;
            any_pending = true;
            continue;
        }
        if (lane == 0) *flag = 0u;
        if (held) {
#pragma unroll
            for (int h = 0; h < HELD; h++) {
                if (o0 + 4 * WARP * h >= o1) break;
                int o4 = o0 + 4 * (lane + WARP * h);
                if (o4 < o1) accept4(q[h], o4, o1, 1.0f, s, fc, out_bound, acc[h], pr);
            }
        } else {
            for (int o4 = o0 + 4 * lane; o4 < o1; o4 += 4 * WARP) {
                float4 sum4 = load4(out + row * n, o4, o1, false);
                float sum[4] = {sum4.x, sum4.y, sum4.z, sum4.w};
                accept4(load4(yr, o4, o1, vec), o4, o1, 1.0f, s, fc, out_bound, sum, pr);
                store4(out + row * n, o4, o1, make_float4(sum[0], sum[1], sum[2], sum[3]));
            }
        }
    }
    if (held) {
#pragma unroll
        for (int h = 0; h < HELD; h++) {
            if (o0 + 4 * WARP * h >= o1) break;
            int o4 = o0 + 4 * (lane + WARP * h);
            store4(out + row * n, o4, o1, make_float4(acc[h][0], acc[h][1], acc[h][2], acc[h][3]));
        }
    }
    if (any_pending && lane == 0) retry_items[atomicAdd(retry_count, 1u)] = (uint32_t)(row * ((n + tw - 1) / tw) + rt);
}

__device__ __forceinline__ float warp_sum(float v) {
    for (int o = WARP / 2; o > 0; o /= 2) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// Outputs computed together by one warp of pim_pcm_retry, and its threads per block: one item's products
// take a block, so as many loads as possible must be in flight in it.
#define RETRY_OUTPUTS 8
#define RETRY_THREADS 512

// Iterative bound management after pim_pcm_finalize (io.rs `tile`, rounds 1, 2, …): for each listed (row, row
// tile), each of its pending chunks in chunk order is computed again with its input halved per round
// (x / scale / red through the DAC, red = 2, 4, …) until no output saturates or red reaches 32 (that round
// keeps its clipped outputs), then accumulated into out and its pass mask like pim_pcm_finalize's. The
// chunk's weights are wc's chunk-major [n, kt] matrix at n·k0. A block per item (grid-stride over the
// count, which only the GPU knows): the DAC'd chunk row in shared memory (tc floats), each warp the dot
// products of RETRY_OUTPUTS outputs at a time (16-byte loads where kt allows), y's row of the chunk as
// scratch. Each item owns its outputs: no two blocks add to one.
extern "C" __global__ void __launch_bounds__(RETRY_THREADS, 1) pim_pcm_retry(const float* x, int rows, int k, int tc, int chunks, const float* wc, int n, int tw,
                                         const float* scale, const float* factor, float* y, float* out, uint8_t* pass,
                                         const uint32_t* pending, const uint32_t* retry_items, const uint32_t* retry_count,
                                         float inp_step, float out_noise, float out_step, float out_bound, uint32_t key0,
                                         uint32_t key1, uint32_t stream) {
    extern __shared__ float4 shared4[];
    float* xq = reinterpret_cast<float*>(shared4);
    Adc a = {out_noise, out_step, out_bound, key0, key1, stream, out_step > 0.0f ? 1.0f / out_step : 0.0f};
    int warp = threadIdx.x / WARP, lane = threadIdx.x % WARP, warps = blockDim.x / WARP;
    int row_tiles = (n + tw - 1) / tw;
    uint32_t count = *retry_count;
    for (uint32_t it = blockIdx.x; it < count; it += gridDim.x) {
        uint32_t item = retry_items[it];
        long long row = item / row_tiles;
        int rt = (int)(item % row_tiles), o0 = rt * tw, o1 = min(o0 + tw, n);
        for (int c = 0; c < chunks; c++) {
            if (pending[((long long)rt * chunks + c) * rows + row] == 0u) continue;
            int k0 = c * tc, kt = min(tc, k - k0);
            bool vec = kt % 4 == 0 && ((long long)n * k0) % 4 == 0;
            float s = scale[(long long)c * rows + row];
            const float* xr = x + row * k + k0;
            const float* wchunk = wc + (long long)n * k0;
            long long at = ((long long)c * rows + row) * n;
            float* yr = y + at;
            uint8_t* pr = pass ? pass + at : nullptr;
            float red = 1.0f;
            for (int round = 1;; round++) {
                red *= 2.0f;
                __syncthreads();  // the last round's readers of xq and yr are done
                for (int j = threadIdx.x; j < kt; j += blockDim.x) xq[j] = io_quantize(xr[j] / s / red, inp_step, 1.0f);
                __syncthreads();
                for (int ob = o0 + RETRY_OUTPUTS * warp; ob < o1; ob += RETRY_OUTPUTS * warps) {
                    float d[RETRY_OUTPUTS] = {};
                    if (vec) {
#pragma unroll 2
                        for (int j4 = lane; j4 < kt / 4; j4 += WARP) {
                            float4 xv = shared4[j4];
#pragma unroll
                            for (int e = 0; e < RETRY_OUTPUTS; e++) {
                                if (ob + e < o1) {
                                    float4 wv = reinterpret_cast<const float4*>(wchunk + (long long)(ob + e) * kt)[j4];
                                    d[e] += xv.x * wv.x + xv.y * wv.y + xv.z * wv.z + xv.w * wv.w;
                                }
                            }
                        }
                    } else {
                        for (int j = lane; j < kt; j += WARP)
#pragma unroll
                            for (int e = 0; e < RETRY_OUTPUTS; e++)
                                if (ob + e < o1) d[e] += xq[j] * wchunk[(long long)(ob + e) * kt + j];
                    }
#pragma unroll
                    for (int e = 0; e < RETRY_OUTPUTS; e++) {
                        float v = warp_sum(d[e]);
                        if (lane == 0 && ob + e < o1) yr[ob + e] = v;
                    }
                }
                __syncthreads();
                long long counter = adc_counter(c, round, row, rows, n);
                int saturated = 0;
                for (int o4 = o0 + 4 * (int)threadIdx.x; o4 < o1; o4 += 4 * blockDim.x)
                    store4(yr, o4, o1, adc4(load4(yr, o4, o1, false), o4, o1, a, counter, &saturated));
                if (__syncthreads_or(saturated) && red < MAX_BM_REDUCTION) continue;
                for (int o4 = o0 + 4 * (int)threadIdx.x; o4 < o1; o4 += 4 * blockDim.x) {
                    float4 sum4 = load4(out + row * n, o4, o1, false);
                    float sum[4] = {sum4.x, sum4.y, sum4.z, sum4.w};
                    accept4(load4(yr, o4, o1, false), o4, o1, red, s, factor + (long long)c * n, out_bound, sum, pr);
                    store4(out + row * n, o4, o1, make_float4(sum[0], sum[1], sum[2], sum[3]));
                }
                break;
            }
        }
    }
}

// The hardware-aware backward's gradient through every chunk's converters: out[c, i] = pass[c, i] · grad[i]
// for pass [chunks, rows, n] and grad [rows, n] (`per_chunk` = rows · n elements).
extern "C" __global__ void pim_pcm_mask_grad(const uint8_t* pass, const float* grad, float* out, long long per_chunk, int chunks) {
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < per_chunk; i += (long long)gridDim.x * blockDim.x) {
        float g = grad[i];
        for (int c = 0; c < chunks; c++) out[c * per_chunk + i] = (float)pass[c * per_chunk + i] * g;
    }
}

// hwa.rs's tile weights for a training forward, written chunk-major (chunk c, columns k0..k0+kt, is the
// [n, kt] matrix at offset n·k0). Per output row j and chunk c: the scale s = max |w| over the row's chunk
// columns (per_row: rmax, pim_pcm_row_max) or over its tile's (tiles of `tr` rows: tmax, from the same kernel);
// wn = w/s (w where s = 0) plus noise·ξ in a tile with a non-zero weight; used = wn·s; factor[c·n + j] = s.
// The noise of wn's elements i..i+3 of a row (i − the row's start a multiple of 4) is Philox block i's four
// normals. One warp per (row, chunk); 16-byte accesses where `vec` (k, tc and kt multiples of 4).
extern "C" __global__ void pim_pcm_hwa_weights(const float* w, int n, int k, int tr, int tc, int chunks, const float* rmax,
                                               const float* tmax, int per_row, float noise, uint32_t key0, uint32_t key1,
                                               uint32_t stream, float* wn, float* used, float* factor) {
    long long task = (long long)blockIdx.x * (blockDim.x / WARP) + threadIdx.x / WARP;
    if (task >= (long long)n * chunks) return;
    int lane = threadIdx.x % WARP;
    int j = (int)(task / chunks), c = (int)(task % chunks);
    float tile_max = tmax[(long long)(j / tr) * chunks + c];
    float s = per_row ? rmax[(long long)j * chunks + c] : tile_max;
    int k0 = c * tc, kt = min(tc, k - k0);
    const float* wr = w + (long long)j * k + k0;
    long long base = (long long)n * k0 + (long long)j * kt;
    bool noisy = noise > 0.0f && tile_max > 0.0f;
    bool vec = k % 4 == 0 && tc % 4 == 0 && kt % 4 == 0;
    for (int b4 = 4 * lane; b4 < kt; b4 += 4 * WARP) {
        float4 z = noisy ? normal4_at(key0, key1, stream, base + b4) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        float zs[4] = {z.x, z.y, z.z, z.w}, ws[4], vs[4], us[4];
        if (vec) {
            float4 w4 = ld4(wr + b4);
            ws[0] = w4.x; ws[1] = w4.y; ws[2] = w4.z; ws[3] = w4.w;
        } else {
#pragma unroll
            for (int e = 0; e < 4; e++) ws[e] = b4 + e < kt ? wr[b4 + e] : 0.0f;
        }
#pragma unroll
        for (int e = 0; e < 4; e++) {
            float v = s > 0.0f ? ws[e] / s : ws[e];
            if (noisy) v += noise * zs[e];
            vs[e] = v;
            us[e] = v * s;
        }
        if (vec) {
            st4(wn + base + b4, make_float4(vs[0], vs[1], vs[2], vs[3]));
            st4(used + base + b4, make_float4(us[0], us[1], us[2], us[3]));
        } else {
#pragma unroll
            for (int e = 0; e < 4; e++)
                if (b4 + e < kt) {
                    wn[base + b4 + e] = vs[e];
                    used[base + b4 + e] = us[e];
                }
        }
    }
    if (lane == 0) factor[(long long)c * n + j] = s;
}

// ---- The post-update clip and remap of hardware-aware training (pcm_aihwkit/remap.rs), in fixed-order
// reductions so that a run repeats bit for bit. Tiles are `tr` × `tc` (the layer's whole extent for core
// size 0), numbered row-major over the grid of `chunks` tile columns. ----

// rmax[row · chunks + c] = max |w| over the row's columns of tile column c, and (tmax not null, zero on entry)
// tmax[(row / tr) · chunks + c] the maximum over the tile's rows, by an atomic max on the bits (as
// pim_tile_max). One warp per (row, c).
extern "C" __global__ void pim_pcm_row_max(const float* w, int n, int k, int tc, int chunks, float* rmax, int tr, float* tmax) {
    long long task = (long long)blockIdx.x * (blockDim.x / WARP) + threadIdx.x / WARP;
    if (task >= (long long)n * chunks) return;
    int lane = threadIdx.x % WARP;
    long long row = task / chunks;
    int c0 = (int)(task % chunks) * tc, c1 = min(c0 + tc, k);
    float m = 0.0f;
    for (int c = c0 + lane; c < c1; c += WARP) m = fmaxf(m, fabsf(w[row * k + c]));
    m = warp_max(m);
    if (lane == 0) rmax[task] = m;
    if (lane == 0 && tmax != nullptr && m > 0.0f)
        atomicMax((unsigned int*)&tmax[(row / tr) * chunks + task % chunks], __float_as_uint(m));
}

// Partial sums (Σx, Σx², count) of the normalised weights x = w / rowmax of the live rows (rowmax > 0), per
// (tile = blockIdx.x, slab of `slab` rows = blockIdx.y): part[(tile · slabs + slab) · 3 + j]. 256 threads.
extern "C" __global__ void pim_pcm_clip_stats(const float* w, int n, int k, int tr, int tc, int chunks, const float* rmax,
                                              int slab, double* part) {
    __shared__ double red[3][256];
    int tile = blockIdx.x, ti = tile / chunks, tj = tile % chunks;
    int r0 = ti * tr + blockIdx.y * slab, r1 = min(min(r0 + slab, ti * tr + tr), n);
    int c0 = tj * tc, c1 = min(c0 + tc, k), width = c1 - c0;
    double s = 0.0, s2 = 0.0, cnt = 0.0;
    long long count = r1 > r0 ? (long long)(r1 - r0) * width : 0;
    for (long long i = threadIdx.x; i < count; i += blockDim.x) {
        int r = r0 + (int)(i / width), c = c0 + (int)(i % width);
        float m = rmax[(long long)r * chunks + tj];
        if (m > 0.0f) {
            double x = (double)(w[(long long)r * k + c] / m);
            s += x;
            s2 += x * x;
            cnt += 1.0;
        }
    }
    red[0][threadIdx.x] = s;
    red[1][threadIdx.x] = s2;
    red[2][threadIdx.x] = cnt;
    __syncthreads();
    for (int o = blockDim.x / 2; o > 0; o /= 2) {
        if (threadIdx.x < o)
            for (int j = 0; j < 3; j++) red[j][threadIdx.x] += red[j][threadIdx.x + o];
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        double* p = part + ((long long)tile * gridDim.y + blockIdx.y) * 3;
        p[0] = red[0][0];
        p[1] = red[1][0];
        p[2] = red[2][0];
    }
}

// bound[tile] = clip·σ of the tile's normalised weights, or +∞ where nothing is to be clipped (fewer than two
// weights, no spread, or a bound of 1 or more: every |x| ≤ 1 already). One thread per tile.
extern "C" __global__ void pim_pcm_clip_bound(const double* part, int tiles, int slabs, float clip_sigma, float* bound) {
    int tile = blockIdx.x * blockDim.x + threadIdx.x;
    if (tile >= tiles) return;
    double s = 0.0, s2 = 0.0, cnt = 0.0;
    for (int j = 0; j < slabs; j++) {
        const double* p = part + ((long long)tile * slabs + j) * 3;
        s += p[0];
        s2 += p[1];
        cnt += p[2];
    }
    float b = INFINITY;
    if (cnt >= 2.0) {
        double mean = s / cnt;
        float sigma = (float)sqrt(fmax(s2 / cnt - mean * mean, 0.0));
        float c = clip_sigma * sigma;
        if (isfinite(c) && c > 0.0f && c < 1.0f) b = c;
    }
    bound[tile] = b;
}

// out = rowmax · clamp(w / rowmax, ±bound) where |w / rowmax| > bound; every other weight keeps its bits.
extern "C" __global__ void pim_pcm_clip_apply(const float* w, float* out, long long total, int k, int tr, int tc, int chunks,
                                              const float* rmax, const float* bound) {
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (long long)gridDim.x * blockDim.x) {
        long long r = i / k;
        int c = (int)(i % k);
        int tj = c / tc;
        float b = bound[(r / tr) * chunks + tj];
        float m = rmax[r * chunks + tj];
        float v = w[i];
        if (m > 0.0f && !isinf(b)) {
            float x = v / m;
            if (fabsf(x) > b) v = clampf(x, -b, b) * m;
        }
        out[i] = v;
    }
}

// ---- Vector forms of the DAC and the converter for the presets' shapes: chunks and tiles of 128·V columns
// (the last one may be narrower) in rows of a multiple of 4. Lane l holds columns 4l + 128v (v < V) as float4s:
// a chunk row is V 16-byte loads per lane, with no per-element bounds or index arithmetic. The same arithmetic,
// draws and lists as the general kernels, on the same inputs. ----


// pim_pcm_dac for chunks of tc = 128·V columns and k a multiple of 4.
template <int V>
__device__ __forceinline__ void pcm_dac_vec(const float* x, int rows, int k, int tc, int chunks, float* xq, float* scale, int abs_max,
                                           float inp_step) {
    WarpTile t;  // the (row, chunk) of the warp: columns [o0, o1)
    if (!warp_tile(rows, k, tc, &t)) return;
    const float* xr = x + t.row * k + t.o0;
    int lane = t.lane, kt = t.o1 - t.o0;
    float4 v[V];
    float m = 0.0f;
#pragma unroll
    for (int i = 0; i < V; i++) {
        v[i] = 4 * (lane + WARP * i) < kt ? ld4(xr + 4 * (lane + WARP * i)) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        m = fmaxf(fmaxf(fmaxf(m, fabsf(v[i].x)), fmaxf(fabsf(v[i].y), fabsf(v[i].z))), fabsf(v[i].w));
    }
    m = warp_max(m);
    float s = m == 0.0f ? 0.0f : (abs_max ? m : 1.0f);
    if (lane == 0) scale[(long long)t.tile * rows + t.row] = s;
#pragma unroll
    for (int i = 0; i < V; i++) {
        int j = 4 * (lane + WARP * i);
        if (j >= kt) continue;
        float4 q = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        if (s > 0.0f)
            q = make_float4(io_quantize(v[i].x / s, inp_step, 1.0f), io_quantize(v[i].y / s, inp_step, 1.0f),
                            io_quantize(v[i].z / s, inp_step, 1.0f), io_quantize(v[i].w / s, inp_step, 1.0f));
        st4(xq + t.row * k + t.o0 + j, q);
    }
}

extern "C" __global__ void pim_pcm_dac_vec4(const float* x, int rows, int k, int tc, int chunks, float* xq, float* scale, int abs_max,
                                            float inp_step) {
    pcm_dac_vec<4>(x, rows, k, tc, chunks, xq, scale, abs_max, inp_step);
}
extern "C" __global__ void pim_pcm_dac_vec2(const float* x, int rows, int k, int tc, int chunks, float* xq, float* scale, int abs_max,
                                            float inp_step) {
    pcm_dac_vec<2>(x, rows, k, tc, chunks, xq, scale, abs_max, inp_step);
}
extern "C" __global__ void pim_pcm_dac_vec1(const float* x, int rows, int k, int tc, int chunks, float* xq, float* scale, int abs_max,
                                            float inp_step) {
    pcm_dac_vec<1>(x, rows, k, tc, chunks, xq, scale, abs_max, inp_step);
}

// pim_pcm_finalize for tiles of tw = 128·V outputs and n a multiple of 4; writes every output of out.
template <int V>
__device__ __forceinline__ void pcm_finalize_vec(const float* y, int rows, int n, int tw, int chunks, const float* scale,
                                                const float* factor, float* out, uint8_t* pass, uint32_t* pending,
                                                uint32_t* retry_items, uint32_t* retry_count, int iterative, float out_noise,
                                                float out_step, float out_bound, uint32_t key0, uint32_t key1, uint32_t stream) {
    WarpTile w;
    if (!warp_tile(rows, n, tw, &w)) return;
    int lane = w.lane, o0 = w.o0, o1 = w.o1, rt = w.tile;
    long long row = w.row, stride = (long long)rows * n;
    Adc a = {out_noise, out_step, out_bound, key0, key1, stream, out_step > 0.0f ? 1.0f / out_step : 0.0f};
    int o4[V];
    bool live[V];
    float4 next[V];
    float acc[V][4] = {};
#pragma unroll
    for (int v = 0; v < V; v++) {
        o4[v] = o0 + 4 * (lane + WARP * v);
        live[v] = o4[v] < o1;
        next[v] = live[v] ? ld4(y + row * n + o4[v]) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    }
    bool any_pending = false;
    for (int c = 0; c < chunks; c++) {
        float4 cur[V];
#pragma unroll
        for (int v = 0; v < V; v++) {
            cur[v] = next[v];
            if (c + 1 < chunks && live[v]) next[v] = ld4(y + (c + 1) * stride + row * n + o4[v]);
        }
        uint8_t* pr = pass ? pass + c * stride + row * n : nullptr;
        uint32_t* flag = &pending[((long long)rt * chunks + c) * rows + row];
        float s = scale[(long long)c * rows + row];
        if (!(s > 0.0f)) {
            if (lane == 0) *flag = 0u;
            if (pr)
#pragma unroll
                for (int v = 0; v < V; v++)
                    if (live[v]) *reinterpret_cast<uchar4*>(pr + o4[v]) = make_uchar4(1, 1, 1, 1);
            continue;
        }
        long long counter = adc_counter(c, 0, row, rows, n);
        int saturated = 0;
        float4 q[V];
#pragma unroll
        for (int v = 0; v < V; v++)
            if (live[v]) q[v] = adc4(cur[v], o4[v], o1, a, counter, &saturated);
        if (__any_sync(0xffffffffu, saturated) && iterative) {
            if (lane == 0) *flag = 1u;
            any_pending = true;
            continue;
        }
        if (lane == 0) *flag = 0u;
        const float* fc = factor + (long long)c * n;
#pragma unroll
        for (int v = 0; v < V; v++) {
            if (!live[v]) continue;
            float4 f4 = ld4(fc + o4[v]);
            float qs[4] = {q[v].x, q[v].y, q[v].z, q[v].w}, fs[4] = {f4.x, f4.y, f4.z, f4.w};
            uint8_t ps[4];
#pragma unroll
            for (int e = 0; e < 4; e++) ps[e] = accept1(qs[e], 1.0f, s, fs[e], out_bound, &acc[v][e]);
            if (pr) *reinterpret_cast<uchar4*>(pr + o4[v]) = make_uchar4(ps[0], ps[1], ps[2], ps[3]);
        }
    }
#pragma unroll
    for (int v = 0; v < V; v++)
        if (live[v]) st4(out + row * n + o4[v], make_float4(acc[v][0], acc[v][1], acc[v][2], acc[v][3]));
    if (any_pending && lane == 0) retry_items[atomicAdd(retry_count, 1u)] = (uint32_t)(row * ((n + tw - 1) / tw) + rt);
}

#define PCM_FINALIZE_VEC_PARAMS \
    const float* y, int rows, int n, int tw, int chunks, const float* scale, const float* factor, float* out, uint8_t* pass, \
    uint32_t* pending, uint32_t* retry_items, uint32_t* retry_count, int iterative, float out_noise, float out_step, float out_bound, \
    uint32_t key0, uint32_t key1, uint32_t stream
#define PCM_FINALIZE_VEC_ARGS \
    y, rows, n, tw, chunks, scale, factor, out, pass, pending, retry_items, retry_count, iterative, out_noise, out_step, out_bound, key0, \
    key1, stream

extern "C" __global__ void __launch_bounds__(256, 3) pim_pcm_finalize_vec4(PCM_FINALIZE_VEC_PARAMS) { pcm_finalize_vec<4>(PCM_FINALIZE_VEC_ARGS); }
extern "C" __global__ void pim_pcm_finalize_vec2(PCM_FINALIZE_VEC_PARAMS) { pcm_finalize_vec<2>(PCM_FINALIZE_VEC_ARGS); }
extern "C" __global__ void pim_pcm_finalize_vec1(PCM_FINALIZE_VEC_PARAMS) { pcm_finalize_vec<1>(PCM_FINALIZE_VEC_ARGS); }
