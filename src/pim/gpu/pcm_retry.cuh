// AIHWKIT PCM's iterative bound management on a GPU (src/pim/pcm_aihwkit/io.rs `tile`, launched from
// src/pim/gpu/pcm.rs `tiles_forward` after the converter kernels). Part of the one PTX module of kernels.cu,
// which includes this file after pcm_aihwkit.cuh (Adc, adc4, accept4, load4, store4, io_quantize) and its
// shared helpers (warp_sum).

// Outputs of one warp's dot products in pim_pcm_retry, and its threads per block; a unit of its work is a slab
// of RETRY_SLAB outputs of one (row, row tile, chunk): one group of RETRY_OUTPUTS per warp.
#define RETRY_OUTPUTS 8
#define RETRY_THREADS 128
#define RETRY_SLAB (RETRY_OUTPUTS * RETRY_THREADS / WARP)

// A chunk's pending retry: what its units and its last block share.
struct RetryChunk {
    const float* xr;      // the chunk's input row, kt floats
    const float* wchunk;  // the chunk's weights, [n, kt]
    float* yr;            // y's row of the chunk: the scratch of its outputs
    uint8_t* pr;          // its pass mask row (may be null)
    float s;              // its input scale
    int kt;
    bool vec;             // 16-byte weight loads
    long long counter0;   // adc_counter of round 0: round r's is counter0 + r · rows · n
};

__device__ __forceinline__ RetryChunk retry_chunk(const float* x, int rows, int k, int tc, int c, const float* wc, int n,
                                                  const float* scale, float* y, uint8_t* pass, long long row) {
    RetryChunk r;
    int k0 = c * tc;
    r.kt = min(tc, k - k0);
    r.vec = r.kt % 4 == 0 && ((long long)n * k0) % 4 == 0;
    r.s = scale[(long long)c * rows + row];
    r.xr = x + row * k + k0;
    r.wchunk = wc + (long long)n * k0;
    long long at = ((long long)c * rows + row) * n;
    r.yr = y + at;
    r.pr = pass ? pass + at : nullptr;
    r.counter0 = adc_counter(c, 0, row, rows, n);
    return r;
}

// The chunk row x / s / red through the DAC into shared memory, by the whole block (callers synchronise).
__device__ __forceinline__ void retry_dac(const RetryChunk& r, float red, float inp_step, float* xq) {
    for (int j = threadIdx.x; j < r.kt; j += blockDim.x) xq[j] = io_quantize(r.xr[j] / r.s / red, inp_step, 1.0f);
}

// One warp's dot products of outputs ob..ob+RETRY_OUTPUTS−1 (those below o1) with the DAC'd row xq: every lane
// gets every sum (the same order of additions in each form of the kernel: the results are bit for bit the
// same wherever they are computed).
__device__ __forceinline__ void retry_dots(const RetryChunk& r, const float* xq, int ob, int o1, int lane, float d[RETRY_OUTPUTS]) {
#pragma unroll
    for (int e = 0; e < RETRY_OUTPUTS; e++) d[e] = 0.0f;
    if (r.vec) {
        const float4* xq4 = reinterpret_cast<const float4*>(xq);
#pragma unroll 2
        for (int j4 = lane; j4 < r.kt / 4; j4 += WARP) {
            float4 xv = xq4[j4];
#pragma unroll
            for (int e = 0; e < RETRY_OUTPUTS; e++) {
                if (ob + e < o1) {
                    float4 wv = reinterpret_cast<const float4*>(r.wchunk + (long long)(ob + e) * r.kt)[j4];
                    d[e] += xv.x * wv.x + xv.y * wv.y + xv.z * wv.z + xv.w * wv.w;
                }
            }
        }
    } else {
        for (int j = lane; j < r.kt; j += WARP)
#pragma unroll
            for (int e = 0; e < RETRY_OUTPUTS; e++)
                if (ob + e < o1) d[e] += xq[j] * r.wchunk[(long long)(ob + e) * r.kt + j];
    }
#pragma unroll
    for (int e = 0; e < RETRY_OUTPUTS; e++) d[e] = warp_sum(d[e]);
}

// 16-byte-or-less loads of outputs another block wrote in this launch: from L2 (ld.global.cg), never from a
// stale line of this SM's L1.
__device__ __forceinline__ float4 load4_cg(const float* yr, int o4, int o1) {
    return make_float4(o4 < o1 ? __ldcg(yr + o4) : 0.0f, o4 + 1 < o1 ? __ldcg(yr + o4 + 1) : 0.0f, o4 + 2 < o1 ? __ldcg(yr + o4 + 2) : 0.0f,
                       o4 + 3 < o1 ? __ldcg(yr + o4 + 3) : 0.0f);
}

