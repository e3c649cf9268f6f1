// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", 2011), shared by the PIM and
// model kernels; gpu.rs `philox` is the same function on the CPU.
#pragma once
#include <stdint.h>

// A Philox key as the kernels take it: the ten round keys of each half, scheduled on the host (cuda.rs
// `RoundKeys`), and the stream word. Passed by value as a kernel parameter, each round's key is a constant
// operand of its xor; scheduled on the GPU, it cost two adds a round, a third of the generator's instructions.
struct RoundKeys {
    uint32_t x[10], y[10];
    uint32_t stream;
};

__device__ __forceinline__ uint4 philox(uint4 c, const RoundKeys& k) {
#pragma unroll
    for (int i = 0; i < 10; i++) {
        uint32_t hi0 = __umulhi(0xD2511F53u, c.x), lo0 = 0xD2511F53u * c.x;
        uint32_t hi1 = __umulhi(0xCD9E8D57u, c.z), lo1 = 0xCD9E8D57u * c.z;
        c = make_uint4(hi1 ^ c.y ^ k.x[i], lo1, hi0 ^ c.w ^ k.y[i], lo0);
    }
    return c;
}
