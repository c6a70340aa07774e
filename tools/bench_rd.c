/* squish-bench --rd: the rate–distortion sweep (bench_rd.h). */
#include "bench_rd.h"

#include <errno.h>
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "calib.h"
#include "cli.h"
#include "describe.h"
#include "quantize_model.h"
#include "rd_points.h"
#include "rd_svg.h"
#include "runtime.h"
#include "squish/container.h"
#include "squish/fileio.h"
#include "squish/hash.h"
#include "squish/model.h"

/* One quantized file and what was measured on it. */
typedef struct rd_row {
    char label[80];   /* "target=2.5" or the scheme */
    char scheme[64];  /* the scheme (explicit runs), "" for targets */
    double target;    /* 0 for explicit schemes */
    char path[4200], report[4200];
    double bpw_mat, bpw_all; /* stored bits per weight over the linear matrices / every tensor */
    uint64_t file_bytes;
    double pred_loss, achieved; /* the allocator's report (targets); NAN otherwise */
    sq_eval_result r;
} rd_row;

typedef struct rd_state {
    const bench_rd_opts *o;
    char dir[4096];
    int own_dir;           /* a temporary folder: removed at the end */
    rd_row *rows;
    int n_rows;
    sq_model *ref_src;     /* the reference model, opened once */
    sq_rt_model ref;       /* loaded while the log-probability cache is not yet written */
    int ref_loaded;
    int32_t *ids;
    uint64_t n_ids;
    sq_eval_opts eo;
    char cache[4200];
    rd_series refs[BENCH_RD_MAX_POINTS];
    int n_refs;
} rd_state;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static const char *base_name(const char *path, char *buf, size_t n) {
    size_t l = strlen(path);
    while (l > 1 && path[l - 1] == '/') l--;
    size_t b = l;
    while (b > 0 && path[b - 1] != '/') b--;
    snprintf(buf, n, "%.*s", (int)(l - b), path + b);
    return buf;
}

/* ---- quantizing one run ---- */

static char progress_what[128]; /* the progress line's task: "quantizing target=2.5" */

static void on_message(void *ctx, sq_quantize_level level, const char *text) {
    if (level == SQ_QUANTIZE_NOTE && cli_quiet) return; /* as squish-quantize */
    cli_progress_clear();
    fprintf(stderr, "%s: %s: %s: %s\n", cli_prog, ((const rd_row *)ctx)->label, level == SQ_QUANTIZE_NOTE ? "note" : "warning", text);
}
static void on_begin(void *ctx, uint64_t weights) {
    snprintf(progress_what, sizeof progress_what, "quantizing %s", ((const rd_row *)ctx)->label);
    cli_progress_start(progress_what, weights, NULL);
}
static void on_progress(void *ctx, uint64_t done, uint64_t total) {
    (void)ctx, (void)total;
    cli_progress_update(done);
}
static void on_end(void *ctx) {
    (void)ctx;
    cli_progress_done();
}

static sq_status quantize_run(rd_state *S, const sq_alloc_opts *cands, rd_row *row, const char *table, sq_err *err) {
    const bench_rd_opts *o = S->o;
    sq_quantize_opts q;
    sq_quantize_opts_init(&q);
    q.model = o->model;
    q.out = row->path;
    q.calib = o->calib;
    q.threads = o->threads;
    q.gptq.act_order = o->act_order;
    /* as squish-quantize: GPTQ for a target's scalar candidates; for a scheme, GPTQ when there are statistics */
    q.method = o->method_given ? o->method : (row->target || o->calib) ? SQ_METHOD_GPTQ : SQ_METHOD_RTN;
    if (row->target) {
        q.alloc = *cands;
        q.alloc.target_bpw = row->target;
        q.alloc.over_all = o->over_all;
        q.alloc.table = table;
        q.report = row->report;
    } else {
        sq_status st = sq_scheme_parse(row->scheme, &q.scheme.codec, q.scheme.params, err);
        if (st) return st;
    }
    q.sink = (sq_quantize_sink){row, on_message, on_begin, NULL, on_progress, on_end};
    sq_status st = sq_quantize_model(&q, NULL, err);
    cli_progress_done();
    return st;
}

