#version 450
// Y[t][r] = sum_j D(r, j) X[t][j] for SpQR weights (sparse.glsl), activations
// in plain rows of p.xstride floats (stored column order, zero past cols).
// TT = 1: the GEMV; TT > 1: the matmul, each group decoded once for TT rows.
// RPW rows per workgroup, WG / RPW invocations per row. An invocation takes
// groups lane, lane + WG/RPW, ...: their statistics, then
// S * sum_j (q_j - Z) x_j per group (the dense part fused with the dot);
// then outliers lane, lane + WG/RPW, ... of the row's CSR range, each adding
// (v - D(r, c)) x_c. A fixed-order tree sum in shared memory gives each row's
// result: the same bits every run.
#include "sparse.glsl"

#ifndef TT
#define TT 1
#endif

layout(constant_id = 5) const uint RPW = 1; // rows per workgroup

layout(std430, binding = 2) readonly buffer X { float x[]; };
layout(std430, binding = 2) readonly buffer X4 { vec4 x4[]; };
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
        const uint ng = ngroups(), rb = r * code_stride();
        for (uint g = lane; g < ng; g += TPR) {
            float S, Z, d[TT];
            group_stats(r, g, S, Z);
            [[unroll]] for (uint t = 0u; t < TT; t++) d[t] = 0.0;
            const uint j0 = g * G1, j1 = min(j0 + G1, p.cols);
            if (G1 % 8u == 0u) {
                // 8 codes per word load; a partial last group reads codes past the row's
                // end, which meet the zero padding of x and add nothing
                for (uint j = j0; j < j1; j += 8u) {
                    vec4 lo, hi;
                    if (W <= 4u) {
                        const uint c = codes8(rb, j);
                        [[unroll]] for (uint i = 0u; i < 4u; i++) {
                            lo[i] = float((c >> (i * W)) & ((1u << W) - 1u)) - Z;
                            hi[i] = float((c >> ((i + 4u) * W)) & ((1u << W) - 1u)) - Z;
                        }
                    } else { // 5..8 bits: two 4-code windows
                        const uint c0 = codes4(rb, j), c1 = codes4(rb, j + 4u);
                        [[unroll]] for (uint i = 0u; i < 4u; i++) {
                            lo[i] = float((c0 >> (i * W)) & ((1u << W) - 1u)) - Z;
                            hi[i] = float((c1 >> (i * W)) & ((1u << W) - 1u)) - Z;
                        }
                    }
                    [[unroll]] for (uint t = 0u; t < TT; t++)
                        d[t] += dot(lo, x4[(xo[t] + j) >> 2]) + dot(hi, x4[((xo[t] + j) >> 2) + 1u]);
                }
            } else {
                for (uint j = j0; j < j1; j++) {
                    const float v = float(code_at(rb, j)) - Z;
                    [[unroll]] for (uint t = 0u; t < TT; t++) d[t] += v * x[xo[t] + j];
                }
            }
            [[unroll]] for (uint t = 0u; t < TT; t++) acc[t] += S * d[t];
        }
        // outliers: the stored value replaces the dense one
        const uint k1 = w[OFF_ROW_PTR + r + 1u];
        for (uint k = w[OFF_ROW_PTR + r] + lane; k < k1; k += TPR) {
            const uint c = u16_at(OFF_OCOLS, k);
            float S, Z;
            group_stats(r, c / G1, S, Z);
            const float dv = half_bits(u16_at(OFF_OVALS, k)) - S * (float(code_at(rb, c)) - Z);
            [[unroll]] for (uint t = 0u; t < TT; t++) acc[t] += dv * x[xo[t] + c];
        }
    }
    [[unroll]] for (uint t = 0u; t < TT; t++) red[t * WG + me] = acc[t];
    reduce_rows(TT, TPR, lane, me);
    if (lane == 0u && r < p.rows)
        [[unroll]] for (uint t = 0u; t < TT; t++)
            if (t0 + t < p.T) y[(t0 + t) * p.ystride + r] = red[t * WG + me];
}
