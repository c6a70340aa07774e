/* The target-bpw allocation over a model (squish-quantize --target-bpw):
 * every tensor of the chosen set is encoded with every candidate scheme
 * that applies to it, each encoding's predicted loss measured, and one
 * candidate per tensor chosen by sq_alloc_solve (alloc.h) so that the set's
 * bits per weight land within ±tol of the target.
 *
 * Predicted loss, per tensor and candidate:
 *  - a blocks' linear layer (it has an XᵀX site): the relative output error
 *    tr(ΔW H ΔWᵀ) / tr(W H Wᵀ), H = XᵀX of the calibration file;
 *  - the output layer, when the calibration file holds its input's XᵀX and
 *    the vocabulary statistics: Σ_v p_v Δw_v H Δw_vᵀ / Σ_v p_v w_v H w_vᵀ,
 *    p_v the entry's mean predicted probability, encoded as a linear layer
 *    (GPTQ, SpQR... with its H);
 *  - the embeddings with the vocabulary statistics: Σ_v f_v ||Δw_v||² /
 *    Σ_v f_v ||w_v||², f_v the entry's smoothed count as an input token;
 *  - otherwise (older calibration files: no XᵀX for them): the relative
 *    weight error ||ΔW||² / ||W||², a weight-only proxy (H = I); the scalar
 *    schemes by RTN, and SpQR with H = I (sq_alloc_encode).
 * mix candidates with row weights choose their block widths by the same
 * weights, so rare entries' rows get fewer bits.
 * Every tensor's loss has weight 1: normalising by the tensor's own output
 * energy makes the figures comparable across layers and kinds (each term is
 * the noise-to-signal ratio the tensor adds to its output), which is the
 * per-layer scaling HIGGS's linearity argument uses with unit coefficients;
 * measured KL-divergence coefficients per layer would refine it.
 *
 * Sizes are the stored bytes of the parts before compression, as
 * squish-inspect and the report count them. */
#ifndef SQUISH_ALLOC_MODEL_H
#define SQUISH_ALLOC_MODEL_H

#include <regex.h>

#include "alloc.h"
#include "method.h"

#define SQ_ALLOC_MAX_CANDS 32
/* Encodings kept in memory between the candidate pass and the writing; the
 * chosen ones beyond it are encoded again (deterministically, same bytes). */
#define SQ_ALLOC_CACHE_BYTES (1ull << 30)

typedef struct sq_alloc_cand {
    const sq_codec *codec;
    uint32_t params[SQ_NPARAMS];
} sq_alloc_cand;

#define SQ_ALLOC_COUNT_PRIOR SQ_METHOD_COUNT_PRIOR

/* sq_method_row_weights (method.h): the row importance the allocator's
 * losses and mix candidates use. */
sq_status sq_alloc_row_weights(sq_method *q, const sq_model_tensor *t, uint64_t rows, double **rw, sq_err *err);
/* The row-weighted loss Σ_r rw_r Δw_r H Δw_rᵀ / Σ_r rw_r w_r H w_rᵀ of a
 * decode dec of w (rows x cols; H cols x cols, or NULL for I), rows in
 * parallel, summed in row order (the same bits at any thread count). */
sq_status sq_alloc_rows_loss(const float *w, const float *dec, uint64_t rows, uint64_t cols, const double *H,
                             const double *rw, int threads, double *loss, sq_err *err);

typedef struct sq_alloc_opts {
    double target_bpw; /* 0: no allocation */
    int over_all;      /* 1: every tensor of two or more dimensions; 0: the blocks' linear matrices */
    sq_alloc_cand cands[SQ_ALLOC_MAX_CANDS];
    int n_cands;       /* 0: the default ladder (sq_alloc_default_candidates) */
    /* sensitivity weights: a tensor's losses times the weight of the first
     * rule whose regex matches its name (1 when none): per-layer coefficients
     * measured elsewhere (KL probes) enter here */
    struct {
        const char *text; /* REGEX=W as given */
        regex_t re;
        double w;
    } weights[16];
    int n_weights;
    const char *table; /* or NULL: the candidates' bytes and losses as an earlier --report measured them
                        * (its "allocation"), instead of encoding every candidate; only the chosen
                        * ones are encoded, and their sizes checked against the table */
    /* measured sensitivity (alloc_probe.h): 0 = none; else the KL-divergence
     * probes run on this many windows of probe_text (tokenized with the
     * model's tokenizer) or probe_ids (token ids), exactly one of them */
    uint32_t probe_windows;
    const char *probe_text, *probe_ids;
} sq_alloc_opts;