/* Stored bits per weight of the file over the linear matrices and over every tensor. */
static sq_status measure_file(rd_row *row, sq_err *err) {
    sq_file *f = sq_open(row->path, err);
    if (!f) return err->status;
    uint64_t e_all = 0, b_all = 0, e_mat = 0, b_mat = 0;
    for (uint32_t i = 0; i < sq_file_ntensors(f); i++) {
        const sq_tensor *t = sq_file_tensor(f, i);
        uint64_t e = tensor_elems(t), b = tensor_raw_bytes(t);
        uint32_t layer;
        sq_site site;
        e_all += e, b_all += b;
        if (sq_calib_site_of(t->name, &layer, &site)) e_mat += e, b_mat += b;
    }
    row->file_bytes = sq_file_header(f)->file_size;
    row->bpw_all = e_all ? 8.0 * (double)b_all / (double)e_all : 0;
    row->bpw_mat = e_mat ? 8.0 * (double)b_mat / (double)e_mat : 0;
    sq_close(f);
    return SQ_OK;
}

/* The allocator's predicted loss and achieved bpw from the run's report. */
static sq_status read_report(rd_row *row, sq_err *err) {
    json_object *root = json_object_from_file(row->report), *a, *v;
    if (!root) return sq_err_set(err, SQ_EIO, "%s: cannot read the quantizer's report", row->report);
    if (json_object_object_get_ex(root, "allocation", &a)) {
        if (json_object_object_get_ex(a, "predicted_loss", &v)) row->pred_loss = json_object_get_double(v);
        if (json_object_object_get_ex(a, "achieved_bpw", &v)) row->achieved = json_object_get_double(v);
    }
    json_object_put(root);
    return SQ_OK;
}

/* ---- evaluating one file (squish-verify --eval-ids --reference on the exact path) ---- */

static sq_status eval_file(rd_state *S, rd_row *row, sq_err *err) {
    sq_file *f = sq_open(row->path, err);
    if (!f) return err->status;
    sq_rt_model m;
    sq_status st = sq_rt_load_file(f, &m, err);
    if (st) {
        sq_close(f);
        return st;
    }
    m.fast_kernels = SQ_RT_PATH_EXACT; /* what squish-verify evaluates unless given --fast */
    for (uint64_t i = 0; i < S->n_ids && !st; i++)
        if ((uint32_t)S->ids[i] >= m.cfg.vocab)
            st = sq_err_set(err, SQ_EUSAGE, "%s: token id %d is outside the model's vocabulary of %u", S->o->ids, S->ids[i], m.cfg.vocab);
    int cached = !st && sq_rt_ref_cache_matches(S->ids, S->n_ids, m.cfg.vocab, &S->eo);
    if (!st && !cached && !S->ref_loaded) {
        st = sq_rt_load_model(S->ref_src, &S->ref, S->o->threads, err);
        S->ref_loaded = !st;
    }
    if (!st) {
        cli_progress_start("evaluating", 0, "windows");
        S->eo.progress = cli_progress_cb;
        st = sq_rt_eval(&m, cached ? NULL : &S->ref, S->ids, S->n_ids, &S->eo, &row->r, err);
        cli_progress_done();
    }
    if (!st && S->ref_loaded && sq_rt_ref_cache_matches(S->ids, S->n_ids, m.cfg.vocab, &S->eo)) {
        sq_rt_free(&S->ref); /* the cache holds the reference's log-probabilities now */
        S->ref_loaded = 0;
    }
    sq_rt_free(&m);
    sq_close(f);
    return st;
}

/* ---- the outputs ---- */

static const char *over_text(const bench_rd_opts *o) { return o->over_all ? "all tensors" : "the blocks' linear matrices"; }
static double row_bpw(const bench_rd_opts *o, const rd_row *r) { return o->over_all ? r->bpw_all : r->bpw_mat; }

