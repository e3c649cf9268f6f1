// The fused element-wise ops of src/model/fused.rs on NVIDIA GPUs: LayerNorm (forward, and one backward that
// yields dx, dweight and dbias), softmax (plain and with the additive attention mask) with its backward, the
// exact-erf GELU with its backward, the linear layers' bias add, and the attention heads' layout change.
// One warp per row for the row ops (rows are a few hundred long), a grid-stride loop for the element-wise
// ones. Same formulas as the CPU kernels; f32 libdevice math.

#include <stdint.h>

#include "../../pim/gpu/philox.cuh"

#define WARP 32

__device__ __forceinline__ float warp_sum(float v) {
    for (int o = WARP / 2; o > 0; o /= 2) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
    for (int o = WARP / 2; o > 0; o /= 2) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

__device__ __forceinline__ long long warp_index() { return ((long long)blockIdx.x * blockDim.x + threadIdx.x) / WARP; }

// Mean and 1/sqrt(var + eps) of a row (two-pass variance).
__device__ __forceinline__ float2 row_stats(const float* x, int h, float eps, int lane) {
    float s = 0.0f;
    for (int i = lane; i < h; i += WARP) s += x[i];
    float mean = warp_sum(s) / h;
    float v = 0.0f;
    for (int i = lane; i < h; i += WARP) {
        float d = x[i] - mean;
        v += d * d;
    }
    float var = warp_sum(v) / h;
    return make_float2(mean, 1.0f / sqrtf(var + eps));
}

extern "C" __global__ void model_layer_norm(const float* x, const float* w, const float* b, float* y, long long rows, int h,
                                            float eps) {
    long long row = warp_index();
    if (row >= rows) return;
    int lane = threadIdx.x % WARP;
    const float* xr = x + row * h;
    float2 st = row_stats(xr, h, eps, lane);
    for (int i = lane; i < h; i += WARP) y[row * h + i] = (xr[i] - st.x) * st.y * w[i] + b[i];
}

// dx rows of the LayerNorm backward into out[0 .. rows·h], and each row's (mean, rstd) into stats.
extern "C" __global__ void model_layer_norm_grad_x(const float* x, const float* w, const float* dy, float* out, float* stats,
                                                   long long rows, int h, float eps) {
    long long row = warp_index();
    if (row >= rows) return;
    int lane = threadIdx.x % WARP;
    const float* xr = x + row * h;
    const float* dyr = dy + row * h;
    float2 st = row_stats(xr, h, eps, lane);
    float sum_g = 0.0f, sum_gx = 0.0f;
    for (int i = lane; i < h; i += WARP) {
        float g = dyr[i] * w[i];
        sum_g += g;
        sum_gx += g * xr[i];
    }
    sum_g = warp_sum(sum_g);
    sum_gx = warp_sum(sum_gx);
    // Σ g·x̂ = rstd · (Σ g·x − mean · Σ g).
    float mean_g = sum_g / h, mean_gx_hat = st.y * (sum_gx - st.x * sum_g) / h;
    for (int i = lane; i < h; i += WARP) {
        float x_hat = (xr[i] - st.x) * st.y;
        out[row * h + i] = st.y * (dyr[i] * w[i] - mean_g - x_hat * mean_gx_hat);
    }
    if (lane == 0) {
        stats[2 * row] = st.x;
        stats[2 * row + 1] = st.y;
    }
}

// Partial dweight and dbias over slabs of `slab` rows, in fixed order (no atomics: a run repeats bit for
// bit): blocks of 32 columns × 8 row lanes, reduced in shared memory into part[slab][0 | 1][col].
extern "C" __global__ void model_layer_norm_grad_params(const float* x, const float* dy, const float* stats, float* part,
                                                        long long rows, int h, int slab) {
    __shared__ float sw[8][33], sb[8][33];
    int col = blockIdx.x * 32 + threadIdx.x;
    long long r0 = (long long)blockIdx.y * slab, r1 = min(r0 + slab, rows);
    float aw = 0.0f, ab = 0.0f;
    if (col < h) {
        for (long long r = r0 + threadIdx.y; r < r1; r += 8) {
            float g = dy[r * h + col];
            aw += g * (x[r * h + col] - stats[2 * r]) * stats[2 * r + 1];
            ab += g;
        }
    }
    sw[threadIdx.y][threadIdx.x] = aw;
    sb[threadIdx.y][threadIdx.x] = ab;
    __syncthreads();
    if (threadIdx.y == 0 && col < h) {
        for (int j = 1; j < 8; j++) {
            aw += sw[j][threadIdx.x];
            ab += sb[j][threadIdx.x];
        }
        part[(long long)blockIdx.y * 2 * h + col] = aw;
        part[(long long)blockIdx.y * 2 * h + h + col] = ab;
    }
}

// dweight, dbias = Σ over slabs of the partials (out[0 .. 2h]).
extern "C" __global__ void model_layer_norm_grad_reduce(const float* part, float* out, int slabs, int h) {
    int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= 2 * h) return;
    float s = 0.0f;
    for (int b = 0; b < slabs; b++) s += part[(long long)b * 2 * h + j];
    out[j] = s;
}

