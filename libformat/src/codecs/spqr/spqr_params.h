/* The spqr codec's params[4..7] (spec/codecs.md §13): what the stored form
 * needs (weight bits, statistic bits, β₁, β₂) and the encoder settings the
 * scheme chose (τ, outlier budget), kept in the file as a record of them.
 * Shared by the descriptor (libformat) and the encoder (quant/). */
#ifndef SQUISH_SPQR_PARAMS_H
#define SQUISH_SPQR_PARAMS_H

#include <stdint.h>
#include <string.h>

#include "spqr_decode.h"

#define SQ_CODEC_SPQR 112 /* in the reserved range 112..127 */

enum { SQ_SPQR_P_BITS = 4, SQ_SPQR_P_GROUPS = 5, SQ_SPQR_P_TAU = 6, SQ_SPQR_P_BUDGET = 7 };
/* params[4] = wbits | stat_bits << 8 | search << 16 | rht << 17 | cd << 18
 * (bit 16: the encoder fitted first-level statistics by the weighted search,
 * the default; 0 = min-max, `:minmax`; bit 17: it quantized W·diag(s)·Ĥᵀ,
 * the chain's rht_in link instead of perm; bits 18..21: passes of coordinate
 * descent it ran on the codes after the sweep, `:cdN`; decode ignores all three);
 * params[5] = β₁ | β₂ << 16;
 * params[6] = τ as f32 bits (0: no outliers); params[7] = outlier budget in
 * percent of the weights as f32 bits (0: none, τ alone decides). */
#define SQ_SPQR_DEFAULT_WBITS 3u
#define SQ_SPQR_DEFAULT_STAT_BITS 3u
#define SQ_SPQR_DEFAULT_GROUP 16u
#define SQ_SPQR_DEFAULT_STAT_GROUP 16u
#define SQ_SPQR_DEFAULT_TAU 0.2f
#define SQ_SPQR_MAX_GROUP 1024u
#define SQ_SPQR_MAX_WBITS 8u /* w2..w4 are SpQR's; w5..w8 the high-precision candidates (q5_K/q6_K-like) */

static inline uint32_t sq_spqr_f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}
static inline float sq_spqr_bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static inline uint32_t sq_spqr_p_wbits(const uint32_t *p) { return p[SQ_SPQR_P_BITS] & 0xff; }
static inline uint32_t sq_spqr_p_stat_bits(const uint32_t *p) { return p[SQ_SPQR_P_BITS] >> 8 & 0xff; }
#define SQ_SPQR_SEARCH_BIT (1u << 16)
#define SQ_SPQR_RHT_BIT (1u << 17)
#define SQ_SPQR_REFINE_SHIFT 18 /* bits 18..21: coordinate-descent passes after the sweep (0..15) */
#define SQ_SPQR_MAX_REFINE 15u
#define SQ_SPQR_DEFAULT_REFINE 4u /* more passes moved almost nothing on squish-lm-34m */
static inline uint32_t sq_spqr_p_search(const uint32_t *p) { return p[SQ_SPQR_P_BITS] >> 16 & 1; }
static inline uint32_t sq_spqr_p_rht(const uint32_t *p) { return p[SQ_SPQR_P_BITS] >> 17 & 1; }
static inline uint32_t sq_spqr_p_refine(const uint32_t *p) { return p[SQ_SPQR_P_BITS] >> SQ_SPQR_REFINE_SHIFT & 0xf; }
static inline uint32_t sq_spqr_p_group(const uint32_t *p) { return p[SQ_SPQR_P_GROUPS] & 0xffff; }
static inline uint32_t sq_spqr_p_stat_group(const uint32_t *p) { return p[SQ_SPQR_P_GROUPS] >> 16; }
static inline float sq_spqr_p_tau(const uint32_t *p) { return sq_spqr_bits_f32(p[SQ_SPQR_P_TAU]); }
static inline float sq_spqr_p_budget(const uint32_t *p) { return sq_spqr_bits_f32(p[SQ_SPQR_P_BUDGET]); }

/* The stored shape of a rows x cols tensor with these params (nnz as given). */
static inline sq_spqr_shape sq_spqr_shape_of(const uint32_t *p, uint64_t rows, uint64_t cols, uint64_t nnz) {
    sq_spqr_shape s = {rows, cols, sq_spqr_p_wbits(p), sq_spqr_p_group(p), sq_spqr_p_stat_group(p),
                       sq_spqr_p_stat_bits(p), nnz};
    return s;
}

#endif