static void print_header(const bench_rd_opts *o, const rd_state *S) {
    char mb[256], rb[256];
    printf("# squish-bench --rd %s: KL-divergence to %s over %s (ctx %u%s), exact path; bpw over %s\n",
           base_name(o->model, mb, sizeof mb), base_name(o->reference ? o->reference : o->model, rb, sizeof rb), o->ids, o->ctx,
           o->second_half ? ", llama.cpp scoring" : "", over_text(o));
    (void)S;
    printf("%-26s %8s %8s %8s %11s %11s %11s %10s %8s %11s\n", "RUN", "BPW", "BPW_MAT", "BPW_ALL", "FILE_BYTES", "KLD_MEAN",
           "KLD_P99", "PPL", "TOP1", "PRED_LOSS");
    fflush(stdout);
}

static void print_row(const bench_rd_opts *o, const rd_row *r) {
    char pl[32] = "-";
    if (!isnan(r->pred_loss)) snprintf(pl, sizeof pl, "%.4e", r->pred_loss);
    printf("%-26s %8.4f %8.4f %8.4f %11llu %11.6g %11.6g %10.4f %8.4f %11s\n", r->label, row_bpw(o, r), r->bpw_mat, r->bpw_all,
           (unsigned long long)r->file_bytes, r->r.kld_mean, r->r.kld_p99, r->r.ppl, r->r.top1, pl);
    fflush(stdout);
}

static char *make_tsv(const rd_state *S) {
    const bench_rd_opts *o = S->o;
    size_t cap = 512 + (size_t)S->n_rows * 512;
    char *t = malloc(cap);
    if (!t) return NULL;
    size_t k = (size_t)snprintf(t, cap, "run\tkind\ttarget_bpw\tscheme\tbpw\tbpw_repeating_matrices\tbpw_all\tfile_bytes\tkld_mean\t"
                                        "kld_p99\tkld_max\tppl\tref_ppl\ttop1\twindows\tpredicted_loss\n");
    for (int i = 0; i < S->n_rows; i++) {
        const rd_row *r = &S->rows[i];
        char tg[32] = "", pl[32] = "";
        if (r->target) snprintf(tg, sizeof tg, "%.4f", r->target);
        if (!isnan(r->pred_loss)) snprintf(pl, sizeof pl, "%.6e", r->pred_loss);
        k += (size_t)snprintf(t + k, cap - k, "%s\t%s\t%s\t%s\t%.6f\t%.6f\t%.6f\t%llu\t%.6e\t%.6e\t%.6e\t%.6f\t%.6f\t%.6f\t%llu\t%s\n",
                              r->label, r->target ? "target" : "scheme", tg, r->scheme, row_bpw(o, r), r->bpw_mat, r->bpw_all,
                              (unsigned long long)r->file_bytes, r->r.kld_mean, r->r.kld_p99, r->r.kld_max, r->r.ppl, r->r.ref_ppl,
                              r->r.top1, (unsigned long long)r->r.windows, pl);
    }
    return t;
}

