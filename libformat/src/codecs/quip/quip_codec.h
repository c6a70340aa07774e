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

/* ---- integer activations (quip_q8.c, quip_q8_avx512.c) ----
 * Codebook values times 4 as int8 (see quip_q8.c), by code and, for the
 * SIMD kernel's byte lookups, by coordinate (col_*[i][code]; the 8-bit books
 * biased by SQ_QUIP_Q8_BIAS so they are unsigned for vpdpbusd). */
#define SQ_QUIP_Q8_BIAS 16
typedef struct sq_quip_q8_tables {
    int8_t e8p4[256][8];     /* 4·base[A] (the parity fix on coordinate 7 included) */
    uint8_t e8p_neg[256];    /* bit i: coordinate i negated, from the sign byte S */
    int8_t e8p_shift4[256];  /* 4·shift[S]: +1 or -1 */
    int8_t e81b4[256][8], e8r4[256][8];
    _Alignas(64) int8_t col_e8p[8][256];
    _Alignas(64) uint8_t col_e81b[8][256], col_e8r[8][256];
} sq_quip_q8_tables;
const sq_quip_q8_tables *sq_quip_q8_tables_get(void); /* built once, thread-safe */
/* q8 GEMV rows [r0, r1) in the transformed basis (x already through the
 * input links, then quantized); the AVX-512 kernel gives the portable
 * one's bits and needs VBMI and GFNI besides (sq_quip_q8_avx512_ok; without
 * them it runs the portable one). AVX2 has none: without byte shuffles over
 * 256 entries, building the int8 weights costs more than the exact AVX2
 * kernel's float table loads (measured on Zen 4 with SQUISH_ISA=avx2: 2.5-2.9
 * against 3.3 GB/s at quip:2). */
void sq_quip_gemv_q8_portable(const sq_tview *t, const sq_act_q8 *x, float *y, uint64_t r0, uint64_t r1);
void sq_quip_gemv_q8_avx512(const sq_tview *t, const sq_act_q8 *x, float *y, uint64_t r0, uint64_t r1);
int sq_quip_q8_avx512_ok(void);
/* Batched (prefill): y[j * rows + r] for the T tokens x[0..T), each the
 * GEMV's bits; the AVX-512 kernel decodes each chunk of weights once for 8
 * tokens. */
void sq_quip_gemm_q8_portable(const sq_tview *t, const sq_act_q8 *x, uint32_t T, float *y, uint64_t r0, uint64_t r1);
void sq_quip_gemm_q8_avx512(const sq_tview *t, const sq_act_q8 *x, uint32_t T, float *y, uint64_t r0, uint64_t r1);

#endif
