// The PIM tiles' per-element work on NVIDIA GPUs: the same quantizers as src/pim/quant.rs (bit for bit:
// round half to even with rintf, IEEE division, no FMA contraction: built with -fmad=false), a counter-based
// normal generator for noise, and the per-(row, tile) output converters. Matrix products stay in cuBLAS.
//
// Format codes (quant.rs `Format`): 0 exact, 1 block floating point e{E}m{M}, 2 symmetric int{B},
// 3 NewComputeBench DAC with B bits, 4 ideal NewComputeBench DAC (normalise only).

#include <float.h>
#include <stdint.h>

#include "philox.cuh"

#define WARP 32

__device__ __forceinline__ float warp_max(float v) {
    for (int o = WARP / 2; o > 0; o /= 2) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// Exact ceil(log2(x)) from the bits, as quant.rs `ceil_log2`; 0 where that returns None.
__device__ int ceil_log2(float x) {
    if (!(x > 0.0f)) return 0;
    if (isinf(x)) return 128;
    uint32_t bits = __float_as_uint(x);
    int exp_field = (bits >> 23) & 0xff;
    uint32_t mantissa = bits & 0x7fffff;
    if (exp_field == 0) return -149 + (32 - __clz(mantissa - 1));
    return exp_field - 127 + (mantissa != 0 ? 1 : 0);
}

__device__ __forceinline__ float pow2(int e) {
    e = max(-126, min(127, e));
    return __uint_as_float((uint32_t)(e + 127) << 23);
}

__device__ __forceinline__ float clampf(float v, float lo, float hi) { return fminf(fmaxf(v, lo), hi); }

// One shared scale, ready to apply (quant.rs `Grid`).
struct Grid {
    int kind;  // 0 exact, 1 pow2, 2 sym, 3 sym64, 4 ncb, 5 norm
    float a, b, lo, hi;
    double s64, lo64, hi64;
};

__device__ Grid make_grid(int format, int e_bits, int m_bits, int bits, float max_abs) {
    Grid g = {0, 0.f, 0.f, 0.f, 0.f, 0.0, 0.0, 0.0};
    if (format == 1) {
        int half = 1 << (e_bits - 1);
        int emax = max(-half, min(half - 1, ceil_log2(max_abs + 1e-8f)));
        float lim = (float)(1u << m_bits);
        g.kind = 1; g.a = pow2(m_bits - emax); g.b = pow2(emax - m_bits); g.lo = -lim; g.hi = lim - 1.0f;
    } else if (format == 2) {
        if (!(max_abs > 0.0f) || isinf(max_abs)) return g;
        float half = (float)(1u << (bits - 1));
        float s = half / max_abs;
        if (isfinite(s)) {
            g.kind = 2; g.a = s; g.lo = -half; g.hi = half - 1.0f;
        } else {
            g.kind = 3; g.s64 = (double)half / (double)max_abs; g.lo64 = -(double)half; g.hi64 = (double)half - 1.0;
        }
    } else if (format == 3) {
        float p = (float)(1u << (bits - 1));
        g.kind = 4; g.a = p; g.b = max_abs + 1e-9f; g.lo = -p; g.hi = p - 1.0f;
    } else if (format == 4) {
        g.kind = 5; g.b = max_abs + 1e-9f;
    }
    return g;
}

__device__ __forceinline__ float grid_apply(const Grid& g, float v) {
    switch (g.kind) {
        case 1: return clampf(rintf(v * g.a), g.lo, g.hi) * g.b;
        case 2: return clampf(rintf(v * g.a), g.lo, g.hi) / g.a;
        case 3: return (float)(fmin(fmax(rint((double)v * g.s64), g.lo64), g.hi64) / g.s64);
        case 4: return clampf(rintf((v * g.a) / g.b), g.lo, g.hi) / g.a;
        case 5: return v / g.b;
        default: return v;
    }
}

// Quantizes x [rows, k] in place with one scale per (row group, K-chunk of cs columns). Groups: within each
// sequence of `rps` rows, consecutive runs of `group_rows` rows (1: a scale per token or weight row; cs: the
// block scale, or a weight tile). One warp per (group, chunk). `norms` [groups, chunks] gets the factor that
// turns the output back into input units (NCB DAC: max + 1e-9; else 1); may be null.
extern "C" __global__ void pim_quantize_groups(const float* src, float* x, int rows, int k, int cs, int group_rows, int rps, int format,
                                               int e_bits, int m_bits, int bits, float* norms) {
    int chunks = (k + cs - 1) / cs;
    int groups_per_seq = (rps + group_rows - 1) / group_rows;
    int seqs = (rows + rps - 1) / rps;
    long long task = (long long)blockIdx.x * (blockDim.x / WARP) + threadIdx.x / WARP;
    if (task >= (long long)seqs * groups_per_seq * chunks) return;
    int lane = threadIdx.x % WARP;
    int chunk = (int)(task % chunks);
    long long group = task / chunks;
    int seq = (int)(group / groups_per_seq);
    int r0 = seq * rps + (int)(group % groups_per_seq) * group_rows;
    int seq_end = min(seq * rps + rps, rows);
    int r1 = min(r0 + group_rows, seq_end);
    int c0 = chunk * cs, c1 = min(c0 + cs, k), width = c1 - c0;
    if (r0 >= r1) {  // a group past the end of a short last sequence
        if (norms != nullptr && lane == 0) norms[group * chunks + chunk] = 1.0f;
        return;
    }
    // Rows in turn, the lanes along a row: coalesced, and no division per element.
    float m = 0.0f;
    for (int r = r0; r < r1; r++)
        for (int j = lane; j < width; j += WARP) m = fmaxf(m, fabsf(src[(long long)r * k + c0 + j]));
    m = warp_max(m);
    Grid g = make_grid(format, e_bits, m_bits, bits, m);
    for (int r = r0; r < r1; r++)
        for (int j = lane; j < width; j += WARP) {
            long long i = (long long)r * k + c0 + j;
            x[i] = grid_apply(g, src[i]);
        }
    if (norms != nullptr && lane == 0) norms[group * chunks + chunk] = (format == 3 || format == 4) ? m + 1e-9f : 1.0f;
}

// ---- Counter-based normal draws: Philox4x32-10 (philox.cuh) and Box-Muller. ----

// The standard normal number `index` of the stream keyed by (key0, key1, stream): uniforms in (0, 1].
__device__ __forceinline__ float normal_at(uint32_t key0, uint32_t key1, uint32_t stream, long long index) {
    uint4 r = philox(make_uint4((uint32_t)index, (uint32_t)(index >> 32), stream, 0x5eed), make_uint2(key0, key1));
    float u1 = ((float)(r.x >> 8) + 1.0f) * (1.0f / 16777216.0f);
    float u2 = (float)(r.y >> 8) * (1.0f / 16777216.0f);
    return sqrtf(-2.0f * logf(u1)) * cospif(2.0f * u2);
}

// Four standard normals from one Philox block (Box-Muller on (x, y) and on (z, w)): a quarter of the Philox
// work of four `normal_at`s, for the kernels whose draws no CPU code reproduces. `counter` names the block.
__device__ __forceinline__ float4 normal4_at(uint32_t key0, uint32_t key1, uint32_t stream, long long counter) {
    uint4 r = philox(make_uint4((uint32_t)counter, (uint32_t)(counter >> 32), stream, 0x5eed4u), make_uint2(key0, key1));
    float a = sqrtf(-2.0f * logf(((float)(r.x >> 8) + 1.0f) * (1.0f / 16777216.0f)));
    float b = sqrtf(-2.0f * logf(((float)(r.z >> 8) + 1.0f) * (1.0f / 16777216.0f)));
    float s0, c0, s1, c1;
    sincospif(2.0f * ((float)(r.y >> 8) * (1.0f / 16777216.0f)), &s0, &c0);
    sincospif(2.0f * ((float)(r.w >> 8) * (1.0f / 16777216.0f)), &s1, &c1);
    return make_float4(a * c0, a * s0, b * c1, b * s1);
}

// out[i] = N(0, 1) draw i of the stream.
extern "C" __global__ void pim_fill_normal(float* out, long long n, uint32_t key0, uint32_t key1, uint32_t stream) {
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
        out[i] = normal_at(key0, key1, stream, i);
}

// SRAM approximate computing: acc += y + y·σ·ξ for one K-chunk's partial sums y [rows, n].
extern "C" __global__ void pim_accumulate_rel_noise(float* acc, const float* y, long long len, float sigma, uint32_t key0,
                                                    uint32_t key1, uint32_t stream) {
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < len; i += (long long)gridDim.x * blockDim.x) {
        float v = y[i];
        float noise = v * sigma;
        acc[i] += v + noise * normal_at(key0, key1, stream, i);
    }
}

