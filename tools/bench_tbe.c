/* squish-bench's TCA-TBE figures: the coded bf16 matrix beside the bf16
 * row of the codec table, and a model's bf16 tensors against bf16 and zstd
 * (--tca-tbe MODEL). Every coded tensor is decoded and multiplied once
 * before timing and compared bit for bit with bf16: a figure for a wrong
 * result is never printed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zstd.h>

#include "bench_tbe.h"
#include "cli.h"
#include "squish/codec.h"
#include "squish/fp.h"
#include "squish/model.h"
#include "squish/tca_tbe.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct decode_job {
    const sq_tbe *t;
    uint16_t *out;
} decode_job;
static void decode_range(void *ctx, uint64_t b0, uint64_t b1) {
    decode_job *j = ctx;
    sq_tbe_decode_blocks(j->t, b0, b1, j->out + b0 * SQ_TBE_BLOCK);
}

int bench_tbe_row(const uint16_t *v, uint64_t rows, uint64_t cols, const float *x, double min_time, int threads,
                  bench_flush_fn flush, double bw, double bf16_gemv_s) {
    const uint64_t n = rows * cols;
    uint8_t *c;
    uint64_t size;
    sq_err err;
    double t0 = now();
    if (sq_tbe_encode(v, n, &c, &size, &err)) return cli_fail(&err);
    double t_enc = now() - t0;
    sq_tbe t;
    char why[300];
    uint16_t *b16 = malloc(n * sizeof *b16);
    float *f = malloc(n * sizeof *f), *y = malloc(rows * sizeof *y), *yb = malloc(rows * sizeof *yb);
    int rc = EXIT_OK;
    if (!b16 || !f || !y || !yb) {
        fprintf(stderr, "squish-bench: out of memory for the TCA-TBE row\n");
        rc = EXIT_RESOURCE;
        goto out;
    }
    if (sq_tbe_open(&t, c, size, n, why, sizeof why)) {
        fprintf(stderr, "squish-bench: internal error: the coded matrix does not check: %s\n", why);
        rc = EXIT_INTERNAL;
        goto out;
    }
    /* decode to f32 as a reader does: the part to bf16, then the bf16 codec */
    const sq_codec *bf16 = sq_codec_by_name("bf16");
    sq_tview tv = {.codec = bf16, .rows = rows, .cols = cols, .nparts = 1};
    tv.part[0] = b16;
    decode_job job = {&t, b16};
    double t_dec = 1e30;
    for (int rep = 0; rep < 3; rep++) {
        t0 = now();
        sq_parallel_for(threads, t.n_blocks, decode_range, &job);
        sq_decode_mt(&tv, f, threads);
        double dt = now() - t0;
        if (dt < t_dec) t_dec = dt;
    }
    sq_tbe_gemv(&t, rows, cols, x, y, 0, rows);
    sq_gemv_for(bf16, sq_tbe_isa(sq_isa_active()))(&tv, x, yb, 0, rows);
    if (memcmp(b16, v, n * sizeof *v) || memcmp(y, yb, rows * sizeof *y)) {
        fprintf(stderr, "squish-bench: internal error: the coded matrix does not decode or multiply as bf16 does\n");
        rc = EXIT_INTERNAL;
        goto out;
    }
    double t_g = 1e30, spent = 0;
    for (int reps = 0; spent < min_time || reps < 3; reps++) {
        flush();
        double t1 = now();
        sq_tbe_gemv(&t, rows, cols, x, y, 0, rows);
        double dt = now() - t1;
        if (dt < t_g) t_g = dt;
        spent += dt;
    }
    double gbs = (double)size / t_g / 1e9;
    cli_progress_clear();
    printf("%-24s %7.3f %10.1f %10.2f %11.2f %6.0f%% %11s %7s\n", "bf16+tca-tbe", 8.0 * (double)size / (double)n,
           (double)n * 2 / t_enc / 1e6, (double)n * 4 / t_dec / 1e9, gbs, 100.0 * gbs / bw, "-", "-");
    printf("#   bf16+tca-tbe: lossless, %.1f%% of bf16's bytes; its GEMV reads the coded bytes: %.0f us = %.2fx the bf16 "
           "GEMV's %.0f us (this run, this matrix, cold caches; bit-identical results)\n",
           100.0 * (double)size / (double)(2 * n), t_g * 1e6, t_g / bf16_gemv_s, bf16_gemv_s * 1e6);
    fflush(stdout);
