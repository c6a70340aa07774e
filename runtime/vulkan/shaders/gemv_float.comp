#version 450
// Y[t][r] = sum_k W[r][k] * X[t][k] for f32/f16/bf16 W (layout as gemv_codes).
#include "floats.glsl"

#ifndef TT
#define TT 1
#endif
layout(constant_id = 5) const uint RPW = 1;
// 1 (f16/bf16 rows of a multiple of 8 values): each invocation reads eight
// values as one 16-byte word (and x as two vec4) instead of one value per
// 4-byte load, four times fewer loads in flight for the same bytes.
layout(constant_id = 6) const uint VEC = 0;

layout(std430, binding = 2) readonly buffer X { float x[]; };
layout(std430, binding = 2) readonly buffer X4 { vec4 x4[]; };
layout(std430, binding = 3) writeonly buffer Y { float y[]; };

shared float red[WG * TT];
#include "reduce.glsl"

void main() {
    const uint TPR = WG / RPW, lane = gl_LocalInvocationID.x % TPR, sub = gl_LocalInvocationID.x / TPR;
    const uint r = flat_group() * RPW + sub, t0 = gl_WorkGroupID.y * TT;
    float acc[TT];
    [[unroll]] for (uint t = 0u; t < TT; t++) acc[t] = 0.0;
    if (r < p.rows && VEC == 1u) { // p.codes and the rows are 16-byte aligned (p.cols % 8 == 0)
        const uint n8 = p.cols >> 3, base = (p.codes >> 2) + r * n8;
        for (uint c = lane; c < n8; c += TPR) {
            uvec4 q = w4[base + c];
            vec4 a, b;
            if (DT == 1u) {
                a = vec4(unpackHalf2x16(q.x), unpackHalf2x16(q.y));
                b = vec4(unpackHalf2x16(q.z), unpackHalf2x16(q.w));
            } else {
                a = uintBitsToFloat(uvec4(q.x << 16, q.x & 0xFFFF0000u, q.y << 16, q.y & 0xFFFF0000u));
                b = uintBitsToFloat(uvec4(q.z << 16, q.z & 0xFFFF0000u, q.w << 16, q.w & 0xFFFF0000u));
            }
            [[unroll]] for (uint t = 0u; t < TT; t++) {
                const uint xo = (min(t0 + t, p.T - 1u) * p.xstride >> 2) + 2u * c;
                acc[t] += dot(a, x4[xo]) + dot(b, x4[xo + 1u]);
            }
        }
    } else if (r < p.rows) {
        for (uint c = lane; c < p.cols; c += TPR) {
            float v = elem_fast(r * p.cols + c);
            [[unroll]] for (uint t = 0u; t < TT; t++) acc[t] += v * x[min(t0 + t, p.T - 1u) * p.xstride + c];
        }
    }
    [[unroll]] for (uint t = 0u; t < TT; t++) red[t * WG + gl_LocalInvocationID.x] = acc[t];
    reduce_rows(TT, TPR, lane, gl_LocalInvocationID.x);
    if (lane == 0u && r < p.rows)
        [[unroll]] for (uint t = 0u; t < TT; t++)
            if (t0 + t < p.T) y[(t0 + t) * p.ystride + r] = red[t * WG + gl_LocalInvocationID.x];
}