// Iterative bound management after pim_pcm_finalize (io.rs `tile`, rounds 1, 2, …): each listed (row, row tile)
// has each of its pending chunks computed again with its input halved per round (x / scale / red through the
// DAC, red = 2, 4, …) until no output saturates or red reaches 32 (that round keeps its clipped outputs), then
// accumulated in chunk order into out and its pass mask like pim_pcm_finalize's. The chunk's weights are wc's
// chunk-major [n, kt] matrix at n·k0.
//
// Round 1 ends nearly every retry, so it is spread over the GPU: a unit is a slab of RETRY_SLAB outputs of one
// (item, chunk) (units grid-strided over a fixed grid: only the GPU knows the count), whose block DACs the chunk
// row into shared memory (tc floats), computes the slab's products (a warp per RETRY_OUTPUTS outputs) and
// converts them into y's row of the chunk (the scratch), and marks the chunk (pending |= 2) where one
// saturated. A block per item held all of an item's weights (1 MB for a 512 × 512 tile) to one SM: 26 µs a
// launch with items in a roberta-base forward on an H200, 17–18 µs so. The block that finishes an item's last
// unit (done[it] counts them, zero on entry) accepts its chunks in order: round 1's outputs, or for a chunk
// that saturated, rounds 2, 3, … over the whole tile in that block. Each item owns its outputs: no two blocks
// add to one. (Every unit still reads its slab of the weights for its own item: items of one row tile
// computed together would share those loads.)
extern "C" __global__ void __launch_bounds__(RETRY_THREADS)
pim_pcm_retry(const float* x, int rows, int k, int tc, int chunks, const float* wc, int n, int tw,
              const float* scale, const float* factor, float* y, float* out, uint8_t* pass,
              uint32_t* pending, const uint32_t* retry_items, const uint32_t* retry_count, uint32_t* done,
              float inp_step, float out_noise, float out_step, float out_bound,
              const __grid_constant__ RoundKeys key) {
    extern __shared__ float4 shared4[];
    __shared__ int last;
    float* xq = reinterpret_cast<float*>(shared4);
    Adc a = {out_noise, out_step, out_bound, &key, out_step > 0.0f ? 1.0f / out_step : 0.0f};
    int warp = threadIdx.x / WARP, lane = threadIdx.x % WARP, warps = blockDim.x / WARP;
    int row_tiles = (n + tw - 1) / tw, slabs = (tw + RETRY_SLAB - 1) / RETRY_SLAB;
    long long round_stride = (long long)rows * n;
    uint32_t units_per_item = (uint32_t)(chunks * slabs);
    long long units = (long long)*retry_count * units_per_item;
    for (long long u = blockIdx.x; u < units; u += gridDim.x) {
        uint32_t it = (uint32_t)(u / units_per_item);
        int c = (int)(u % units_per_item) / slabs, slab = (int)(u % units_per_item) % slabs;
        uint32_t item = retry_items[it];
        long long row = item / row_tiles;
        int rt = (int)(item % row_tiles), o0 = rt * tw, o1 = min(o0 + tw, n);
        uint32_t* flag = &pending[((long long)rt * chunks + c) * rows + row];
        int ob = o0 + slab * RETRY_SLAB + RETRY_OUTPUTS * warp;
        // Round 1 of this slab, where its chunk is pending and the slab holds outputs.
        if (*flag != 0u && o0 + slab * RETRY_SLAB < o1) {
            RetryChunk r = retry_chunk(x, rows, k, tc, c, wc, n, scale, y, pass, row);
            __syncthreads();  // the last unit's readers of xq are done
            retry_dac(r, 2.0f, inp_step, xq);
            __syncthreads();
            float d[RETRY_OUTPUTS];
            retry_dots(r, xq, ob, o1, lane, d);
            int saturated = 0;
            int o4 = ob + 4 * lane;
            if (lane < RETRY_OUTPUTS / 4 && o4 < o1) {
                float4 v = lane == 0 ? make_float4(d[0], d[1], d[2], d[3]) : make_float4(d[4], d[5], d[6], d[7]);
                store4(r.yr, o4, o1, adc4(v, o4, o1, a, r.counter0 + round_stride, &saturated));
            }
            __threadfence();
            if (__syncthreads_or(saturated) && threadIdx.x == 0) atomicOr(flag, 2u);
        }
        __syncthreads();
        if (threadIdx.x == 0) {
            __threadfence();
            last = atomicAdd(&done[it], 1u) == units_per_item - 1;
        }
        __syncthreads();
        if (!last) continue;
        // This block finished the item's last unit: every other unit's outputs and marks are visible.
        __threadfence();
        for (int cc = 0; cc < chunks; cc++) {
            uint32_t p = atomicOr(&pending[((long long)rt * chunks + cc) * rows + row], 0u);
            if (p == 0u) continue;
            RetryChunk r = retry_chunk(x, rows, k, tc, cc, wc, n, scale, y, pass, row);
            float red = 2.0f;
            for (int round = 2; p & 2u; round++) {
                red *= 2.0f;
                __syncthreads();  // the last round's readers of xq and yr are done
                retry_dac(r, red, inp_step, xq);
                __syncthreads();
                for (int b = o0 + RETRY_OUTPUTS * warp; b < o1; b += RETRY_OUTPUTS * warps) {
                    float d[RETRY_OUTPUTS];
                    retry_dots(r, xq, b, o1, lane, d);
#pragma unroll
                    for (int e = 0; e < RETRY_OUTPUTS; e++)
                        if (lane == 0 && b + e < o1) r.yr[b + e] = d[e];
                }
                __syncthreads();
                int saturated = 0;
                for (int o4 = o0 + 4 * (int)threadIdx.x; o4 < o1; o4 += 4 * blockDim.x)
                    store4(r.yr, o4, o1, adc4(load4_cg(r.yr, o4, o1), o4, o1, a, r.counter0 + round * round_stride, &saturated));
                if (!(__syncthreads_or(saturated) && red < MAX_BM_REDUCTION)) break;
            }
            for (int o4 = o0 + 4 * (int)threadIdx.x; o4 < o1; o4 += 4 * blockDim.x) {
                float4 sum4 = load4(out + row * n, o4, o1, false);
                float sum[4] = {sum4.x, sum4.y, sum4.z, sum4.w};
                accept4(load4_cg(r.yr, o4, o1), o4, o1, red, r.s, factor + (long long)cc * n, out_bound, sum, r.pr);
                store4(out + row * n, o4, o1, make_float4(sum[0], sum[1], sum[2], sum[3]));
            }
        }
    }
}