// A warp's task in a [rows, n] output cut into tiles of cs columns: its row, its tile and the tile's columns
// [o0, o1). False for the warps past the last task.
struct WarpTile {
    long long row;
    int tile, lane, o0, o1;
};

__device__ __forceinline__ bool warp_tile(int rows, int n, int cs, WarpTile* w) {
    int tiles = (n + cs - 1) / cs;
    long long task = (long long)blockIdx.x * (blockDim.x / WARP) + threadIdx.x / WARP;
    if (task >= (long long)rows * tiles) return false;
    w->lane = threadIdx.x % WARP;
    w->row = task / tiles;
    w->tile = (int)(task % tiles);
    w->o0 = w->tile * cs;
    w->o1 = min(w->o0 + cs, n);
    return true;
}

// ReRAM ADC: one K-chunk's partial sums p [rows, n], quantized per (row, N-tile of cs outputs) with the
// symmetric int{bits} grid of the tile row's max |p|, accumulated into acc. One warp per (row, tile).
extern "C" __global__ void pim_adc_sym_accumulate(float* acc, const float* p, int rows, int n, int cs, int bits) {
    WarpTile w;
    if (!warp_tile(rows, n, cs, &w)) return;
    int lane = w.lane, o0 = w.o0, o1 = w.o1;
    long long row = w.row;
    const float* pr = p + row * n;
    float m = 0.0f;
    for (int o = o0 + lane; o < o1; o += WARP) m = fmaxf(m, fabsf(pr[o]));
    m = warp_max(m);
    Grid g = make_grid(2, 0, 0, bits, m);
    for (int o = o0 + lane; o < o1; o += WARP) acc[row * n + o] += grid_apply(g, pr[o]);
}

