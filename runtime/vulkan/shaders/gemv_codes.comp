#version 450
// Y[t][r] = sum_k W[r][k] * X[t][k] for codec-coded W. Two variants, chosen
// at build time (glslc -DTT=.. -DNR=..) so that every loop over them unrolls
// into registers:
//   TT = 1 (GEMV): each invocation loads a chunk of x once and uses it for NR
//          rows (1, 2, 4, 8 or 16), so x is read NR times less often than
//          weights;
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

// Activations are interleaved by chunk: x4[(t*8 + j)*nchunks + k] holds values
// 4j..4j+3 of chunk k of token t, so neighbouring invocations (neighbouring
// chunks) read neighbouring 16-byte words.
layout(std430, binding = 2) readonly buffer X { vec4 x4[]; };
layout(std430, binding = 3) writeonly buffer Y { float y[]; };

#define NACC (TT * NR)
shared float red[WG * NACC];
#include "reduce.glsl"

// One chunk's activations (the GEMV's token): xv[j] holds values 4j .. 4j+3.
struct xchunk {
    vec4 v[8];
};

xchunk load_xchunk(uint k) {
    xchunk x;
    [[unroll]] for (uint j = 0u; j < 8u; j++) x.v[j] = x4[(gl_WorkGroupID.y * TT * 8u + j) * p.nchunks + k];
    return x;
}
#include "gemv_rows.glsl"

// The GEMV's inner products over one chunk, sum_i v[i] x[i] with v[i] = q - z
// or table[q], where xv[j] holds x[4j .. 4j+3] of the chunk.

// 4-bit integer codes (byte i of the chunk holds codes i and i + 16). A code
// is turned into a float where it lies, without a shift: the bits
// 0x4B000000 | (q << 4p) are the float 2^23 + q 16^p (exact while 4p + 4 <= 23),
// so subtracting 2^23 + z 16^p leaves (q - z) 16^p. Nibbles 5..7 of a word
// come from the word shifted right by 20; the five position sums are scaled
// back by powers of two, which is exact. Per code: one and-or, one subtract,
// one fma (the shift-and-convert decode takes two more integer operations).
float dot_int4(uvec4 c4, float z, vec4 xv[8]) {
    const float m = 8388608.0;
    const float z0 = m + z, z1 = m + 16.0 * z, z2 = m + 256.0 * z, z3 = m + 4096.0 * z, z4 = m + 65536.0 * z;
    float a0 = 0.0, a1 = 0.0, a2 = 0.0, a3 = 0.0, a4 = 0.0;
    [[unroll]] for (uint j = 0u; j < 4u; j++) {
        uint c = c4[j], h = c >> 20;
        vec4 lo = xv[j], hi = xv[j + 4u]; // codes 4j+b (low nibbles) and 4j+b+16 (high nibbles)
        a0 = fma(uintBitsToFloat((c & 0xFu) | 0x4B000000u) - z0, lo.x, a0);
        a1 = fma(uintBitsToFloat((c & 0xF0u) | 0x4B000000u) - z1, hi.x, a1);
        a2 = fma(uintBitsToFloat((c & 0xF00u) | 0x4B000000u) - z2, lo.y, a2);
        a3 = fma(uintBitsToFloat((c & 0xF000u) | 0x4B000000u) - z3, hi.y, a3);
        a4 = fma(uintBitsToFloat((c & 0xF0000u) | 0x4B000000u) - z4, lo.z, a4);
        a0 = fma(uintBitsToFloat((h & 0xFu) | 0x4B000000u) - z0, hi.z, a0);
        a1 = fma(uintBitsToFloat((h & 0xF0u) | 0x4B000000u) - z1, lo.w, a1);
        a2 = fma(uintBitsToFloat((h & 0xF00u) | 0x4B000000u) - z2, hi.w, a2);
    }
    return a0 + a1 * 0.0625 + a2 * 0.00390625 + a3 * 0.000244140625 + a4 * 0.0000152587890625;
}