static char *make_json(const rd_state *S) {
    const bench_rd_opts *o = S->o;
    json_object *root = json_object_new_object(), *pts = json_object_new_array(), *refs = json_object_new_array();
    json_object_object_add(root, "schema", json_object_new_string("squish-bench-rd/1"));
    json_object_object_add(root, "model", json_object_new_string(o->model));
    json_object_object_add(root, "reference", json_object_new_string(o->reference ? o->reference : o->model));
    if (o->calib) json_object_object_add(root, "calib", json_object_new_string(o->calib));
    json_object_object_add(root, "over", json_object_new_string(o->over_all ? "all" : "matrices"));
    if (o->candidates) json_object_object_add(root, "candidates", json_object_new_string(o->candidates));
    json_object_object_add(root, "ids", json_object_new_string(o->ids));
    json_object_object_add(root, "ctx", json_object_new_int64(o->ctx));
    json_object_object_add(root, "scoring", json_object_new_string(o->second_half ? "llama.cpp" : "all"));
    json_object_object_add(root, "path", json_object_new_string("exact"));
    for (int i = 0; i < S->n_rows; i++) {
        const rd_row *r = &S->rows[i];
        json_object *p = json_object_new_object();
        json_object_object_add(p, "label", json_object_new_string(r->label));
        json_object_object_add(p, "kind", json_object_new_string(r->target ? "target" : "scheme"));
        if (r->target) json_object_object_add(p, "target_bpw", json_object_new_double(r->target));
        else json_object_object_add(p, "scheme", json_object_new_string(r->scheme));
        json_object_object_add(p, "bpw", json_object_new_double(row_bpw(o, r)));
        json_object_object_add(p, "bpw_repeating_matrices", json_object_new_double(r->bpw_mat));
        json_object_object_add(p, "bpw_all", json_object_new_double(r->bpw_all));
        json_object_object_add(p, "file_bytes", json_object_new_int64((int64_t)r->file_bytes));
        json_object_object_add(p, "kld_mean", json_object_new_double(r->r.kld_mean));
        json_object_object_add(p, "kld_p99", json_object_new_double(r->r.kld_p99));
        json_object_object_add(p, "kld_max", json_object_new_double(r->r.kld_max));
        json_object_object_add(p, "ppl", json_object_new_double(r->r.ppl));
        json_object_object_add(p, "ref_ppl", json_object_new_double(r->r.ref_ppl));
        json_object_object_add(p, "top1_agreement", json_object_new_double(r->r.top1));
        json_object_object_add(p, "windows", json_object_new_int64((int64_t)r->r.windows));
        json_object_object_add(p, "scored_tokens", json_object_new_int64((int64_t)r->r.scored));
        if (!isnan(r->pred_loss)) json_object_object_add(p, "predicted_loss", json_object_new_double(r->pred_loss));
        if (!isnan(r->achieved)) json_object_object_add(p, "allocator_achieved_bpw", json_object_new_double(r->achieved));
        json_object_array_add(pts, p);
    }
    json_object_object_add(root, "points", pts);
    for (int i = 0; i < S->n_refs; i++) {
        json_object *r = json_object_new_object();
        json_object_object_add(r, "file", json_object_new_string(o->points[i]));
        json_object_object_add(r, "name", json_object_new_string(S->refs[i].name));
        json_object_object_add(r, "points", json_object_new_int(S->refs[i].n));
        json_object_object_add(r, "skipped", json_object_new_int(S->refs[i].skipped));
        json_object_array_add(refs, r);
    }
    json_object_object_add(root, "reference_points", refs);
    const char *s = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
    char *t = s ? malloc(strlen(s) + 2) : NULL;
    if (t) sprintf(t, "%s\n", s);
    json_object_put(root);
    return t;
}

