/* Calibration statistics: for the input of every linear layer, the sum of
 * outer products XᵀX (the GPTQ Hessian up to a factor), the mean and the
 * maximum of |x| per input channel, and the token count. Collected by
 * running the reference runtime over text; stored in HDF5 (spec/calib-hdf5.md). */
#ifndef SQUISH_CALIB_H
#define SQUISH_CALIB_H

#include <stdint.h>

#include "runtime.h"
#include "squish/error.h"

#define SQ_CALIB_FORMAT "squish-calib"
#define SQ_CALIB_VERSION 1

/* Statistics of one site (one linear-layer input) of one layer. */
typedef struct sq_calib_site {
    uint32_t n;       /* input channels */
    uint64_t tokens;  /* rows of X accumulated */
    double *xtx;      /* [n][n] sum of x xᵀ (full symmetric matrix) */
    double *abs_mean; /* [n] mean |x| */
    float *abs_max;   /* [n] max |x| */
} sq_calib_site;

/* What the statistics were computed from. */
typedef struct sq_calib_info {
    char model_sha256[65]; /* identity of the model (sq_model_identity) */
    char text_sha256[65];  /* SHA-256 of the calibration text files' bytes, in order */
    uint32_t n_layers, hidden, attn_out, inter;
    uint64_t samples;  /* windows drawn */
    uint32_t seqlen;   /* tokens per window */
    uint64_t seed;
    char *provenance;  /* JSON text: tool, version, command line, texts; malloc'd */
} sq_calib_info;

/* Per-vocabulary-entry statistics over the calibration positions: how
 * often each entry was an input token (the embedding rows read) and the
 * mean probability the model gave it (softmax of the float32 logits). */
typedef struct sq_calib_vocab {
    uint32_t n;          /* vocabulary entries */
    uint64_t positions;  /* positions counted */
    uint64_t *count;     /* [n] input tokens equal to the entry */
    double *mean_prob;   /* [n] mean predicted probability (the accumulator holds sums) */
} sq_calib_vocab;

/* Accumulator held in memory while calibrating layers [layer0, layer1). */
typedef struct sq_calib_acc {
    sq_calib_info info;
    uint32_t layer0, layer1;
    sq_calib_site *sites; /* [(layer - layer0) * SQ_SITE_COUNT + site] */
    /* with the last layer (layer1 == n_layers): the output layer's input
     * (the final norm's output, tapped as layer n_layers) and the vocabulary
     * statistics (sq_calib_acc_window) */
    int has_output;
    sq_calib_site output;
    sq_calib_vocab vocab;
    int n_threads;
    sq_status status; /* first error seen by the tap (NaN activations) */
    sq_err err;
    int lower_stale; /* the tap has summed upper triangles since the last sq_calib_acc_symmetrize */
    double *xp;      /* the tap's scratch: activations in float64 panels, 64-byte aligned, kept across calls */
    size_t xp_cap;   /* its size in doubles */
    double *vocab_e; /* scratch of sq_calib_acc_window: exp(l - max) of a chunk of positions */
} sq_calib_acc;

const char *sq_site_name(sq_site s);
/* Which site feeds a tensor with a canonical name (squish/llama_names.h);
 * 0 if it is not the weight of a block's linear layer. */
int sq_calib_site_of(const char *name, uint32_t *layer, sq_site *site);

sq_status sq_calib_acc_init(sq_calib_acc *a, const sq_rt_config *cfg, uint32_t layer0, uint32_t layer1, int n_threads,
                            sq_err *err);
void sq_calib_acc_free(sq_calib_acc *a);
/* The runtime tap (ctx = sq_calib_acc). Adds X to the site's sums. XᵀX is
 * summed in float64 with exact products in token order (xtx_kernel.h), so
 * the sums are the same bits on every machine, ISA and thread count. Only
 * the upper triangle is summed; sq_calib_acc_symmetrize copies it to the
 * lower one (once, not per window), which sq_calib_write requires. */
