/* The table-driven family (NF4, FP8/FP6/FP4, OCP MX): what codec_lut.c
 * shares with the codecs of the family that live in their own files. */
#ifndef SQUISH_CODECS_LUT_H
#define SQUISH_CODECS_LUT_H

#include "codecs/codecs.h"

extern const sq_codec_encoder sq_lut_encoder;
int sq_lut_layout(const sq_codec *c, const uint32_t *p, uint64_t rows, uint64_t cols, sq_part_spec *o);
void sq_lut_decode(const sq_tview *t, uint64_t r0, uint64_t r1, float *out);
void sq_lut_gemv(const sq_tview *t, const float *x, float *y, uint64_t r0, uint64_t r1);
/* Exact integer-activation GEMV of the E2M1 codecs (fp4_e2m1, mxfp4). */
void sq_fp4_gemv_q8(const sq_tview *t, const sq_act_q8 *x, float *y, uint64_t r0, uint64_t r1);

/* NF4 double quantization: one int8 scale per this many block maxima. */
#define SQ_NF4_DQ_BLOCK 256
/* NF4 with int8 activations (nf4_q8.c): the portable kernel keeps the f32
 * table; the SIMD ones use it scaled to int16 (within 3.3e-5 per product). */
void sq_nf4_gemv_q8(const sq_tview *t, const sq_act_q8 *x, float *y, uint64_t r0, uint64_t r1);
void sq_nf4_gemv_q8_avx2(const sq_tview *t, const sq_act_q8 *x, float *y, uint64_t r0, uint64_t r1);
void sq_nf4_gemv_q8_avx512(const sq_tview *t, const sq_act_q8 *x, float *y, uint64_t r0, uint64_t r1);

#endif
