/* squish-bench --rd: a rate–distortion sweep. For each target bpw (the
 * allocator of squish-quantize --target-bpw) and each explicit scheme, the
 * model is quantized (sq_quantize_model) into a temporary folder and its
 * mean KL-divergence to the reference measured on the runtime's exact path
 * (sq_rt_eval, as squish-verify --eval-ids does); the candidates are
 * encoded once, by the first target, whose report the others take as
 * --alloc-table. Writes a table (stdout, TSV), JSON and an SVG plot of KLD
 * (log) against bpw with reference points from JSON files (rd_points.h)
 * on the same axes. Every output is written only after every measurement
 * succeeded, each atomically. */
#ifndef SQUISH_BENCH_RD_H
#define SQUISH_BENCH_RD_H

#include <stdint.h>

#include "method.h"

#define BENCH_RD_MAX_RUNS 32
#define BENCH_RD_MAX_POINTS 8

typedef struct bench_rd_opts {
    const char *model;     /* the source model to quantize */
    const char *reference; /* the KL-divergence reference; NULL: the model */
    const char *calib;     /* XᵀX statistics (squish-calibrate); needed by targets, GPTQ */
    double targets[BENCH_RD_MAX_RUNS];
    int n_targets;
    const char *schemes;    /* comma-separated explicit schemes, or NULL */
    const char *candidates; /* --candidates for the targets, or NULL (the default ladder) */
    int over_all;           /* bpw over every tensor (and allocate embeddings and lm_head) */
    sq_method_kind method;  /* for the targets' scalar candidates and the schemes */
    int method_given, act_order;
    const char *ids;        /* the evaluation's token ids */
    uint32_t ctx, windows;  /* window length; at most this many windows (0: all) */
    int second_half;        /* score as llama.cpp does */
    const char *ref_logits; /* cache of the reference's log-probabilities, or NULL: one in the work folder */
    const char *points[BENCH_RD_MAX_POINTS];
    int n_points;
    double x_lo, x_hi;      /* the plot's bpw axis; both 0: fitted */
    const char *json, *tsv, *svg; /* outputs, or NULL ("-" = standard output for json and tsv) */
    const char *keep;       /* keep the quantized files and reports in this folder, or NULL: a removed temporary one */
    int threads;
} bench_rd_opts;

/* Checks the inputs, runs the sweep, writes the outputs; returns the exit code. */
int bench_rd(const bench_rd_opts *o);

#endif
