// AQLM's stored form (spec/codecs.md §12) on the device: the bit stream of
// codes and the f16 row scales in the tensor's buffer (binding 0, as stored),
// the codebooks as f32 [M][2^B][8] in binding 1 (vk_codebook.c converts them
// once at upload, exactly). Group j of row o is
//     W[o][8j .. 8j+7] = scale[o] * (C_0[code(o,j,0)] + ... + C_{M-1}[code(o,j,M-1)]).
#include "common.glsl"

layout(constant_id = 1) const uint M = 2; // codebooks
layout(constant_id = 2) const uint B = 8; // bits per code
const uint K = 1u << B;                   // codewords per codebook

// binding 1: codeword k of codebook m is cb4[2 (m K + k)] (values 0..3) and cb4[2 (m K + k) + 1] (4..7)
layout(std430, binding = 1) readonly buffer Codebooks { vec4 cb4[]; };

uint groups() { return (p.cols + 7u) >> 3; }

// Code number i = (o G + j) M + m: bits [i B, i B + B) of the codes part
// read as one little-endian bit stream. 32 codes fill exactly B words, so
// the word index needs no product larger than the code count.
uint code_at(uint i) {
    if (B == 8u) return (w[p.codes + (i >> 2)] >> ((i & 3u) * 8u)) & 255u;
    if (B == 16u) return (w[p.codes + (i >> 1)] >> ((i & 1u) * 16u)) & 65535u;
    uint bit = (i & 31u) * B, wi = p.codes + (i >> 5) * B + (bit >> 5);
    bit &= 31u;
    uint v = w[wi] >> bit;
    if (bit + B > 32u) v |= w[wi + 1u] << (32u - bit);
    return v & (K - 1u);
}

float row_scale(uint o) { return half_bits((w[p.scales + (o >> 1)] >> ((o & 1u) * 16u)) & 0xFFFFu); }

// The sum of row o's M codewords of group j, in the CPU decoder's order
// (acc = C_0[..]; acc += C_m[..] for m = 1 .. M-1): the decoded group over s.
void codeword_sum(uint o, uint j, out vec4 a, out vec4 b) {
    uint i = (o * groups() + j) * M, c = code_at(i);
    a = cb4[2u * c];
    b = cb4[2u * c + 1u];
    for (uint m = 1u; m < M; m++) {
        c = m * K + code_at(i + m);
        a += cb4[2u * c];
        b += cb4[2u * c + 1u];
    }
}
