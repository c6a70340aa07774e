/* The quip codec's descriptor-side helpers (quip.c, quip_avx2.c) and its
 * params (spec/codecs.md §11). */
#ifndef SQUISH_CODECS_QUIP_CODEC_H
#define SQUISH_CODECS_QUIP_CODEC_H

#include "codecs/quip/quip_decode.h"
#include "squish/codec.h"

#define SQ_CODEC_QUIP 96 /* first id of the QuIP# range 96..111 */
enum {
    SQ_QUIP_P_BITS = 4,   /* params[4]: 2, 3 or 4 bits per weight */
    SQ_QUIP_P_NESTED = 5, /* params[5]: 0 quip-sharp's residual stages, 1 nested E8R stages (3 and 4 bits) */
};

extern const sq_codec sq_codec_quip;

uint32_t sq_quip_bits_of(const uint32_t *params);
/* The codec's parts of a view (su/sv left NULL: they are the chain's links). */
void sq_quip_view_from_tview(const sq_tview *t, sq_quip_view *v);
/* Exact GEMV rows [r0, r1) in the transformed basis (x already through the
 * chain's input links; y[r] indexed by absolute row). The AVX2 and AVX-512
 * kernels give the portable one's bits: the same products and sums in the
 * same order. */
void sq_quip_gemv_portable(const sq_tview *t, const float *x, float *y, uint64_t r0, uint64_t r1);
void sq_quip_gemv_avx2(const sq_tview *t, const float *x, float *y, uint64_t r0, uint64_t r1);
void sq_quip_gemv_avx512(const sq_tview *t, const float *x, float *y, uint64_t r0, uint64_t r1);

#endif