out:
    free(c), free(b16), free(f), free(y), free(yb);
    return rc;
}

/* ---------------- a model's bf16 tensors ---------------- */
typedef struct tbe_tensor {
    const char *name;
    int cls;
    uint64_t rows, cols; /* rows = 0: not a matrix (no GEMV) */
    uint64_t n;
    uint16_t *v;          /* the values */
    uint8_t *coded;
    uint64_t coded_size, escapes;
    void *z;              /* the zstd frame */
    size_t z_size;
    sq_tbe t;
} tbe_tensor;

#define MAX_CLASSES 32
typedef struct tbe_class {
    char name[64];
    int tensors, matrices;
    uint64_t n, coded, zstd, escapes;
    double t_dec, t_zdec, t_bf16, t_tbe; /* best pass times */
} tbe_class;

/* "model.layers.3.self_attn.q_proj.weight" -> "self_attn.q_proj"; 1-D tensors -> "norms (1-D)" */
static void class_name(const char *name, int one_d, char *out, size_t len) {
    if (one_d) {
        snprintf(out, len, "norms (1-D)");
        return;
    }
    const char *s = !strncmp(name, "model.", 6) ? name + 6 : name;
    if (!strncmp(s, "layers.", 7)) {
        s += 7;
        while (*s >= '0' && *s <= '9') s++;
        if (*s == '.') s++;
    }
    snprintf(out, len, "%s", s);
    size_t k = strlen(out);
    if (k > 7 && !strcmp(out + k - 7, ".weight")) out[k - 7] = 0;
}

typedef struct zstd_job {
    tbe_tensor *ts;
    int level;
    int failed;
} zstd_job;
static void zstd_range(void *ctx, uint64_t i0, uint64_t i1) {
    zstd_job *j = ctx;
    ZSTD_CCtx *cc = ZSTD_createCCtx();
    for (uint64_t i = i0; cc && i < i1; i++) { /* as the container's writer frames a part */
        tbe_tensor *t = &j->ts[i];
        size_t cap = ZSTD_compressBound((size_t)t->n * 2);
        t->z = malloc(cap);
        if (!t->z) break;
        ZSTD_CCtx_reset(cc, ZSTD_reset_session_and_parameters);
        ZSTD_CCtx_setParameter(cc, ZSTD_c_compressionLevel, j->level);
        ZSTD_CCtx_setParameter(cc, ZSTD_c_contentSizeFlag, 1);
        ZSTD_CCtx_setParameter(cc, ZSTD_c_checksumFlag, 0);
        size_t r = ZSTD_compress2(cc, t->z, cap, t->v, (size_t)t->n * 2);
        if (ZSTD_isError(r)) { free(t->z); t->z = NULL; break; }
        t->z_size = r;
    }
    if (!cc) j->failed = 1;
    ZSTD_freeCCtx(cc);
}

/* bf16 values of a model tensor, in a buffer of their own */
static uint16_t *tensor_bf16(const sq_model *m, const sq_model_tensor *mt, uint64_t n, sq_err *err) {
    uint16_t *v = malloc((n ? n : 1) * sizeof *v);
    if (!v) { sq_err_set(err, SQ_ENOMEM, "out of memory for %s", mt->name); return NULL; }
    if (mt->data && !mt->rope_heads) {
        memcpy(v, mt->data, (size_t)n * 2);
        return v;
    }
    float *f = malloc((n ? n : 1) * sizeof *f);
    if (!f || sq_model_tensor_f32(m, mt, f, err)) {
        if (!f) sq_err_set(err, SQ_ENOMEM, "out of memory for %s", mt->name);
        free(f), free(v);
        return NULL;
    }
    for (uint64_t i = 0; i < n; i++) v[i] = sq_f32_to_bf16(f[i]); /* exact: the values were bf16 */
    free(f);
    return v;
}