// 8-bit integer codes (byte i holds code i), the same way: bytes 0 and 1 of a
// word in place, bytes 2 and 3 from the word shifted right by 16.
float dot_int8(uvec4 c4, float z, vec4 xv[8], uint j0) {
    const float m = 8388608.0, z0 = m + z, z1 = m + 256.0 * z;
    float a0 = 0.0, a1 = 0.0;
    [[unroll]] for (uint j = 0u; j < 4u; j++) {
        uint c = c4[j], h = c >> 16;
        vec4 xx = xv[j0 + j];
        a0 = fma(uintBitsToFloat((c & 0xFFu) | 0x4B000000u) - z0, xx.x, a0);
        a1 = fma(uintBitsToFloat((c & 0xFF00u) | 0x4B000000u) - z1, xx.y, a1);
        a0 = fma(uintBitsToFloat((h & 0xFFu) | 0x4B000000u) - z0, xx.z, a0);
        a1 = fma(uintBitsToFloat((h & 0xFF00u) | 0x4B000000u) - z1, xx.w, a1);
    }
    return a0 + a1 * 0.00390625;
}

// 2- and 3-bit integer codes (spec/codecs.md §3: byte i of code words 0-1
// holds the low two bits of codes i, i+8, i+16, i+24; word 2 holds bit 2 of
// code i at bit i). In place as above: shifted right by 8b, a word holds the
// low bits of codes 4j+b+8m at bits 2m, and (c & 3 << 2m) | 0x4B000000 is the
// float 2^23 + q 4^m; bit 2 of code i, shifted down by 8 floor(i / 8), sits
// at bit i % 8: 2^23 + 2^(i % 8). Per code: one and-or, one subtract, one fma
// (two of each for 3 bits), and four accumulators per power of two, scaled
// back exactly at the end.
float dot_int23(uvec4 c4, float z, vec4 xv[8]) {
    const float m = 8388608.0;
    const vec4 zq = vec4(m) + z * vec4(1.0, 4.0, 16.0, 64.0);
    vec4 a = vec4(0.0);
    [[unroll]] for (uint j = 0u; j < 2u; j++) {
        [[unroll]] for (uint b = 0u; b < 4u; b++) {
            const uint c = c4[j] >> (8u * b);
            a.x = fma(uintBitsToFloat((c & 0x03u) | 0x4B000000u) - zq.x, xv[j][b], a.x);
            a.y = fma(uintBitsToFloat((c & 0x0Cu) | 0x4B000000u) - zq.y, xv[j + 2u][b], a.y);
            a.z = fma(uintBitsToFloat((c & 0x30u) | 0x4B000000u) - zq.z, xv[j + 4u][b], a.z);
            a.w = fma(uintBitsToFloat((c & 0xC0u) | 0x4B000000u) - zq.w, xv[j + 6u][b], a.w);
        }
    }
    float r = a.x + a.y * 0.25 + a.z * 0.0625 + a.w * 0.015625;
    if (BITS == 3u) { // + 4 sum_i bit2_i x_i
        float h[8];
        [[unroll]] for (uint i = 0u; i < 8u; i++) h[i] = 0.0;
        [[unroll]] for (uint g = 0u; g < 4u; g++) {
            const uint c = c4.z >> (8u * g);
            [[unroll]] for (uint i = 0u; i < 8u; i++)
                h[i] = fma(uintBitsToFloat((c & (1u << i)) | 0x4B000000u) - m, xv[2u * g + (i >> 2)][i & 3u], h[i]);
        }
        float hs = 0.0;
        [[unroll]] for (uint i = 0u; i < 8u; i++) hs += h[i] * uintBitsToFloat((127u - i) << 23);
        r += 4.0 * hs;
    }
    return r;
}

