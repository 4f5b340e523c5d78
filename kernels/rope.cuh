#pragma once
// Rotary position embedding (Su et al., "RoFormer", 2021): the pair (x0, x1) of frequency i at
// position p turns by the angle p * invFreq[i]. Which elements pair up (adjacent, as GGUF llama
// files expect, or i and i + headDim/2, as Hugging Face does) is the caller's business.
#include <cuda_runtime.h>

namespace parley::cuda {

__device__ __forceinline__ void ropeRotate(float& x0, float& x1, float angle) {
    float s, c;
    sincosf(angle, &s, &c);
    const float r0 = x0 * c - x1 * s;
    const float r1 = x0 * s + x1 * c;
    x0 = r0;
    x1 = r1;
}

} // namespace parley::cuda
