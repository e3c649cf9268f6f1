// The PIM tiles' per-element work on NVIDIA GPUs: the same quantizers as src/pim/quant.rs (bit for bit:
// round half to even with rintf, IEEE division, no FMA contraction: built with -fmad=false), a counter-based
// normal generator for noise, and the per-(row, tile) output converters (the PCM converters, whose inputs come
// from cuBLAS with its own last bits, multiply by a step's reciprocal). Matrix products stay in cuBLAS.
//
// Format codes (quant.rs `Format`): 0 exact, 1 block floating point e{E}m{M}, 2 symmetric int{B},
// 3 NewComputeBench DAC with B bits, 4 ideal NewComputeBench DAC (normalise only).

#include <float.h>
#include <stdint.h>

#include "philox.cuh"

#define WARP 32
// Threads per block of the warp-per-task kernels (cuda.rs `THREADS`).
#define TASK_THREADS 256

__device__ __forceinline__ float warp_max(float v) {
    for (int o = WARP / 2; o > 0; o /= 2) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// Every lane gets the warp's sum, added in the same fixed order on every lane.
template <typename T>
__device__ __forceinline__ T warp_sum(T v) {
    for (int o = WARP / 2; o > 0; o /= 2) v += __shfl_xor_sync(0xffffffffu, v, o);
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

// One (row group, K-chunk) task of pim_quantize_groups: its rows [r0, r1) and columns [c0, c1) of x.
struct GroupTask {
    long long group;
    int chunk, r0, r1, c0, c1;
};

// Task `task` of the groups of x [rows, k]; false past the last task.
__device__ __forceinline__ bool group_task(long long task, int rows, int k, int cs, int group_rows, int rps, GroupTask* t) {
    int chunks = (k + cs - 1) / cs;
    int groups_per_seq = (rps + group_rows - 1) / group_rows;
    int seqs = (rows + rps - 1) / rps;
    if (task >= (long long)seqs * groups_per_seq * chunks) return false;
    t->chunk = (int)(task % chunks);
    t->group = task / chunks;
    int seq = (int)(t->group / groups_per_seq);
    t->r0 = seq * rps + (int)(t->group % groups_per_seq) * group_rows;
    t->r1 = min(t->r0 + group_rows, min(seq * rps + rps, rows));
    t->c0 = t->chunk * cs;
    t->c1 = min(t->c0 + cs, k);
    return true;
}

// Quantizes x [rows, k] with one scale per (row group, K-chunk of cs columns) for groups of one row (a scale
// per token or weight row; larger groups: pim_group_max and pim_quantize_by_max). Groups: within each sequence
// of `rps` rows, consecutive runs of `group_rows` rows. One warp per (group, chunk). `norms` [groups, chunks]
// gets the factor that turns the output back into input units (NCB DAC: max + 1e-9; else 1); may be null.
extern "C" __global__ void pim_quantize_groups(const float* src, float* x, int rows, int k, int cs, int group_rows, int rps, int format,
                                               int e_bits, int m_bits, int bits, float* norms) {
    int chunks = (k + cs - 1) / cs;
    int lane = threadIdx.x % WARP;
    GroupTask t;
    if (!group_task((long long)blockIdx.x * (blockDim.x / WARP) + threadIdx.x / WARP, rows, k, cs, group_rows, rps, &t)) return;
    int width = t.c1 - t.c0;
    if (t.r0 >= t.r1) {  // a group past the end of a short last sequence
        if (norms != nullptr && lane == 0) norms[t.group * chunks + t.chunk] = 1.0f;
        return;
    }
    // Rows in turn, the lanes along a row: coalesced, and no division per element.
    float m = 0.0f;
    for (int r = t.r0; r < t.r1; r++)
        for (int j = lane; j < width; j += WARP) m = fmaxf(m, fabsf(src[(long long)r * k + t.c0 + j]));
    m = warp_max(m);
    Grid g = make_grid(format, e_bits, m_bits, bits, m);
    for (int r = t.r0; r < t.r1; r++)
        for (int j = lane; j < width; j += WARP) {
            long long i = (long long)r * k + t.c0 + j;
            x[i] = grid_apply(g, src[i]);
        }
    if (norms != nullptr && lane == 0) norms[t.group * chunks + t.chunk] = (format == 3 || format == 4) ? m + 1e-9f : 1.0f;
}

// Rows of a group that one block of pim_group_max reads.
#define GROUP_MAX_SLAB 16

// gmax[group · chunks + chunk] = max |x| over each (row group, K-chunk) of x [rows, k] (groups as
// pim_quantize_groups'; gmax zero on entry): block (task, slab) reads GROUP_MAX_SLAB of the task's rows, a warp
// per row, and adds its maximum with an atomic max on the bits (as pim_tile_max). The first pass of the
// quantization of large groups (the block input scale, weight tiles), where a block per group left most of the
// GPU waiting on loads.
extern "C" __global__ void pim_group_max(const float* x, int rows, int k, int cs, int group_rows, int rps, float* gmax) {
    __shared__ float warp_maxes[32];
    GroupTask t;
    if (!group_task(blockIdx.x, rows, k, cs, group_rows, rps, &t)) return;
    int chunks = (k + cs - 1) / cs, width = t.c1 - t.c0;
    int warp = threadIdx.x / WARP, lane = threadIdx.x % WARP, warps = blockDim.x / WARP;
    int r0 = t.r0 + blockIdx.y * GROUP_MAX_SLAB, r1 = min(r0 + GROUP_MAX_SLAB, t.r1);
    float m = 0.0f;
    for (int r = r0 + warp; r < r1; r += warps) {
        const float* xr = x + (long long)r * k + t.c0;
#pragma unroll 8
        for (int j = lane; j < width; j += WARP) m = fmaxf(m, fabsf(xr[j]));
    }
    m = warp_max(m);
    if (lane == 0) warp_maxes[warp] = m;
    __syncthreads();
    if (threadIdx.x != 0) return;
    for (int i = 0; i < warps; i++) m = fmaxf(m, warp_maxes[i]);
    if (m > 0.0f) atomicMax((unsigned int*)&gmax[t.group * chunks + t.chunk], __float_as_uint(m));
}

// The second pass: x [rows, k] → out, every element through the grid of its (row group, K-chunk)'s maximum
// from pim_group_max, and `norms` (may be null) as pim_quantize_groups'. Same grids as pim_quantize_groups: the
// same bits. A thread per VEC elements of a row (4: 16-byte accesses, where k and cs allow them), and a kernel
// per format (pim_quantize_by_max{VEC}_f{FORMAT}): the grid code of one format only, so few registers and many
// threads in flight. Fewer threads with loops over rows left the GPU waiting on loads (23–47 µs for a 4096 ×
// 768 input on an H200).
template <int FORMAT, int VEC>
__device__ __forceinline__ void quantize_by_max(const float* src, float* x, int rows, int k, int cs, int group_rows, int rps, int e_bits,
                                                int m_bits, int bits, const float* gmax, float* norms) {
    long long u = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    int kv = k / VEC;
    long long runs = (long long)rows * kv;
    if (u >= runs) return;
    // 32-bit division where the size allows it: a 64-bit one costs several times more.
    int r, c;
    if (runs <= 0xffffffffLL) {
        r = (int)((uint32_t)u / (uint32_t)kv);
        c = (int)((uint32_t)u - (uint32_t)r * (uint32_t)kv) * VEC;
    } else {
        r = (int)(u / kv);
        c = (int)(u % kv) * VEC;
    }
    int chunks = (k + cs - 1) / cs, groups_per_seq = (rps + group_rows - 1) / group_rows, chunk = c / cs;
    long long at = ((long long)(r / rps) * groups_per_seq + (r % rps) / group_rows) * chunks + chunk;
    float m = gmax[at];
    Grid g = make_grid(FORMAT, e_bits, m_bits, bits, m);
    long long i = (long long)r * k + c;
    if (VEC == 4) {
        float4 v = *reinterpret_cast<const float4*>(src + i);
        *reinterpret_cast<float4*>(x + i) = make_float4(grid_apply(g, v.x), grid_apply(g, v.y), grid_apply(g, v.z), grid_apply(g, v.w));
    } else {
        x[i] = grid_apply(g, src[i]);
    }
    if (norms != nullptr && (r % rps) % group_rows == 0 && c % cs == 0) norms[at] = (FORMAT == 3 || FORMAT == 4) ? m + 1e-9f : 1.0f;
}

#define QUANTIZE_BY_MAX(VEC, FORMAT)                                                                                              \
    extern "C" __global__ void pim_quantize_by_max##VEC##_f##FORMAT(const float* src, float* x, int rows, int k, int cs,        \
                                                                   int group_rows, int rps, int e_bits, int m_bits, int bits,   \
                                                                   const float* gmax, float* norms) {                           \
        quantize_by_max<FORMAT, VEC>(src, x, rows, k, cs, group_rows, rps, e_bits, m_bits, bits, gmax, norms);                \
    }
QUANTIZE_BY_MAX(1, 1)
QUANTIZE_BY_MAX(1, 2)
QUANTIZE_BY_MAX(1, 3)
QUANTIZE_BY_MAX(1, 4)
QUANTIZE_BY_MAX(4, 1)
QUANTIZE_BY_MAX(4, 2)
QUANTIZE_BY_MAX(4, 3)
QUANTIZE_BY_MAX(4, 4)

// ---- Counter-based normal draws: Philox4x32-10 (philox.cuh) and Box-Muller. ----

// The standard normal number `index` of the stream keyed by k: uniforms in (0, 1].
__device__ __forceinline__ float normal_at(const RoundKeys& k, long long index) {
    uint4 r = philox(make_uint4((uint32_t)index, (uint32_t)(index >> 32), k.stream, 0x5eed), k);
    float u1 = ((float)(r.x >> 8) + 1.0f) * (1.0f / 16777216.0f);
    float u2 = (float)(r.y >> 8) * (1.0f / 16777216.0f);
    return sqrtf(-2.0f * logf(u1)) * cospif(2.0f * u2);
}

// The hardware's approximate base-2 log and square root, flushing subnormals: Box-Muller's arguments are
// normal numbers, and the library forms' guards against subnormals cost three instructions each.
__device__ __forceinline__ float lg2_approx(float x) {
    float r;
    asm("lg2.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(x));
    return r;
}
__device__ __forceinline__ float sqrt_approx(float x) {
    float r;
    asm("sqrt.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(x));
    return r;
}

// Four standard normals from one Philox block (Box-Muller on (x, y) and on (z, w)): a quarter of the Philox
// work of four `normal_at`s, for the kernels whose draws no CPU code reproduces. `counter` names the block.
__device__ __forceinline__ float4 normal4_at(const RoundKeys& k, long long counter) {
    uint4 r = philox(make_uint4((uint32_t)counter, (uint32_t)(counter >> 32), k.stream, 0x5eed4u), k);
    // Approximate log, square root and sine/cosine (a few ulp; the angle in [−π, π), where __sincosf is
    // accurate): the precise library calls cost several times the Philox rounds. u = (m + 1)/2²⁴ is exact in
    // one FMA; r² = −2 ln u = −2 ln 2 · log₂ u is floored at 1e-30 (the approximate log of u near 1 may be 0 or
    // a hair above), so that its square root is never NaN. The angle 2π·m/2²⁴ − π is one FMA.
    const float ulp = 1.0f / 16777216.0f, minus_2_ln2 = -1.38629436112f, two_pi_ulp = 6.28318530718f / 16777216.0f,
                pi = 3.14159265359f;
    float a = sqrt_approx(fmaxf(minus_2_ln2 * lg2_approx(__fmaf_rn((float)(r.x >> 8), ulp, ulp)), 1e-30f));
    float b = sqrt_approx(fmaxf(minus_2_ln2 * lg2_approx(__fmaf_rn((float)(r.z >> 8), ulp, ulp)), 1e-30f));
    float s0, c0, s1, c1;
    __sincosf(__fmaf_rn((float)(r.y >> 8), two_pi_ulp, -pi), &s0, &c0);
    __sincosf(__fmaf_rn((float)(r.w >> 8), two_pi_ulp, -pi), &s1, &c1);
    return make_float4(a * c0, a * s0, b * c1, b * s1);
}

// out[i] = N(0, 1) draw i of the stream.
extern "C" __global__ void pim_fill_normal(float* out, long long n, const __grid_constant__ RoundKeys key) {
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
        out[i] = normal_at(key, i);
}

// SRAM approximate computing: acc += y + y·σ·ξ for one K-chunk's partial sums y [rows, n].
extern "C" __global__ void pim_accumulate_rel_noise(float* acc, const float* y, long long len, float sigma,
                                                    const __grid_constant__ RoundKeys key) {
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < len; i += (long long)gridDim.x * blockDim.x) {
        float v = y[i];
        float noise = v * sigma;
        acc[i] += v + noise * normal_at(key, i);
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

// The weights of one launch of pim_fingerprint_sums, and the elements each block sums (cuda.rs
// `FINGERPRINT_BATCH`, `FINGERPRINT_BLOCK`).
#define FINGERPRINT_BATCH 64
#define FINGERPRINT_BLOCK 8192

// Up to FINGERPRINT_BATCH weights: weight i is w[i] (n[i] floats) and takes blocks [first_block[i],
// first_block[i + 1]).
struct FingerprintBatch {
    const float* w[FINGERPRINT_BATCH];
    long long n[FINGERPRINT_BATCH];
    int first_block[FINGERPRINT_BATCH + 1];
    int count;
};

// sums[i] += the fingerprint sum of weight i, for every weight of a forward in one launch: a launch per
// weight cost 6 to 10 µs each, mostly its own start and tail (74 of them per roberta-base forward). Each block
// finds its weight (a binary search over first_block) and sums FINGERPRINT_BLOCK of its elements, then adds
// them with one atomic.
extern "C" __global__ void pim_fingerprint_sums(FingerprintBatch b, unsigned long long* sums) {
    __shared__ unsigned long long warps[32];
    int lo = 0, hi = b.count - 1;  // the last weight whose first block is at most this block
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (b.first_block[mid] <= (int)blockIdx.x) lo = mid;
        else hi = mid - 1;
    }
    int i = lo;
    const float* w = b.w[i];
    long long n = b.n[i], base = (long long)(blockIdx.x - b.first_block[i]) * FINGERPRINT_BLOCK;
    unsigned long long local = 0;
#pragma unroll 8
    for (int j = threadIdx.x; j < FINGERPRINT_BLOCK; j += blockDim.x) {
        long long e = base + j;
        if (e < n) local += mix64(((unsigned long long)__float_as_uint(w[e]) << 32) ^ (unsigned long long)e);
    }
    for (int o = WARP / 2; o > 0; o /= 2) local += __shfl_xor_sync(0xffffffffu, local, o);
    if (threadIdx.x % WARP == 0) warps[threadIdx.x / WARP] = local;
    __syncthreads();
    if (threadIdx.x >= WARP) return;
    local = threadIdx.x < blockDim.x / WARP ? warps[threadIdx.x] : 0ull;
    for (int o = WARP / 2; o > 0; o /= 2) local += __shfl_xor_sync(0xffffffffu, local, o);
    if (threadIdx.x == 0) atomicAdd(&sums[i], local);
}

// ---- ReRAM programming for training (reram.rs `program`, re-drawn on every training forward). ----

// Rows of a tile that one block of pim_tile_max reads.
#define TILE_MAX_SLAB 16

// tmax[tile] = max |w| over a tile of w [n, k] (row tiles of cs rows × K-chunks of cs columns, numbered
// row-major; tmax zero on entry). Block (tile, slab) reads TILE_MAX_SLAB of the tile's rows, and adds its
// maximum with an atomic max on the bits (a non-negative float orders as its bits; fmaxf drops NaN, so no
// NaN gets there): one block per tile left most of the GPU idle. 256 threads.
extern "C" __global__ void pim_tile_max(const float* w, int n, int k, int cs, float* tmax) {
    __shared__ float warp_maxes[32];
    int chunks = (k + cs - 1) / cs;
    int tile = blockIdx.x;
    int r0 = (tile / chunks) * cs + blockIdx.y * TILE_MAX_SLAB, r1 = min(min(r0 + TILE_MAX_SLAB, (tile / chunks) * cs + cs), n);
    int c0 = (tile % chunks) * cs, c1 = min(c0 + cs, k);
    float m = 0.0f;
    if (c1 - c0 <= (int)blockDim.x) {
        // A column per thread (tiles up to the block's width): the slab's loads unrolled, in flight together.
        int c = c0 + threadIdx.x;
        if (c < c1)
#pragma unroll 8
            for (int r = r0; r < r1; r++) m = fmaxf(m, fabsf(w[(long long)r * k + c]));
    } else {
        for (int r = r0; r < r1; r++)
            for (int c = c0 + threadIdx.x; c < c1; c += blockDim.x) m = fmaxf(m, fabsf(w[(long long)r * k + c]));
    }
    m = warp_max(m);
    if (threadIdx.x % WARP == 0) warp_maxes[threadIdx.x / WARP] = m;
    __syncthreads();
    if (threadIdx.x != 0) return;
    for (int j = 0; j < (int)(blockDim.x / WARP); j++) m = fmaxf(m, warp_maxes[j]);
    atomicMax((unsigned int*)&tmax[tile], __float_as_uint(m));
}

// w [n, k] in place, with each tile's max |w| = m from pim_tile_max: levels (if > 0)
// v ← rint(v / m · L) / L · m, device variation v += σ_dev · m · ξ (draw i of dev_key), both only in a tile with
// m > 0; then everywhere the additive weight noise v += σ_add · ξ' (draw i of add_key). Blocks stride over
// rows (blockIdx.y) and a row's columns (blockIdx.x): enough blocks to fill the GPU, where one block per tile
// left most of it idle.
extern "C" __global__ void pim_reram_program(float* w, int n, int k, int cs, const float* tmax, float levels, float sigma_dev,
                                             float sigma_add, const __grid_constant__ RoundKeys dev_key,
                                             const __grid_constant__ RoundKeys add_key) {
    int chunks = (k + cs - 1) / cs;
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= k) return;
    for (int r = blockIdx.y; r < n; r += gridDim.y) {
        long long at = (long long)r * k + c;
        float m = tmax[(r / cs) * chunks + c / cs];
        float v = w[at];
        if (m > 0.0f) {
            if (levels > 0.0f) v = rintf(v / m * levels) / levels * m;
            if (sigma_dev > 0.0f) v += sigma_dev * m * normal_at(dev_key, at);
        }
        if (sigma_add > 0.0f) v += sigma_add * normal_at(add_key, at);
        w[at] = v;
    }
}

// The PCM tiles' kernels, a file per model and concern, in this same module.
#include "pcm_aihwkit.cuh"
#include "pcm_retry.cuh"
#include "pcm_training.cuh"
#include "pcm_ncb.cuh"
