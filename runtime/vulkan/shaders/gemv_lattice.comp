#version 450
// Y[t][r] = sum_k D[r][k] * X[t][k] for the QuIP# lattice codec in its stored
// basis (the Hadamard transforms of x and y are hadamard.comp's passes around
// this one). The structure of gemv_codes.comp: TT = 1 (GEMV) loads a chunk of
// x once for NR rows (gemv_rows.glsl: RPW row groups per workgroup, prefetch
// constant PF); TT > 1 (matmul) decodes a chunk of one row once for TT
// tokens. A chunk is 32 weights, four groups of 8 (the last chunk of a row
// may hold fewer groups: x is zero there and no code past the row is read).
// Sums are combined in shared memory in a fixed order.
#include "lattice.glsl"

#ifndef TT
#define TT 1
#endif
#ifndef NR
#define NR 1
#endif

// Activations as plain rows of p.xstride floats (zero padded to whole chunks).
layout(std430, binding = 2) readonly buffer X { vec4 x4[]; };
layout(std430, binding = 3) writeonly buffer Y { float y[]; };

// What the GEMV reads for one chunk of one row: every stage's codes of its
// four groups (0 past the row's end) and the row's scales (scale_bits).
struct chunk_words {
    uvec4 c, c2, c3;
    uvec2 s;
};

// gemv_rows.glsl steps a row's chunk base by BITS per chunk: here the base is
// the index of the chunk's first code (the same in codes and codes2), four
// codes per chunk; the scale index is the row (srow = 1, gshift = 31).
#define BITS 4u
uint chunk_base(uint r, uint k) { return r * groups_per_row() + 4u * k; }

chunk_words fetch_chunk(uint base, uint r) {
    chunk_words cw;
    const uint G = groups_per_row(), g0 = base - r * G;
    if ((G & 3u) == 0u) { // whole chunks: the four codes are one aligned 8-byte word (parts start 16-byte aligned)
        const uvec2 c = w2[(p.codes >> 1) + (base >> 2)];
        cw.c = uvec4(c.x & 0xFFFFu, c.x >> 16, c.y & 0xFFFFu, c.y >> 16);
        cw.c2 = uvec4(0u);
        cw.c3 = uvec4(0u);
        if (QBITS > 2u && TAB1) {
            const uint b = w[p.zeros + (base >> 2)];
            cw.c2 = uvec4(b & 255u, (b >> 8) & 255u, (b >> 16) & 255u, b >> 24);
        } else if (QBITS == 4u) {
            const uvec2 d = w2[(p.zeros >> 1) + (base >> 2)];
            cw.c2 = uvec4(d.x & 0xFFFFu, d.x >> 16, d.y & 0xFFFFu, d.y >> 16);
        }
        if (STAGE2) {
            const uint b = w[p.pad0 + (base >> 2)];
            cw.c3 = uvec4(b & 255u, (b >> 8) & 255u, (b >> 16) & 255u, b >> 24);
        }
    } else {
        [[unroll]] for (uint i = 0u; i < 4u; i++) {
            bool in_row = g0 + i < G;
            cw.c[i] = in_row ? u16_at(p.codes, base + i) : 0u;
            cw.c2[i] = in_row && QBITS > 2u ? code2_at(base + i) : 0u;
            cw.c3[i] = in_row && STAGE2 ? code3_at(base + i) : 0u;
        }
    }
    cw.s = scale_bits(r);
    return cw;
}

#define NACC (TT * NR)
shared float red[WG * NACC];
#include "reduce.glsl"

// One chunk's activations (the GEMV's token).
struct xchunk {
    vec4 v[8];
};

xchunk load_xchunk(uint k) {
    xchunk x;
    [[unroll]] for (uint j = 0u; j < 8u; j++) x.v[j] = x4[gl_WorkGroupID.y * TT * (p.xstride >> 2) + 8u * k + j];
    return x;
}
#include "gemv_rows.glsl"

