// The AIHWKIT PCM tiles' evaluation kernels (src/pim/pcm_aihwkit, launched from src/pim/gpu/pcm.rs): the read,
// the DAC and the output converters; bound management is pcm_retry.cuh's, training pcm_training.cuh's. Part
// of the one PTX module of kernels.cu, which includes this file after its shared helpers (clampf, warp_max,
// normal4_at, WarpTile).

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

// A device pair's normalised weight (G+ − G−)/g_max, each conductance g + σ·z floored at 0 when `noisy`.
__device__ __forceinline__ float read_weight(float gp, float gn, float sp, float sn, float zp, float zn, bool noisy, float inv_g) {
    if (noisy) {
        gp = fmaxf(gp + sp * zp, 0.0f);
        gn = fmaxf(gn + sn * zn, 0.0f);
    }
    return (gp - gn) * inv_g;
}

// chip.rs `Chip::read`: normalised weights wc[i] = (G+ − G−)/g_max from the drifted planes; with `noisy`, each
// conductance g_d + σ·ξ floored at 0, ξ from Philox block i/2 (two devices per block of four normals). A
// thread per two weights, with 8-byte accesses where the planes allow (n even, aligned storage): 9.6 against
// 9.9 µs a call with 4-byte ones in a roberta-base forward on an H200.
extern "C" __global__ void pim_pcm_read(const float* drifted, float* wc, long long n, int noisy, float g_max,
                                        const __grid_constant__ RoundKeys key) {
    float inv_g = 1.0f / g_max;
    long long pairs = (n + 1) / 2;
    bool vec = n % 2 == 0 && ((uintptr_t)drifted | (uintptr_t)wc) % 8 == 0;
    for (long long p = (long long)blockIdx.x * blockDim.x + threadIdx.x; p < pairs; p += (long long)gridDim.x * blockDim.x) {
        float4 z = noisy ? normal4_at(key, p) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        long long i = 2 * p;
        if (vec) {
            const float2* d = reinterpret_cast<const float2*>(drifted);
            float2 gp = d[p], gn = d[n / 2 + p];
            float2 sp = noisy ? d[n + p] : make_float2(0.0f, 0.0f), sn = noisy ? d[3 * (n / 2) + p] : make_float2(0.0f, 0.0f);
            reinterpret_cast<float2*>(wc)[p] = make_float2(read_weight(gp.x, gn.x, sp.x, sn.x, z.x, z.y, noisy, inv_g),
                                                           read_weight(gp.y, gn.y, sp.y, sn.y, z.z, z.w, noisy, inv_g));
            continue;
        }
        float zs[4] = {z.x, z.y, z.z, z.w};
        for (int e = 0; e < 2 && i + e < n; e++) {
            float sp = noisy ? drifted[2 * n + i + e] : 0.0f, sn = noisy ? drifted[3 * n + i + e] : 0.0f;
            wc[i + e] = read_weight(drifted[i + e], drifted[n + i + e], sp, sn, zs[2 * e], zs[2 * e + 1], noisy, inv_g);
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

// The output converter's settings and noise stream (the kernel's parameter); `inv_step` = 1/step (0 without a
// step).
struct Adc {
    float noise, step, bound;
    const RoundKeys* key;
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

// One output y through output noise (draw z) and the ADC, before the clamp to ±bound. The noise is added with
// one rounding (a fused multiply-add): the draws are the GPU's own, no CPU value to repeat. The ADC is
// io_quantize without its bound, times the reciprocal: y comes from a GEMM whose last bits are the GPU's own
// anyway, so an exact division would not make it the CPU's. FULL: the caller knows that output noise and the
// step are both on (the presets' converter): the same arithmetic without the tests, which with their other
// branches were 39 of the 134 instructions per float4 of the vector converter.
template <bool FULL = false>
__device__ __forceinline__ float adc_convert(float y, float z, const Adc& a) {
    float v = FULL || a.noise > 0.0f ? __fmaf_rn(a.noise, z, y) : y;
    return FULL || a.step > 0.0f ? rintf(v * a.inv_step) * a.step : v;
}

template <bool FULL = false>
__device__ __forceinline__ float4 adc_noise4(const Adc& a, long long index) {
    return FULL || a.noise > 0.0f ? normal4_at(*a.key, index) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
}

// Outputs o4..o4+3 (those below o1) of a tile row through output noise and the ADC: the converted values,
// clamped to ±bound, and *saturated set where one was beyond it.
__device__ __forceinline__ float4 adc4(float4 y, int o4, int o1, const Adc& a, long long counter, int* saturated) {
    float4 z = adc_noise4(a, counter + o4);
    float ys[4] = {y.x, y.y, y.z, y.w}, zs[4] = {z.x, z.y, z.z, z.w}, q[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
    for (int e = 0; e < 4; e++) {
        if (o4 + e < o1) {
            float u = adc_convert(ys[e], zs[e], a);
            *saturated |= fabsf(u) > a.bound;
            q[e] = clampf(u, -a.bound, a.bound);
        }
    }
    return make_float4(q[0], q[1], q[2], q[3]);
}

// adc4 for four outputs that all exist: the converted values before the clamp to ±bound, and *peak the
// largest |value| so far (a NaN counts as no saturation, as in adc4).
template <bool FULL>
__device__ __forceinline__ float4 adc4_unclamped(float4 y, const Adc& a, long long index, float* peak) {
    float4 z = adc_noise4<FULL>(a, index);
    float ys[4] = {y.x, y.y, y.z, y.w}, zs[4] = {z.x, z.y, z.z, z.w};
#pragma unroll
    for (int e = 0; e < 4; e++) {
        ys[e] = adc_convert<FULL>(ys[e], zs[e], a);
        *peak = fmaxf(*peak, fabsf(ys[e]));
    }
    return make_float4(ys[0], ys[1], ys[2], ys[3]);
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
                                            float out_bound, const __grid_constant__ RoundKeys key) {
    WarpTile w;
    if (!warp_tile(rows, n, tw, &w)) return;
    int lane = w.lane, o0 = w.o0, o1 = w.o1, rt = w.tile;
    long long row = w.row;
    Adc a = {out_noise, out_step, out_bound, &key, out_step > 0.0f ? 1.0f / out_step : 0.0f};
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

// pim_pcm_finalize's chunk loop for tiles of 128·V outputs (lane l holds outputs o4[v] = o0 + 4(l + 32v), live
// where below o1: whole float4s, n being a multiple of 4). Measured on an H200, µs a call in a roberta-base
// forward: no prefetch of the next chunk into registers (44.8 against 48.8 with one); 3 blocks per SM at 80
// registers rather than 4 at 64, which spilled (38.7 against 40.0); slower: a block of 128 threads per tile
// row, a float4 each, deciding saturation with __syncthreads_or, at any occupancy (48.5), and the next chunk
// copied into shared memory (cp.async) while this one converts (44.5). The accepted
// outputs are summed into acc; returns whether a chunk was left pending. SAFE: with the saturating steps of
// accept1. Without them (the first pass): (q·s)·f summed as it is, which is the same wherever the sum ends
// finite (an overflow anywhere makes it ∞ or NaN for good), and q unclamped where iterative bound management
// accepted the chunk (every |q| within the bound then, or a NaN, which again ends non-finite): a third of the
// per-output work.
template <int V, bool FULL, bool SAFE>
__device__ __forceinline__ bool finalize_vec_chunks(const float* y, int rows, int n, int chunks, const float* scale, const float* factor,
                                                   uint8_t* pass, uint32_t* flags, int iterative, const Adc& a, long long row,
                                                   int lane, const int* o4, const bool* live, float (*acc)[4]) {
    long long stride = (long long)rows * n;
    // Chunk c's offset of the lane's first output in y and pass, and the noise block of that output, stepped
    // a chunk at a time: recomputed for each float4, they cost 5% (42.0 against 40.0 µs a call).
    long long at = row * n + o4[0], counter = adc_counter(0, 0, row, rows, n) + o4[0];
    bool any_pending = false;
    for (int c = 0; c < chunks; c++, at += stride, counter += 8 * stride) {
        float4 cur[V];
#pragma unroll
        for (int v = 0; v < V; v++) cur[v] = live[v] ? ld4(y + at + 4 * WARP * v) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        uint8_t* pr = pass ? pass + at : nullptr;
        uint32_t* flag = flags + (long long)c * rows;
        float s = scale[(long long)c * rows + row];
        if (!(s > 0.0f)) {
            if (lane == 0) *flag = 0u;
            if (pr)
#pragma unroll
                for (int v = 0; v < V; v++)
                    if (live[v]) *reinterpret_cast<uchar4*>(pr + 4 * WARP * v) = make_uchar4(1, 1, 1, 1);
            continue;
        }
        float peak = 0.0f;
        float4 q[V];
#pragma unroll
        for (int v = 0; v < V; v++)
            if (live[v]) q[v] = adc4_unclamped<FULL>(cur[v], a, counter + 4 * WARP * v, &peak);
        if (__any_sync(0xffffffffu, peak > a.bound) && iterative) {
            if (lane == 0) *flag = 1u;
            any_pending = true;
            continue;
        }
        if (lane == 0) *flag = 0u;
        const float* fc = factor + (long long)c * n + o4[0];
#pragma unroll
        for (int v = 0; v < V; v++) {
            if (!live[v]) continue;
            float4 f4 = ld4(fc + 4 * WARP * v);
            float qs[4] = {q[v].x, q[v].y, q[v].z, q[v].w}, fs[4] = {f4.x, f4.y, f4.z, f4.w};
            uint8_t ps[4];
#pragma unroll
            for (int e = 0; e < 4; e++) {
                if (SAFE || !iterative) qs[e] = clampf(qs[e], -a.bound, a.bound);
                if (SAFE) {
                    ps[e] = accept1(qs[e], 1.0f, s, fs[e], a.bound, &acc[v][e]);
                } else {
                    acc[v][e] += (qs[e] * s) * fs[e];
                    ps[e] = fabsf(qs[e]) >= a.bound ? 0 : 1;
                }
            }
            if (pr) *reinterpret_cast<uchar4*>(pr + 4 * WARP * v) = make_uchar4(ps[0], ps[1], ps[2], ps[3]);
        }
    }
    return any_pending;
}

// The outputs o4[v] (live below o1) of lane `lane` of a tile row, as pcm_finalize_vec holds them.
template <int V>
__device__ __forceinline__ void vec_outputs(int o0, int o1, int lane, int* o4, bool* live) {
#pragma unroll
    for (int v = 0; v < V; v++) {
        o4[v] = o0 + 4 * (lane + WARP * v);
        live[v] = o4[v] < o1;
    }
}

// A tile row of pcm_finalize_vec again with the saturating steps, its outputs stored; whether a chunk was left
// pending. Not inlined: it is the rare path (a sum that overflowed), and inlined it cost the common one its
// registers.
template <int V>
__device__ __noinline__ bool finalize_vec_saturating(const float* y, int rows, int n, int chunks, const float* scale, const float* factor,
                                                     float* out, uint8_t* pass, uint32_t* flags, int iterative, Adc a, long long row,
                                                     int lane, int o0, int o1) {
    int o4[V];
    bool live[V];
    vec_outputs<V>(o0, o1, lane, o4, live);
    float acc[V][4] = {};
    bool any_pending =
        finalize_vec_chunks<V, false, true>(y, rows, n, chunks, scale, factor, pass, flags, iterative, a, row, lane, o4, live, acc);
#pragma unroll
    for (int v = 0; v < V; v++)
        if (live[v]) st4(out + row * n + o4[v], make_float4(acc[v][0], acc[v][1], acc[v][2], acc[v][3]));
    return any_pending;
}

// pim_pcm_finalize for tiles of tw = 128·V outputs and n a multiple of 4; writes every output of out. A tile
// row whose sums end non-finite is computed again with the saturating steps (the same draws and decisions).
// FULL: output noise and the step are on (adc_convert).
template <int V, bool FULL>
__device__ __forceinline__ void pcm_finalize_vec(const float* y, int rows, int n, int tw, int chunks, const float* scale,
                                                const float* factor, float* out, uint8_t* pass, uint32_t* pending,
                                                uint32_t* retry_items, uint32_t* retry_count, int iterative, float out_noise,
                                                float out_step, float out_bound, const RoundKeys& key) {
    WarpTile w;
    if (!warp_tile(rows, n, tw, &w)) return;
    int lane = w.lane, o0 = w.o0, o1 = w.o1, rt = w.tile;
    long long row = w.row;
    Adc a = {out_noise, out_step, out_bound, &key, out_step > 0.0f ? 1.0f / out_step : 0.0f};
    int o4[V];
    bool live[V];
    vec_outputs<V>(o0, o1, lane, o4, live);
    uint32_t* flags = &pending[(long long)rt * chunks * rows + row];  // chunk c's at flags + c·rows
    float acc[V][4] = {};
    bool any_pending =
        finalize_vec_chunks<V, FULL, false>(y, rows, n, chunks, scale, factor, pass, flags, iterative, a, row, lane, o4, live, acc);
    bool finite = true;
#pragma unroll
    for (int v = 0; v < V; v++)
#pragma unroll
        for (int e = 0; e < 4; e++) finite = finite && isfinite(acc[v][e]);
    if (__any_sync(0xffffffffu, !finite)) {
        any_pending = finalize_vec_saturating<V>(y, rows, n, chunks, scale, factor, out, pass, flags, iterative, a, row, lane, o0, o1);
    } else {
#pragma unroll
        for (int v = 0; v < V; v++)
            if (live[v]) st4(out + row * n + o4[v], make_float4(acc[v][0], acc[v][1], acc[v][2], acc[v][3]));
    }
    if (any_pending && lane == 0) retry_items[atomicAdd(retry_count, 1u)] = (uint32_t)(row * ((n + tw - 1) / tw) + rt);
}

#define PCM_FINALIZE_VEC_PARAMS \
    const float* y, int rows, int n, int tw, int chunks, const float* scale, const float* factor, float* out, uint8_t* pass, \
    uint32_t* pending, uint32_t* retry_items, uint32_t* retry_count, int iterative, float out_noise, float out_step, float out_bound, \
    const __grid_constant__ RoundKeys key
#define PCM_FINALIZE_VEC_ARGS \
    y, rows, n, tw, chunks, scale, factor, out, pass, pending, retry_items, retry_count, iterative, out_noise, out_step, out_bound, key

// pcm.rs `finalize_kernel` picks one: the _full forms where output noise and the step are both on.
#define PCM_FINALIZE_VEC(V, BOUNDS)                                                                    \
    extern "C" __global__ void BOUNDS pim_pcm_finalize_vec##V(PCM_FINALIZE_VEC_PARAMS) {              \
        pcm_finalize_vec<V, false>(PCM_FINALIZE_VEC_ARGS);                                             \
    }                                                                                                  \
    extern "C" __global__ void BOUNDS pim_pcm_finalize_vec##V##_full(PCM_FINALIZE_VEC_PARAMS) {       \
        pcm_finalize_vec<V, true>(PCM_FINALIZE_VEC_ARGS);                                              \
    }
PCM_FINALIZE_VEC(4, __launch_bounds__(256, 3))
PCM_FINALIZE_VEC(2, )
PCM_FINALIZE_VEC(1, )
