/* 4-, 3- and 2-bit integer GEMV with int8 activations on AVX-512 VNNI, reading
 * the codes as bit planes (int_q8_planes.c), and 2- and 3-bit codes so on AVX2. */
#ifndef SQUISH_CODECS_INT_Q8_PLANES_H
#define SQUISH_CODECS_INT_Q8_PLANES_H

#include "codecs/codecs.h"

/* bits 4 or 2; groups of 2^gshift chunks (gshift 0..3, i.e. 32..256
 * values). Falls back to the portable kernel when out of memory. */
void sq_int_gemv_q8_planes_avx512(int bits, int gshift, const sq_tview *t, const sq_act_q8 *x, float *y, uint64_t r0,
                                  uint64_t r1);

/* 3-bit codes, groups of 2^gshift chunks (gshift 0..3). */
void sq_int3_gemv_q8_planes_avx512(int gshift, const sq_tview *t, const sq_act_q8 *x, float *y, uint64_t r0, uint64_t r1);

/* 2- and 3-bit codes on AVX2, four chunks per step (int_q8_quads_avx2.c):
 * groups of 32..256 values; returns -1 (nothing written) for other widths
 * or groups or when out of memory, for the caller's other kernel. */
int sq_int_gemv_q8_quads_avx2(int bits, const sq_tview *t, const sq_act_q8 *x, float *y, uint64_t r0, uint64_t r1);

/* n group scales of dtype dt from index i0 of base as floats: base itself
 * for f32, else converted into buf (n floats; x86-64 with AVX2 and F16C). */
const float *sq_int_row_scales(uint32_t dt, const void *base, uint64_t i0, uint64_t n, float *buf);

#endif
