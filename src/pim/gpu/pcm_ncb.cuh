// NewComputeBench's PCM tile's kernels (src/pim/pcm_ncb.rs, launched from src/pim/gpu/ncb.rs). Part of the one PTX
// module of kernels.cu, which includes this file after its shared helpers (clampf, warp_max, normal_at, normal4_at,
// WarpTile).

// ---- PCM after NewComputeBench (src/pim/pcm_ncb.rs): the programming of one forward call and the output
// step of every (row, N-tile) over all K-chunks. ----

// w [n, k] → wp, the normalised programmed weights, per (row tile of cs rows, K-chunk of cs columns) with
// w_max = tmax[tile] + 1e-9 (tmax from pim_tile_max): w_a = w·g/w_max, then, when noise_scale > 0,
// w_a += noise_scale·σ(w_a/g)·ξ with NewComputeBench's signed σ polynomial; ξ of weights i..i+3 of a row
// (i a multiple of 4) from Philox block r·k + i. scales[tile] = w_max/g (from the thread of the tile's first
// weight). A thread per four columns; blocks stride over rows (blockIdx.y), as pim_reram_program.
extern "C" __global__ void pim_ncb_program(const float* w, float* wp, int n, int k, int cs, const float* tmax, float g_max,
                                           float noise_scale, const __grid_constant__ RoundKeys key, float* scales) {
    int chunks = (k + cs - 1) / cs;
    int c4 = 4 * (blockIdx.x * blockDim.x + threadIdx.x);
    if (c4 >= k) return;
    for (int r = blockIdx.y; r < n; r += gridDim.y) {
        long long row = (long long)r * k;
        float4 z = noise_scale > 0.0f ? normal4_at(key, row + c4) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        float zs[4] = {z.x, z.y, z.z, z.w};
#pragma unroll
        for (int e = 0; e < 4; e++) {
            int c = c4 + e;
            if (c >= k) break;
            int tile = (r / cs) * chunks + c / cs;
            float w_max = tmax[tile] + 1e-9f;
            float wa = w[row + c] * g_max / w_max;
            if (noise_scale > 0.0f) {
                float u = wa / g_max;
                float sigma = -1.1731f * u * u + 1.9650f * u + 0.2635f;
                wa = wa + noise_scale * sigma * zs[e];
            }
            wp[row + c] = wa;
            if (r % cs == 0 && c % cs == 0) scales[tile] = w_max / g_max;
        }
    }
}

