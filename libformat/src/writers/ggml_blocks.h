/* ggml's tensor types as the GGUF export writes them: F32, F16, BF16 and
 * the 32-element block types Q8_0, Q4_0, Q4_1. Layouts (little-endian,
 * "half" = IEEE binary16), as llama.cpp's ggml-common.h describes them:
 *
 *   Q8_0  34 bytes: half d; int8 qs[32];            x[j] = qs[j]·d
 *   Q4_0  18 bytes: half d; u8 qs[16];               x[j] = (qs[j] & 15 − 8)·d,  x[j+16] = (qs[j] >> 4 − 8)·d
 *   Q4_1  20 bytes: half d; half m; u8 qs[16];       x[j] = (qs[j] & 15)·d + m,  x[j+16] = (qs[j] >> 4)·d + m
 *
 * squish's integer codes (codecs.md §4: w = s·(q − z), z = 2^(b−1) when
 * symmetric, 4-bit chunks packed exactly as Q4_0's qs) map onto these
 * blocks without re-quantization when every block of 32 lies in one group,
 * the scales are binary16 values and the shifted codes fit the target's
 * range: see sq_ggml_from_int. */
#ifndef SQUISH_GGML_BLOCKS_H
#define SQUISH_GGML_BLOCKS_H

#include <stddef.h>
#include <stdint.h>

#include "squish/codec.h"

enum { SQ_GGML_F32 = 0, SQ_GGML_F16 = 1, SQ_GGML_Q4_0 = 2, SQ_GGML_Q4_1 = 3, SQ_GGML_Q8_0 = 8, SQ_GGML_BF16 = 30 };

const char *sq_ggml_type_name(uint32_t type); /* "Q8_0"...; "?" for others */
/* Parses a type name (case-insensitive); -1 when it is not one of the six. */
int sq_ggml_type_parse(const char *s, uint32_t *type);
uint32_t sq_ggml_block_len(uint32_t type);   /* 32 for Q types, 1 for float types */
uint32_t sq_ggml_block_bytes(uint32_t type);
/* Bytes of a row of cols values, or 0 when cols is not a whole number of blocks. */
uint64_t sq_ggml_row_bytes(uint32_t type, uint64_t cols);

/* Quantizes n values (n a multiple of the block length) the way llama.cpp's
 * reference quantizers do: Q8_0 d = max|x|/127, q = round(x/d); Q4_0 d =
 * (the value of largest magnitude)/−8, q = min(15, trunc(x/d + 8.5)); Q4_1
 * d = (max − min)/15, m = min, q = min(15, trunc((x − min)/d + 0.5));
 * F16/BF16 round to nearest even. */
void sq_ggml_quantize_row(uint32_t type, const float *x, uint64_t n, uint8_t *out);
void sq_ggml_dequantize_row(uint32_t type, const uint8_t *in, uint64_t n, float *out);

typedef enum sq_ggml_map {
    SQ_GGML_NO = -1,     /* the codes do not fit the type (why says where) */
    SQ_GGML_EXACT = 0,   /* every decoded value is the same float */
    SQ_GGML_ROUNDED = 1  /* Q4_1 only, when allowed: codes and scales kept, some minimums m = −z·s rounded to half */
} sq_ggml_map;

/* Repacks an integer-coded tensor (int8/int4/int3/int2, no transforms)
 * into rows × (cols/32) blocks of type (Q8_0, Q4_0 or Q4_1) in out:
 *   Q8_0 qs = q − z (must lie in −128..127), d = s;
 *   Q4_0 qs = q − z + 8 (must lie in 0..15), d = s;
 *   Q4_1 qs = q (codes of at most 4 bits), d = s, m = −z·s (must be a half,
 *        unless allow_rounded: then rounded to nearest and SQ_GGML_ROUNDED).
 * Needs cols % 32 == 0, groups of a multiple of 32 or per row, and every
 * scale exactly a half. out may be NULL (only checks). On SQ_GGML_NO, why
 * (why_cap bytes) names the reason and the first row/block it failed at. */
sq_ggml_map sq_ggml_from_int(const sq_tview *v, uint32_t type, int allow_rounded, uint8_t *out, char *why,
                             size_t why_cap);

#endif