// tiling.rs `weight_fingerprint`'s order-independent sum of mix((bits << 32) ^ index), wrapping.
__device__ __forceinline__ unsigned long long mix64(unsigned long long z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

// Summed per block before the one atomic add of each block: an atomic per warp on the one address
// serialised (60 µs for a 3072 × 768 weight on an H100).
extern "C" __global__ void pim_fingerprint_sum(const float* w, long long n, unsigned long long* sum) {
    __shared__ unsigned long long warps[32];
    unsigned long long local = 0;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
        local += mix64(((unsigned long long)__float_as_uint(w[i]) << 32) ^ (unsigned long long)i);
    for (int o = WARP / 2; o > 0; o /= 2) local += __shfl_xor_sync(0xffffffffu, local, o);
    if (threadIdx.x % WARP == 0) warps[threadIdx.x / WARP] = local;
    __syncthreads();
    if (threadIdx.x >= WARP) return;
    local = threadIdx.x < blockDim.x / WARP ? warps[threadIdx.x] : 0ull;
    for (int o = WARP / 2; o > 0; o /= 2) local += __shfl_xor_sync(0xffffffffu, local, o);
    if (threadIdx.x == 0) atomicAdd(sum, local);
}

// ---- PCM with AIHWKIT's model (src/pim/pcm_aihwkit): the per-call read and the forward IO of one tile. ----

// Symmetric converter of pcm_aihwkit/io.rs `quantize`: round half to even onto the grid of `step` (0: none),
// clamped to ±bound.
__device__ __forceinline__ float io_quantize(float v, float step, float bound) {
    float q = step > 0.0f ? rintf(v / step) * step : v;
    return clampf(q, -bound, bound);
}

// physics.rs `read`: drift, then 1/f read noise with draw xi, floored at 0.
__device__ __forceinline__ float pcm_read_one(float g_p, float nu, float log_drift, float read_sigma_factor, float g_max, float xi) {
    float g_d = log_drift > 0.0f ? g_p * expf(-nu * log_drift) : g_p;
    if (read_sigma_factor == 0.0f) return g_d;
    float rel = fmaxf(g_p / g_max, 0.0f);
    float q_s = fminf(0.0088f / fmaxf(powf(rel, 0.65f), 1e-3f), 0.2f);
    return fmaxf(g_d + fabsf(g_d) * (q_s * read_sigma_factor) * xi, 0.0f);
}

// chip.rs `Chip::read`: normalised weights wc[i] = (G+ − G−)/g_max at a drift time, from the programmed planes
// pairs = [g+ | g− | ν+ | ν−] (n each); read noise from Philox block i of the stream.
extern "C" __global__ void pim_pcm_read(const float* pairs, float* wc, long long n, float log_drift, float read_sigma_factor,
                                        float g_max, uint32_t key0, uint32_t key1, uint32_t stream) {
    float inv_g = 1.0f / g_max;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
        float xp = 0.0f, xn = 0.0f;
        if (read_sigma_factor > 0.0f) {
            float4 z = normal4_at(key0, key1, stream, i);
            xp = z.x;
            xn = z.y;
        }
        float gp = pcm_read_one(pairs[i], pairs[2 * n + i], log_drift, read_sigma_factor, g_max, xp);
        float gn = pcm_read_one(pairs[n + i], pairs[3 * n + i], log_drift, read_sigma_factor, g_max, xn);
        wc[i] = (gp - gn) * inv_g;
    }
}

