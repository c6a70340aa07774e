#version 450
// Integer-activation GEMV of 4- and 8-bit integer codes with packed 4 x 8-bit
// dot products (SPV_KHR_integer_dot_product), products summed exactly in
// int32. Activations come in blocks of 32 (one per chunk) with one f32 scale
// d_c and LIMBS int8 limbs per value (glslc -DLIMBS=..):
//   LIMBS = 1: x ~ d_c q_x, the rounding to int8 of the CPU's q8 kernels and
//              llama.cpp's Q8_0;
//   LIMBS = 4: x = d_c (l1 + l2/2^7 + l3/2^14 + l4/2^21) to 2^-22 d_c, i.e.
//              29 bits against the block's largest value: the float GEMV's
//              result (spec/codecs.md §9.1) at integer-dot speed.
//   y[r] = sum_chunks s_g d_c sum_l 2^(-7l) (sum q_w l_x - z_g sum l_x).
// Activation buffer (uint words, nchunks = n), for limb l < LIMBS:
// [8nl + 4k, +4) values 0..15 of chunk k, [8nl + 4n + 4k, +4) values 16..31;
// then [8nL + k] d_c (f32) and [8nL + n + ln + k] sum of limb l over chunk k.
#extension GL_EXT_spirv_intrinsics : require
#include "codes.glsl"

#ifndef LIMBS
#define LIMBS 1
#endif
#if LIMBS != 1 && LIMBS != 4
#error LIMBS is 1 or 4
#endif
#ifndef NR
#define NR 4
#endif

// OpSDot on 4 x 8-bit packed signed integers (PackedVectorFormat4x8Bit = 0)
spirv_instruction(extensions = ["SPV_KHR_integer_dot_product"], capabilities = [6019, 6018], id = 4450)
int sdot4(uint a, uint b, spirv_literal int fmt);

layout(std430, binding = 2) readonly buffer XQ { uvec4 xq4[]; };
layout(std430, binding = 2) readonly buffer XW { uint xw[]; };
layout(std430, binding = 3) writeonly buffer Y { float y[]; };

shared float red[WG * NR];
#include "reduce.glsl"

// One chunk's activations: the limbs of values 0..15 (a) and 16..31 (b), d_c and the limb sums.
struct xchunk {
    uvec4 a[LIMBS], b[LIMBS];
    float d;
    int sx[LIMBS];
};

xchunk load_xchunk(uint k, uint n) {
    xchunk x;
    [[unroll]] for (uint l = 0u; l < LIMBS; l++) {
        x.a[l] = xq4[2u * n * l + k];
        x.b[l] = xq4[2u * n * l + n + k];
        x.sx[l] = int(xw[8u * n * LIMBS + n + l * n + k]);
    }
    x.d = uintBitsToFloat(xw[8u * n * LIMBS + k]);
    return x;
}

xchunk load_xchunk(uint k) { return load_xchunk(k, p.nchunks); }
#include "gemv_rows.glsl"

// s_g d_c sum_l 2^(-7l) (sum q_w l_x - z sum l_x) over one chunk (its words cw, scale index si).
float chunk_q8(chunk_words cw, uint si, xchunk x) {
    int z = int(zero_of(cw.z, si));
    uvec4 lo, hi; // packed signed bytes of codes 0..15 and 16..31
    if (BITS == 4u) { // byte i holds codes i and i + 16
        lo = cw.c[0] & 0x0F0F0F0Fu;
        hi = (cw.c[0] >> 4) & 0x0F0F0F0Fu;
    } else { // 8 bits: codes - 128 as signed bytes, the 128 moved into z
        lo = cw.c[0] ^ 0x80808080u;
        hi = cw.c[1] ^ 0x80808080u;
        z -= 128;
    }
    int s[LIMBS];
    [[unroll]] for (uint l = 0u; l < LIMBS; l++) {
        int acc = 0;
        [[unroll]] for (uint j = 0u; j < 4u; j++) acc += sdot4(lo[j], x.a[l][j], 0) + sdot4(hi[j], x.b[l][j], 0);
        s[l] = acc - z * x.sx[l]; // |s| < 32 * 255 * 127 < 2^20
    }
#if LIMBS == 1
    float t = float(s[0]);
#else
    // limbs in pairs, s[0] 2^7 + s[1] < 2^28, exact in int32: two conversions instead of four
    float t = float(s[0] * 128 + s[1]) * 0.0078125 + float(s[2] * 128 + s[3]) * 4.76837158203125e-07; // 2^-7, 2^-21
#endif
    return scale_of(cw.s, si) * (x.d * t);
}

void chunk_rows(chunk_words cw[NR], xchunk x, uint cb[NR], uint sb[NR], uint k, inout float acc[NR]) {
    uint ks = k >> p.gshift;
    [[unroll]] for (uint i = 0u; i < NR; i++) {
        uint si = sb[i] + ks;
        acc[i] += chunk_q8(PF == 0u ? fetch_chunk(cb[i] + k * BITS, si) : cw[i], si, x);
    }
}

void main() {
    const uint TPR = WG / RPW, lane = gl_LocalInvocationID.x % TPR, sub = gl_LocalInvocationID.x / TPR;
    const uint r0 = (flat_group() * RPW + sub) * NR, me = gl_LocalInvocationID.x;
    float acc[NR];
    [[unroll]] for (uint i = 0u; i < NR; i++) acc[i] = 0.0;
    if (r0 < p.rows) row_sums(r0, acc);
    store_sums(acc, me);
    reduce_rows(NR, TPR, lane, me);
    if (lane == 0u)
        [[unroll]] for (uint i = 0u; i < NR; i++)
            if (r0 + i < p.rows) y[r0 + i] = red[i * WG + me];
}
