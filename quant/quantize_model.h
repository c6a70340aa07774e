/* Quantizing a whole model into a .squizd file: the library side of
 * squish-quantize, which is argument parsing, printing and one call to
 * sq_quantize_model (as GDAL's utilities are thin shells over GDALTranslate
 * and friends).
 *
 * sq_quantize_model opens and checks the source model, checks the
 * calibration file against it, chooses each tensor's codec (opts->scheme),
 * has the method (RTN, GPTQ, AWQ) encode it, measures its error against the
 * weights the decoder reproduces, writes it, embeds the model's
 * configuration and tokenizer files (sq_bundle_from_model), and commits the output
 * atomically with its provenance metadata; then writes the JSON report.
 * What it has to say goes to the caller's sink, never to a stream. */
#ifndef SQUISH_QUANTIZE_MODEL_H
#define SQUISH_QUANTIZE_MODEL_H

#include <stdint.h>

#include "alloc_model.h"
#include "method.h"
#include "scheme_rules.h"

typedef enum sq_quantize_level {
    SQ_QUANTIZE_NOTE,   /* worth knowing (squish-quantize -q hides these) */
    SQ_QUANTIZE_WARNING /* probably not what was meant, or a fallback was taken */
} sq_quantize_level;

/* One tensor as written. */
typedef struct sq_quantize_tensor_report {
    const char *name;
    char scheme[64];         /* as written, transforms included ("int4:g32:asym+in_scale") */
    uint64_t elements;
    double bpw;              /* stored bits per weight */
    double rmse, max_abs, cosine, snr_db; /* decoded against the weights as the decoder sees them; snr_db +inf when exact */
    const sq_method_note *note; /* how it was quantized */
    uint64_t bytes;          /* stored bytes of its parts before compression */
    double alloc_loss;       /* --target-bpw: the chosen candidate's predicted loss; < 0 when not allocated */
} sq_quantize_tensor_report;

/* Where sq_quantize_model reports to; every member may be NULL. Calls come
 * in order from the calling thread: messages about the options, begin, per
 * tensor its messages, tensor and progress, end, then closing messages.
 * After a failure no more calls come (the error is sq_quantize_model's). */
typedef struct sq_quantize_sink {
    void *ctx;
    /* text names what it is about; it has no level prefix and no newline */
    void (*message)(void *ctx, sq_quantize_level level, const char *text);
    /* before the first tensor; weights: the elements this run quantizes */
    void (*begin)(void *ctx, uint64_t weights);
    void (*tensor)(void *ctx, const sq_quantize_tensor_report *r);
    /* after each tensor written: done of total weights */
    void (*progress)(void *ctx, uint64_t done, uint64_t total);
    /* after the last tensor */
    void (*end)(void *ctx);
} sq_quantize_sink;

/* --sequential: off, true sequential (q/k/v, o, gate/up, down, each on the
 * outputs of those before it), or block by block (a block's sites from its
 * full-precision pass) */
enum { SQ_SEQUENTIAL_OFF = 0, SQ_SEQUENTIAL_TRUE = 1, SQ_SEQUENTIAL_BLOCK = 2 };

typedef struct sq_quantize_opts {
    const char *model;  /* Hugging Face directory, llama2.c .bin, .gguf, archive or .squizd */
    const char *out;    /* output .squizd ("-" = standard output); written atomically */
    const char *report; /* JSON report ("-" = standard output), or NULL */
    sq_scheme_rules scheme;
    sq_method_kind method;
    sq_gptq_opts gptq;
    sq_awq_opts awq;
    const char *calib; /* calibration file (squish-calibrate), or NULL; GPTQ and AWQ need one */
    uint32_t enc_flags; /* SQ_ENC_* for the calibrated codecs' own algorithms (ablations; 0 = none) */
    int hessian_diag;   /* GPTQ and the calibrated codecs see only the diagonal of each XᵀX */
    int threads;       /* worker threads (>= 1); the output does not depend on it */
    int zstd;          /* zstd level for every part, 1..19, or 0 = none */
    int tca_tbe;       /* code bf16 parts with TCA-TBE (lossless; others as zstd says) */
    int shard_k, shard_n; /* only shard k of n (blocks by layer ranges), or 0, 0 = the whole model */
    int no_bundle;     /* 1: do not embed the model's config and tokenizer files (squish/bundle.h) */
    /* --sequential (sequential.h): each block quantized with the statistics
     * of the hidden states through the already-quantized blocks; needs calib
     * and calib_texts (the calibration text, to redraw calib's windows) */
    int sequential; /* SQ_SEQUENTIAL_* */
    const char *const *calib_texts;
    int n_calib_texts;
    const char *seq_stats; /* write the statistics the sequential pass gathered (HDF5), or NULL */
    sq_alloc_opts alloc; /* --target-bpw: a scheme per tensor from candidates (alloc_model.h); needs calib */
    sq_quantize_sink sink;
} sq_quantize_opts;

typedef struct sq_quantize_result {
    uint32_t tensors;          /* written */
    uint64_t weights;          /* their elements */
    uint64_t calib_repairs;    /* XᵀX sites symmetrized (a calibration file of squish <= 0.1.0) */
    char model_sha256[65];     /* provenance.model_content_sha256 */
} sq_quantize_result;

/* Defaults: RTN, all cores, GPTQ damping 0.01 and blocks of 128, AWQ's
 * 20-point grid with clipping; everything else empty. */
void sq_quantize_opts_init(sq_quantize_opts *o);

/* Does it all (see the top of this file). Errors name what is wrong:
 * SQ_EUSAGE for options that do not fit together or a calibration file of
 * another model, SQ_EIO, SQ_ECORRUPT (also a model that does not match its
 * configuration, non-finite weights), SQ_EUNSUPPORTED, SQ_ENOMEM. On
 * failure no output file is left behind, except that a report that cannot
 * be written (SQ_EIO) comes after the output was committed. res may be NULL. */
sq_status sq_quantize_model(const sq_quantize_opts *o, sq_quantize_result *res, sq_err *err);

/* Which of n shards (1..n) a tensor belongs to under --shard K/N: a block's
 * tensors by contiguous layer ranges (sq_shard_layers), embeddings to the
 * first shard, everything else to the last. */
int sq_quantize_shard_of(const char *name, uint32_t n_layers, int n);

#endif