static sq_status make_svg(const rd_state *S, char **svg, size_t *len, sq_err *err) {
    const bench_rd_opts *o = S->o;
    int n_t = 0, n_s = 0;
    rd_point *tp = calloc((size_t)S->n_rows + 1, sizeof *tp), *sp = calloc((size_t)S->n_rows + 1, sizeof *sp);
    char (*labels)[32] = calloc((size_t)S->n_rows + 1, sizeof *labels);
    rd_plot_series se[2 + BENCH_RD_MAX_POINTS];
    if (!tp || !sp || !labels) {
        free(tp), free(sp), free(labels);
        return sq_err_set(err, SQ_ENOMEM, "out of memory");
    }
    for (int i = 0; i < S->n_rows; i++) {
        const rd_row *r = &S->rows[i];
        if (r->target) {
            snprintf(labels[i], sizeof labels[i], "%g", r->target);
            tp[n_t++] = (rd_point){labels[i], row_bpw(o, r), r->r.kld_mean};
        } else {
            sp[n_s++] = (rd_point){(char *)r->scheme, row_bpw(o, r), r->r.kld_mean};
        }
    }
    int n = 0;
    if (n_t) se[n++] = (rd_plot_series){"squish --target-bpw", tp, n_t, 1};
    if (n_s) se[n++] = (rd_plot_series){"squish schemes", sp, n_s, 0};
    for (int i = 0; i < S->n_refs; i++) se[n++] = (rd_plot_series){S->refs[i].name, S->refs[i].p, S->refs[i].n, 0};
    char mb[256], rb[256], sub[1024], xl[128];
    const rd_row *r0 = &S->rows[0];
    snprintf(sub, sizeof sub, "%s: KL-divergence to %s over %llu windows of %u tokens%s", base_name(o->model, mb, sizeof mb),
             base_name(o->reference ? o->reference : o->model, rb, sizeof rb), (unsigned long long)r0->r.windows, o->ctx,
             o->second_half ? " (second halves scored, as llama.cpp)" : "");
    snprintf(xl, sizeof xl, "bits per weight over %s", over_text(o));
    rd_plot pl = {"KL-divergence vs bits per weight", sub, xl, se, n, o->x_lo, o->x_hi};
    int dropped = 0, unlabelled = 0;
    sq_status st = rd_svg_render(&pl, svg, len, &dropped, &unlabelled, err);
    if (!st && dropped)
        cli_note("%s: note: %d point%s not drawn (KL-divergence 0, or bpw outside --plot-bpw)\n", cli_prog, dropped, dropped == 1 ? "" : "s");
    if (!st && unlabelled)
        cli_note("%s: note: %d point%s drawn without a label (no free space beside it)\n", cli_prog, unlabelled, unlabelled == 1 ? "" : "s");
    free(tp), free(sp), free(labels);
    return st;
}

/* Writes every output through a temporary file beside it, renamed into
 * place only once all of them are written. */
static sq_status write_outputs(const rd_state *S, sq_err *err) {
    const bench_rd_opts *o = S->o;
    const char *paths[3] = {o->tsv, o->json, o->svg};
    char *bufs[3] = {NULL, NULL, NULL};
    size_t lens[3] = {0, 0, 0};
    sq_tmpout tmp[3];
    int made[3] = {0, 0, 0};
    sq_status st = SQ_OK;
    if (o->tsv && !(bufs[0] = make_tsv(S))) st = sq_err_set(err, SQ_ENOMEM, "out of memory");
    if (!st && o->json && !(bufs[1] = make_json(S))) st = sq_err_set(err, SQ_ENOMEM, "out of memory");
    if (!st && o->svg) st = make_svg(S, &bufs[2], &lens[2], err);
    for (int i = 0; i < 2; i++)
        if (bufs[i]) lens[i] = strlen(bufs[i]);
    for (int i = 0; i < 3 && !st; i++) {
        if (!paths[i] || !strcmp(paths[i], "-")) continue;
        if ((st = sq_tmpout_create(&tmp[i], paths[i], err))) break;
        made[i] = 1;
        FILE *f = fopen(tmp[i].tmp, "wb");
        int bad = !f || fwrite(bufs[i], 1, lens[i], f) != lens[i];
        if (f && fclose(f)) bad = 1;
        if (bad) st = sq_err_set(err, SQ_EIO, "%s: cannot write: %s", paths[i], strerror(errno));
    }
    for (int i = 0; i < 3; i++) {
        if (made[i] && !st) st = sq_tmpout_commit(&tmp[i], err);
        else if (made[i]) sq_tmpout_abort(&tmp[i]);
    }
    for (int i = 0; i < 2 && !st; i++)
        if (paths[i] && !strcmp(paths[i], "-") && (fwrite(bufs[i], 1, lens[i], stdout) != lens[i] || fflush(stdout)))
            st = sq_err_set(err, SQ_EIO, "standard output: cannot write");
    for (int i = 0; i < 3; i++) free(bufs[i]);
    return st;
}

/* ---- the sweep ---- */