/* One tensor of the allocated set: its applicable candidates, measured. */
typedef struct sq_alloc_entry {
    uint32_t tensor; /* index into the model's tensors */
    int n;
    int cand[SQ_ALLOC_MAX_CANDS]; /* index into the candidate list */
    uint64_t bits[SQ_ALLOC_MAX_CANDS];
    double loss[SQ_ALLOC_MAX_CANDS];  /* the proxy as measured (the report's candidates) */
    double kld[SQ_ALLOC_MAX_CANDS];   /* probed KL-divergence (baseline removed), or -1: not probed */
    double pred[SQ_ALLOC_MAX_CANDS];  /* predicted loss: loss, or with probes the KL-divergence fitted to them */
    double weight;                    /* its sensitivity weight */
    double wloss[SQ_ALLOC_MAX_CANDS]; /* weight x pred: what the solver minimizes */
    sq_method_note note[SQ_ALLOC_MAX_CANDS];
    sq_encoded enc[SQ_ALLOC_MAX_CANDS]; /* kept while cached[j] */
    int cached[SQ_ALLOC_MAX_CANDS];
    int pick; /* after sq_alloc_model_plan: the chosen j */
} sq_alloc_entry;

typedef struct sq_alloc_plan {
    const sq_alloc_cand *cands;
    int n_cands;
    sq_alloc_entry *e;
    uint32_t n;
    uint64_t elements;   /* of the set the bpw is taken over */
    uint64_t fixed_bits; /* tensors of that set outside the allocation (norms under --over all) */
    uint64_t budget, tol; /* bits for the allocated tensors */
    sq_alloc_result res;
    int *picks;
    void *table_json; /* the loaded table (json_object *), owning the method names */
    /* the probes (when o->probe_windows): their setting, for the report and a later --alloc-table */
    uint32_t probe_windows, probe_ctx;
    char probe_ids_sha256[65];
    double probe_baseline; /* KL-divergence of the unmodified model against its own cached log-probabilities */
    int probes_run;        /* probes measured in this run (0: all taken from the table) */
} sq_alloc_plan;

/* "S1,S2,..." into o->cands; SQ_EUSAGE naming a bad or repeated scheme. */
sq_status sq_alloc_parse_candidates(const char *list, sq_alloc_opts *o, sq_err *err);
/* The default ladder, about 2 to 8.5 bpw (see the man page). */
void sq_alloc_default_candidates(sq_alloc_opts *o);

/* Encodes tensor t (weights w, rows x cols) with candidate c as the
 * allocation does: sq_method_encode, except that SpQR on a tensor with no
 * XᵀX (the embeddings, the output layer) runs with H = I. */
sq_status sq_alloc_encode(sq_method *q, const char *label, const sq_model_tensor *t, const sq_alloc_cand *c, const float *w,
                          uint64_t rows, uint64_t cols, sq_encoded *e, sq_method_note *note, sq_err *err);

/* Whether tensor t of the model is in the set the bpw is taken over /
 * whether it is allocated (a matrix; under over_all any tensor of two or
 * more dimensions). */
int sq_alloc_in_set(const sq_alloc_opts *o, const sq_model_tensor *t);
int sq_alloc_allocated(const sq_alloc_opts *o, const sq_model_tensor *t);

/* Progress: what = "encoding" (every candidate of a tensor) or "probing";
 * "identity" (done, total 0): the tensor (embeddings, output layer) is
 * weighed with H = I for want of the calibration file's /output and /vocab. */
typedef void (*sq_alloc_note_fn)(void *ctx, const char *what, const char *tensor, int done, int total);

/* Encodes and measures every allocated tensor with its candidates, then
 * solves. q: the method (GPTQ or RTN for the scalar candidates, with its
 * calibration file); order: the model's tensor order. SQ_EUSAGE when the
 * target cannot be met (below the cheapest or above the dearest mix, named
 * in bpw). */
sq_status sq_alloc_model_plan(const sq_alloc_opts *o, sq_method *q, const sq_model *m, const uint32_t *order,
                              sq_alloc_note_fn note, void *note_ctx, sq_alloc_plan *p, sq_err *err);
/* The entry of model tensor index ti, or NULL. */
sq_alloc_entry *sq_alloc_plan_find(sq_alloc_plan *p, uint32_t ti);
void sq_alloc_plan_free(sq_alloc_plan *p);

#endif
