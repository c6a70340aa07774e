/* Work description of one attention pass, shared by the forward pass and
 * the attention kernels (the exact one in attn_exact.c, the fast ones in
 * forward.c): queries t = 0..T-1 at positions q0 + t, each seeing keys
 * 0..q0 + t. */
#ifndef SQUISH_RUNTIME_ATTENTION_H
#define SQUISH_RUNTIME_ATTENTION_H

#include <stdint.h>

#include "runtime.h"

typedef float (*dot_fn)(const float *, const float *, uint32_t);

typedef struct attn_ctx {
    const sq_rt_config *c;
    const float *q, *k, *v;
    float *out;
    uint32_t T;
    int failed; /* a worker could not get its score row */
    dot_fn dot;
    uint32_t q0; /* position of the first query (decode: the cache's; its T queries see keys 0..q0+t) */
} attn_ctx;

/* The exact path's attention for heads h0..h1-1 with AVX2 registers, for
 * head_dim a multiple of 8: the same bits as the scalar loop (one running
 * sum per score in dimension order, multiply and add rounded separately),
 * computed for 8 keys or 8 dimensions at once. Returns 0 where the CPU or
 * the shape does not allow it. */
int sq_attn_exact_avx2_ok(const sq_rt_config *c);
/* K/V head kvh's NK = q0 + T keys transposed into kt ([head_dim][Tp]),
 * zero from NK to Tp: the layout the vectorized kernels read 8 or 16 keys
 * from at once. */
void sq_attn_transpose_keys(const attn_ctx *a, uint32_t kvh, uint64_t Tp, float *kt);
void sq_attn_exact_heads_avx2(void *ctx, uint64_t h0, uint64_t h1);
/* The fast AVX-512 attention's exponential (softmax arguments, x <= 0) on
 * n values, n a multiple of 16; returns 0 where the CPU lacks AVX-512. For
 * tests: within 2 ulp of expf. */
int sq_attn_exp_avx512(const float *x, float *y, uint64_t n);

#endif
