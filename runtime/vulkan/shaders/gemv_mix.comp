#version 450
// Y[t][r] = sum_j W(r, j) X[t][j] for mix weights (mix.glsl), activations in
// plain rows of p.xstride floats (stored column order, zero past cols).
// TT = 1: the GEMV; TT > 1: the matmul, each code decoded once for TT rows.
// RPW rows per workgroup, TPR = WG / RPW invocations per row. Eight codes of
// width b are b whole bytes, so a row is cut into runs of eight codes: L =
// B / 8 invocations per block, each taking one run of its block, and the
// row's invocations take TPR / L consecutive blocks per step. Neighbouring
// invocations read neighbouring bytes (no invocation walks a block alone).
// Where each block starts comes from the sums of the width codes before it
// (mix.glsl width_sum: bit counts), the same for all invocations of a step.
// A fixed-order tree sum in shared memory gives each row's result.
#include "mix.glsl"

#ifndef TT
#define TT 1
#endif

layout(constant_id = 5) const uint RPW = 1; // rows per workgroup

layout(std430, binding = 2) readonly buffer X { vec4 x4[]; }; // xstride is a multiple of 32 floats
layout(std430, binding = 3) writeonly buffer Y { float y[]; };

shared float red[WG * TT];
#include "reduce.glsl"

// Code k (< 8) of the run of eight codes of width b held in bits lo | hi << 32.
uint run_code(uint lo, uint hi, uint b, uint k) {
    const uint at = k * b, m = (1u << b) - 1u;
    if (at >= 32u) return (hi >> (at - 32u)) & m;
    uint v = lo >> at;
    if (at + b > 32u) v |= hi << (32u - at);
    return v & m;
}

void main() {
    const uint TPR = WG / RPW, me = gl_LocalInvocationID.x, lane = me % TPR, sub = me / TPR;
    const uint L = B / 8u, G = TPR / L, bl = lane / L, i0 = (lane % L) * 8u;
    const uint r = flat_group() * RPW + sub, t0 = gl_WorkGroupID.y * TT;
    uint xo[TT]; // offset of each activation row in vec4s (rows past T repeat the last: computed, never stored)
    [[unroll]] for (uint t = 0u; t < TT; t++) xo[t] = (min(t0 + t, p.T - 1u) * p.xstride) >> 2;
    float acc[TT];
    [[unroll]] for (uint t = 0u; t < TT; t++) acc[t] = 0.0;
    if (r < p.rows) {
        const uint nb = nblocks();
        uint o = p.codes * 4u + w[OFF_ROW_PTR + r]; // byte offset in w[] of this step's first block
        for (uint j0 = 0u; j0 < nb; j0 += G) {
            const uint j = j0 + bl, len = j < nb ? block_len(j) : 0u;
            if (i0 < len) {
                const uint b = width_of(r, j), n = min(8u, len - i0);
                const uint ob = o + L * width_sum(r, j0, bl) + (i0 >> 3) * b, nbytes = (n * b + 7u) >> 3;
                const uint wi = ob >> 2, sh = (ob & 3u) * 8u, end = (ob & 3u) + nbytes;
                uint w0 = w[wi], w1 = end > 4u ? w[wi + 1u] : 0u, w2 = end > 8u ? w[wi + 2u] : 0u;
                const uint lo = sh == 0u ? w0 : (w0 >> sh) | (w1 << (32u - sh));
                const uint hi = sh == 0u ? w1 : (w1 >> sh) | (w2 << (32u - sh));
                const float s = scale_of(r, j), m = min_of(r, j);
                const uint xi = (j * B + i0) >> 2;
                [[unroll]] for (uint t = 0u; t < TT; t++) {
                    const vec4 xa = x4[xo[t] + xi], xb = x4[xo[t] + xi + 1u];
                    const float xv[8] = float[8](xa.x, xa.y, xa.z, xa.w, xb.x, xb.y, xb.z, xb.w);
                    float d = 0.0, sx = 0.0;
                    [[unroll]] for (uint k = 0u; k < 8u; k++) {
                        const float q = k < n ? float(run_code(lo, hi, b, k)) : 0.0, xk = k < n ? xv[k] : 0.0;
                        d = fma(q, xk, d);
                        sx += xk;
                    }
                    acc[t] += s * d + m * sx;
                }
            }
            o += L * width_sum(r, j0, min(G, nb - j0));
        }
    }
    [[unroll]] for (uint t = 0u; t < TT; t++) red[t * WG + me] = acc[t];
    reduce_rows(TT, TPR, lane, me);
    if (lane == 0u && r < p.rows)
        [[unroll]] for (uint t = 0u; t < TT; t++)
            if (t0 + t < p.T) y[(t0 + t) * p.ystride + r] = red[t * WG + me];
}
