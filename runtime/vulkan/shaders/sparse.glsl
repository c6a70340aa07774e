// SpQR's stored form (spec/codecs.md §13) on the device: the seven parts as
// stored, in the tensor's buffer (binding 0). Stored row r, stored column j,
// group g = j / G1, row block r / G2:
//     S = ss (s - sz), Z = zs (z - zz)      (s, z: the group's 3-bit-ish codes; ss..zz: f16 stats2)
//     D(r, j) = S (q - Z)                    (q: the w-bit code)
// and an outlier (CSR: row_ptr, outlier_cols, outlier_vals) replaces D at its
// position. The perm link stays on the host: activations arrive in stored order.
#include "common.glsl"

layout(constant_id = 1) const uint W = 3;   // bits per weight code (2..8)
layout(constant_id = 2) const uint SB = 3;  // bits per first-level scale / zero code (1..8)
layout(constant_id = 3) const uint G1 = 16; // weights per first-level group (beta1)
layout(constant_id = 4) const uint G2 = 16; // rows per second-level block (beta2)

// Word offsets of the parts in w[] (push constants; vk_sparse.c fills them):
// p.codes, p.scales = scale_codes, p.zeros = zero_codes, and
#define OFF_STATS2 p.aux
#define OFF_ROW_PTR p.srow
#define OFF_OCOLS p.gshift
#define OFF_OVALS p.pad0

uint ngroups() { return (p.cols + G1 - 1u) / G1; }
uint code_stride() { return (p.cols * W + 7u) >> 3; }      // bytes per row of codes
uint stat_stride() { return (ngroups() * SB + 7u) >> 3; }  // bytes per row of scale_codes / zero_codes

// n <= 25 bits from bit sh (0..7) of byte `byte` of the part at word offset
// base (LSB first). The next word is read only where the field reaches it.
uint field(uint base, uint byte, uint sh, uint n) {
    uint wi = base + (byte >> 2), bit = (byte & 3u) * 8u + sh;
    uint v = w[wi] >> bit;
    if (bit + n > 32u) v |= w[wi + 1u] << (32u - bit);
    return v & ((1u << n) - 1u);
}

// Weight code of stored column j in the row whose codes start at byte rb.
uint code_at(uint rb, uint j) { return field(p.codes, rb + ((j * W) >> 3), (j * W) & 7u, W); }

// The 8 codes of columns j .. j+7 (j a multiple of 8: they start on a byte),
// 8 W <= 32 bits (W <= 4).
uint codes8(uint rb, uint j) {
    uint byte = rb + ((j * W) >> 3), wi = p.codes + (byte >> 2), bit = (byte & 3u) * 8u;
    uint v = w[wi] >> bit;
    if (bit + 8u * W > 32u) v |= w[wi + 1u] << (32u - bit);
    return v;
}

// The 4 codes of columns j .. j+3 (j a multiple of 4: they start at bit 0
// or 4 of a byte), 4 W <= 32 bits (W = 5..8). The next word is read only
// where they reach it (never with a shift of 32).
uint codes4(uint rb, uint j) {
    uint byte = rb + ((j * W) >> 3), wi = p.codes + (byte >> 2), bit = (byte & 3u) * 8u + ((j * W) & 7u);
    uint v = w[wi] >> bit;
    if (bit + 4u * W > 32u) v |= w[wi + 1u] << (32u - bit);
    return v;
}

uint u16_at(uint base, uint k) { return (w[base + (k >> 1)] >> ((k & 1u) * 16u)) & 0xFFFFu; }

// First-level scale S and zero Z of (row r, group g), as the CPU decoder
// computes them (no fused multiply-add can form: a product of a difference).
void group_stats(uint r, uint g, out float S, out float Z) {
    const uint si = OFF_STATS2 + ((r / G2) * ngroups() + g) * 2u; // (ss, sz) then (zs, zz)
    const uint s01 = w[si], s23 = w[si + 1u], rb = r * stat_stride(), bit = g * SB;
    const uint sc = field(p.scales, rb + (bit >> 3), bit & 7u, SB), zc = field(p.zeros, rb + (bit >> 3), bit & 7u, SB);
    S = half_bits(s01 & 0xFFFFu) * (float(sc) - half_bits(s01 >> 16));
    Z = half_bits(s23 & 0xFFFFu) * (float(zc) - half_bits(s23 >> 16));
}
