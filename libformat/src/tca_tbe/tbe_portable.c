/* TCA-TBE portable kernels: the reference every SIMD path is tested
 * against bit for bit. No branch depends on a value: each exponent is the
 * window base plus the three plane bits; escapes are then written over
 * their positions, one per set bit of plane0 & plane1 & plane2. */
#include <stdlib.h>
#include <string.h>

#include "codecs/float/bf16_dot.h"
#include "tca_tbe/tbe_internal.h"

/* Byte i of the result is bit i of b (0 or 1). */
static inline uint64_t spread8(uint64_t b) {
    uint64_t y = (b * 0x0101010101010101ull) & 0x8040201008040201ull; /* byte i: bit i of b, in place */
    return ((y + 0x7F7F7F7F7F7F7F7Full) >> 7) & 0x0101010101010101ull;      /* non-zero bytes to 1 */
}

/* One block's 128 exponent bytes, 8 at a time in a 64-bit word: the index
 * bytes are the three planes' bits spread to bytes; base + index cannot
 * carry between bytes (base <= 249, index <= 6 once escapes are cleared),
 * and the escapes are then written over their positions. */
static void block_exponents(const sq_tbe *t, const uint8_t *rec, uint8_t e[SQ_TBE_BLOCK]) {
    const uint64_t base = rec[SQ_TBE_R_WORD] * 0x0101010101010101ull;
    const uint8_t *esc = sq_tbe_block_esc(t, rec);
    for (int g = 0; g < SQ_TBE_BLOCK / 8; g++) {
        uint64_t s0 = spread8(rec[SQ_TBE_R_PLANE0 + g]), s1 = spread8(rec[SQ_TBE_R_PLANE1 + g]),
                 s2 = spread8(rec[SQ_TBE_R_PLANE2 + g]);
        uint64_t idx = (s0 | s1 << 1 | s2 << 2) & ~((s0 & s1 & s2) * 0xFF), w = base + idx;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        memcpy(e + 8 * g, &w, 8); /* byte k of w is position 8g + k */
#else
        put64(e + 8 * g, w);
#endif
    }
    for (int h = 0; h < 2; h++)
        for (uint64_t m = get64(rec + SQ_TBE_R_PLANE0 + 8 * h) & get64(rec + SQ_TBE_R_PLANE1 + 8 * h) &
                          get64(rec + SQ_TBE_R_PLANE2 + 8 * h);
             m; m &= m - 1)
            e[64 * h + __builtin_ctzll(m)] = *esc++;
}

/* restrict: the compiler may vectorize the merge */
static void merge(const uint8_t *restrict e, const uint8_t *restrict sm, uint16_t *restrict out) {
    for (int j = 0; j < SQ_TBE_BLOCK; j++) out[j] = sq_tbe_value(e[j], sm[j]);
}

static void block_values(const sq_tbe *t, const uint8_t *rec, uint16_t out[SQ_TBE_BLOCK]) {
    uint8_t e[SQ_TBE_BLOCK];
    block_exponents(t, rec, e);
    merge(e, rec + SQ_TBE_R_SM, out);
}

void sq_tbe_decode_portable(const sq_tbe *t, uint64_t b0, uint64_t b1, uint16_t *out) {
    for (uint64_t b = b0; b < b1; b++, out += SQ_TBE_BLOCK) {
        if (b + 1 < t->n_blocks) {
            block_values(t, sq_tbe_rec(t, b), out);
        } else { /* the last block: only its own values */
            uint16_t tmp[SQ_TBE_BLOCK];
            block_values(t, sq_tbe_rec(t, b), tmp);
            memcpy(out, tmp, (size_t)sq_tbe_block_len(t, b) * sizeof *out);
        }
    }
}

/* The bf16 codec's portable GEMV order (bf16_dot.h): rows of whole blocks
 * are dotted block by block from a 128-value stack buffer, other rows in
 * segments of SQ_TBE_SEGMENT values. */
void sq_tbe_gemv_portable(const sq_tbe *t, uint64_t cols, const float *x, float *y, uint64_t r0, uint64_t r1) {
    uint16_t buf[SQ_TBE_SEGMENT];
    for (uint64_t r = r0; r < r1; r++) {
        sq_bf16_dot8 d = {{0}};
        if (cols % SQ_TBE_BLOCK == 0) {
            const uint64_t nb = cols / SQ_TBE_BLOCK;
            for (uint64_t k = 0; k < nb; k++) {
                block_values(t, sq_tbe_rec(t, r * nb + k), buf);
                sq_bf16_dot8_steps(&d, buf, x + k * SQ_TBE_BLOCK, SQ_TBE_BLOCK);
            }
            y[r] = sq_bf16_dot8_finish(&d, buf, x, 0);
            continue;
        }
        uint64_t i = 0;
        for (; cols - i > SQ_TBE_SEGMENT; i += SQ_TBE_SEGMENT) {
            sq_tbe_fill(t, sq_tbe_decode_portable, r * cols + i, SQ_TBE_SEGMENT, buf);
            sq_bf16_dot8_steps(&d, buf, x + i, SQ_TBE_SEGMENT);
        }
        sq_tbe_fill(t, sq_tbe_decode_portable, r * cols + i, cols - i, buf);
        y[r] = sq_bf16_dot8_finish(&d, buf, x + i, cols - i);
    }
}
