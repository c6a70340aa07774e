#version 450
// Y[t][o] = sum_k W[o][k] X[t][k] for AQLM weights (codebook.glsl), with the
// activations in plain rows of p.xstride floats (zero past cols). Two kernels:
//
// LUT = 1, the lookup-table GEMV (T = 1, M 2^B <= 4096): a workgroup covers
//   WG * RPT rows (RPT per invocation) and the groups [slab * p.srow, ...) of
//   its slab (grid y); per block of GB groups it builds in shared memory the
//   table T[g][m][k] = C_m[k] . x_g (one entry per invocation at a time),
//   then every invocation adds T[g][m][code] over its rows' codes (VEC: read
//   16 bytes at a time). Each row's
//   sum runs over groups ascending, codebooks ascending; with one slab
//   (p.pad1 = 1) it is multiplied by the row's scale and stored, else stored
//   as the slab's partial sum part[slab][o] for codebook_slabs.comp, which
//   adds the slabs in order. Fixed orders throughout: the same bits every run.
//
// LUT = 0, direct decode (TT = 1 GEMV, TT > 1 matmul of TT activation rows):
//   RPW rows per workgroup, WG / RPW invocations per row, each taking groups
//   lane, lane + WG/RPW, ...: the group's codeword sum (the decoded weights
//   over the scale) dotted with each activation row, then a fixed-order tree
//   sum in shared memory and the row's scale. For codebooks too large for a
//   table (1x16: 65536 codewords, 2 MiB as f32, read through the caches) and
//   for the matmul, which decodes once for TT activation rows.
#include "codebook.glsl"

#ifndef LUT
#define LUT 0
#endif
#ifndef TT
#define TT 1
#endif

layout(std430, binding = 2) readonly buffer X { vec4 x4[]; };
layout(std430, binding = 3) writeonly buffer Y { float y[]; };

#if LUT
layout(constant_id = 3) const uint GB = 8;  // groups per table block (GB M K <= 4096 floats, GB <= 16)
layout(constant_id = 4) const uint RPT = 4; // rows per invocation
// 1: 8-bit codes whose rows start on 16 bytes, GB M = 16: a block's codes of a row are one 16-byte load
// (an invocation per row reads strided rows: one load per block, not one per code)
layout(constant_id = 5) const uint VEC = 0;

shared float tab[GB * M * K];
shared vec4 xs[2u * GB];

void main() {
    const uint me = gl_LocalInvocationID.x, G = groups(), MK = M * K;
    const uint row0 = flat_group() * (WG * RPT) + me, slab = gl_WorkGroupID.y;
    const uint j0 = slab * p.srow, j1 = min(j0 + p.srow, G);
    float acc[RPT];
    [[unroll]] for (uint r = 0u; r < RPT; r++) acc[r] = 0.0;
    for (uint jb = j0; jb < j1; jb += GB) {
        const uint nb = min(GB, j1 - jb);
        barrier(); // the previous block's lookups are done with tab and xs
        if (me < 2u * GB) xs[me] = me < 2u * nb ? x4[2u * jb + me] : vec4(0.0);
        barrier();
        for (uint e = me; e < nb * MK; e += WG) {
            uint g = e / MK, mk = e - g * MK;
            tab[e] = dot(cb4[2u * mk], xs[2u * g]) + dot(cb4[2u * mk + 1u], xs[2u * g + 1u]);
        }
        barrier();
        [[unroll]] for (uint r = 0u; r < RPT; r++) {
            const uint o = row0 + r * WG;
            if (o < p.rows) {
                uint i = (o * G + jb) * M;
                float a = acc[r];
                if (VEC == 1u) { // code q = g M + m of the block is byte q of the load
                    const uvec4 c = w4[(p.codes >> 2) + (i >> 4)];
                    [[unroll]] for (uint q = 0u; q < 16u; q++)
                        if (q < nb * M) a += tab[q * K + ((c[q >> 2] >> ((q & 3u) * 8u)) & 255u)];
                } else {
                    for (uint g = 0u; g < nb; g++)
                        [[unroll]] for (uint m = 0u; m < M; m++, i++) a += tab[(g * M + m) * K + code_at(i)];
                }
                acc[r] = a;
            }
        }
    }
    [[unroll]] for (uint r = 0u; r < RPT; r++) {
        const uint o = row0 + r * WG;
        if (o < p.rows) {
            if (p.pad1 == 1u) y[o] = row_scale(o) * acc[r];
            else y[slab * p.rows + o] = acc[r];
        }
    }
}

#else
layout(constant_id = 5) const uint RPW = 1; // rows per workgroup

shared float red[WG * TT];
#include "reduce.glsl"

void main() {
    const uint TPR = WG / RPW, me = gl_LocalInvocationID.x, lane = me % TPR, sub = me / TPR;
    const uint o = flat_group() * RPW + sub, t0 = gl_WorkGroupID.y * TT, G = groups();
    uint xo[TT]; // vec4 offset of each activation row (rows past T repeat the last: computed, never stored)
    [[unroll]] for (uint t = 0u; t < TT; t++) xo[t] = min(t0 + t, p.T - 1u) * (p.xstride >> 2);
    float acc[TT];
    [[unroll]] for (uint t = 0u; t < TT; t++) acc[t] = 0.0;
    if (o < p.rows)
        for (uint j = lane; j < G; j += TPR) {
            vec4 a, b;
            codeword_sum(o, j, a, b);
            [[unroll]] for (uint t = 0u; t < TT; t++) acc[t] += dot(a, x4[xo[t] + 2u * j]) + dot(b, x4[xo[t] + 2u * j + 1u]);
        }
    [[unroll]] for (uint t = 0u; t < TT; t++) red[t * WG + me] = acc[t];
    reduce_rows(TT, TPR, lane, me);
    if (lane == 0u && o < p.rows) {
        const float s = row_scale(o);
        [[unroll]] for (uint t = 0u; t < TT; t++)
            if (t0 + t < p.T) y[(t0 + t) * p.ystride + o] = s * red[t * WG + me];
    }
}
#endif
