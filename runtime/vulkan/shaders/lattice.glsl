// Decoding of the QuIP# lattice codec (spec/codecs.md §11) in the stored
// basis: E8P12 codes (a 256-entry table of absolute vectors, a sign byte
// whose parity bit is inferred, a +-1/4 shift), the second stage at 3 bits
// (E81B) or 4 bits (E8P12 again), f16 scales per row and stage. Parts: codes
// at word p.codes (u16 [rows][G]), codes2 at p.zeros (u8 or u16 [rows][G]),
// scales at p.scales (f16 [stages][rows], stage 1 from index p.aux = the
// tensor's rows, which a dequant slice's p.rows is not); G = cols / 8. The
// tables come from binding 1 (runtime/vulkan/vk_lattice.c writes them).
#include "common.glsl"

layout(constant_id = 1) const uint QBITS = 2; // bits per weight: 2, 3 or 4

layout(std430, binding = 1) readonly buffer Tab { uint tab[]; };
layout(std430, binding = 0) readonly buffer Weights2 { uvec2 w2[]; }; // the parts again, 8-byte loads

// tab[0..255]: nibble i of entry A is 2|a_i| (1, 3 or 5); tab[256..263]: bit A set where sum a_i is odd
// (coordinate 7 is negated); tab[264..519]: E81B points, nibble i = 2 x_i as a signed 4-bit integer
shared uint s_abs[256], s_odd[8], s_e81b[256];

void load_tables() {
    for (uint i = gl_LocalInvocationID.x; i < 264u; i += WG) {
        if (i < 256u) s_abs[i] = tab[i];
        else s_odd[i - 256u] = tab[i];
    }
    if (QBITS == 3u)
        for (uint i = gl_LocalInvocationID.x; i < 256u; i += WG) s_e81b[i] = tab[264u + i];
    barrier();
}

// The 8 values of E8P12 code c (exact: multiples of 1/4 below 3 in magnitude).
// A = c >> 8, S = c & 255, p = parity of S, f = S ^ p; coordinate i is
// -|b_i| where bit pi(i) of f is set (pi(i) = i/2 for even i, 4 + i/2 for odd
// i: bit 7 for coordinate 7, flipped once more where sum a_i is odd), plus
// -1/4 when p else +1/4.
void e8p_values(uint c, out vec4 lo, out vec4 hi) {
    const uint A = c >> 8, S = c & 255u, par = bitCount(S) & 1u;
    const uint f = S ^ par ^ (((s_odd[A >> 5] >> (A & 31u)) & 1u) << 7), a = s_abs[A];
    const float sh = par != 0u ? -0.25 : 0.25;
    float v[8];
    [[unroll]] for (uint i = 0u; i < 8u; i++) {
        const uint bit = (i & 1u) != 0u ? 4u + (i >> 1) : i >> 1;
        float m = float((a >> (4u * i)) & 15u) * 0.5;
        v[i] = (((f >> bit) & 1u) != 0u ? -m : m) + sh;
    }
    lo = vec4(v[0], v[1], v[2], v[3]);
    hi = vec4(v[4], v[5], v[6], v[7]);
}

// The 8 values of E81B code c (exact: 0, +-1/2, +-1, +-2).
void e81b_values(uint c, out vec4 lo, out vec4 hi) {
    const int e = int(s_e81b[c]);
    float v[8];
    [[unroll]] for (uint i = 0u; i < 8u; i++) v[i] = float(bitfieldExtract(e, int(4u * i), 4)) * 0.5;
    lo = vec4(v[0], v[1], v[2], v[3]);
    hi = vec4(v[4], v[5], v[6], v[7]);
}

// The stage-1 values of code c (3 bits: E81B, 4 bits: E8P12).
void stage1_values(uint c, out vec4 lo, out vec4 hi) {
    if (QBITS == 3u) e81b_values(c, lo, hi);
    else e8p_values(c, lo, hi);
}

uint groups_per_row() { return p.cols >> 3; }

// Code h (a u16 or u8 index) of the part at word offset part.
uint u16_at(uint part, uint h) { return (w[part + (h >> 1)] >> ((h & 1u) * 16u)) & 0xFFFFu; }
uint u8_at(uint part, uint h) { return (w[part + (h >> 2)] >> ((h & 3u) * 8u)) & 0xFFu; }
uint code2_at(uint h) { return QBITS == 3u ? u8_at(p.zeros, h) : QBITS == 4u ? u16_at(p.zeros, h) : 0u; }

// Both stages' scales of row r (f16 bits; stage 1 in the high half, 0 at 2 bits).
uint scale_bits(uint r) { return u16_at(p.scales, r) | (QBITS > 2u ? u16_at(p.scales, p.aux + r) << 16 : 0u); }

// Group g of row r, decoded as the CPU does (spec §11: stage 0 times its
// scale, then stage 1 times its scale added, each product rounded).
void group_values(uint r, uint g, uint sbits, out vec4 lo, out vec4 hi) {
    const uint h = r * groups_per_row() + g;
    e8p_values(u16_at(p.codes, h), lo, hi);
    precise vec4 a = half_bits(sbits & 0xFFFFu) * lo, b = half_bits(sbits & 0xFFFFu) * hi;
    if (QBITS > 2u) {
        vec4 l1, h1;
        stage1_values(code2_at(h), l1, h1);
        precise vec4 s1 = half_bits(sbits >> 16) * l1, t1 = half_bits(sbits >> 16) * h1;
        a += s1;
        b += t1;
    }
    lo = a;
    hi = b;
}
