/* The mix codec's stored form (spec/codecs.md §14): per-block mixed
 * precision inside a tensor. Each block of B weights along a row (B = 32,
 * 64 or 128, params[0]) carries a 2-bit width code choosing its code width
 * from a set of four (params[5], default {2,3,4,8} bits), an f16 scale and
 * an f16 minimum; a weight decodes as scale * q + min. A row's blocks lie
 * back to back in one byte stream (codes), each block a whole number of
 * bytes; row_ptr[r] is where row r starts, so rows are read at random.
 * Shared by the descriptor (libformat), the encoder (quant/) and tests. */
#ifndef SQUISH_MIX_FORMAT_H
#define SQUISH_MIX_FORMAT_H

#include <stdint.h>
#include <string.h>

#define SQ_CODEC_MIX 128 /* 128..143 reserved for mix */

/* params[4]: the target bits per weight the encoder allocated for, in
 * thousandths (3500 = 3.5); params[5]: the width set, four 4-bit fields
 * w0 | w1 << 4 | w2 << 8 | w3 << 12, 1 <= w0 < w1 < w2 < w3 <= 8;
 * params[6]: encoder settings, bit 0 = act-order (the chain's perm link). */
enum { SQ_MIX_P_TARGET = 4, SQ_MIX_P_WIDTHS = 5, SQ_MIX_P_ENC = 6 };
#define SQ_MIX_DEFAULT_TARGET 4000u
#define SQ_MIX_DEFAULT_WIDTHS 0x8432u
#define SQ_MIX_DEFAULT_BLOCK 128u
#define SQ_MIX_ENC_ACT_ORDER 1u
#define SQ_MIX_MIN_TARGET 1000u
#define SQ_MIX_MAX_TARGET 16000u

/* The codec's parts, in stored order. */
enum { SQ_MIX_WIDTHS, SQ_MIX_SCALES, SQ_MIX_MINS, SQ_MIX_ROW_PTR, SQ_MIX_CODES, SQ_MIX_NPARTS };

static inline uint32_t sq_mix_width(const uint32_t *p, unsigned code) { return p[SQ_MIX_P_WIDTHS] >> (4 * code) & 15u; }
static inline uint64_t sq_mix_nblocks(uint64_t cols, uint64_t B) { return (cols + B - 1) / B; }
/* bytes of the 2-bit width codes of one row */
static inline uint64_t sq_mix_wbytes(uint64_t nblocks) { return (nblocks + 3) / 4; }
/* the length of block j of a row and the bytes its codes take at width b */
static inline uint64_t sq_mix_block_len(uint64_t cols, uint64_t B, uint64_t j) {
    return cols - j * B < B ? cols - j * B : B;
}
static inline uint64_t sq_mix_block_bytes(uint64_t len, uint32_t b) { return (len * b + 7) / 8; }
static inline unsigned sq_mix_wcode(const uint8_t *wrow, uint64_t j) { return wrow[j >> 2] >> (2 * (j & 3)) & 3u; }

/* Code i of a block whose codes start at blk (LSB-first bit stream). */
static inline uint32_t sq_mix_code(const uint8_t *blk, uint32_t b, uint64_t i) {
    const uint64_t bit = i * b;
    uint32_t v = blk[bit >> 3] >> (bit & 7);
    const uint32_t have = 8 - (uint32_t)(bit & 7);
    if (have < b) v |= (uint32_t)blk[(bit >> 3) + 1] << have;
    return v & ((1u << b) - 1);
}
static inline void sq_mix_put_code(uint8_t *blk, uint32_t b, uint64_t i, uint32_t q) {
    const uint64_t bit = i * b;
    blk[bit >> 3] |= (uint8_t)(q << (bit & 7));
    const uint32_t have = 8 - (uint32_t)(bit & 7);
    if (have < b) blk[(bit >> 3) + 1] |= (uint8_t)(q >> have);
}

#endif