__device__ __forceinline__ float warp_min(float v) {
    for (int o = WARP / 2; o > 0; o /= 2) v = fminf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// The asymmetric ADC of one tile row of a chunk (pcm_ncb.rs `tiled`), shared by the output kernels: from the
// lanes' partial range [lo, hi], the offset b, the scale s and its reciprocal; `quantize` false without an ADC
// (adc_bits 0) and for a zero or non-finite range, where the values pass unchanged. Warp-collective.
struct NcbAdc {
    float b, s, inv_s, half;
    bool quantize;
};

__device__ __forceinline__ NcbAdc ncb_adc(float lo, float hi, int adc_bits) {
    NcbAdc a = {0.0f, 1.0f, 1.0f, 0.0f, false};
    if (adc_bits > 0) {
        lo = warp_min(lo);
        hi = warp_max(hi);
        a.b = ((hi + 1e-9f) + (lo + 1e-9f)) / 2.0f;
        float range = hi - a.b;
        a.half = (float)(1u << (adc_bits - 1));
        a.s = a.half / range;
        a.quantize = !(isnan(range) || range <= 0.0f || !isfinite(a.s));
    }
    // The reciprocal, not a division per output: v comes from a GEMM whose last bits are the GPU's own.
    a.inv_s = 1.0f / a.s;
    return a;
}

__device__ __forceinline__ float ncb_adc_apply(const NcbAdc& a, float v) {
    return a.quantize ? clampf(rintf((v - a.b) * a.s), -a.half, a.half - 1.0f) * a.inv_s + a.b : v;
}

// One output element i of pim_ncb_output before its ADC: its product v = r[i] with the optional read noise,
// IR drop and output noise, clamped to ±adc_clamp when there is an ADC.
struct NcbTerms {
    const float *read_var, *ir_a, *ir_xs;
    const RoundKeys *read_key, *out_key;
    float ir_gamma_n, adc_clamp;
    int out_noise, adc_bits;
};

template <bool TERMS>
__device__ __forceinline__ float ncb_value(float v, long long i, const NcbTerms& t) {
    if (!TERMS) return t.adc_bits > 0 ? clampf(v, -t.adc_clamp, t.adc_clamp) : v;
    if (t.read_var != nullptr) v += 0.0175f * sqrtf(fmaxf(t.read_var[i], 0.0f)) * normal_at(*t.read_key, i);
    if (t.ir_a != nullptr) {
        float a = t.ir_gamma_n * t.ir_a[i];
        v -= (0.05f * a * a * a - 0.2f * a * a + 0.5f * a) * t.ir_xs[i];
    }
    if (t.out_noise) v += 0.04f * normal_at(*t.out_key, i);
    if (t.adc_bits > 0) v = clampf(v, -t.adc_clamp, t.adc_clamp);
    return v;
}

// Outputs per lane that pim_ncb_output holds in registers: tiles of up to NCB_HELD · 32 = 256 outputs (the
// presets' core size; a wider tile goes through memory). More would cost registers, and so occupancy.
#define NCB_HELD 8

// The tile outputs r [chunks, rows, n] of every K-chunk (may be overwritten) → acc [rows, n] (zeros on entry), one
// warp per (row, N-tile of cs outputs), as pcm_ncb.rs `tiled`, chunk after chunk: optional read noise
// 0.0175·sqrt(max(read_var, 0))·ξ, IR drop c(a)·ir_xs with a = ir_gamma_n·ir_a, output noise 0.04·ξ' (the
// optional operands [chunks, rows, n] are null when off; draws at the element's index in r); then
// (adc_bits > 0) the asymmetric ADC of the tile row, clamped to ±adc_clamp, its range including 0 for an edge
// tile; then the de-scale norms[group(row), chunk]·scales[tile, chunk], accumulated. The input group of a
// row: sequences of rps rows, groups of group_rows rows within each (pim_quantize_groups' order).
template <bool TERMS>
__device__ __forceinline__ void ncb_output(float* acc, float* r, int rows, int n, int cs, int chunks, const float* norms,
                                          int rps, int group_rows, const float* scales, const float* read_var,
                                          const RoundKeys& read_key, const float* ir_a, const float* ir_xs,
                                          float ir_gamma_n, int out_noise, const RoundKeys& out_key, int adc_bits,
                                          float adc_clamp) {
    WarpTile w;
    if (!warp_tile(rows, n, cs, &w)) return;
    int lane = w.lane, t = w.tile, o0 = w.o0, o1 = w.o1;
    long long row = w.row;
    NcbTerms terms = {read_var, ir_a, ir_xs, &read_key, &out_key, ir_gamma_n, adc_clamp, out_noise, adc_bits};
    bool edge = (o1 - o0) < cs;
    // A tile of at most NCB_HELD outputs per lane keeps its values and sums in registers; a wider one writes
    // its values back to r and sums in acc.
    bool held = o1 - o0 <= NCB_HELD * WARP;
    float vals[NCB_HELD], sums[NCB_HELD] = {};
    int group = (int)(row / rps) * ((rps + group_rows - 1) / group_rows) + (int)(row % rps) / group_rows;
    for (int c = 0; c < chunks; c++) {
        long long base = (long long)c * rows * n + row * n;
        float lo = edge ? 0.0f : INFINITY, hi = edge ? 0.0f : -INFINITY;
        if (held) {
            // Every load of the row first, so that they are in flight together.
            // The breaks are the same for the whole warp (a narrower tile): no predicated-off work is issued.
#pragma unroll
            for (int h = 0; h < NCB_HELD; h++) {
                if (o0 + WARP * h >= o1) break;
                int o = o0 + lane + WARP * h;
                vals[h] = o < o1 ? r[base + o] : 0.0f;
            }
#pragma unroll
            for (int h = 0; h < NCB_HELD; h++) {
                if (o0 + WARP * h >= o1) break;
                int o = o0 + lane + WARP * h;
                if (o < o1) {
                    vals[h] = ncb_value<TERMS>(vals[h], base + o, terms);
                    lo = fminf(lo, vals[h]);
                    hi = fmaxf(hi, vals[h]);
                }
            }
        } else {
            for (int o = o0 + lane; o < o1; o += WARP) {
                float v = ncb_value<TERMS>(r[base + o], base + o, terms);
                lo = fminf(lo, v);
                hi = fmaxf(hi, v);
                r[base + o] = v;
            }
        }
        NcbAdc adc = ncb_adc(lo, hi, adc_bits);
        float scale = norms[(long long)group * chunks + c] * scales[(long long)t * chunks + c];
        if (held) {
#pragma unroll
            for (int h = 0; h < NCB_HELD; h++) {
                if (o0 + WARP * h >= o1) break;
                if (o0 + lane + WARP * h < o1) {
                    sums[h] += ncb_adc_apply(adc, vals[h]) * scale;
                }
            }
        } else {
            for (int o = o0 + lane; o < o1; o += WARP) {
                acc[row * n + o] += ncb_adc_apply(adc, r[base + o]) * scale;
            }
        }
    }
    if (held) {
#pragma unroll
        for (int h = 0; h < NCB_HELD; h++) {
            if (o0 + WARP * h >= o1) break;
            int o = o0 + lane + WARP * h;
            if (o < o1) acc[row * n + o] = sums[h];
        }
    }
}

// The kernel with every term (read noise, IR drop, output noise: each where its operand is given), and the
// one for a tile with none of them (the presets): the same arithmetic, without the terms' code and registers.
#define NCB_OUTPUT_PARAMS \
    float* acc, float* r, int rows, int n, int cs, int chunks, const float* norms, int rps, int group_rows, \
    const float* scales, const float* read_var, const __grid_constant__ RoundKeys read_key, const float* ir_a, const float* ir_xs, \
    float ir_gamma_n, int out_noise, const __grid_constant__ RoundKeys out_key, int adc_bits, float adc_clamp
#define NCB_OUTPUT_ARGS \
    acc, r, rows, n, cs, chunks, norms, rps, group_rows, scales, read_var, read_key, ir_a, ir_xs, ir_gamma_n, out_noise, out_key, \
    adc_bits, adc_clamp

extern "C" __global__ void __launch_bounds__(256, 4) pim_ncb_output(NCB_OUTPUT_PARAMS) { ncb_output<true>(NCB_OUTPUT_ARGS); }

extern "C" __global__ void __launch_bounds__(256, 4) pim_ncb_output_plain(NCB_OUTPUT_PARAMS) { ncb_output<false>(NCB_OUTPUT_ARGS); }

// pim_ncb_output_plain for tiles of cs = 128·V outputs (the last one may be narrower) with n a multiple of 4:
// lane l holds outputs o0 + 4l + 128v (v < V) as float4s, so a tile row of a chunk is V 16-byte loads per lane,
// issued one chunk ahead, with no per-output bounds or index arithmetic. The same arithmetic as ncb_output
// (bit for bit on the same r); writes every output of acc (no zeros needed).
template <int V>
__device__ __forceinline__ void ncb_output_vec(float* acc, const float* r, int rows, int n, int cs, int chunks, const float* norms,
                                              int rps, int group_rows, const float* scales, int adc_bits, float adc_clamp) {
    WarpTile w;
    if (!warp_tile(rows, n, cs, &w)) return;
    int lane = w.lane, t = w.tile, o0 = w.o0, o1 = w.o1;
    long long row = w.row;
    bool edge = (o1 - o0) < cs;
    int group = (int)(row / rps) * ((rps + group_rows - 1) / group_rows) + (int)(row % rps) / group_rows;
    bool live[V];
#pragma unroll
    for (int v = 0; v < V; v++) live[v] = o0 + 4 * (lane + WARP * v) < o1;
    const float* rp = r + row * n + o0 + 4 * lane;
    long long stride = (long long)rows * n;
    float4 next[V], sums[V];
#pragma unroll
    for (int v = 0; v < V; v++) {
        next[v] = live[v] ? *reinterpret_cast<const float4*>(rp + WARP * 4 * v) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        sums[v] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    }
    for (int c = 0; c < chunks; c++) {
        float vals[V][4];
#pragma unroll
        for (int v = 0; v < V; v++) {
            vals[v][0] = next[v].x; vals[v][1] = next[v].y; vals[v][2] = next[v].z; vals[v][3] = next[v].w;
            if (c + 1 < chunks && live[v]) next[v] = *reinterpret_cast<const float4*>(rp + (c + 1) * stride + WARP * 4 * v);
        }
        float lo = edge ? 0.0f : INFINITY, hi = edge ? 0.0f : -INFINITY;
#pragma unroll
        for (int v = 0; v < V; v++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                if (adc_bits > 0) vals[v][e] = clampf(vals[v][e], -adc_clamp, adc_clamp);
                if (live[v]) {
                    lo = fminf(lo, vals[v][e]);
                    hi = fmaxf(hi, vals[v][e]);
                }
            }
        NcbAdc adc = ncb_adc(lo, hi, adc_bits);
        float scale = norms[(long long)group * chunks + c] * scales[(long long)t * chunks + c];
#pragma unroll
        for (int v = 0; v < V; v++) {
            float q[4];
#pragma unroll
            for (int e = 0; e < 4; e++) q[e] = ncb_adc_apply(adc, vals[v][e]);
            sums[v].x += q[0] * scale;
            sums[v].y += q[1] * scale;
            sums[v].z += q[2] * scale;
            sums[v].w += q[3] * scale;
        }
    }
#pragma unroll
    for (int v = 0; v < V; v++)
        if (live[v]) *reinterpret_cast<float4*>(acc + row * n + o0 + 4 * (lane + WARP * v)) = sums[v];
}

#define NCB_VEC_PARAMS \
    float* acc, const float* r, int rows, int n, int cs, int chunks, const float* norms, int rps, int group_rows, const float* scales, \
    int adc_bits, float adc_clamp
#define NCB_VEC_ARGS acc, r, rows, n, cs, chunks, norms, rps, group_rows, scales, adc_bits, adc_clamp

extern "C" __global__ void __launch_bounds__(256) pim_ncb_output_vec1(NCB_VEC_PARAMS) { ncb_output_vec<1>(NCB_VEC_ARGS); }
extern "C" __global__ void __launch_bounds__(256) pim_ncb_output_vec2(NCB_VEC_PARAMS) { ncb_output_vec<2>(NCB_VEC_ARGS); }
extern "C" __global__ void __launch_bounds__(256) pim_ncb_output_vec4(NCB_VEC_PARAMS) { ncb_output_vec<4>(NCB_VEC_ARGS); }