// s0 * stage 0 . x + s1 * stage 1 . x (+ s2 * stage 2 . x) over one chunk.
float chunk_dot(chunk_words cw, vec4 xv[8]) {
    vec4 d0 = vec4(0.0), d1 = vec4(0.0), d2 = vec4(0.0);
    [[unroll]] for (uint g = 0u; g < 4u; g++) {
        vec4 lo, hi;
        e8p_values(cw.c[g], lo, hi);
        d0 = fma(lo, xv[2u * g], d0);
        d0 = fma(hi, xv[2u * g + 1u], d0);
        if (QBITS > 2u) {
            stage1_values(cw.c2[g], lo, hi);
            d1 = fma(lo, xv[2u * g], d1);
            d1 = fma(hi, xv[2u * g + 1u], d1);
        }
        if (STAGE2) {
            tab8_values(cw.c3[g], lo, hi);
            d2 = fma(lo, xv[2u * g], d2);
            d2 = fma(hi, xv[2u * g + 1u], d2);
        }
    }
    float r = half_bits(cw.s.x & 0xFFFFu) * ((d0.x + d0.y) + (d0.z + d0.w));
    if (QBITS > 2u) r = fma(half_bits(cw.s.x >> 16), (d1.x + d1.y) + (d1.z + d1.w), r);
    if (STAGE2) r = fma(half_bits(cw.s.y), (d2.x + d2.y) + (d2.z + d2.w), r);
    return r;
}

void chunk_rows(chunk_words cw[NR], xchunk x, uint cb[NR], uint sb[NR], uint k, inout float acc[NR]) {
    [[unroll]] for (uint n = 0u; n < NR; n++) acc[n] += chunk_dot(PF == 0u ? fetch_chunk(cb[n] + k * BITS, sb[n]) : cw[n], x.v);
}

void main() {
    load_tables();
    const uint TPR = WG / RPW, lane = gl_LocalInvocationID.x % TPR, sub = gl_LocalInvocationID.x / TPR;
    const uint r0 = (flat_group() * RPW + sub) * NR, t0 = gl_WorkGroupID.y * TT, me = gl_LocalInvocationID.x;
#if TT == 1
    float acc[NR];
    [[unroll]] for (uint n = 0u; n < NR; n++) acc[n] = 0.0;
    if (r0 < p.rows) row_sums(r0, acc);
    store_sums(acc, me);
#else
    // tokens past the end repeat the last token: their sums are computed but never stored
    const uint tl = p.T - 1u, G = groups_per_row();
    float acc[TT];
    [[unroll]] for (uint t = 0u; t < TT; t++) acc[t] = 0.0;
    if (r0 < p.rows) {
        const uvec2 sbits = scale_bits(r0);
        for (uint k = lane; k < p.nchunks; k += TPR) {
            vec4 v[8];
            [[unroll]] for (uint g = 0u; g < 4u; g++) {
                v[2u * g] = vec4(0.0);
                v[2u * g + 1u] = vec4(0.0);
                if (4u * k + g < G) group_values(r0, 4u * k + g, sbits, v[2u * g], v[2u * g + 1u]);
            }
            [[unroll]] for (uint t = 0u; t < TT; t++) {
                uint tt = min(t0 + t, tl);
                float d = 0.0;
                [[unroll]] for (uint j = 0u; j < 8u; j++) d += dot(v[j], x4[tt * (p.xstride >> 2) + 8u * k + j]);
                acc[t] += d;
            }
        }
    }
    [[unroll]] for (uint t = 0u; t < TT; t++) red[t * WG + me] = acc[t];
#endif
    reduce_rows(NACC, TPR, lane, me);
    if (lane == 0u)
        [[unroll]] for (uint t = 0u; t < TT; t++)
            [[unroll]] for (uint n = 0u; n < NR; n++)
                if (t0 + t < p.T && r0 + n < p.rows) y[(t0 + t) * p.ystride + r0 + n] = red[(t * NR + n) * WG + me];
}
