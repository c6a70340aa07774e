#version 450
// Y[t][r] = sum_k W[r][k] * X[t][k] for codec-coded W.
//   TT > 1 (matmul): each invocation decodes a chunk of one row once and uses
//          it for TT activation rows;
//   TT = 1 (GEMV): each invocation loads a chunk of x once and uses it for NR
//          rows, so x is read NR times less often than the weights.
// RPW groups of NR rows per workgroup; each group's chunks are split over
// WG/RPW invocations and summed in shared memory in a fixed order, so results
// are the same from run to run.
#include "codes.glsl"

layout(constant_id = 5) const uint TT = 1;
layout(constant_id = 6) const uint RPW = 1;
layout(constant_id = 7) const uint NR = 1;

layout(std430, binding = 2) readonly buffer X { vec4 x4[]; };
layout(std430, binding = 3) writeonly buffer Y { float y[]; };

shared float red[WG * TT * NR];

float chunk_dot(float v[32], uint xb) {
    float d = 0.0;
    [[unroll]] for (uint j = 0u; j < 8u; j++)
        d += dot(vec4(v[4u * j], v[4u * j + 1u], v[4u * j + 2u], v[4u * j + 3u]), x4[xb + j]);
    return d;
}

void main() {
    load_lut();
    const uint TPR = WG / RPW, lane = gl_LocalInvocationID.x % TPR, sub = gl_LocalInvocationID.x / TPR;
    const uint r0 = (flat_group() * RPW + sub) * NR, t0 = gl_WorkGroupID.y * TT;
    float acc[TT * NR];
    [[unroll]] for (uint i = 0u; i < TT * NR; i++) acc[i] = 0.0;
    if (r0 < p.rows) {
        for (uint k = lane; k < p.nchunks; k += TPR) {
            vec4 xv[8];
            if (TT == 1u) [[unroll]] for (uint j = 0u; j < 8u; j++) xv[j] = x4[((t0 * p.xstride + k * 32u) >> 2) + j];
            [[unroll]] for (uint n = 0u; n < NR; n++) {
                uint r = r0 + n;
                if (r >= p.rows) break;
                uint si = scale_index(r, k);
                float s = group_scale(si), v[32];
                decode_chunk(r, k, zero_point(si), v);
                if (TT == 1u) {
                    float d = 0.0;
                    [[unroll]] for (uint j = 0u; j < 8u; j++)
                        d += dot(vec4(v[4u * j], v[4u * j + 1u], v[4u * j + 2u], v[4u * j + 3u]), xv[j]);
                    acc[n] += s * d;
                } else {
                    [[unroll]] for (uint t = 0u; t < TT; t++) {
                        if (t0 + t >= p.T) break;
                        acc[t * NR + n] += s * chunk_dot(v, ((t0 + t) * p.xstride + k * 32u) >> 2);
                    }
                }
            }
        }
    }
    const uint me = gl_LocalInvocationID.x;
    [[unroll]] for (uint i = 0u; i < TT * NR; i++) red[i * WG + me] = acc[i];
    barrier();
    for (uint h = TPR / 2u; h > 0u; h >>= 1) {
        if (lane < h) [[unroll]] for (uint i = 0u; i < TT * NR; i++) red[i * WG + me] += red[i * WG + me + h];
        barrier();
    }
    if (lane == 0u)
        [[unroll]] for (uint t = 0u; t < TT; t++)
            [[unroll]] for (uint n = 0u; n < NR; n++)
                if (t0 + t < p.T && r0 + n < p.rows) y[(t0 + t) * p.ystride + r0 + n] = red[(t * NR + n) * WG + me];
}
