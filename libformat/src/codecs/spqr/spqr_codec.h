/* The spqr codec's CPU kernels beyond the reference decode (spqr_codec.c,
 * spqr_q8.c). */
#ifndef SQUISH_CODECS_SPQR_CODEC_H
#define SQUISH_CODECS_SPQR_CODEC_H

#include "codecs/spqr/spqr_decode.h"
#include "codecs/spqr/spqr_params.h"
#include "squish/codec.h"

/* The view the kernels read (perm NULL: they work in stored order; the
 * chain's link maps x). */
void sq_spqr_view_from_tview(const sq_tview *t, sq_spqr_view *v);

/* Integer-activation GEMV rows [r0, r1) (spqr_q8.c): the portable reference
 * and the AVX-512 (VNNI, VBMI) kernel with its bits, for groups of 16, 32 or
 * a multiple of 64 (sq_spqr_q8_avx512_ok; elsewhere it runs the reference). */
void sq_spqr_gemv_q8_portable(const sq_tview *t, const sq_act_q8 *x, float *y, uint64_t r0, uint64_t r1);
void sq_spqr_gemv_q8_avx512(const sq_tview *t, const sq_act_q8 *x, float *y, uint64_t r0, uint64_t r1);
int sq_spqr_q8_avx512_ok(const sq_tview *t);

#endif