// io.rs `chunk` + `dac`: columns k0..k0+kt of x [rows, k] into xq [rows, kt], each row divided by its input
// scale and the bound-management reduction `red`, then DAC-quantised. With `measure`, first sets scale[row]:
// 0 for an all-zero row (its output is 0), else max |x| (abs-max) or 1. One warp per row.
extern "C" __global__ void pim_pcm_dac(const float* x, int rows, int k, int k0, int kt, float* xq, float* scale, int measure,
                                       int abs_max, float inp_step, float red) {
    long long row = (long long)blockIdx.x * (blockDim.x / WARP) + threadIdx.x / WARP;
    if (row >= rows) return;
    int lane = threadIdx.x % WARP;
    const float* xr = x + row * k + k0;
    float s;
    if (measure) {
        float m = 0.0f;
        for (int j = lane; j < kt; j += WARP) m = fmaxf(m, fabsf(xr[j]));
        m = warp_max(m);
        s = m == 0.0f ? 0.0f : (abs_max ? m : 1.0f);
        if (lane == 0) scale[row] = s;
    } else {
        s = scale[row];
    }
    for (int j = lane; j < kt; j += WARP) xq[row * kt + j] = s > 0.0f ? io_quantize(xr[j] / s / red, inp_step, 1.0f) : 0.0f;
}

