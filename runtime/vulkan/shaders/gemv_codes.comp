#version 450
// Y[t][r] = sum_k W[r][k] * X[t][k] for codec-coded W, TT activation rows per
// workgroup (TT = 1: GEMV; TT > 1: the weights are decoded once for TT rows).
// RPW rows per workgroup; each row's chunks are split over WG/RPW invocations
// and summed in shared memory in a fixed order (results are reproducible).
#include "codes.glsl"

layout(constant_id = 5) const uint TT = 1;
layout(constant_id = 6) const uint RPW = 1;

layout(std430, binding = 2) readonly buffer X { vec4 x4[]; };
layout(std430, binding = 3) writeonly buffer Y { float y[]; };

shared float red[WG * TT];

void main() {
    load_lut();
    const uint TPR = WG / RPW, lane = gl_LocalInvocationID.x % TPR, sub = gl_LocalInvocationID.x / TPR;
    const uint r = flat_group() * RPW + sub, t0 = gl_WorkGroupID.y * TT;
    float acc[TT];
    [[unroll]] for (uint t = 0u; t < TT; t++) acc[t] = 0.0;
    if (r < p.rows) {
        for (uint k = lane; k < p.nchunks; k += TPR) {
            uint si = scale_index(r, k);
            float s = group_scale(si), v[32];
            decode_chunk(r, k, zero_point(si), v);
            [[unroll]] for (uint t = 0u; t < TT; t++) {
                if (t0 + t >= p.T) break;
                uint xb = ((t0 + t) * p.xstride + k * 32u) >> 2;
                float d = 0.0;
                [[unroll]] for (uint j = 0u; j < 8u; j++)
                    d += dot(vec4(v[4u * j], v[4u * j + 1u], v[4u * j + 2u], v[4u * j + 3u]), x4[xb + j]);
                acc[t] += s * d;
            }
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
