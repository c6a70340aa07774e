/* QuIP# without fine-tuning (Tseng et al. 2024): randomized Hadamard
 * incoherence on both sides, BlockLDLQ (ldlq.c with this codec's
 * 8-dimensional quantizer) with the E8P12 lattice codebook in the
 * transformed basis; 3 and 4 bits by squish's nested E8R stages (the E8
 * lattice at 2x / 4x the resolution inside the E8P ball) or quip-sharp's
 * residual stages; after each BlockLDLQ pass, block coordinate descent on
 * the calibrated error (quip-sharp's quip_tune_iters); a least-squares
 * refit of the per-row stage scales on the calibrated output error once
 * the codes are chosen, and a second
 * BlockLDLQ pass from the refitted scales (each row keeps its better pass).
 * The stored form and its decode are libformat/src/codecs/quip/
 * quip_decode.h; as a codec, quip (spec/codecs.md §11), whose parts are
 * codes/codes2/codes3/scales and whose su/sv are the transform chain's
 * rht_in/rht_out links. */
#ifndef SQUISH_QUANT_QUIP_H
#define SQUISH_QUANT_QUIP_H

#include <stdint.h>

#include "codecs/quip/quip_decode.h"
#include "squish/codec.h"
#include "squish/error.h"

typedef struct sq_quip_opts {
    uint32_t bits;      /* 2 (E8P12), 3, 4 */
    uint32_t nested;    /* 3/4 bits: 0 quip-sharp's residual stages (E81B / E8P12), 1 nested E8R stages */
    double damp;        /* relative damping of the transformed Hessian; 0: 0.01 */
    uint64_t seed;      /* su from seed, sv from seed ^ SQ_QUIP_SV_SEED_XOR */
    int no_refit;       /* keep the initial scales (the refit is on by default) */
    int no_feedback;    /* nearest rounding in the transformed basis, no BlockLDLQ */
    int no_rht;         /* no randomized Hadamard transforms (su, sv left NULL) */
    int no_rht_out;     /* the columns' transform (su) alone, sv left NULL: rows stay apart */
    int passes;         /* BlockLDLQ + refit passes; 0: SQ_QUIP_PASSES */
    int free_passes;    /* later passes start from the refitted scales as they are, not in the initial ratios */
    int beam;           /* stage-0 candidates of the greedy search; 0: SQ_QUIP_BEAM */
    double opt_scale;   /* stage-0 scale = row RMS / opt_scale; 0: the codebook's default */
    int tune_iters;     /* sweeps of block coordinate descent after each BlockLDLQ pass; 0: SQ_QUIP_TUNE_ITERS, < 0: none */
    double tune_damp;   /* its relative damping; 0: BlockLDLQ's, < 0: none */
    int n_threads;
} sq_quip_opts;

#define SQ_QUIP_PASSES 2
#define SQ_QUIP_BEAM 16
#define SQ_QUIP_TUNE_ITERS 4
#define SQ_QUIP_OPT_SCALE_2 0.95
#define SQ_QUIP_OPT_SCALE_N3 0.9
#define SQ_QUIP_OPT_SCALE_N4 0.85

#define SQ_QUIP_SV_SEED_XOR 0xD1B54A32D192ED03ull

/* Arrays map 1:1 onto the parts of quip_decode.h (names, dtypes, shapes
 * there); all malloc'd, freed by sq_quip_result_free. */
typedef struct sq_quip_result {
    uint64_t rows, cols;
    uint32_t bits, nested;
    uint16_t *codes;   /* codes  u16 [rows][cols/8] */
    void *codes2;      /* codes2 u8 / u16 (4 bits residual) [rows][cols/8]; NULL at 2 bits */
    uint8_t *codes3;   /* codes3 u8 [rows][cols/8] (4 bits nested); else NULL */
    uint8_t *su, *sv;  /* su u8 [(cols+7)/8], sv u8 [(rows+7)/8]; NULL with no_rht */
    uint16_t *scales;  /* scales f16 [stages][rows] */
    /* report */
    double proxy_norefit; /* tr(ΔW H ΔWᵀ)/tr(W H Wᵀ) after the first pass, initial scales */
    double proxy_refit;   /* the same with the first pass's refitted scales */
    double proxy;         /* of what is stored (the best pass of each row) */
    double damp_used;
    uint64_t had_block_in, had_block_out; /* < cols / rows when the blocking fallback applied */
} sq_quip_result;

/* w: rows x cols row-major; H: cols x cols XᵀX (any positive scale),
 * row-major double. Same bytes for any n_threads. */
sq_status sq_quip_quantize(const float *w, uint64_t rows, uint64_t cols, const double *H, const sq_quip_opts *opts,
                           sq_quip_result *res, sq_err *err);
void sq_quip_result_free(sq_quip_result *r);
void sq_quip_view_of(const sq_quip_result *r, sq_quip_view *v);

/* The quip codec's encoder (sq_quant_encoder): sq_quip_quantize on the
 * layer's XᵀX with ctx->seed and ctx->flags (SQ_ENC_NO_FEEDBACK,
 * SQ_ENC_NO_REFIT, SQ_ENC_NO_RHT); its vq ops are the same block quantizer
 * with the initial scales, for the generic error-feedback driver (gptq.c). */
extern const sq_codec_encoder sq_quip_encoder;

#endif