// softmax over rows of n; with `mask` non-null, row r first gets mask[(r / rows_per_mask) · n + j] added.
// A row of −∞ only (nothing to attend to) becomes zeros, not NaN.
extern "C" __global__ void model_softmax(const float* x, const float* mask, float* y, long long rows, int n,
                                         long long rows_per_mask) {
    long long row = warp_index();
    if (row >= rows) return;
    int lane = threadIdx.x % WARP;
    const float* xr = x + row * n;
    const float* mr = mask ? mask + (row / rows_per_mask) * n : nullptr;
    float* yr = y + row * n;
    float m = -INFINITY;
    for (int i = lane; i < n; i += WARP) {
        float v = xr[i] + (mr ? mr[i] : 0.0f);
        yr[i] = v;
        m = fmaxf(m, v);
    }
    m = warp_max(m);
    if (m == -INFINITY) m = 0.0f;
    float s = 0.0f;
    for (int i = lane; i < n; i += WARP) {
        float e = expf(yr[i] - m);
        yr[i] = e;
        s += e;
    }
    s = warp_sum(s);
    float inv = s > 0.0f ? 1.0f / s : 0.0f;
    for (int i = lane; i < n; i += WARP) yr[i] *= inv;
}

// dx = y ⊙ (dy − Σ dy ⊙ y) per row.
extern "C" __global__ void model_softmax_grad(const float* y, const float* dy, float* dx, long long rows, int n) {
    long long row = warp_index();
    if (row >= rows) return;
    int lane = threadIdx.x % WARP;
    const float* yr = y + row * n;
    const float* dyr = dy + row * n;
    float s = 0.0f;
    for (int i = lane; i < n; i += WARP) s += yr[i] * dyr[i];
    s = warp_sum(s);
    for (int i = lane; i < n; i += WARP) dx[row * n + i] = yr[i] * (dyr[i] - s);
}

__device__ __forceinline__ float normal_cdf(float x) { return 0.5f * erfcf(-x * 0.70710678118654752f); }

extern "C" __global__ void model_gelu(const float* x, float* y, long long n) {
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
        y[i] = x[i] * normal_cdf(x[i]);
}

// dx = dy · (Φ(x) + x · φ(x)).
extern "C" __global__ void model_gelu_grad(const float* x, const float* dy, float* dx, long long n) {
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
        float v = x[i];
        dx[i] = dy[i] * (normal_cdf(v) + v * 0.3989422804014327f * expf(-0.5f * v * v));
    }
}

