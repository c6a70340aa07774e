#version 450
// Y[t][r] = sum_j W(r, j) X[t][j] for mix weights (mix.glsl), activations in
// plain rows of p.xstride floats (stored column order, zero past cols).
// TT = 1: the GEMV; TT > 1: the matmul, each block decoded once for TT rows.
// RPW rows per workgroup, WG / RPW invocations per row. Every invocation of
// a row walks the row's width codes to find where each block starts, and
// takes blocks lane, lane + WG/RPW, ...: s * sum q x + m * sum x per block.
// A fixed-order tree sum in shared memory gives each row's result.
#include "mix.glsl"

#ifndef TT
#define TT 1
#endif

layout(constant_id = 5) const uint RPW = 1; // rows per workgroup

layout(std430, binding = 2) readonly buffer X { float x[]; };
layout(std430, binding = 3) writeonly buffer Y { float y[]; };

shared float red[WG * TT];
#include "reduce.glsl"

void main() {
    const uint TPR = WG / RPW, me = gl_LocalInvocationID.x, lane = me % TPR, sub = me / TPR;
    const uint r = flat_group() * RPW + sub, t0 = gl_WorkGroupID.y * TT;
    uint xo[TT]; // offset of each activation row (rows past T repeat the last: computed, never stored)
    [[unroll]] for (uint t = 0u; t < TT; t++) xo[t] = min(t0 + t, p.T - 1u) * p.xstride;
    float acc[TT];
    [[unroll]] for (uint t = 0u; t < TT; t++) acc[t] = 0.0;
    if (r < p.rows) {
        const uint nb = nblocks();
        uint o = w[OFF_ROW_PTR + r];
        for (uint j = 0u; j < nb; j++) {
            const uint b = width_of(r, j), len = block_len(j);
            if (j % TPR == lane) {
                float d[TT], sx[TT];
                [[unroll]] for (uint t = 0u; t < TT; t++) d[t] = sx[t] = 0.0;
                for (uint i = 0u; i < len; i++) {
                    const float q = float(code_at(o, b, i));
                    [[unroll]] for (uint t = 0u; t < TT; t++) {
                        const float xv = x[xo[t] + j * B + i];
                        d[t] += q * xv;
                        sx[t] += xv;
                    }
                }
                const float s = scale_of(r, j), m = min_of(r, j);
                [[unroll]] for (uint t = 0u; t < TT; t++) acc[t] += s * d[t] + m * sx[t];
            }
            o += block_bytes(len, b);
        }
    }
    [[unroll]] for (uint t = 0u; t < TT; t++) red[t * WG + me] = acc[t];
    reduce_rows(TT, TPR, lane, me);
    if (lane == 0u && r < p.rows)
        [[unroll]] for (uint t = 0u; t < TT; t++)
            if (t0 + t < p.T) y[(t0 + t) * p.ystride + r] = red[t * WG + me];
}