// 4-bit table-driven codes (NF4, FP4, MXFP4; nibble layout as int4): the
// index of nibble p is taken as the byte offset (c >> (4p - 2)) & 0x3C that
// the shared-memory load needs anyway, saving the shift back.
float lut_at(uint off) { return slut[off >> 2]; }
float dot_lut4(uvec4 c4, vec4 xv[8]) {
    vec4 a = vec4(0.0);
    [[unroll]] for (uint j = 0u; j < 4u; j++) {
        uint c = c4[j];
        vec4 lo = xv[j], hi = xv[j + 4u];
        a.x = fma(lut_at((c << 2) & 0x3Cu), lo.x, a.x);
        a.y = fma(lut_at((c >> 2) & 0x3Cu), hi.x, a.y);
        a.z = fma(lut_at((c >> 6) & 0x3Cu), lo.y, a.z);
        a.w = fma(lut_at((c >> 10) & 0x3Cu), hi.y, a.w);
        a.x = fma(lut_at((c >> 14) & 0x3Cu), lo.z, a.x);
        a.y = fma(lut_at((c >> 18) & 0x3Cu), hi.z, a.y);
        a.z = fma(lut_at((c >> 22) & 0x3Cu), lo.w, a.z);
        a.w = fma(lut_at((c >> 26) & 0x3Cu), hi.w, a.w);
    }
    return (a.x + a.y) + (a.z + a.w);
}

// s * sum_i v[i] x[i] over one chunk (its words cw, scale index si).
float chunk_dot(chunk_words cw, uint si, vec4 xv[8]) {
    float s = scale_of(cw.s, si), z = zero_of(cw.z, si);
    if (LUTN == 0u && BITS == 4u) return s * dot_int4(cw.c[0], z, xv);
    if (LUTN == 16u && BITS == 4u) return s * dot_lut4(cw.c[0], xv);
    if (LUTN == 0u && BITS == 8u) return s * (dot_int8(cw.c[0], z, xv, 0u) + dot_int8(cw.c[1], z, xv, 4u));
    if (LUTN == 0u && (BITS == 2u || BITS == 3u)) return s * dot_int23(cw.c[0], z, xv);
    float v[32];
    decode_words(cw.c, z, v);
    vec4 d = vec4(0.0); // four independent sums
    [[unroll]] for (uint j = 0u; j < 8u; j++) d = fma(vec4(v[4u * j], v[4u * j + 1u], v[4u * j + 2u], v[4u * j + 3u]), xv[j], d);
    return s * ((d.x + d.y) + (d.z + d.w));
}

void chunk_rows(chunk_words cw[NR], xchunk x, uint cb[NR], uint sb[NR], uint k, inout float acc[NR]) {
    uint ks = k >> p.gshift;
    [[unroll]] for (uint n = 0u; n < NR; n++) {
        uint si = sb[n] + ks;
        acc[n] += chunk_dot(PF == 0u ? fetch_chunk(cb[n] + k * BITS, si) : cw[n], si, x.v);
    }
}

void main() {
    load_lut();
    const uint TPR = WG / RPW, lane = gl_LocalInvocationID.x % TPR, sub = gl_LocalInvocationID.x / TPR;
    const uint r0 = (flat_group() * RPW + sub) * NR, t0 = gl_WorkGroupID.y * TT, me = gl_LocalInvocationID.x;
#if TT == 1
    float acc[NR];
    [[unroll]] for (uint n = 0u; n < NR; n++) acc[n] = 0.0;
    if (r0 < p.rows) row_sums(r0, acc);
    store_sums(acc, me);
#else
    // tokens past the end repeat the last token: their sums are computed but never stored
    const uint tl = p.T - 1u;
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
    reduce_rows(NACC, TPR, lane, me);
    if (lane == 0u)
        [[unroll]] for (uint t = 0u; t < TT; t++)
            [[unroll]] for (uint n = 0u; n < NR; n++)
                if (t0 + t < p.T && r0 + n < p.rows) y[(t0 + t) * p.ystride + r0 + n] = red[(t * NR + n) * WG + me];
}
