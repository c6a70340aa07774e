/* TCA-TBE internals shared by the format code and the kernels. */
#ifndef SQUISH_TBE_INTERNAL_H
#define SQUISH_TBE_INTERNAL_H

#include "common/bytes.h"
#include "squish/tca_tbe.h"

/* Offsets inside a block record (spec/squizd.md §13.2). */
enum { SQ_TBE_R_WORD = 0, SQ_TBE_R_PLANE0 = 8, SQ_TBE_R_PLANE1 = 24, SQ_TBE_R_PLANE2 = 40, SQ_TBE_R_SM = 56 };

static inline const uint8_t *sq_tbe_rec(const sq_tbe *t, uint64_t b) {
    return t->data + SQ_TBE_HEADER + b * SQ_TBE_RECORD;
}
/* values block b holds: 128, or fewer in the last block */
static inline uint64_t sq_tbe_block_len(const sq_tbe *t, uint64_t b) {
    return b + 1 < t->n_blocks ? SQ_TBE_BLOCK : t->n - SQ_TBE_BLOCK * (t->n_blocks - 1);
}
/* the escape bytes of block b */
static inline const uint8_t *sq_tbe_block_esc(const sq_tbe *t, const uint8_t *rec) { return t->esc + (get64(rec) >> 8); }

/* bf16 bits from an exponent byte and a sign+mantissa byte */
static inline uint16_t sq_tbe_value(uint8_t e, uint8_t sm) {
    return (uint16_t)((sm & 0x80) << 8 | e << 7 | (sm & 0x7f));
}

/* Decoders of whole blocks [b0, b1): 128 values each into out, the last
 * block only its own. */
void sq_tbe_decode_portable(const sq_tbe *t, uint64_t b0, uint64_t b1, uint16_t *out);
void sq_tbe_decode_avx2(const sq_tbe *t, uint64_t b0, uint64_t b1, uint16_t *out);
void sq_tbe_decode_avx512(const sq_tbe *t, uint64_t b0, uint64_t b1, uint16_t *out);
void sq_tbe_gemv_portable(const sq_tbe *t, uint64_t cols, const float *x, float *y, uint64_t r0, uint64_t r1);
void sq_tbe_gemv_avx2(const sq_tbe *t, uint64_t cols, const float *x, float *y, uint64_t r0, uint64_t r1);
void sq_tbe_gemv_avx512(const sq_tbe *t, uint64_t cols, const float *x, float *y, uint64_t r0, uint64_t r1);

/* Values [i0, i0 + len) of the stream into out, through decode. */
void sq_tbe_fill(const sq_tbe *t, sq_tbe_decode_fn decode, uint64_t i0, uint64_t len, uint16_t *out);

/* Rows whose length is not a multiple of 128 are decoded in segments of
 * this many values (a multiple of every path's main step). */
#define SQ_TBE_SEGMENT 1024

/* Whether the CPU has the AVX-512 extensions the avx512 path uses beyond
 * sq_isa_supported(SQ_ISA_AVX512): VBMI2's byte expand-load. */
int sq_tbe_cpu_vbmi2(void);

#endif
