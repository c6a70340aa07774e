/* AQLM (additive quantization, Egiazarian et al. 2024): decode and GEMV
 * over the stored parts, for readers that link the format library only.
 *
 * A matrix of rows x cols is cut into G = ceil(cols / 8) groups of g = 8
 * consecutive inputs (the last one partial when cols is not a multiple of
 * 8: its decode drops the entries past cols).
 * Group j of row o is
 *     W[o][8j .. 8j+7] = scale[o] * (C_0[code(o,j,0)] + ... + C_{M-1}[code(o,j,M-1)])
 * with M codebooks C_m of 2^B vectors of dimension 8.
 *
 * Parts (all little-endian):
 *   codes     u8  [ceil(rows * G * M * B / 8)]  packed codes, see below
 *   codebooks f16 [M][2^B][8]
 *   scales    f16 [rows]
 * Packing: code number i = (o * G + j) * M + m occupies bits
 * [i*B, i*B + B) of the codes part read as one little-endian bit stream
 * (stream bit t is bit t % 8 of byte t / 8; the code's least significant
 * bit first). For B = 8 that is one byte per code, for B = 16 one
 * little-endian u16 per code. Padding bits after the last code are zero.
 * Every B-bit value is a valid code, so codes cannot be out of range. */
#ifndef SQUISH_AQLM_DECODE_H
#define SQUISH_AQLM_DECODE_H

#include <stdint.h>

#include "squish/error.h"

/* The codec's id in the tensor index (squish/codec.h reserves 80..95). */
#define SQ_CODEC_AQLM 80

#define SQ_AQLM_G 8       /* in-group size: inputs per code */
#define SQ_AQLM_MAX_M 8   /* codebooks */
#define SQ_AQLM_MAX_B 16  /* bits per code */

/* Const pointers to the three parts (may point into an mmapped file: no
 * alignment is assumed) and their sizes in bytes. */
typedef struct sq_aqlm_view {
    uint64_t rows, cols;
    uint32_t M, B;
    const uint8_t *codes;
    uint64_t codes_bytes;
    const uint8_t *codebooks; /* f16 LE [M][2^B][8] */
    uint64_t codebooks_bytes;
    const uint8_t *scales; /* f16 LE [rows] */
    uint64_t scales_bytes;
} sq_aqlm_view;

/* Sizes in bytes of the parts of a rows x cols matrix under M x B. */
uint64_t sq_aqlm_codes_bytes(uint64_t rows, uint64_t cols, uint32_t M, uint32_t B);
uint64_t sq_aqlm_codebooks_bytes(uint32_t M, uint32_t B);
static inline uint64_t sq_aqlm_groups(uint64_t cols) { return (cols + SQ_AQLM_G - 1) / SQ_AQLM_G; }
static inline uint64_t sq_aqlm_scales_bytes(uint64_t rows) { return rows * 2; }

/* Checks shapes (M in 1..8, B in 1..16, rows and cols non-zero), the part
 * sizes, zero padding bits, and that every codebook entry and scale is
 * finite. label names the tensor in the message. SQ_EUSAGE for a bad
 * shape, SQ_ECORRUPT for bad part contents. */
sq_status sq_aqlm_validate(const sq_aqlm_view *v, const char *label, sq_err *err);

/* Code i (see the packing above) of a view. */
uint32_t sq_aqlm_code_at(const uint8_t *codes, uint64_t i, uint32_t B);

/* Rows [r0, r1) as floats into out ((r1 - r0) x cols). Each weight is
 * computed in float as acc = C_0[..][t]; acc += C_m[..][t] for m = 1..M-1;
 * out = scale * acc. The view must have passed sq_aqlm_validate. */
void sq_aqlm_decode_rows(const sq_aqlm_view *v, uint64_t r0, uint64_t r1, float *out);

/* y[o - r0] = row o · x for o in [r0, r1) (x has cols floats). Each row
 * computes, in float, d(j, m) = C_m[code(o,j,m)] · x[8j .. 8j+7] as
 * ((c0 x0 + c1 x1) + c2 x2) + ... + c7 x7 (x zero past cols), then
 * acc = 0, acc += d(j, m) over j ascending, m ascending, y = scale * acc.
 * The d come from per-call lookup tables (T[m][k] = C_m[k] · x_j, built
 * for blocks of groups on the stack, 32 KiB) when the rows' lookups
 * outnumber the table entries, else are computed in place: either way, on
 * every ISA (the AVX2 table build multiplies, then adds, like the portable
 * loop) and for any row range, the same bits. No heap, cannot fail. The
 * view must have passed sq_aqlm_validate. isa: an sq_isa, lowered to what
 * the CPU has. */
void sq_aqlm_gemv_rows(int isa, const sq_aqlm_view *v, const float *x, float *y, uint64_t r0, uint64_t r1);
/* The same through sq_isa_active() / a given path; always SQ_OK (kept for
 * callers written when the tables were on the heap). */
sq_status sq_aqlm_gemv(const sq_aqlm_view *v, const float *x, float *y, uint64_t r0, uint64_t r1, sq_err *err);
sq_status sq_aqlm_gemv_isa(int isa, const sq_aqlm_view *v, const float *x, float *y, uint64_t r0, uint64_t r1,
                           sq_err *err);

#endif