// io.rs `finalize` and the write-out of `tile`, for all the tiles of input chunk `c` at once: y [local rows, n] is
// that chunk's product with every row tile (tiles of `tw` outputs; tile t of the chunk is tile t·chunks + c of
// the layer). One warp per (local row, tile), for the (row, tile)s still pending (in the `first` round: every
// row with a non-zero input scale): output noise (from Philox block (round·rows + row)·n + o for columns o..o+3), the ADC, and the
// saturation test. A saturated (row, tile) with `may_retry` stays pending (pending[tile][row] = 1) for the next
// round; every other one leaves (pending = 0): out[row, o] += (y·red·scale)·factor[o] (saturating), and
// pass[row, o] = 0 where the ADC clipped (pass may be null). y is overwritten; local row j is row row_map[j]
// of the layer (j itself when row_map is null).
extern "C" __global__ void pim_pcm_finalize(float* y, int local_rows, int rows, const uint32_t* row_map, int n, int tw,
                                            int chunks, int c, uint32_t* pending, int first, const float* scale,
                                            float* out, float* pass, const float* factor, float red, int may_retry,
                                            float out_noise, float out_step, float out_bound, uint32_t key0,
                                            uint32_t key1, uint32_t stream, int round) {
    WarpTile w;
    if (!warp_tile(local_rows, n, tw, &w)) return;
    int lane = w.lane, o0 = w.o0, o1 = w.o1;
    long long local = w.row;
    long long row = row_map ? (long long)row_map[local] : local;
    uint32_t* flag = &pending[(long long)(w.tile * chunks + c) * rows + row];
    bool live = first ? scale[row] > 0.0f : *flag != 0u;
    if (!live) {
        if (first && lane == 0) *flag = 0u;
        return;
    }
    float* yr = y + local * n;
    int saturated = 0;
    // Four consecutive outputs per lane: one Philox block of noise for the four.
    for (int o4 = o0 + 4 * lane; o4 < o1; o4 += 4 * WARP) {
        float4 z = out_noise > 0.0f ? normal4_at(key0, key1, stream, ((long long)round * rows + row) * n + o4) : make_float4(0, 0, 0, 0);
        float zs[4] = {z.x, z.y, z.z, z.w};
        for (int e = 0; e < 4 && o4 + e < o1; e++) {
            float v = yr[o4 + e];
            if (out_noise > 0.0f) v += out_noise * zs[e];
            float q = io_quantize(v, out_step, INFINITY);
            saturated |= fabsf(q) > out_bound;
            yr[o4 + e] = clampf(q, -out_bound, out_bound);
        }
    }
    saturated = __any_sync(0xffffffffu, saturated);
    if (may_retry && saturated) {
        if (lane == 0) *flag = 1u;
        return;
    }
    float s = scale[row];
    for (int o = o0 + lane; o < o1; o += WARP) {
        float v = clampf(yr[o] * red * s, -FLT_MAX, FLT_MAX);
        float* dst = &out[row * n + o];
        *dst = clampf(*dst + clampf(v * factor[o], -FLT_MAX, FLT_MAX), -FLT_MAX, FLT_MAX);
        if (pass) pass[row * n + o] = fabsf(yr[o]) >= out_bound ? 0.0f : 1.0f;
    }
    if (lane == 0) *flag = 0u;
}

