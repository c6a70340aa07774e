/* TCA-TBE portable kernels: the reference every SIMD path is tested
 * against bit for bit. No branch depends on a value: each exponent is the
 * window base plus the three plane bits; escapes are then written over
 * their positions, one per set bit of plane0 & plane1 & plane2. */
#include <stdlib.h>
#include <string.h>

#include "codecs/float/bf16_dot.h"
#include "tca_tbe/tbe_internal.h"

/* One block's 128 exponent bytes (padding positions included; uint8_t
 * arithmetic: index 7 on base 249 wraps, and the escape overwrites it). */
static void block_exponents(const sq_tbe *t, const uint8_t *rec, uint8_t e[SQ_TBE_BLOCK]) {
    const uint8_t base = rec[SQ_TBE_R_WORD];
    const uint8_t *esc = sq_tbe_block_esc(t, rec);
    for (int h = 0; h < 2; h++) {
        uint64_t p0 = get64(rec + SQ_TBE_R_PLANE0 + 8 * h), p1 = get64(rec + SQ_TBE_R_PLANE1 + 8 * h),
                 p2 = get64(rec + SQ_TBE_R_PLANE2 + 8 * h);
        for (int j = 0; j < 64; j++)
            e[64 * h + j] = (uint8_t)(base + (p0 >> j & 1) + ((p1 >> j & 1) << 1) + ((p2 >> j & 1) << 2));
        for (uint64_t m = p0 & p1 & p2; m; m &= m - 1) e[64 * h + __builtin_ctzll(m)] = *esc++;
    }
}

static void block_values(const sq_tbe *t, const uint8_t *rec, uint16_t out[SQ_TBE_BLOCK]) {
    uint8_t e[SQ_TBE_BLOCK];
    block_exponents(t, rec, e);
    const uint8_t *sm = rec + SQ_TBE_R_SM;
    for (int j = 0; j < SQ_TBE_BLOCK; j++) out[j] = sq_tbe_value(e[j], sm[j]);
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
