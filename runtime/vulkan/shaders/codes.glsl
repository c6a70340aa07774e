// Decoding of the chunked code layouts (spec/codecs.md §3) and the group
// scales of the integer and table-driven codecs (§4-§7).
#include "common.glsl"

layout(constant_id = 1) const uint BITS = 4;   // 2, 3, 4, 6 or 8
layout(constant_id = 2) const uint SCALE = 0;  // 0 f32, 1 f16, 2 bf16, 3 E8M0, 4 NF4 double-quantized absmax
layout(constant_id = 3) const uint ZERO = 0;   // 0 none, 1 symmetric (2^(BITS-1)), 2 zeros part (u8)
layout(constant_id = 4) const uint LUTN = 0;   // entries of the value table (0: value = code)

shared float slut[LUTN > 0u ? LUTN : 1u];

void load_lut() {
    if (LUTN == 0u) return;
    for (uint i = gl_LocalInvocationID.x; i < LUTN; i += WG) slut[i] = lut[i];
    barrier();
}

// Reads from device memory are split from the arithmetic on what they read
// (the *_words / load_codes functions, then *_of / decode_words), so that
// the GEMVs can load the next chunk's words before computing this one's
// (gemv_*.comp, constant PF): the loads are then in flight during arithmetic.

// The raw words holding stored group i's scale: f32; f16/bf16 pair; four E8M0
// bytes; NF4 double quantization: four int8 absmax bytes and the absmax scale.
uvec2 scale_words(uint i) {
    if (SCALE == 0u) return uvec2(w[p.scales + i], 0u);
    if (SCALE == 1u || SCALE == 2u) return uvec2(w[p.scales + (i >> 1)], 0u);
    if (SCALE == 3u) return uvec2(w[p.scales + (i >> 2)], 0u);
    return uvec2(w[p.scales + (i >> 2)], w[p.aux + (i >> 8)]);
}

// Scale of stored group index i from its words sw.
float scale_of(uvec2 sw, uint i) {
    if (SCALE == 0u) return uintBitsToFloat(sw.x);
    if (SCALE == 1u) return half_bits((sw.x >> ((i & 1u) * 16u)) & 0xFFFFu);
    if (SCALE == 2u) return uintBitsToFloat(((sw.x >> ((i & 1u) * 16u)) & 0xFFFFu) << 16);
    uint b = (sw.x >> ((i & 3u) * 8u)) & 255u;
    if (SCALE == 3u) return b == 0u ? uintBitsToFloat(0x00400000u) : uintBitsToFloat(b << 23); // 2^(b-127)
    // NF4 double quantization: absmax_q[i] * absmax_scale[i/256] + absmax_offset
    int q = int(b << 24) >> 24;
    precise float a = float(q) * uintBitsToFloat(sw.y);
    precise float r = a + uintBitsToFloat(w[p.zeros]);
    return r;
}

float group_scale(uint i) { return scale_of(scale_words(i), i); }

// The word holding stored group i's zero point (a byte of the zeros part), if any.
uint zero_word(uint i) { return ZERO == 2u ? w[p.zeros + (i >> 2)] : 0u; }

float zero_of(uint zw, uint i) {
    if (ZERO == 1u) return float(1u << (BITS - 1u));
    if (ZERO == 2u) return float((zw >> ((i & 3u) * 8u)) & 255u);
    return 0.0;
}

float zero_point(uint i) { return zero_of(zero_word(i), i); }

// q - z without an int-to-float conversion (a quarter-rate instruction on
// many GPUs): the bits 0x4B000000 | q are the float 2^23 + q, and
// (2^23 + q) - (2^23 + z) is exact for codes and zero points below 2^8.
float code_value(uint q, float z) { return LUTN > 0u ? slut[q] : uintBitsToFloat(q | 0x4B000000u) - (8388608.0 + z); }