// hwa.rs's tile weights for a training forward, written chunk-major (chunk c, columns k0..k0+kt, is the
// [n, kt] matrix at offset n·k0). Per output row j and chunk c: the scale s = max |w| over the row's chunk
// columns (per_row) or over its tile's (tiles of `tr` rows; rmax holds the row maxima, pim_pcm_row_max);
// wn = w/s (w where s = 0) plus noise·ξ in a tile with a non-zero weight; used = wn·s; factor[c·n + j] = s.
// Noise draw i is that of wn's index i. One warp per (row, chunk).
extern "C" __global__ void pim_pcm_hwa_weights(const float* w, int n, int k, int tr, int tc, int chunks, const float* rmax,
                                               int per_row, float noise, uint32_t key0, uint32_t key1, uint32_t stream,
                                               float* wn, float* used, float* factor) {
    long long task = (long long)blockIdx.x * (blockDim.x / WARP) + threadIdx.x / WARP;
    if (task >= (long long)n * chunks) return;
    int lane = threadIdx.x % WARP;
    int j = (int)(task / chunks), c = (int)(task % chunks);
    int r0 = (j / tr) * tr, r1 = min(r0 + tr, n);
    float tile_max = 0.0f;
    for (int r = r0 + lane; r < r1; r += WARP) tile_max = fmaxf(tile_max, rmax[(long long)r * chunks + c]);
    tile_max = warp_max(tile_max);
    float s = per_row ? rmax[(long long)j * chunks + c] : tile_max;
    int k0 = c * tc, kt = min(tc, k - k0);
    const float* wr = w + (long long)j * k + k0;
    long long base = (long long)n * k0 + (long long)j * kt;
    for (int b = lane; b < kt; b += WARP) {
        float v = s > 0.0f ? wr[b] / s : wr[b];
        if (noise > 0.0f && tile_max > 0.0f) v += noise * normal_at(key0, key1, stream, base + b);
        wn[base + b] = v;
        used[base + b] = v * s;
    }
    if (lane == 0) factor[(long long)c * n + j] = s;
}

// ---- The post-update clip and remap of hardware-aware training (pcm_aihwkit/remap.rs), in fixed-order
// reductions so that a run repeats bit for bit. Tiles are `tr` × `tc` (the layer's whole extent for core
// size 0), numbered row-major over the grid of `chunks` tile columns. ----

// rmax[row · chunks + c] = max |w| over the row's columns of tile column c. One warp per (row, c).
extern "C" __global__ void pim_pcm_row_max(const float* w, int n, int k, int tc, int chunks, float* rmax) {
    long long task = (long long)blockIdx.x * (blockDim.x / WARP) + threadIdx.x / WARP;
    if (task >= (long long)n * chunks) return;
    int lane = threadIdx.x % WARP;
    long long row = task / chunks;
    int c0 = (int)(task % chunks) * tc, c1 = min(c0 + tc, k);
    float m = 0.0f;
    for (int c = c0 + lane; c < c1; c += WARP) m = fmaxf(m, fabsf(w[row * k + c]));
    m = warp_max(m);
    if (lane == 0) rmax[task] = m;
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

// w ← rowmax · clamp(w / rowmax, ±bound) where |w / rowmax| > bound; every other weight keeps its bits.
extern "C" __global__ void pim_pcm_clip_apply(float* w, long long total, int k, int tr, int tc, int chunks, const float* rmax,
                                              const float* bound) {
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (long long)gridDim.x * blockDim.x) {
        long long r = i / k;
        int c = (int)(i % k);
        int tj = c / tc;
        float b = bound[(r / tr) * chunks + tj];
        float m = rmax[r * chunks + tj];
        if (!(m > 0.0f) || isinf(b)) continue;
        float x = w[i] / m;
        if (fabsf(x) > b) w[i] = clampf(x, -b, b) * m;
    }
}

// ---- ReRAM programming for training (reram.rs `program`, re-drawn on every training forward). ----

// tmax[tile] = max |w| over a tile of w [n, k] (row tiles of cs rows × K-chunks of cs columns, numbered
// row-major). One block per tile, 256 threads.
extern "C" __global__ void pim_tile_max(const float* w, int n, int k, int cs, float* tmax) {
    __shared__ float warp_maxes[8];
    int chunks = (k + cs - 1) / cs;
    int r0 = (blockIdx.x / chunks) * cs, r1 = min(r0 + cs, n);
    int c0 = (blockIdx.x % chunks) * cs, c1 = min(c0 + cs, k);
    float m = 0.0f;
    for (int r = r0; r < r1; r++)
        for (int c = c0 + threadIdx.x; c < c1; c += blockDim.x) m = fmaxf(m, fabsf(w[(long long)r * k + c]));
    m = warp_max(m);
    if (threadIdx.x % WARP == 0) warp_maxes[threadIdx.x / WARP] = m;
    __syncthreads();
    if (threadIdx.x != 0) return;
    for (int j = 0; j < (int)(blockDim.x / WARP); j++) m = fmaxf(m, warp_maxes[j]);
    tmax[blockIdx.x] = m;
}

