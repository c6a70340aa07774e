/* The whole decode step on the Vulkan device: RMSNorm, rotary embeddings,
 * attention over a device-resident K/V cache, the SiLU-gated MLP, the
 * residual adds and the output layer, recorded once into one command buffer
 * and replayed per token (one submission and one wait per token; the host
 * only writes the token's embedding row and the position, and reads the
 * logits). The matrix products are the GEMVs sq_vk_matmul runs (T = 1, the
 * float-activation kernels of every codec). sq_rt_cache_init sets it up
 * when the model runs on Vulkan (sq_rt_use_vulkan) unless
 * SQUISH_VULKAN_DECODE=0; sq_rt_step then runs here. */
#ifndef SQUISH_VK_DECODE_H
#define SQUISH_VK_DECODE_H

#include "runtime.h"

typedef struct sq_vk_decode sq_vk_decode;

/* Whether the device decode is wanted ($SQUISH_VULKAN_DECODE is not "0"). */
int sq_vk_decode_wanted(void);
/* The device state for decoding up to max_seq positions of m (uploaded with
 * sq_rt_use_vulkan; m must outlive it). SQ_EUNSUPPORTED, with the reason,
 * when some part cannot run there (a linear layer with Hadamard links
 * outside the lattice family, an odd head dimension; permutations and
 * input scales run on the device): the caller then keeps the per-product path. */
sq_status sq_vk_decode_init(const sq_rt_model *m, uint32_t max_seq, sq_vk_decode **out, sq_err *err);
/* Runs token at position pos (< max_seq; positions 0..pos-1 decoded before)
 * and writes logits [vocab]. */
sq_status sq_vk_decode_step(sq_vk_decode *d, uint32_t pos, int32_t token, float *logits, sq_err *err);
void sq_vk_decode_free(sq_vk_decode *d);
/* sq_rt_cache_init's hook: sets c->gpu when the device decode is wanted and
 * m can run there (else leaves it NULL: the step runs on the host); other
 * failures free the cache and return their status. */
sq_status sq_vk_decode_attach(const sq_rt_model *m, sq_rt_cache *c, sq_err *err);
/* sq_rt_step's: the step at c->pos on the device, then c->pos + 1. */
sq_status sq_vk_decode_cache_step(sq_rt_cache *c, int32_t token, float *logits, sq_err *err);
/* Dispatches recorded per token (for reports). */
uint32_t sq_vk_decode_dispatches(const sq_vk_decode *d);

/* With $SQUISH_VULKAN_PROFILE=1 at init, each dispatch of the step is timed
 * on the device (timestamps at its end, the barriers before it counted in
 * it) and summed per kind: one row per kind, count per token and ms over
 * the steps since the last reset. Off (no timestamps recorded) otherwise. */
typedef struct sq_vk_prof_row {
    char kind[48];
    uint32_t count;
    double ms;
} sq_vk_prof_row;
/* The rows (0 and *rows NULL when not profiling); *steps: steps summed;
 * *note: NULL, or why there are no times (a queue without timestamps). */
uint32_t sq_vk_decode_profile(const sq_vk_decode *d, const sq_vk_prof_row **rows, uint32_t *steps, const char **note);
void sq_vk_decode_profile_reset(sq_vk_decode *d);

#endif
