/* TCA-TBE: lossless coding of bf16 values (after ZipServ's tensor-core-aware
 * triple bitmap encoding), the part compression 2 of the .squizd container.
 * Blocks of 128 values keep each value's sign and mantissa as one raw byte
 * and code the 8-bit exponent as a 3-bit index into a window of 7
 * consecutive exponents chosen per block, stored as three bit-planes;
 * index 7 escapes to an exponent byte in a separate area. Every block
 * record has the same size, so block k (and row r of a matrix) is found by
 * arithmetic. Byte layout: spec/squizd.md §13. */
#ifndef SQUISH_TCA_TBE_H
#define SQUISH_TCA_TBE_H

#include <stddef.h>
#include <stdint.h>

#include "squish/codec.h"
#include "squish/error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SQ_TBE_BLOCK 128        /* values per block */
#define SQ_TBE_HEADER 32        /* bytes of the stream header */
#define SQ_TBE_RECORD 184       /* bytes of a block record: 8 + 3 x 16 + 128 */
#define SQ_TBE_WINDOW 7         /* exponents a block's window holds; index 7 escapes */
#define SQ_TBE_MAX_BASE 249     /* a window's first exponent: base + 6 <= 255 */
#define SQ_TBE_MAGIC "TBE1"

/* A checked coded stream of n bf16 values (points into the caller's bytes). */
typedef struct sq_tbe {
    const uint8_t *data;   /* the stream: header, block records, escape area */
    uint64_t size;         /* its bytes */
    uint64_t n;            /* values */
    uint64_t n_blocks;     /* ceil(n / 128) */
    uint64_t n_escapes;    /* bytes of the escape area */
    const uint8_t *esc;    /* the escape area */
} sq_tbe;

/* Bytes of the coded form of n values with n_escapes escapes (0 when the
 * size does not fit in 64 bits). */
uint64_t sq_tbe_coded_size(uint64_t n, uint64_t n_escapes);

/* Codes n bf16 values (any bit patterns) into a new buffer (*out, freed by
 * the caller) of *out_size bytes. Only allocation can fail. */
sq_status sq_tbe_encode(const uint16_t *v, uint64_t n, uint8_t **out, uint64_t *out_size, sq_err *err);

/* Checks every rule of spec/squizd.md §13.3 on a stream that must hold n
 * values; on success fills t. On failure returns -1 with a message in why
 * that names the rule, the block and the byte offset in the stream. */
int sq_tbe_open(sq_tbe *t, const void *data, uint64_t size, uint64_t n, char *why, size_t why_len);

/* Decodes blocks [b0, b1) of a checked stream into out (128 values per
 * block; the last block writes only the values the stream holds), with the
 * active instruction-set path. Every path gives the same bits. */
void sq_tbe_decode_blocks(const sq_tbe *t, uint64_t b0, uint64_t b1, uint16_t *out);
/* Checks and decodes a whole stream of n values into out (n values): the
 * container's read path. SQ_ECORRUPT with the rule broken. */
sq_status sq_tbe_decode(const void *data, uint64_t size, uint64_t n, uint16_t *out, sq_err *err);

/* y[r] = dot(row r of the [rows x cols] bf16 matrix the stream holds, x)
 * for r in [r0, r1), read from the coded form (each block decoded in
 * registers or on the stack, never the whole matrix). The result has the
 * same bits as the bf16 codec's GEMV on the decoded matrix with the same
 * instruction-set path (sq_gemv_for(&bf16, isa)). rows * cols must be t->n. */
void sq_tbe_gemv(const sq_tbe *t, uint64_t rows, uint64_t cols, const float *x, float *y, uint64_t r0, uint64_t r1);

/* The kernels of one path (for tests and benchmarks; a path this CPU lacks
 * falls back to the next lower one, as sq_gemv_for does). */
typedef void (*sq_tbe_decode_fn)(const sq_tbe *t, uint64_t b0, uint64_t b1, uint16_t *out);
typedef void (*sq_tbe_gemv_fn)(const sq_tbe *t, uint64_t cols, const float *x, float *y, uint64_t r0, uint64_t r1);
sq_tbe_decode_fn sq_tbe_decode_for(sq_isa isa);
sq_tbe_gemv_fn sq_tbe_gemv_for(sq_isa isa);
/* The path sq_tbe_*_for(isa) actually runs (isa lowered to what the CPU has). */
sq_isa sq_tbe_isa(sq_isa isa);

#ifdef __cplusplus
}
#endif
#endif