// w [n, k] in place, with each tile's max |w| = m from pim_tile_max: levels (if > 0)
// v ← rint(v / m · L) / L · m, device variation v += σ_dev · m · ξ (draw i of key d), both only in a tile with
// m > 0; then everywhere the additive weight noise v += σ_add · ξ' (draw i of key a). Blocks stride over
// rows (blockIdx.y) and a row's columns (blockIdx.x): enough blocks to fill the GPU, where one block per tile
// left most of it idle.
extern "C" __global__ void pim_reram_program(float* w, int n, int k, int cs, const float* tmax, float levels, float sigma_dev,
                                             float sigma_add, uint32_t d0, uint32_t d1, uint32_t ds, uint32_t a0,
                                             uint32_t a1, uint32_t as) {
    int chunks = (k + cs - 1) / cs;
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= k) return;
    for (int r = blockIdx.y; r < n; r += gridDim.y) {
        long long at = (long long)r * k + c;
        float m = tmax[(r / cs) * chunks + c / cs];
        float v = w[at];
        if (m > 0.0f) {
            if (levels > 0.0f) v = rintf(v / m * levels) / levels * m;
            if (sigma_dev > 0.0f) v += sigma_dev * m * normal_at(d0, d1, ds, at);
        }
        if (sigma_add > 0.0f) v += sigma_add * normal_at(a0, a1, as, at);
        w[at] = v;
    }
}

// ---- PCM after NewComputeBench (src/pim/pcm_ncb.rs): the programming of one forward call and the output
// step of every (row, N-tile) over all K-chunks. ----

// w [n, k] in place → the normalised programmed weights, per (row tile of cs rows, K-chunk of cs columns)
// with w_max = max |w| + 1e-9: w_a = w·g/w_max, then, when noise_scale > 0, w_a += noise_scale·σ(w_a/g)·ξ with
// NewComputeBench's signed σ polynomial and ξ draw i of the key; scales[tile] = w_max/g. blockIdx.x is the
// tile; the gridDim.y blocks of a tile each find its max and program a share of its rows. 256 threads.
extern "C" __global__ void pim_ncb_program(float* w, int n, int k, int cs, float g_max, float noise_scale, uint32_t key0,
                                           uint32_t key1, uint32_t stream, float* scales) {
    __shared__ float warp_maxes[8];
    int chunks = (k + cs - 1) / cs;
    int r0 = (blockIdx.x / chunks) * cs, r1 = min(r0 + cs, n);
    int c0 = (blockIdx.x % chunks) * cs, c1 = min(c0 + cs, k);
    int warp = threadIdx.x / WARP, lane = threadIdx.x % WARP, warps = blockDim.x / WARP;
    float m = 0.0f;
    for (int r = r0 + warp; r < r1; r += warps)
        for (int j = c0 + lane; j < c1; j += WARP) m = fmaxf(m, fabsf(w[(long long)r * k + j]));
    m = warp_max(m);
    if (lane == 0) warp_maxes[warp] = m;
    __syncthreads();
    m = 0.0f;
    for (int j = 0; j < warps; j++) m = fmaxf(m, warp_maxes[j]);
    float w_max = m + 1e-9f;
    for (int r = r0 + blockIdx.y * warps + warp; r < r1; r += gridDim.y * warps)
        for (int j = c0 + lane; j < c1; j += WARP) {
            long long at = (long long)r * k + j;
            float wa = w[at] * g_max / w_max;
            if (noise_scale > 0.0f) {
                float u = wa / g_max;
                float sigma = -1.1731f * u * u + 1.9650f * u + 0.2635f;
                wa = wa + noise_scale * sigma * normal_at(key0, key1, stream, at);
            }
            w[at] = wa;
        }
    if (blockIdx.y == 0 && threadIdx.x == 0) scales[blockIdx.x] = w_max / g_max;
}

