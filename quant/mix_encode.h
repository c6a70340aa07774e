/* The mix codec's encoder (spec/codecs.md §14): per-block widths chosen
 * under the tensor's bit budget from the diagonal-weighted round-to-nearest
 * error, then a GPTQ sweep with those widths and the blocks' statistics
 * fixed up front. */
#ifndef SQUISH_MIX_ENCODE_H
#define SQUISH_MIX_ENCODE_H

#include <stdint.h>

#include "squish/codec.h"

typedef struct sq_mix_result {
    uint64_t rows, cols, nb, wb, ncodes;
    uint8_t *widths;    /* [rows][wb] 2-bit width codes */
    uint16_t *scales;   /* f16 [rows][nb] */
    uint16_t *mins;     /* f16 [rows][nb] */
    uint32_t *row_ptr;  /* [rows + 1] */
    uint8_t *codes;     /* [ncodes] */
    uint32_t *perm;     /* [cols] act-order (stored column -> original), or NULL */
    uint64_t budget_bits, used_bits; /* the target's bits and what all parts take (perm included) */
    uint64_t hist[4];   /* blocks per width code */
} sq_mix_result;

/* Per-block widths for a bit budget: blocks n, each with 4 options of bits
 * bits[4*i + k] (non-decreasing in k) and error err[4*i + k]. Chooses
 * code[i] to minimize Σ err under Σ bits <= budget by the greedy walk over
 * each block's lower convex hull in order of steepest error decrease per
 * bit (exact at every budget the walk passes through: the Lagrangian
 * solutions), then fills what is left with the steepest segments that still
 * fit. Starts from the cheapest option everywhere, so the result exceeds
 * the budget only when that alone does. Deterministic: ties go to the lower
 * block index. Returns the bits used, or UINT64_MAX when out of memory. */
uint64_t sq_mix_allocate(uint64_t n, const uint64_t *bits, const double *err, uint64_t budget, uint8_t *code);

/* The whole encode of a rows x cols matrix w under params (mix's), with XᵀX
 * H (cols x cols); recon, when not NULL, receives the values the stored
 * form decodes to ([rows][cols], stored column order). */
sq_status sq_mix_quantize(const float *w, uint64_t rows, uint64_t cols, const double *H, const uint32_t *params,
                          int n_threads, sq_mix_result *res, float *recon, sq_err *err);
/* The same with each row's block errors weighted by row_weight[r] (NULL:
 * all 1) when the widths are chosen: rows that matter less (rare tokens'
 * embedding or output rows) get fewer bits. */
sq_status sq_mix_quantize_rw(const float *w, uint64_t rows, uint64_t cols, const double *H, const double *row_weight,
                             const uint32_t *params, int n_threads, sq_mix_result *res, float *recon, sq_err *err);
void sq_mix_result_free(sq_mix_result *r);

extern const sq_codec_encoder sq_mix_encoder;

#endif
