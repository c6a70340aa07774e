/* The mix codec's kernels over a resolved view (mix_codec.c, mix_x86.c). */
#ifndef SQUISH_MIX_KERNELS_H
#define SQUISH_MIX_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "squish/codec.h"

typedef struct sq_mix_view {
    uint64_t rows, cols, B, nb, wb; /* block length, blocks per row, width-code bytes per row */
    uint32_t width[4];              /* bits of each width code */
    const uint8_t *widths;          /* [rows][wb] */
    const uint16_t *scales, *mins;  /* f16 [rows][nb] */
    const uint32_t *row_ptr;        /* [rows + 1] */
    const uint8_t *codes;           /* [ncodes] */
    uint64_t ncodes;
} sq_mix_view;

void sq_mix_view_of(const sq_tview *t, sq_mix_view *v);
/* 0, or -1 with a message: row_ptr adds up to the widths, finite scales and mins, zero padding */
int sq_mix_validate(const sq_mix_view *v, char *why, size_t n);
void sq_mix_decode_rows(const sq_mix_view *v, uint64_t r0, uint64_t r1, float *out);
void sq_mix_gemv_portable(const sq_mix_view *v, const float *x, float *y, uint64_t r0, uint64_t r1);
/* x86-64 SIMD (the portable kernel elsewhere); within 1e-5 Σ|w·x| of it */
void sq_mix_gemv_avx2(const sq_mix_view *v, const float *x, float *y, uint64_t r0, uint64_t r1);
void sq_mix_gemv_avx512(const sq_mix_view *v, const float *x, float *y, uint64_t r0, uint64_t r1);

#endif