// Dropout masks: mask[i] = (u_i < p ? 0 : scale) with u_i uniform in [0, 1) from Philox4x32-10 draw i of the
// key; four uniforms per Philox call.
extern "C" __global__ void model_dropout_mask(float* mask, long long n, float p, float scale, const __grid_constant__ RoundKeys key) {
    long long groups = (n + 3) / 4;
    for (long long g = (long long)blockIdx.x * blockDim.x + threadIdx.x; g < groups; g += (long long)gridDim.x * blockDim.x) {
        uint4 r = philox(make_uint4((uint32_t)g, (uint32_t)(g >> 32), key.stream, 0xd70f), key);
        uint32_t words[4] = {r.x, r.y, r.z, r.w};
        for (int j = 0; j < 4; j++) {
            long long i = 4 * g + j;
            if (i < n) mask[i] = (float)(words[j] >> 8) * (1.0f / 16777216.0f) < p ? 0.0f : scale;
        }
    }
}

// y + bias over rows of n (fused.rs add_bias): blockIdx.y strides over rows, threads over a row's columns.
extern "C" __global__ void model_add_bias(const float* y, const float* bias, float* out, long long rows, int n) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= n) return;
    float b = bias[c];
    for (long long r = blockIdx.y; r < rows; r += gridDim.y) out[r * n + c] = y[r * n + c] + b;
}

// Attention heads (fused/heads.rs), times scale: split [b, s, h·d] → [b, h, s, d], or merge the reverse.
// One block per row (b, s) of the [b, s, h·d] side: its reads or writes are the row, the other side's are
// h slices of d contiguous floats.
extern "C" __global__ void model_heads(const float* in, float* out, long long rows, int seq, int heads, int d, float scale,
                                       int merge) {
    int hd = heads * d;
    for (long long row = blockIdx.x; row < rows; row += gridDim.x) {
        long long b = row / seq;
        long long s = row - b * seq;
        for (int c = threadIdx.x; c < hd; c += blockDim.x) {
            int j = c / d;
            long long split = ((b * heads + j) * seq + s) * d + (c - j * d);
            long long flat = row * hd + c;
            if (merge) {
                out[flat] = in[split] * scale;
            } else {
                out[split] = in[flat] * scale;
            }
        }
    }
}

// Embedding lookup (fused/embedding.rs): out[i, :] = table[ids[i], :]; an id outside the table gives zeros
// (the CPU side rejects it). Blocks stride over rows, threads over a row's columns.
extern "C" __global__ void model_embedding(const float* table, const unsigned int* ids, float* out, long long count, int dim,
                                           long long vocab) {
    for (long long i = blockIdx.x; i < count; i += gridDim.x) {
        long long id = ids[i];
        for (int c = threadIdx.x; c < dim; c += blockDim.x) out[i * dim + c] = id < vocab ? table[id * dim + c] : 0.0f;
    }
}

// The lookup's backward, step 1: partial[s, :] = the sum, in order, of grad's rows at the positions of
// segment s (positions[starts[s]..starts[s + 1]]). One block per segment, threads over columns.
extern "C" __global__ void model_embedding_grad_segments(const float* grad, int dim, const unsigned int* positions,
                                                         const unsigned int* starts, long long segments, float* partial) {
    for (long long s = blockIdx.x; s < segments; s += gridDim.x)
        for (int c = threadIdx.x; c < dim; c += blockDim.x) {
            float acc = 0.0f;
            for (unsigned int p = starts[s]; p < starts[s + 1]; p++) acc += grad[(long long)positions[p] * dim + c];
            partial[s * dim + c] = acc;
        }
}

// Step 2: out[ids[u], :] = the sum, in order, of id u's segments (id_segments[u]..id_segments[u + 1]);
// the rows of ids that do not occur stay as they are (zero).
extern "C" __global__ void model_embedding_grad_rows(const float* partial, int dim, const unsigned int* ids,
                                                     const unsigned int* id_segments, long long count, float* out) {
    for (long long u = blockIdx.x; u < count; u += gridDim.x)
        for (int c = threadIdx.x; c < dim; c += blockDim.x) {
            float acc = 0.0f;
            for (unsigned int s = id_segments[u]; s < id_segments[u + 1]; s++) acc += partial[(long long)s * dim + c];
            out[(long long)ids[u] * dim + c] = acc;
        }
}
