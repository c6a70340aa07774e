#version 450
// Integer-activation GEMV of 4- and 8-bit integer codes: the activations are
// int8 in blocks of 32 with one f32 scale each (as the CPU's q8 kernels and
// llama.cpp's Q8_0), products of codes and activations are summed exactly in
// int32 with 4-way packed dot products (SPV_KHR_integer_dot_product), and
//   y[r] = sum_chunks s_g * d_c * (sum q_w q_x - z_g * sum q_x).
// Activation buffer (uint words, nchunks = n): [4k, 4k+4) values 0..15 of
// chunk k, [4n + 4k, ...) values 16..31, [8n + k] d_c (f32), [9n + k] sum q_x.
#extension GL_EXT_spirv_intrinsics : require
#include "codes.glsl"

#define NR 4
layout(constant_id = 5) const uint RPW = 1;

// OpSDot on 4 x 8-bit packed signed integers (PackedVectorFormat4x8Bit = 0)
spirv_instruction(extensions = ["SPV_KHR_integer_dot_product"], capabilities = [6019, 6018], id = 4450)
int sdot4(uint a, uint b, spirv_literal int fmt);

layout(std430, binding = 2) readonly buffer XQ { uvec4 xq4[]; };
layout(std430, binding = 2) readonly buffer XW { uint xw[]; };
layout(std430, binding = 3) writeonly buffer Y { float y[]; };

shared float red[WG * NR];

float chunk_q8(uint r, uint k, uvec4 a, uvec4 b, float d, int sx) {
    uint si = scale_index(r, k), base = p.codes + (r * p.nchunks + k) * BITS;
    int z = int(zero_point(si)), acc = 0;
    if (BITS == 4u) { // byte i holds codes i and i + 16
        uvec4 c = w4[base >> 2];
        [[unroll]] for (uint j = 0u; j < 4u; j++)
            acc += sdot4(c[j] & 0x0F0F0F0Fu, a[j], 0) + sdot4((c[j] >> 4) & 0x0F0F0F0Fu, b[j], 0);
    } else { // 8 bits: codes - 128 as signed bytes, the 128 moved into z
        uvec4 c0 = w4[base >> 2], c1 = w4[(base >> 2) + 1u];
        [[unroll]] for (uint j = 0u; j < 4u; j++)
            acc += sdot4(c0[j] ^ 0x80808080u, a[j], 0) + sdot4(c1[j] ^ 0x80808080u, b[j], 0);
        z -= 128;
    }
    return group_scale(si) * (d * float(acc - z * sx));
}

void main() {
    const uint TPR = WG / RPW, lane = gl_LocalInvocationID.x % TPR, sub = gl_LocalInvocationID.x / TPR;
    const uint r0 = (flat_group() * RPW + sub) * NR, me = gl_LocalInvocationID.x, rl = p.rows - 1u, n = p.nchunks;
    vec4 acc = vec4(0.0);
    if (r0 < p.rows) {
        for (uint k = lane; k < n; k += TPR) {
            uvec4 a = xq4[k], b = xq4[n + k];
            float d = uintBitsToFloat(xw[8u * n + k]);
            int sx = int(xw[9u * n + k]);
            acc.x += chunk_q8(r0, k, a, b, d, sx);
            acc.y += chunk_q8(min(r0 + 1u, rl), k, a, b, d, sx);
            acc.z += chunk_q8(min(r0 + 2u, rl), k, a, b, d, sx);
            acc.w += chunk_q8(min(r0 + 3u, rl), k, a, b, d, sx);
        }
    }
    red[me] = acc.x;
    red[WG + me] = acc.y;
    red[2u * WG + me] = acc.z;
    red[3u * WG + me] = acc.w;
    barrier();
    for (uint h = TPR / 2u; h > 0u; h >>= 1) {
        if (lane < h) [[unroll]] for (uint i = 0u; i < NR; i++) red[i * WG + me] += red[i * WG + me + h];
        barrier();
    }
    if (lane == 0u)
        [[unroll]] for (uint i = 0u; i < NR; i++)
            if (r0 + i < p.rows) y[r0 + i] = red[i * WG + me];
}
