#version 450
// Y[t][r] = sum_k W[r][k] * X[t][k] for f32/f16/bf16 W (layout as gemv_codes).
#include "floats.glsl"

#ifndef TT
#define TT 1
#endif
layout(constant_id = 5) const uint RPW = 1;

layout(std430, binding = 2) readonly buffer X { float x[]; };
layout(std430, binding = 3) writeonly buffer Y { float y[]; };

shared float red[WG * TT];

void main() {
    const uint TPR = WG / RPW, lane = gl_LocalInvocationID.x % TPR, sub = gl_LocalInvocationID.x / TPR;
    const uint r = flat_group() * RPW + sub, t0 = gl_WorkGroupID.y * TT;
    float acc[TT];
    [[unroll]] for (uint t = 0u; t < TT; t++) acc[t] = 0.0;
    if (r < p.rows) {
        for (uint c = lane; c < p.cols; c += TPR) {
            float v = elem_fast(r * p.cols + c);
            [[unroll]] for (uint t = 0u; t < TT; t++) acc[t] += v * x[min(t0 + t, p.T - 1u) * p.xstride + c];
        }
    }
    [[unroll]] for (uint t = 0u; t < TT; t++) red[t * WG + gl_LocalInvocationID.x] = acc[t];
    barrier();
    for (uint h = TPR / 2u; h > 0u; h >>= 1) {
        if (lane < h)
            [[unroll]] for (uint t = 0u; t < TT; t++)
                red[t * WG + gl_LocalInvocationID.x] += red[t * WG + gl_LocalInvocationID.x + h];
        barrier();
    }
    if (lane == 0u && r < p.rows)
        [[unroll]] for (uint t = 0u; t < TT; t++)
            if (t0 + t < p.T) y[(t0 + t) * p.ystride + r] = red[t * WG + gl_LocalInvocationID.x];
}
