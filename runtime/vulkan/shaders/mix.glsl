// mix's stored form (spec/codecs.md §14) on the device: the five parts as
// stored, in the tensor's buffer (binding 0). Row r, block j (B weights,
// the last one shorter), its 2-bit width code c = widths[r][j / 4] >> 2 (j % 4),
// width b = (WSET >> 4c) & 15, f16 scale s and min m; its codes start at
// byte row_ptr[r] + the bytes of the row's earlier blocks (ceil(len b / 8)
// each), code i at bit i b, LSB first; the weight is s q + m.
// The perm link stays on the host: activations arrive in stored order.
#include "common.glsl"

layout(constant_id = 1) const uint B = 64;         // weights per block (32, 64, 128)
layout(constant_id = 2) const uint WSET = 0x8432u; // the four widths, 4 bits each

// Word offsets of the parts in w[] (push constants; vk_mix.c fills them):
// p.codes, p.scales, and
#define OFF_MINS p.zeros
#define OFF_WIDTHS p.aux
#define OFF_ROW_PTR p.srow

uint nblocks() { return (p.cols + B - 1u) / B; }
uint block_len(uint j) { return min(B, p.cols - j * B); }
uint block_bytes(uint len, uint b) { return (len * b + 7u) >> 3; }
uint byte_at(uint base, uint byte) { return (w[base + (byte >> 2)] >> ((byte & 3u) * 8u)) & 0xFFu; }
uint u16_at(uint base, uint k) { return (w[base + (k >> 1)] >> ((k & 1u) * 16u)) & 0xFFFFu; }

// Bits of row r's block j.
uint width_of(uint r, uint j) {
    const uint c = (byte_at(OFF_WIDTHS, r * ((nblocks() + 3u) >> 2) + (j >> 2)) >> ((j & 3u) * 2u)) & 3u;
    return (WSET >> (4u * c)) & 15u;
}

// n <= 25 bits from bit sh (0..7) of byte `byte` of the part at word offset
// base (LSB first). The next word is read only where the field reaches it.
uint field(uint base, uint byte, uint sh, uint n) {
    uint wi = base + (byte >> 2), bit = (byte & 3u) * 8u + sh;
    uint v = w[wi] >> bit;
    if (bit + n > 32u) v |= w[wi + 1u] << (32u - bit);
    return v & ((1u << n) - 1u);
}

// Code i of the block whose codes start at byte o, width b.
uint code_at(uint o, uint b, uint i) { return field(p.codes, o + ((i * b) >> 3), (i * b) & 7u, b); }

float scale_of(uint r, uint j) { return half_bits(u16_at(p.scales, r * nblocks() + j)); }
float min_of(uint r, uint j) { return half_bits(u16_at(OFF_MINS, r * nblocks() + j)); }