static sq_status make_dir(rd_state *S, sq_err *err) {
    const bench_rd_opts *o = S->o;
    if (o->keep) {
        if (mkdir(o->keep, 0777) && errno != EEXIST) return sq_err_set(err, SQ_EIO, "%s: cannot create the folder: %s", o->keep, strerror(errno));
        struct stat sb;
        if (stat(o->keep, &sb) || !S_ISDIR(sb.st_mode)) return sq_err_set(err, SQ_EUSAGE, "--keep %s: not a folder", o->keep);
        snprintf(S->dir, sizeof S->dir, "%s", o->keep);
        return SQ_OK;
    }
    const char *t = getenv("TMPDIR");
    snprintf(S->dir, sizeof S->dir, "%s/squish-rd-XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(S->dir)) return sq_err_set(err, SQ_EIO, "%s: cannot create a temporary folder: %s", S->dir, strerror(errno));
    S->own_dir = 1;
    return SQ_OK;
}

/* Removes what the sweep wrote into its temporary folder, and the folder. */
static void remove_dir(rd_state *S) {
    if (!S->own_dir) return;
    for (int i = 0; i < S->n_rows; i++) {
        unlink(S->rows[i].path);
        if (S->rows[i].report[0]) unlink(S->rows[i].report);
    }
    if (!S->o->ref_logits) unlink(S->cache);
    if (rmdir(S->dir) && !cli_quiet) fprintf(stderr, "%s: warning: %s: cannot remove: %s\n", cli_prog, S->dir, strerror(errno));
}

static sq_status add_rows(rd_state *S, sq_err *err) {
    const bench_rd_opts *o = S->o;
    int n = o->n_targets;
    char list[4096];
    if (o->schemes) {
        if (strlen(o->schemes) >= sizeof list) return sq_err_set(err, SQ_EUSAGE, "--codecs list too long");
        snprintf(list, sizeof list, "%s", o->schemes);
        for (char *save = NULL, *s = strtok_r(list, ",", &save); s; s = strtok_r(NULL, ",", &save)) n++;
    }
    if (n > BENCH_RD_MAX_RUNS) return sq_err_set(err, SQ_EUSAGE, "at most %d runs (targets and schemes)", BENCH_RD_MAX_RUNS);
    if (!(S->rows = calloc((size_t)n, sizeof *S->rows))) return sq_err_set(err, SQ_ENOMEM, "out of memory");
    for (int i = 0; i < o->n_targets; i++) {
        rd_row *r = &S->rows[S->n_rows++];
        r->target = o->targets[i];
        snprintf(r->label, sizeof r->label, "target=%g", r->target);
    }
    if (o->schemes) {
        snprintf(list, sizeof list, "%s", o->schemes);
        for (char *save = NULL, *s = strtok_r(list, ",", &save); s; s = strtok_r(NULL, ",", &save)) {
            const sq_codec *c;
            uint32_t p[SQ_NPARAMS];
            sq_status st = sq_scheme_parse(s, &c, p, err);
            if (st) return st;
            rd_row *r = &S->rows[S->n_rows++];
            sq_scheme_format(c, p, r->scheme, sizeof r->scheme);
            snprintf(r->label, sizeof r->label, "%s", r->scheme);
        }
    }
    for (int i = 0; i < S->n_rows; i++) {
        rd_row *r = &S->rows[i];
        r->pred_loss = r->achieved = NAN;
        for (int j = 0; j < i; j++)
            if (!strcmp(S->rows[j].label, r->label)) return sq_err_set(err, SQ_EUSAGE, "%s is given twice", r->label);
    }
    return SQ_OK;
}

static sq_status prepare(rd_state *S, sq_alloc_opts *cands, sq_err *err) {
    const bench_rd_opts *o = S->o;
    sq_status st = add_rows(S, err);
    if (st) return st;
    memset(cands, 0, sizeof *cands);
    if (o->candidates) {
        if ((st = sq_alloc_parse_candidates(o->candidates, cands, err))) return st;
    } else {
        sq_alloc_default_candidates(cands);
    }
    for (int i = 0; i < o->n_points; i++) { /* a bad reference file fails now, not after an hour of measuring */
        if ((st = rd_points_read(o->points[i], o->over_all, &S->refs[i], err))) return st;
        S->n_refs++;
        if (S->refs[i].skipped)
            cli_note("%s: note: %s: %d point%s, %d entr%s without both kld_mean and the bpw skipped\n", cli_prog, o->points[i],
                     S->refs[i].n, S->refs[i].n == 1 ? "" : "s", S->refs[i].skipped, S->refs[i].skipped == 1 ? "y" : "ies");
    }
    if ((st = sq_read_ids(o->ids, UINT32_MAX, &S->ids, &S->n_ids, err))) return st;
    if (!S->n_ids) return sq_err_set(err, SQ_EUSAGE, "%s: no token ids", o->ids);
    const char *ref = o->reference ? o->reference : o->model;
    if (!(S->ref_src = sq_model_open(ref, err))) return err->status;
    char hex[65];
    if ((st = sq_model_identity(S->ref_src, hex, err))) return st;
    S->eo.ctx = o->ctx;
    S->eo.max_windows = o->windows;
    S->eo.second_half = o->second_half;
    S->eo.n_threads = o->threads;
    sq_unhex32(hex, S->eo.ref_id);
    if ((st = make_dir(S, err))) return st;
    /* without --ref-logits the reference runs once: its log-probabilities are cached in the work folder */
    snprintf(S->cache, sizeof S->cache, "%s/reference.logprobs", S->dir);
    S->eo.ref_cache = o->ref_logits ? o->ref_logits : S->cache;
    for (int i = 0; i < S->n_rows; i++) {
        rd_row *r = &S->rows[i];
        char name[96];
        snprintf(name, sizeof name, "rd-%02d-%s", i + 1, r->label);
        for (char *c = name; *c; c++)
            if (*c == '/' || *c == '=') *c = '-';
        snprintf(r->path, sizeof r->path, "%s/%s.squizd", S->dir, name);
        if (r->target) snprintf(r->report, sizeof r->report, "%s/%s.json", S->dir, name);
    }
    return SQ_OK;
}

int bench_rd(const bench_rd_opts *o) {
    rd_state S;
    memset(&S, 0, sizeof S);
    S.o = o;
    sq_install_signal_cleanup(); /* an interrupted sweep leaves no half-written output, file or cache */
    sq_err err = {0};
    sq_alloc_opts cands;
    sq_status st = prepare(&S, &cands, &err);
    const int table = !((o->json && !strcmp(o->json, "-")) || (o->tsv && !strcmp(o->tsv, "-")));
    if (!st && table) print_header(o, &S);
    const char *alloc_table = NULL; /* the first target's report: the candidates' bytes and losses */
    for (int i = 0; i < S.n_rows && !st; i++) {
        rd_row *r = &S.rows[i];
        double t0 = now();
        st = quantize_run(&S, &cands, r, alloc_table, &err);
        double t1 = now();
        if (!st && r->target && !alloc_table) alloc_table = r->report;
        if (!st) st = measure_file(r, &err);
        if (!st && r->target) st = read_report(r, &err);
        if (!st) st = eval_file(&S, r, &err);
        if (st) {
            if (!strstr(err.msg, r->label)) { /* say which run failed */
                char msg[sizeof err.msg];
                snprintf(msg, sizeof msg, "%s", err.msg);
                sq_err_set(&err, st, "%s: %.*s", r->label, (int)(sizeof msg - 100), msg);
            }
            break;
        }
        cli_note("%s: %s: %.4f bpw, KLD %.6g (quantized in %.1f s, evaluated in %.1f s)\n", cli_prog, r->label, row_bpw(o, r),
                 r->r.kld_mean, t1 - t0, now() - t1);
        if (table) print_row(o, r);
    }
    if (!st) st = write_outputs(&S, &err);
    if (S.own_dir) remove_dir(&S);
    else if (!st && o->keep) cli_note("%s: the quantized files are in %s\n", cli_prog, o->keep);
    if (S.ref_loaded) sq_rt_free(&S.ref);
    sq_model_close(S.ref_src);
    for (int i = 0; i < S.n_refs; i++) rd_series_free(&S.refs[i]);
    free(S.rows);
    free(S.ids);
    return st ? cli_fail(&err) : EXIT_OK;
}