static int fail_msg(int rc, const char *fmt, const char *what) {
    fprintf(stderr, "squish-bench: ");
    fprintf(stderr, fmt, what);
    fprintf(stderr, "\n");
    return rc;
}

int bench_tbe_model(const char *model, int zstd_level, double min_time, int threads, bench_flush_fn flush) {
    sq_err err = {0};
    sq_model *m = sq_model_open(model, &err);
    if (!m) return cli_fail(&err);
    tbe_tensor *ts = calloc(m->n_tensors ? m->n_tensors : 1, sizeof *ts);
    tbe_class cl[MAX_CLASSES];
    int ncl = 0, nt = 0, rc = EXIT_OK;
    uint64_t max_n = 1, max_cols = 1, max_rows = 1;
    memset(cl, 0, sizeof cl);
    if (!ts) { sq_model_close(m); return fail_msg(EXIT_RESOURCE, "out of memory%s", ""); }
    cli_progress_start("coding", m->n_tensors, "tensors");
    for (uint32_t i = 0; i < m->n_tensors; i++) {
        cli_progress_update(i);
        const sq_model_tensor *mt = &m->tensors[i];
        if (mt->dtype != SQ_DT_BF16) continue;
        tbe_tensor *t = &ts[nt];
        t->name = mt->name;
        t->n = sq_model_tensor_elems(mt);
        if (mt->ndim == 2) t->rows = mt->dims[0], t->cols = mt->dims[1];
        char cname[64];
        class_name(mt->name, mt->ndim < 2, cname, sizeof cname);
        for (t->cls = 0; t->cls < ncl && strcmp(cl[t->cls].name, cname); t->cls++) {}
        if (t->cls == ncl) {
            if (ncl == MAX_CLASSES) { rc = fail_msg(EXIT_USAGE, "%s has more than 32 kinds of bf16 tensors", model); break; }
            snprintf(cl[ncl++].name, sizeof cl[0].name, "%s", cname);
        }
        if (!(t->v = tensor_bf16(m, mt, t->n, &err))) { rc = cli_fail(&err); break; }
        if (sq_tbe_encode(t->v, t->n, &t->coded, &t->coded_size, &err)) { rc = cli_fail(&err); break; }
        char why[300];
        if (sq_tbe_open(&t->t, t->coded, t->coded_size, t->n, why, sizeof why)) {
            rc = fail_msg(EXIT_INTERNAL, "internal error: a coded tensor does not check: %s", why);
            break;
        }
        t->escapes = t->t.n_escapes;
        if (t->n > max_n) max_n = t->n;
        if (t->cols > max_cols) max_cols = t->cols;
        if (t->rows > max_rows) max_rows = t->rows;
        nt++;
    }
    cli_progress_done();
    if (!rc && !nt) rc = fail_msg(EXIT_USAGE, "%s has no bf16 tensors", model);
    uint16_t *out = NULL;
    float *x = NULL, *ya = NULL, *yb = NULL;
    ZSTD_DCtx *dc = NULL;
    if (!rc) {
        cli_note("compressing %d tensors with zstd at level %d for comparison\n", nt, zstd_level);
        zstd_job zj = {ts, zstd_level, 0};
        sq_parallel_for(threads, (uint64_t)nt, zstd_range, &zj);
        for (int i = 0; i < nt; i++)
            if (!ts[i].z) rc = fail_msg(EXIT_RESOURCE, "zstd failed on %s", ts[i].name);
        out = malloc(max_n * 2);
        x = malloc(max_cols * sizeof *x);
        ya = malloc(max_rows * sizeof *ya);
        yb = malloc(max_rows * sizeof *yb);
        dc = ZSTD_createDCtx();
        if (!rc && (!out || !x || !ya || !yb || !dc)) rc = fail_msg(EXIT_RESOURCE, "out of memory%s", "");
    }
    const sq_codec *bf16 = sq_codec_by_name("bf16");
    sq_gemv_fn bf16_gemv = sq_gemv_for(bf16, sq_tbe_isa(sq_isa_active()));
    /* correctness first: every decode and every GEMV as bf16 */
    for (uint64_t i = 0; !rc && i < max_cols; i++) x[i] = (float)((double)((i * 2654435761u) % 1000) / 1000.0 - 0.5);
    for (int i = 0; !rc && i < nt; i++) {
        tbe_tensor *t = &ts[i];
        sq_tbe_decode_blocks(&t->t, 0, t->t.n_blocks, out);
        int bad = memcmp(out, t->v, t->n * 2) != 0;
        if (!bad && t->rows) {
            sq_tview tv = {.codec = bf16, .rows = t->rows, .cols = t->cols, .nparts = 1};
            tv.part[0] = t->v;
            sq_tbe_gemv(&t->t, t->rows, t->cols, x, ya, 0, t->rows);
            bf16_gemv(&tv, x, yb, 0, t->rows);
            bad = memcmp(ya, yb, t->rows * sizeof *ya) != 0;
        }
        if (bad) rc = fail_msg(EXIT_INTERNAL, "internal error: %s does not decode or multiply as bf16 does", t->name);
    }
    cli_progress_start("timing", (uint64_t)ncl, "classes");
    for (int k = 0; !rc && k < ncl; k++) {
        cli_progress_update((uint64_t)k);
        tbe_class *c = &cl[k];
        for (int i = 0; i < nt; i++)
            if (ts[i].cls == k) {
                c->tensors++, c->matrices += ts[i].rows != 0;
                c->n += ts[i].n, c->coded += ts[i].coded_size, c->escapes += ts[i].escapes;
                c->zstd += ts[i].z_size < ts[i].n * 2 ? ts[i].z_size : ts[i].n * 2; /* the writer stores raw otherwise */
            }
        /* decode, one thread, into the same buffer: best pass */
        c->t_dec = c->t_zdec = c->t_bf16 = c->t_tbe = 1e30;
        double spent = 0;
        for (int rep = 0; !rc && (rep < 3 || spent < min_time); rep++) {
            double t0 = now();
            for (int i = 0; i < nt; i++)
                if (ts[i].cls == k) sq_tbe_decode_blocks(&ts[i].t, 0, ts[i].t.n_blocks, out);
            double t1 = now();
            for (int i = 0; i < nt; i++)
                if (ts[i].cls == k) {
                    size_t r = ZSTD_decompressDCtx(dc, out, (size_t)ts[i].n * 2, ts[i].z, ts[i].z_size);
                    if (ZSTD_isError(r) || r != ts[i].n * 2) rc = fail_msg(EXIT_INTERNAL, "zstd does not decode %s", ts[i].name);
                }
            double t2 = now();
            if (t1 - t0 < c->t_dec) c->t_dec = t1 - t0;
            if (t2 - t1 < c->t_zdec) c->t_zdec = t2 - t1;
            spent += t2 - t0;
        }
        if (!c->matrices) continue;
        /* GEMV over the class's matrices, one thread, from cold caches: best pass of each, until the
         * GEMVs took min_time or the passes with their cache flushes 10 x min_time */
        spent = 0;
        double t_start = now();
        for (int rep = 0; rep < 3 || (spent < min_time && now() - t_start < 10 * min_time); rep++) {
            flush();
            double t0 = now();
            for (int i = 0; i < nt; i++)
                if (ts[i].cls == k && ts[i].rows) {
                    sq_tview tv = {.codec = bf16, .rows = ts[i].rows, .cols = ts[i].cols, .nparts = 1};
                    tv.part[0] = ts[i].v;
                    bf16_gemv(&tv, x, ya, 0, ts[i].rows);
                }
            double t1 = now();
            flush();
            double t2 = now();
            for (int i = 0; i < nt; i++)
                if (ts[i].cls == k && ts[i].rows) sq_tbe_gemv(&ts[i].t, ts[i].rows, ts[i].cols, x, ya, 0, ts[i].rows);
            double t3 = now();
            if (t1 - t0 < c->t_bf16) c->t_bf16 = t1 - t0;
            if (t3 - t2 < c->t_tbe) c->t_tbe = t3 - t2;
            spent += (t1 - t0) + (t3 - t2);
        }
    }
    cli_progress_done();
    if (!rc) {
        printf("# TCA-TBE on %s: %d bf16 tensors; isa %s; decode and GEMV on 1 thread; zstd level %d, one frame per tensor\n"
               "# (what --zstd %d stores). DEC: GB/s of bf16 output, best pass over the class's tensors. GEMV: us for one\n"
               "# GEMV over each of the class's matrices, cold caches, best of at least 3 passes. Every tensor decodes bit\n"
               "# for bit and every coded GEMV equals the bf16 GEMV bit for bit (checked before timing). x = ratio to bf16.\n",
               model, nt, sq_isa_name(sq_tbe_isa(sq_isa_active())), zstd_level, zstd_level);
        printf("%-26s %3s %10s %9s %9s %6s %9s %6s %6s %9s %9s %6s %9s %9s %6s\n", "CLASS", "N", "VALUES", "BF16_MB", "TBE_MB",
               "TBE_x", "ZSTD_MB", "ZSTD_x", "ESC%", "TBE_GB/s", "ZSTD_GB/s", "DEC_x", "BF16_us", "TBE_us", "GEMV_x");
        tbe_class tot = {.name = "TOTAL"};
        tot.t_dec = tot.t_zdec = tot.t_bf16 = tot.t_tbe = 0;
        for (int k = 0; k <= ncl; k++) {
            tbe_class *c = k < ncl ? &cl[k] : &tot;
            if (k < ncl) {
                tot.tensors += c->tensors, tot.matrices += c->matrices, tot.n += c->n, tot.coded += c->coded;
                tot.zstd += c->zstd, tot.escapes += c->escapes, tot.t_dec += c->t_dec, tot.t_zdec += c->t_zdec;
                if (c->matrices) tot.t_bf16 += c->t_bf16, tot.t_tbe += c->t_tbe;
            }
            double b = 2.0 * (double)c->n;
            char g1[16] = "-", g2[16] = "-", g3[16] = "-";
            if (c->matrices || (k == ncl && tot.matrices)) {
                snprintf(g1, sizeof g1, "%.0f", c->t_bf16 * 1e6);
                snprintf(g2, sizeof g2, "%.0f", c->t_tbe * 1e6);
                snprintf(g3, sizeof g3, "%.2f", c->t_tbe / c->t_bf16);
            }
            printf("%-26s %3d %10llu %9.3f %9.3f %6.3f %9.3f %6.3f %6.2f %9.2f %9.2f %6.2f %9s %9s %6s\n", c->name, c->tensors,
                   (unsigned long long)c->n, b / 1e6, (double)c->coded / 1e6, (double)c->coded / b, (double)c->zstd / 1e6,
                   (double)c->zstd / b, 100.0 * (double)c->escapes / (double)c->n, b / c->t_dec / 1e9, b / c->t_zdec / 1e9,
                   c->t_zdec / c->t_dec, g1, g2, g3);
        }
        printf("# TBE_x, ZSTD_x: bytes against bf16's; DEC_x: TCA-TBE decode speed over zstd's; GEMV_x: coded GEMV time over\n"
               "# the bf16 GEMV's (below 1: faster). GEMV over the embeddings is timed like the others (a runtime looks rows up).\n");
    }
    for (int i = 0; i < nt; i++) free(ts[i].v), free(ts[i].coded), free(ts[i].z);
    free(ts), free(out), free(x), free(ya), free(yb);
    ZSTD_freeDCtx(dc);
    sq_model_close(m);
    return rc;
}