__device__ __forceinline__ float warp_min(float v) {
    for (int o = WARP / 2; o > 0; o /= 2) v = fminf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// The tile outputs r [chunks, rows, n] of every K-chunk (overwritten) → acc [rows, n] (zeros on entry), one
// warp per (row, N-tile of cs outputs), as pcm_ncb.rs `tiled`, chunk after chunk: optional read noise
// 0.0175·sqrt(max(read_var, 0))·ξ, IR drop c(a)·ir_xs with a = ir_gamma_n·ir_a, output noise 0.04·ξ' (the
// optional operands [chunks, rows, n] are null when off; draws at the element's index in r); then
// (adc_bits > 0) the asymmetric ADC of the tile row, clamped to ±adc_clamp, its range including 0 for an edge
// tile; then the de-scale norms[group(row), chunk]·scales[tile, chunk], accumulated. The input group of a
// row: sequences of rps rows, groups of group_rows rows within each (pim_quantize_groups' order).
extern "C" __global__ void pim_ncb_output(float* acc, float* r, int rows, int n, int cs, int chunks, const float* norms,
                                          int rps, int group_rows, const float* scales, const float* read_var,
                                          uint32_t rk0, uint32_t rk1, uint32_t rks, const float* ir_a,
                                          const float* ir_xs, float ir_gamma_n, int out_noise, uint32_t ok0,
                                          uint32_t ok1, uint32_t oks, int adc_bits, float adc_clamp) {
    WarpTile w;
    if (!warp_tile(rows, n, cs, &w)) return;
    int lane = w.lane, t = w.tile, o0 = w.o0, o1 = w.o1;
    long long row = w.row;
    bool edge = (o1 - o0) < cs;
    int group = (int)(row / rps) * ((rps + group_rows - 1) / group_rows) + (int)(row % rps) / group_rows;
    for (int c = 0; c < chunks; c++) {
        long long base = (long long)c * rows * n + row * n;
        float lo = edge ? 0.0f : INFINITY, hi = edge ? 0.0f : -INFINITY;
        for (int o = o0 + lane; o < o1; o += WARP) {
            long long i = base + o;
            float v = r[i];
            if (read_var != nullptr) v += 0.0175f * sqrtf(fmaxf(read_var[i], 0.0f)) * normal_at(rk0, rk1, rks, i);
            if (ir_a != nullptr) {
                float a = ir_gamma_n * ir_a[i];
                v -= (0.05f * a * a * a - 0.2f * a * a + 0.5f * a) * ir_xs[i];
            }
            if (out_noise) v += 0.04f * normal_at(ok0, ok1, oks, i);
            if (adc_bits > 0) {
                v = clampf(v, -adc_clamp, adc_clamp);
                lo = fminf(lo, v);
                hi = fmaxf(hi, v);
            }
            r[i] = v;
        }
        bool quantize = false;
        float b = 0.0f, s = 1.0f, half = 0.0f;
        if (adc_bits > 0) {
            lo = warp_min(lo);
            hi = warp_max(hi);
            b = ((hi + 1e-9f) + (lo + 1e-9f)) / 2.0f;
            float range = hi - b;
            half = (float)(1u << (adc_bits - 1));
            s = half / range;
            quantize = !(isnan(range) || range <= 0.0f || !isfinite(s));
        }
        float scale = norms[(long long)group * chunks + c] * scales[(long long)t * chunks + c];
        for (int o = o0 + lane; o < o1; o += WARP) {
            float v = r[base + o];
            float q = quantize ? clampf(rintf((v - b) * s), -half, half - 1.0f) / s + b : v;
            acc[row * n + o] += q * scale;
        }
    }
}