void sq_calib_tap(void *ctx, uint32_t layer, sq_site site, const float *x, uint32_t T, uint32_t n);
void sq_calib_acc_symmetrize(sq_calib_acc *a);
/* Adds one window's vocabulary statistics (when has_output): its T input
 * tokens and the T x vocab logits of its positions. Each position's softmax
 * is taken in float64 in index order and added in position order, so the
 * sums do not depend on the thread count. SQ_ECORRUPT on a non-finite logit
 * (the sums may then hold part of the window: discard the accumulator). */
sq_status sq_calib_acc_window(sq_calib_acc *a, const int32_t *tokens, const float *logits, uint32_t T, sq_err *err);
void sq_calib_vocab_free(sq_calib_vocab *v);

/* Draws `samples` windows of `seqlen` tokens from ids with a seeded PRNG
 * (splitmix64), as start offsets. */
sq_status sq_calib_draw(uint64_t n_ids, uint32_t seqlen, uint64_t samples, uint64_t seed, uint64_t *starts,
                        sq_err *err);

/* Reads and tokenizes the text files as squish-calibrate does (UTF-8,
 * line ends normalised to LF, no BOS/EOS, ids concatenated in order) and
 * gives text_sha256, the SHA-256 of the files' bytes in order, which the
 * calibration file records. */
struct sq_tokenizer;
sq_status sq_calib_text_ids(struct sq_tokenizer *tk, const char *const *paths, int n_paths, int32_t **ids, uint64_t *n_ids,
                            char text_sha256[65], sq_err *err);

/* HDF5 I/O. write: atomically (temporary file + rename); the file is
 * byte-for-byte the same for the same statistics. */
sq_status sq_calib_write(const char *path, const sq_calib_acc *a, sq_err *err);

/* A calibration file opened for reading one site at a time. */
typedef struct sq_calib_file sq_calib_file;
sq_calib_file *sq_calib_open(const char *path, sq_err *err);
void sq_calib_close(sq_calib_file *f);
const sq_calib_info *sq_calib_file_info(const sq_calib_file *f);
int sq_calib_has_layer(const sq_calib_file *f, uint32_t layer);
/* Reads one site; checks shapes and finiteness of XᵀX. An XᵀX that is
 * asymmetric by rounding only (files of squish ≤ 0.1.0 made under some BLAS
 * kernels) is repaired: each such pair becomes its mean, and the file counts
 * the site (sq_calib_file_repairs) so the tool can warn. A larger asymmetry
 * is SQ_ECORRUPT. */
sq_status sq_calib_read_site(sq_calib_file *f, uint32_t layer, sq_site site, sq_calib_site *out, sq_err *err);
/* Sites repaired so far by sq_calib_read_site, and the largest relative
 * difference of a pair, |a - b| / sqrt(xtx_ii xtx_jj). */
uint64_t sq_calib_file_repairs(const sq_calib_file *f, double *max_rel);
void sq_calib_site_free(sq_calib_site *s);
/* Whether the file holds the output layer's input (/output/lm_head_in) and
 * the vocabulary statistics (/vocab): files of older squish-calibrate lack them. */
int sq_calib_has_output(const sq_calib_file *f);
/* The output layer's input statistics (n = hidden_size); checked as
 * sq_calib_read_site checks a layer's site. SQ_EUSAGE when absent. */
sq_status sq_calib_read_output(sq_calib_file *f, sq_calib_site *out, sq_err *err);
/* The vocabulary statistics; SQ_EUSAGE when absent, SQ_ECORRUPT when
 * mis-shaped, negative or not finite. */
sq_status sq_calib_read_vocab(sq_calib_file *f, sq_calib_vocab *out, sq_err *err);
/* XᵀX / tokens as float (n x n, malloc'd; NULL when out of memory): the
 * per-token mean of x xᵀ, for output-error measures. With scale, the
 * Hessian of the inputs x / scale (both axes divided). */
float *sq_calib_site_hessian(const sq_calib_site *s, const float *scale);

/* Merges calibration files of one model into out: sites present in several
 * inputs add (XᵀX and token counts sum, means combine by token weight,
 * maxima take the max); sites in one input are copied. *repaired (may be
 * NULL) counts the input sites repaired as sq_calib_read_site does. */
sq_status sq_calib_merge(const char *const *inputs, int n_inputs, const char *out, uint64_t *repaired, sq_err *err);

#endif
