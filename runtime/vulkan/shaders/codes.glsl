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

uint byte_at(uint word_off, uint i) { return (w[word_off + (i >> 2)] >> ((i & 3u) * 8u)) & 255u; }

// Scale of stored group index i (and, for asymmetric codecs, its zero point).
float group_scale(uint i) {
    if (SCALE == 0u) return uintBitsToFloat(w[p.scales + i]);
    if (SCALE == 1u) return half_bits((w[p.scales + (i >> 1)] >> ((i & 1u) * 16u)) & 0xFFFFu);
    if (SCALE == 2u) return uintBitsToFloat(((w[p.scales + (i >> 1)] >> ((i & 1u) * 16u)) & 0xFFFFu) << 16);
    if (SCALE == 3u) {
        uint e = byte_at(p.scales, i);
        return e == 0u ? uintBitsToFloat(0x00400000u) : uintBitsToFloat(e << 23); // 2^(e-127)
    }
    // NF4 double quantization: absmax_q[i] * absmax_scale[i/256] + absmax_offset
    int q = int(byte_at(p.scales, i) << 24) >> 24;
    precise float a = float(q) * uintBitsToFloat(w[p.aux + (i >> 8)]);
    precise float b = a + uintBitsToFloat(w[p.zeros]);
    return b;
}

float zero_point(uint i) {
    if (ZERO == 1u) return float(1u << (BITS - 1u));
    if (ZERO == 2u) return float(byte_at(p.zeros, i));
    return 0.0;
}

// q - z without an int-to-float conversion (a quarter-rate instruction on
// many GPUs): the bits 0x4B000000 | q are the float 2^23 + q, and
// (2^23 + q) - (2^23 + z) is exact for codes and zero points below 2^8.
float code_value(uint q, float z) { return LUTN > 0u ? slut[q] : uintBitsToFloat(q | 0x4B000000u) - (8388608.0 + z); }

// Word offset in w[] of chunk k of row r: a chunk is 32*BITS/8 bytes = BITS words.
uint chunk_base(uint r, uint k) { return p.codes + (r * p.nchunks + k) * BITS; }

// The 32 values of the chunk at word offset base before scaling: v[i] = table[q] or q - zero.
void decode_chunk_at(uint base, float z, out float v[32]) {
    // 4- and 8-bit chunks are whole 16-byte words (parts start 16-byte aligned): vector loads
    if (BITS == 8u) {
        [[unroll]] for (uint h = 0u; h < 2u; h++) {
            uvec4 c4 = w4[(base >> 2) + h];
            [[unroll]] for (uint j = 0u; j < 4u; j++)
                [[unroll]] for (uint b = 0u; b < 4u; b++) v[16u * h + 4u * j + b] = code_value((c4[j] >> (8u * b)) & 255u, z);
        }
    } else if (BITS == 4u) {
        uvec4 c4 = w4[base >> 2];
        [[unroll]] for (uint j = 0u; j < 4u; j++) {
            uint c = c4[j];
            [[unroll]] for (uint b = 0u; b < 4u; b++) {
                v[4u * j + b] = code_value((c >> (8u * b)) & 15u, z);
                v[16u + 4u * j + b] = code_value((c >> (8u * b + 4u)) & 15u, z);
            }
        }
    } else if (BITS == 2u || BITS == 3u) {
        uint hi = BITS == 3u ? w[base + 2u] : 0u;
        [[unroll]] for (uint j = 0u; j < 2u; j++) {
            uint c = w[base + j];
            [[unroll]] for (uint b = 0u; b < 4u; b++) {
                uint by = (c >> (8u * b)) & 255u, i = 4u * j + b; // byte i holds codes i, i+8, i+16, i+24
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
            uint q = w[base + wi] >> sh;
            if (sh > 26u) q |= w[base + wi + 1u] << (32u - sh);
            v[i] = code_value(q & 63u, z);
        }
    }
}

void decode_chunk(uint r, uint k, float z, out float v[32]) { decode_chunk_at(chunk_base(r, k), z, v); }

uint scale_index(uint r, uint k) { return r * p.srow + (k >> p.gshift); }
