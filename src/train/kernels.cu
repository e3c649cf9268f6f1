// The fused Adam passes of src/train/adam.rs on NVIDIA GPUs: the same f32 arithmetic in the same order as the
// CPU side (built with -fmad=false; sqrtf and division are IEEE-rounded), so both devices step alike.

// state = [m | v] (n each): m ← β1·m + (1 − β1)·g; v ← β2·v + (1 − β2)·g².
extern "C" __global__ void adam_moments(float* state, const float* g, long long n, float beta1, float beta2) {
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
        float gi = g[i];
        state[i] = state[i] * beta1 + gi * (1.0f - beta1);
        state[n + i] = state[n + i] * beta2 + gi * gi * (1.0f - beta2);
    }
}

// θ ← θ·decay − lr·m̂/(√v̂ + ε), m̂ = m·scale_m, v̂ = v·scale_v.
extern "C" __global__ void adam_apply(float* theta, const float* state, long long n, float lr, float decay, float scale_m,
                                      float scale_v, float eps) {
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
        float m_hat = state[i] * scale_m, v_hat = state[n + i] * scale_v;
        theta[i] = theta[i] * decay - lr * (m_hat / (sqrtf(v_hat) + eps));
    }
}
