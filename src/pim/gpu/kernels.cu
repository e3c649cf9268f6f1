// The PIM tiles' per-element work on NVIDIA GPUs: the same quantizers as src/pim/quant.rs (bit for bit:
// round half to even with rintf, IEEE division, no FMA contraction: built with -fmad=false), a counter-based
// normal generator for noise, and the per-(row, tile) output converters. Matrix products stay in cuBLAS.
//
// Format codes (quant.rs `Format`): 0 exact, 1 block floating point e{E}m{M}, 2 symmetric int{B},
// 3 NewComputeBench DAC with B bits, 4 ideal NewComputeBench DAC (normalise only).

#include <stdint.h>

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
extern "C" __global__ void pim_quantize_groups(float* x, int rows, int k, int cs, int group_rows, int rps, int format,
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
    long long count = (long long)(r1 - r0) * width;
    float m = 0.0f;
    for (long long i = lane; i < count; i += WARP) m = fmaxf(m, fabsf(x[(long long)(r0 + i / width) * k + c0 + i % width]));
    m = warp_max(m);
    Grid g = make_grid(format, e_bits, m_bits, bits, m);
    for (long long i = lane; i < count; i += WARP) {
        float* v = &x[(long long)(r0 + i / width) * k + c0 + i % width];
        *v = grid_apply(g, *v);
    }
    if (norms != nullptr && lane == 0) norms[group * chunks + chunk] = (format == 3 || format == 4) ? m + 1e-9f : 1.0f;
}

// ---- Counter-based normal draws: Philox4x32-10 (Salmon et al. 2011) and Box-Muller. ----

__device__ __forceinline__ uint4 philox(uint4 c, uint2 key) {
    for (int i = 0; i < 10; i++) {
        uint32_t hi0 = __umulhi(0xD2511F53u, c.x), lo0 = 0xD2511F53u * c.x;
        uint32_t hi1 = __umulhi(0xCD9E8D57u, c.z), lo1 = 0xCD9E8D57u * c.z;
        c = make_uint4(hi1 ^ c.y ^ key.x, lo1, hi0 ^ c.w ^ key.y, lo0);
        key.x += 0x9E3779B9u;
        key.y += 0xBB67AE85u;
    }
    return c;
}

// The standard normal number `index` of the stream keyed by (key0, key1, stream): uniforms in (0, 1].
__device__ __forceinline__ float normal_at(uint32_t key0, uint32_t key1, uint32_t stream, long long index) {
    uint4 r = philox(make_uint4((uint32_t)index, (uint32_t)(index >> 32), stream, 0x5eed), make_uint2(key0, key1));
    float u1 = ((float)(r.x >> 8) + 1.0f) * (1.0f / 16777216.0f);
    float u2 = (float)(r.y >> 8) * (1.0f / 16777216.0f);
    return sqrtf(-2.0f * logf(u1)) * cospif(2.0f * u2);
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

// ReRAM ADC: one K-chunk's partial sums p [rows, n], quantized per (row, N-tile of cs outputs) with the
// symmetric int{bits} grid of the tile row's max |p|, accumulated into acc. One warp per (row, tile).
extern "C" __global__ void pim_adc_sym_accumulate(float* acc, const float* p, int rows, int n, int cs, int bits) {
    int tiles = (n + cs - 1) / cs;
    long long task = (long long)blockIdx.x * (blockDim.x / WARP) + threadIdx.x / WARP;
    if (task >= (long long)rows * tiles) return;
    int lane = threadIdx.x % WARP;
    long long row = task / tiles;
    int t = (int)(task % tiles);
    int o0 = t * cs, o1 = min(o0 + cs, n);
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

extern "C" __global__ void pim_fingerprint_sum(const float* w, long long n, unsigned long long* sum) {
    unsigned long long local = 0;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
        local += mix64(((unsigned long long)__float_as_uint(w[i]) << 32) ^ (unsigned long long)i);
    for (int o = WARP / 2; o > 0; o /= 2) local += __shfl_xor_sync(0xffffffffu, local, o);
    if (threadIdx.x % WARP == 0) atomicAdd(sum, local);
}
