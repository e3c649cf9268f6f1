// AIHWKIT PCM's hardware-aware training on a GPU (src/pim/pcm_aihwkit/hwa.rs and remap.rs, launched from
// src/pim/gpu/pcm.rs): the masked gradient of the backward, the perturbed weights of a training forward, and
// the post-update clip. Part of the one PTX module of kernels.cu, after pcm_aihwkit.cuh (ld4, st4, clampf).

// The hardware-aware backward's gradient through every chunk's converters: out[c, i] = pass[c, i] · grad[i]
// for pass [chunks, rows, n] and grad [rows, n] (`per_chunk` = rows · n elements).
extern "C" __global__ void pim_pcm_mask_grad(const uint8_t* pass, const float* grad, float* out, long long per_chunk, int chunks) {
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < per_chunk; i += (long long)gridDim.x * blockDim.x) {
        float g = grad[i];
        for (int c = 0; c < chunks; c++) out[c * per_chunk + i] = (float)pass[c * per_chunk + i] * g;
    }
}

// rmax[row · chunks + c] = max |w| over the row's columns of tile column c, and tmax[(row / tr) · chunks + c]
// (zero on entry) the maximum over the tile's rows, by an atomic max on the bits (as pim_tile_max). One warp
// per (row, c).
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
    if (lane == 0 && m > 0.0f)
        atomicMax((unsigned int*)&tmax[(row / tr) * chunks + task % chunks], __float_as_uint(m));
}

