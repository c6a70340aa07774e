/* GPTQ (Frantar et al. 2023): quantizes a weight matrix column by column,
 * spreading each column's rounding error over the columns not yet
 * quantized through the inverse Hessian of the layer's inputs, so that the
 * layer's output error ||(W - Q) X|| is small rather than ||W - Q||. */
#ifndef SQUISH_GPTQ_H
#define SQUISH_GPTQ_H

#include "squish/codec.h"

typedef struct sq_gptq_opts {
    double damp;       /* relative damping: added to the diagonal as damp * mean(diag H); default 0.01 */
    int act_order;     /* process columns by decreasing H diagonal */
    int static_groups; /* with act_order: fit group scales on the original weights, keep the original column order */
    uint32_t block;    /* lazy-update block size (result does not depend on it); default 128 */
    int refine;        /* passes of coordinate descent on the codes after the sweep (scalar codecs);
                          0: SQ_GPTQ_REFINE, < 0: none (the reference's GPTQ) */
    int n_threads;
} sq_gptq_opts;

#define SQ_GPTQ_REFINE 4

typedef struct sq_gptq_info {
    double damp_used;  /* damping that made the Cholesky factorization succeed */
    double damp_added; /* what it added to H's diagonal: damp_used x mean diag H (zeros counted as 1) */
    int retries;       /* how often damping was raised */
    int fell_back;     /* 1: the Hessian stayed singular at damping 1.0; RTN was used */
    uint32_t dead;     /* input channels never active (zero diagonal): weights set to zero */
    int permuted;      /* a perm part was stored */
    uint64_t refine_moves; /* codes the coordinate descent changed */
} sq_gptq_info;

/* Whether GPTQ can drive codec c with these params: its encoder has an
 * error-feedback quantizer (sq_vq_ops) that accepts them. Today: int2/3/4/8,
 * nf4 (not :dq), fp8/fp6/fp4 (not :pt) and the MX codecs. */
int sq_gptq_supports(const sq_codec *c, const uint32_t params[SQ_NPARAMS]);

/* H is the cols x cols matrix XᵀX (any positive scale), row-major double.
 * Any codec sq_gptq_supports accepts. With act_order and
 * without static groups the result carries a "perm" input transform. The
 * output is the same for any n_threads (rows are processed in fixed tiles,
 * each with single-threaded BLAS). */
sq_status sq_gptq_quantize(const char *name, const sq_codec *c, const uint32_t params[SQ_NPARAMS], const float *w,
                           uint64_t rows, uint64_t cols, const double *H, const sq_gptq_opts *o, sq_encoded *out,
                           sq_gptq_info *info, sq_err *err);

/* Inverse-Hessian factor for GPTQ: U upper triangular (row-major, float)
 * with UᵀU = (H + damp)⁻¹, after dead-column handling and the optional
 * permutation (perm may be NULL); the same bits on every machine and for
 * any n_threads (linalg.h). Exposed for the benchmark and tests. */
sq_status sq_gptq_hinv(const double *H, uint64_t n, const uint32_t *perm, double damp, float *U, int n_threads,
                       sq_gptq_info *info, sq_err *err);

#endif
