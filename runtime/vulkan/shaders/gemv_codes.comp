#version 450
// Y[t][r] = sum_k W[r][k] * X[t][k] for codec-coded W. Two variants, chosen
// at build time (glslc -DTT=.. -DNR=..) so that every loop over them unrolls
// into registers:
//   TT = 1 (GEMV): each invocation loads a chunk of x once and uses it for NR
//          rows (1, 2 or 4), so x is read NR times less often than weights;
//   TT > 1 (matmul): each invocation decodes a chunk of one row once and uses
//          it for TT activation rows.
// RPW groups of rows per workgroup; each group's chunks are split over WG/RPW
// invocations and summed in shared memory in a fixed order, so results are
// the same from run to run.
#include "codes.glsl"

#ifndef TT
#define TT 1
#endif
#ifndef NR
#define NR 1
#endif
layout(constant_id = 5) const uint RPW = 1;

// Activations are interleaved by chunk: x4[(t*8 + j)*nchunks + k] holds values
// 4j..4j+3 of chunk k of token t, so neighbouring invocations (neighbouring
// chunks) read neighbouring 16-byte words.
layout(std430, binding = 2) readonly buffer X { vec4 x4[]; };
layout(std430, binding = 3) writeonly buffer Y { float y[]; };

#define NACC (TT * NR)
shared float red[WG * NACC];

// s * sum_i v[i] x[i] over chunk k of row r.
float chunk_dot(uint r, uint k, vec4 xv[8]) {
    uint si = scale_index(r, k);
    float s = group_scale(si), v[32];
    decode_chunk(r, k, zero_point(si), v);
    float d = 0.0;
    [[unroll]] for (uint j = 0u; j < 8u; j++)
        d += dot(vec4(v[4u * j], v[4u * j + 1u], v[4u * j + 2u], v[4u * j + 3u]), xv[j]);
    return s * d;
}

void load_x(uint t, uint k, out vec4 xv[8]) {
    [[unroll]] for (uint j = 0u; j < 8u; j++) xv[j] = x4[(t * 8u + j) * p.nchunks + k];
}

void main() {
    load_lut();
    const uint TPR = WG / RPW, lane = gl_LocalInvocationID.x % TPR, sub = gl_LocalInvocationID.x / TPR;
    const uint r0 = (flat_group() * RPW + sub) * NR, t0 = gl_WorkGroupID.y * TT, me = gl_LocalInvocationID.x;
    // rows past the end repeat the last row and tokens past the end the last
    // token: their sums are computed but never stored
    const uint rl = p.rows - 1u, tl = p.T - 1u;
#if TT == 1
    vec4 acc = vec4(0.0);
    if (r0 < p.rows) {
        for (uint k = lane; k < p.nchunks; k += TPR) {
            vec4 xv[8];
            load_x(t0, k, xv);
            acc.x += chunk_dot(r0, k, xv);
            if (NR > 1u) acc.y += chunk_dot(min(r0 + 1u, rl), k, xv);
            if (NR > 2u) {
                acc.z += chunk_dot(min(r0 + 2u, rl), k, xv);
                acc.w += chunk_dot(min(r0 + 3u, rl), k, xv);
            }
        }
    }
    red[me] = acc.x;
    if (NR > 1u) red[WG + me] = acc.y;
    if (NR > 2u) {
        red[2u * WG + me] = acc.z;
        red[3u * WG + me] = acc.w;
    }
#else
    float acc[TT];
    [[unroll]] for (uint t = 0u; t < TT; t++) acc[t] = 0.0;
    if (r0 < p.rows) {
        for (uint k = lane; k < p.nchunks; k += TPR) {
            uint si = scale_index(r0, k);
            float s = group_scale(si), v[32];
            decode_chunk(r0, k, zero_point(si), v);
            [[unroll]] for (uint t = 0u; t < TT; t++) {
                uint tt = min(t0 + t, tl);
                float d = 0.0;
                [[unroll]] for (uint j = 0u; j < 8u; j++)
                    d += dot(vec4(v[4u * j], v[4u * j + 1u], v[4u * j + 2u], v[4u * j + 3u]), x4[(tt * 8u + j) * p.nchunks + k]);
                acc[t] += s * d;
            }
        }
    }
    [[unroll]] for (uint t = 0u; t < TT; t++) red[t * WG + me] = acc[t];
#endif
    barrier();
    for (uint h = TPR / 2u; h > 0u; h >>= 1) {
        if (lane < h) [[unroll]] for (uint i = 0u; i < NACC; i++) red[i * WG + me] += red[i * WG + me + h];
        barrier();
    }
    if (lane == 0u)
        [[unroll]] for (uint t = 0u; t < TT; t++)
            [[unroll]] for (uint n = 0u; n < NR; n++)
                if (t0 + t < p.T && r0 + n < p.rows) y[(t0 + t) * p.ystride + r0 + n] = red[(t * NR + n) * WG + me];
}
