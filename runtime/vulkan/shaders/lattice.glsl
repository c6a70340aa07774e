// Decoding of the QuIP# lattice codec (spec/codecs.md §11) in the stored
// basis: E8P12 codes (a 256-entry table of absolute vectors, a sign byte
// whose parity bit is inferred, a +-1/4 shift), then the later stages:
// quip-sharp's residual form (NESTED = 0: E81B at 3 bits, E8P12 again at 4)
// or squish's nested form (NESTED = 1: E8R at 3 bits, two E8R stages at 4),
// f16 scales per row and stage. Parts: codes at word p.codes (u16 [rows][G]),
// codes2 at p.zeros (u16 [rows][G] at 4 bits residual, else u8), codes3 at
// p.pad0 (u8 [rows][G], 4 bits nested), scales at p.scales (f16
// [stages][rows], stage s from index s * p.aux, p.aux = the tensor's rows,
// which a dequant slice's p.rows is not); G = cols / 8. The tables come from
// binding 1 (runtime/vulkan/vk_lattice.c writes them).
#include "common.glsl"

layout(constant_id = 1) const uint QBITS = 2;  // bits per weight: 2, 3 or 4
layout(constant_id = 2) const uint NESTED = 0; // 1: the nested E8R stages (3 and 4 bits)

// TAB1: stage 1 decodes with an 8-bit table (E81B, or E8R where nested), else with E8P12 (4 bits
// residual); STAGE2: a third stage, E8R (4 bits nested).
const bool TAB1 = QBITS == 3u || NESTED != 0u;
const bool STAGE2 = QBITS == 4u && NESTED != 0u;

layout(std430, binding = 1) readonly buffer Tab { uint tab[]; };

// tab[0..255]: nibble i of entry A is 2|a_i| (1, 3 or 5); tab[256..263]: bit A set where sum a_i is odd
// (coordinate 7 is negated); tab[264..519]: E81B points, nibble i = 2 x_i as a signed 4-bit integer;
// tab[520..775]: E8R values, nibble i = 4 x_i as a signed 4-bit integer (-4..4). s_tab8 holds the one
// 8-bit table the scheme's later stages use.
shared uint s_abs[256], s_odd[8], s_tab8[256];

void load_tables() {
    for (uint i = gl_LocalInvocationID.x; i < 264u; i += WG) {
        if (i < 256u) s_abs[i] = tab[i];
        else s_odd[i - 256u] = tab[i];
    }
    if (TAB1)
        for (uint i = gl_LocalInvocationID.x; i < 256u; i += WG) s_tab8[i] = tab[(NESTED != 0u ? 520u : 264u) + i];
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

// The 8 values of 8-bit code c: E81B (exact: 0, +-1/2, +-1, +-2) or E8R
// (exact: multiples of 1/4 in -1..1), each a signed nibble times 1/2 resp. 1/4.
void tab8_values(uint c, out vec4 lo, out vec4 hi) {
    const int e = int(s_tab8[c]);
    const float u = NESTED != 0u ? 0.25 : 0.5;
    float v[8];
    [[unroll]] for (uint i = 0u; i < 8u; i++) v[i] = float(bitfieldExtract(e, int(4u * i), 4)) * u;
    lo = vec4(v[0], v[1], v[2], v[3]);
    hi = vec4(v[4], v[5], v[6], v[7]);
}

// The stage-1 values of code c (an 8-bit table, or E8P12 at 4 bits residual).
void stage1_values(uint c, out vec4 lo, out vec4 hi) {
    if (TAB1) tab8_values(c, lo, hi);
    else e8p_values(c, lo, hi);
}

uint groups_per_row() { return p.cols >> 3; }

// Code h (a u16 or u8 index) of the part at word offset part.
uint u16_at(uint part, uint h) { return (w[part + (h >> 1)] >> ((h & 1u) * 16u)) & 0xFFFFu; }
uint u8_at(uint part, uint h) { return (w[part + (h >> 2)] >> ((h & 3u) * 8u)) & 0xFFu; }
uint code2_at(uint h) { return QBITS == 2u ? 0u : TAB1 ? u8_at(p.zeros, h) : u16_at(p.zeros, h); }
uint code3_at(uint h) { return STAGE2 ? u8_at(p.pad0, h) : 0u; }

// The stages' scales of row r (f16 bits): x = stage 0 | stage 1 << 16, y = stage 2 (0 where absent).
uvec2 scale_bits(uint r) {
    return uvec2(u16_at(p.scales, r) | (QBITS > 2u ? u16_at(p.scales, p.aux + r) << 16 : 0u),
                 STAGE2 ? u16_at(p.scales, 2u * p.aux + r) : 0u);
}

// Group g of row r, decoded as the CPU does (spec §11: stage 0 times its
// scale, then each later stage times its scale added, each product rounded).
void group_values(uint r, uint g, uvec2 sbits, out vec4 lo, out vec4 hi) {
    const uint h = r * groups_per_row() + g;
    e8p_values(u16_at(p.codes, h), lo, hi);
    precise vec4 a = half_bits(sbits.x & 0xFFFFu) * lo, b = half_bits(sbits.x & 0xFFFFu) * hi;
    if (QBITS > 2u) {
        vec4 l1, h1;
        stage1_values(code2_at(h), l1, h1);
        precise vec4 s1 = half_bits(sbits.x >> 16) * l1, t1 = half_bits(sbits.x >> 16) * h1;
        a += s1;
        b += t1;
    }
    if (STAGE2) {
        vec4 l2, h2;
        tab8_values(code3_at(h), l2, h2);
        precise vec4 s2 = half_bits(sbits.y) * l2, t2 = half_bits(sbits.y) * h2;
        a += s2;
        b += t2;
    }
    lo = a;
    hi = b;
}
