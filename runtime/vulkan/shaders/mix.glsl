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

// The 2-bit width codes of row r's blocks j .. j + 15 (fewer where the row
// has fewer: the caller masks them), field i at bits 2i. The row's codes
// start at byte r * ceil(nb / 4) of the widths part; the second word is read
// only where the fields reach it.
uint width_fields(uint r, uint j, uint n) {
    const uint byte = r * ((nblocks() + 3u) >> 2) + (j >> 2), wi = OFF_WIDTHS + (byte >> 2), sh = (byte & 3u) * 8u + 2u * (j & 3u);
    uint v = w[wi] >> sh;
    if (sh != 0u && sh + 2u * n > 32u) v |= w[wi + 1u] << (32u - sh);
    return v;
}

// Sum of the widths of row r's blocks j .. j + n - 1 (n <= 16), from the
// counts of each 2-bit code (bit counts, no loop over the blocks).
uint width_sum16(uint r, uint j, uint n) {
    if (n == 0u) return 0u;
    uint v = width_fields(r, j, n) & (n >= 16u ? 0xFFFFFFFFu : (1u << (2u * n)) - 1u);
    const uint lo = v & 0x55555555u, hi = (v >> 1) & 0x55555555u;
    const uint n3 = bitCount(lo & hi), n1 = bitCount(lo) - n3, n2 = bitCount(hi) - n3, n0 = n - n1 - n2 - n3;
    return n0 * (WSET & 15u) + n1 * ((WSET >> 4) & 15u) + n2 * ((WSET >> 8) & 15u) + n3 * (WSET >> 12);
}

// The same for any n: the byte offset of block j + n's codes from block j's
// is B / 8 times this where blocks j .. j + n - 1 are whole (every block but a
// row's last).
uint width_sum(uint r, uint j, uint n) {
    uint s = 0u;
    for (; n > 16u; n -= 16u, j += 16u) s += width_sum16(r, j, 16u);
    return s + width_sum16(r, j, n);
}

float scale_of(uint r, uint j) { return half_bits(u16_at(p.scales, r * nblocks() + j)); }
float min_of(uint r, uint j) { return half_bits(u16_at(OFF_MINS, r * nblocks() + j)); }