// hwa.rs's tile weights for a training forward, written chunk-major (chunk c, columns k0..k0+kt, is the
// [n, kt] matrix at offset n·k0). Per output row j and chunk c: the scale s = max |w| over the row's chunk
// columns (per_row: rmax, pim_pcm_row_max) or over its tile's (tiles of `tr` rows: tmax, from the same kernel);
// wn = w/s (w where s = 0) plus noise·ξ in a tile with a non-zero weight; used = wn·s; factor[c·n + j] = s.
// The noise of wn's elements i..i+3 of a row (i − the row's start a multiple of 4) is Philox block i's four
// normals. One warp per (row, chunk); 16-byte accesses where `vec` (k, tc and kt multiples of 4).
extern "C" __global__ void pim_pcm_hwa_weights(const float* w, int n, int k, int tr, int tc, int chunks, const float* rmax,
                                               const float* tmax, int per_row, float noise,
                                               const __grid_constant__ RoundKeys key, float* wn, float* used, float* factor) {
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
        float4 z = noisy ? normal4_at(key, base + b4) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
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

// Rows of a tile per block of the post-update clip's kernels (pcm.rs `clip_and_remap`'s SLAB), and their
// threads: a warp per row.
#define CLIP_SLAB 8
#define CLIP_THREADS 256

// The rows [r0, r1) and columns [c0, c1) of block (tile = blockIdx.x, slab = blockIdx.y) of the clip kernels.
struct ClipSlab {
    int tj, r0, r1, c0, c1;
};

__device__ __forceinline__ ClipSlab clip_slab(int n, int k, int tr, int tc, int chunks) {
    ClipSlab b;
    int tile = blockIdx.x, ti = tile / chunks;
    b.tj = tile % chunks;
    b.r0 = ti * tr + blockIdx.y * CLIP_SLAB;
    b.r1 = min(min(b.r0 + CLIP_SLAB, ti * tr + tr), n);
    b.c0 = b.tj * tc;
    b.c1 = min(b.c0 + tc, k);
    return b;
}

// Each row's maximum |w| over its tile's columns, rmax[row · chunks + tile column], and the partial sums (Σx,
// Σx², count) of the normalised weights x = w / rowmax of the slab's live rows (rowmax > 0):
// part[(tile · slabs + slab) · 3 + j]. A warp per row (the max, then the sums over the same columns, from
// L1), the warps' sums added in warp order: a fixed order. One kernel where a row-max kernel (a warp per row
// and chunk) fed a statistics kernel (a thread per element, an index division each, one block per SM for a
// 768 × 768 layer): 27 µs a layer on an H200 before.
extern "C" __global__ void __launch_bounds__(CLIP_THREADS) pim_pcm_clip_stats(const float* w, int n, int k, int tr, int tc, int chunks,
                                                                          float* rmax, double* part) {
    __shared__ double red[CLIP_THREADS / WARP][3];
    ClipSlab b = clip_slab(n, k, tr, tc, chunks);
    int warp = threadIdx.x / WARP, lane = threadIdx.x % WARP;
    double s = 0.0, s2 = 0.0, cnt = 0.0;
    for (int r = b.r0 + warp; r < b.r1; r += CLIP_THREADS / WARP) {
        const float* wr = w + (long long)r * k;
        float m = 0.0f;
#pragma unroll 4
        for (int c = b.c0 + lane; c < b.c1; c += WARP) m = fmaxf(m, fabsf(wr[c]));
        m = warp_max(m);
        if (lane == 0) rmax[(long long)r * chunks + b.tj] = m;
        if (!(m > 0.0f)) continue;
#pragma unroll 4
        for (int c = b.c0 + lane; c < b.c1; c += WARP) {
            double x = (double)(wr[c] / m);
            s += x;
            s2 += x * x;
            cnt += 1.0;
        }
    }
    s = warp_sum(s);
    s2 = warp_sum(s2);
    cnt = warp_sum(cnt);
    if (lane == 0) {
        red[warp][0] = s;
        red[warp][1] = s2;
        red[warp][2] = cnt;
    }
    __syncthreads();
    if (threadIdx.x < 3) {
        double t = 0.0;
        for (int i = 0; i < CLIP_THREADS / WARP; i++) t += red[i][threadIdx.x];
        part[((long long)blockIdx.x * gridDim.y + blockIdx.y) * 3 + threadIdx.x] = t;
    }
}

// The clip: out = rowmax · clamp(w / rowmax, ±bound) where |w / rowmax| > bound, every other weight keeps its
// bits; bound = clip·σ of the tile's normalised weights from its slabs' partial sums, or +∞ where nothing is to
// be clipped (fewer than two weights, no spread, or a bound of 1 or more: every |x| ≤ 1 already). Every block
// of a tile sums the same partials in the same order (warp 0: lane-strided over the slabs, then a shuffle
// tree), so all agree on the bound without a kernel of their own. Blocks as pim_pcm_clip_stats's.
extern "C" __global__ void __launch_bounds__(CLIP_THREADS)
pim_pcm_clip_apply(const float* w, float* out, int n, int k, int tr, int tc, int chunks,
                   const float* rmax, const double* part, float clip_sigma) {
    __shared__ float bound;
    ClipSlab b = clip_slab(n, k, tr, tc, chunks);
    int warp = threadIdx.x / WARP, lane = threadIdx.x % WARP;
    if (warp == 0) {
        int slabs = gridDim.y;
        double s = 0.0, s2 = 0.0, cnt = 0.0;
        for (int j = lane; j < slabs; j += WARP) {
            const double* p = part + ((long long)blockIdx.x * slabs + j) * 3;
            s += p[0];
            s2 += p[1];
            cnt += p[2];
        }
        s = warp_sum(s);
        s2 = warp_sum(s2);
        cnt = warp_sum(cnt);
        if (lane == 0) {
            float bd = INFINITY;
            if (cnt >= 2.0) {
                double mean = s / cnt;
                float sigma = (float)sqrt(fmax(s2 / cnt - mean * mean, 0.0));
                float c = clip_sigma * sigma;
                if (isfinite(c) && c > 0.0f && c < 1.0f) bd = c;
            }
            bound = bd;
        }
    }
    __syncthreads();
    float bd = bound;
    for (int r = b.r0 + warp; r < b.r1; r += CLIP_THREADS / WARP) {
        const float* wr = w + (long long)r * k;
        float* orow = out + (long long)r * k;
        float m = rmax[(long long)r * chunks + b.tj];
        bool clip = m > 0.0f && !isinf(bd);
#pragma unroll 4
        for (int c = b.c0 + lane; c < b.c1; c += WARP) {
            float v = wr[c];
            if (clip) {
                float x = v / m;
                if (fabsf(x) > bd) v = clampf(x, -bd, bd) * m;
            }
            orow[c] = v;
        }
    }
}