// Word offset in w[] of chunk k of row r: a chunk is 32*BITS/8 bytes = BITS
// words; rows start p.crow words apart (nchunks * BITS, or more where the
// upload padded them: vk_tensor.c).
uint chunk_base(uint r, uint k) { return p.codes + r * p.crow + k * BITS; }

// The BITS code words of the chunk at word offset base: c[0] then c[1]
// (4- and 8-bit chunks are whole 16-byte words, 2-bit chunks 8-byte words:
// parts start 16-byte aligned and rows hold whole chunks, so vector loads).
void load_codes(uint base, out uvec4 c[2]) {
    c[0] = uvec4(0u);
    c[1] = uvec4(0u);
    if (BITS == 8u) {
        c[0] = w4[base >> 2];
        c[1] = w4[(base >> 2) + 1u];
    } else if (BITS == 4u) c[0] = w4[base >> 2];
    else if (BITS == 2u) c[0].xy = w2[base >> 1];
    else [[unroll]] for (uint j = 0u; j < BITS; j++) c[j >> 2][j & 3u] = w[base + j];
}

// The 32 values of a chunk from its code words, before scaling: v[i] = table[q] or q - zero.
void decode_words(uvec4 c[2], float z, out float v[32]) {
    if (BITS == 8u) {
        [[unroll]] for (uint h = 0u; h < 2u; h++)
            [[unroll]] for (uint j = 0u; j < 4u; j++)
                [[unroll]] for (uint b = 0u; b < 4u; b++) v[16u * h + 4u * j + b] = code_value((c[h][j] >> (8u * b)) & 255u, z);
    } else if (BITS == 4u) {
        [[unroll]] for (uint j = 0u; j < 4u; j++) {
            uint cw = c[0][j];
            [[unroll]] for (uint b = 0u; b < 4u; b++) {
                v[4u * j + b] = code_value((cw >> (8u * b)) & 15u, z);
                v[16u + 4u * j + b] = code_value((cw >> (8u * b + 4u)) & 15u, z);
            }
        }
    } else if (BITS == 2u || BITS == 3u) {
        uint hi = BITS == 3u ? c[0].z : 0u;
        [[unroll]] for (uint j = 0u; j < 2u; j++) {
            uint cw = c[0][j];
            [[unroll]] for (uint b = 0u; b < 4u; b++) {
                uint by = (cw >> (8u * b)) & 255u, i = 4u * j + b; // byte i holds codes i, i+8, i+16, i+24
                [[unroll]] for (uint m = 0u; m < 4u; m++) {
                    uint q = (by >> (2u * m)) & 3u, idx = i + 8u * m;
                    if (BITS == 3u) q |= ((hi >> idx) & 1u) << 2;
                    v[idx] = code_value(q, z);
                }
            }
        }
    } else { // 6 bits: code i is bits [6i, 6i+6) of the chunk read as a little-endian bit string
        [[unroll]] for (uint i = 0u; i < 32u; i++) {
            uint bit = 6u * i, wi = bit >> 5, sh = bit & 31u;
            uint q = c[wi >> 2][wi & 3u] >> sh;
            if (sh > 26u) q |= c[(wi + 1u) >> 2][(wi + 1u) & 3u] << (32u - sh);
            v[i] = code_value(q & 63u, z);
        }
    }
}

void decode_chunk_at(uint base, float z, out float v[32]) {
    uvec4 c[2];
    load_codes(base, c);
    decode_words(c, z, v);
}

// Everything a GEMV reads from device memory for one chunk of one row: the
// code words and the raw words of the group's scale and zero point.
struct chunk_words {
    uvec4 c[2];
    uvec2 s;
    uint z;
};

chunk_words fetch_chunk(uint base, uint si) {
    chunk_words cw;
    load_codes(base, cw.c);
    cw.s = scale_words(si);
    cw.z = zero_word(si);
    return cw;
}

void decode_chunk(uint r, uint k, float z, out float v[32]) { decode_chunk_at(chunk_base(r, k), z, v); }

uint scale_index(uint r, uint k) { return r * p.srow + (k >> p.gshift); }
