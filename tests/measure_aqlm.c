/* Measures AQLM against GPTQ on the linear layers of a model with a
 * calibration file: per matrix the proxy loss tr(ΔW H ΔWᵀ)/tr(W H Wᵀ),
 * bpw and encode time, then totals. Not a test (minutes of CPU).
 *
 *   measure_aqlm --gemv     (GEMV speed, random 4096 x 4096)
 *   measure_aqlm MODEL CALIB [--layers N] [--threads N] [--shared] [--1x16 NAME] [--only S] [--verbose] [--tol X] [--iters N]
 *                [--no-gptq] [--mxb M B] [--beam N] [--kmeans N]
 *
 * --layers N: only layers 0..N-1. --shared: also 2x8 with one set of
 * codebooks per kind of matrix (the N layers' q_proj, ...). --1x16 NAME:
 * also 1x16 on that tensor. --only S: only matrices whose name contains S
 * (the totals then cover those). --verbose: the objective's history.
 * --no-gptq: AQLM only. --mxb M B: the scheme (default 2 8). --beam N: the
 * code search's beam width. --kmeans N: Lloyd iterations at initialization. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aqlm.h"
#include "calib.h"
#include "gptq.h"
#include "squish/fp.h"
#include "squish/model.h"

static const char *const kinds[7] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                                     "mlp.gate_proj",    "mlp.up_proj",      "mlp.down_proj"};
static const char *const gptq_schemes[3] = {"int2:g64:asym", "int2:g128:asym", "int3:g128:asym"};

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* tr(ΔW H ΔWᵀ) / tr(W H Wᵀ) in float64 */
static double rel_err(const float *w, const float *dec, uint64_t rows, uint64_t n, const double *H) {
    double num = 0, den = 0, *d = malloc(n * sizeof(double)), *z = malloc(n * sizeof(double));
    for (uint64_t o = 0; o < rows; o++) {
        for (int pass = 0; pass < 2; pass++) {
            for (uint64_t i = 0; i < n; i++) z[i] = pass ? (double)w[o * n + i] - dec[o * n + i] : w[o * n + i];
            double t = 0;
            for (uint64_t i = 0; i < n; i++) {
                double hi = 0;
                for (uint64_t j = 0; j < n; j++) hi += H[i * n + j] * z[j];
                t += z[i] * hi;
            }
            if (pass) num += t;
            else den += t;
        }
    }
    free(d);
    free(z);
    return den > 0 ? num / den : 0;
}

typedef struct mx {
    char name[160];
    float *w;
    uint64_t rows, cols;
    sq_calib_site h;
} mx;

static int load(sq_model *m, sq_calib_file *cf, const char *name, mx *x, sq_err *err) {
    const sq_model_tensor *t = sq_model_find(m, name);
    uint32_t layer;
    sq_site site;
    if (!t || !sq_calib_site_of(name, &layer, &site)) {
        fprintf(stderr, "no tensor/site %s\n", name);
        return -1;
    }
    snprintf(x->name, sizeof x->name, "%s", name);
    x->cols = t->dims[t->ndim - 1];
    x->rows = sq_model_tensor_elems(t) / x->cols;
    x->w = malloc(x->rows * x->cols * sizeof(float));
    if (sq_model_tensor_f32(m, t, x->w, err) || sq_calib_read_site(cf, layer, site, &x->h, err)) return -1;
    sq_model_release(m, t);
    return 0;
}

/* Single-thread GEMV speed on a random n x n matrix: AQLM (M x B) next to
 * the int2 g64 codec's best GEMV. GB/s = bytes of the stored parts / time. */
static void gemv_speed(uint64_t n, uint32_t M, uint32_t B) {
    sq_err err;
    uint64_t cbytes = sq_aqlm_codes_bytes(n, n, M, B), kbytes = sq_aqlm_codebooks_bytes(M, B);
    uint8_t *codes = malloc(cbytes), *cb = malloc(kbytes), *sc = malloc(2 * n);
    uint64_t z = 12345;
    for (uint64_t i = 0; i < cbytes; i++) codes[i] = (uint8_t)((z = z * 6364136223846793005ull + 1442695040888963407ull) >> 56);
    for (uint64_t i = 0; i < kbytes / 2; i++) {
        uint16_t h = sq_f32_to_f16((float)(((z = z * 6364136223846793005ull + 1) >> 40) % 2000) / 1000.0f - 1.0f);
        cb[2 * i] = (uint8_t)h;
        cb[2 * i + 1] = (uint8_t)(h >> 8);
    }
    for (uint64_t i = 0; i < n; i++) sc[2 * i] = 0, sc[2 * i + 1] = 0x3c; /* 1.0 */
    sq_aqlm_view v = {n, n, M, B, codes, cbytes, cb, kbytes, sc, 2 * n};
    float *x = malloc(n * sizeof(float)), *y = malloc(n * sizeof(float)), *w = malloc(n * n * sizeof(float));
    for (uint64_t i = 0; i < n; i++) x[i] = (float)(i % 7) - 3;
    int reps = 0;
    double t0 = now(), t;
    do {
        sq_aqlm_gemv(&v, x, y, 0, n, &err);
        reps++;
    } while ((t = now() - t0) < 1.0);
    double ta = t / reps;
    printf("gemv %llux%llu aqlm %ux%u: %.3f ms (%.2f GB/s of parts, 1 thread)\n", (unsigned long long)n,
           (unsigned long long)n, M, B, ta * 1e3, (cbytes + kbytes + 2 * n) / ta / 1e9);
    for (uint64_t i = 0; i < n * n; i++) w[i] = (float)(((z = z * 6364136223846793005ull + 1) >> 40) % 2000) / 1000.0f - 1.0f;
    const char *schemes[2] = {"int2:g64:asym", "int4:g128:asym"};
    for (int s = 0; s < 2; s++) {
        const sq_codec *c;
        uint32_t p[SQ_NPARAMS];
        sq_encoded e;
        sq_scheme_parse(schemes[s], &c, p, &err);
        if (sq_encode(c, p, w, n, n, 2, &e, &err)) continue;
        sq_tview tv;
        sq_tview_from_encoded(&e, &tv);
        sq_gemv_fn f = sq_gemv_for(c, sq_isa_active());
        uint64_t bytes = 0;
        for (int i = 0; i < e.nparts; i++) bytes += e.bytes[i];
        reps = 0;
        t0 = now();
        do {
            f(&tv, x, y, 0, n);
            reps++;
        } while ((t = now() - t0) < 1.0);
        printf("gemv %llux%llu %s (%s): %.3f ms (%.2f GB/s of parts, 1 thread)\n", (unsigned long long)n,
               (unsigned long long)n, schemes[s], sq_isa_name(sq_isa_active()), t / reps * 1e3, bytes / (t / reps) / 1e9);
        sq_encoded_free(&e);
    }
    free(codes);
    free(cb);
    free(sc);
    free(x);
    free(y);
    free(w);
}

int main(int argc, char **argv) {
    if (argc == 2 && !strcmp(argv[1], "--gemv")) {
        gemv_speed(4096, 2, 8);
        gemv_speed(4096, 1, 16);
        return 0;
    }
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL CALIB [--layers N] [--threads N] [--shared] [--1x16 NAME]\n", argv[0]);
        return 2;
    }
    int layers = 8, threads = 2, shared = 0, verbose = 0, no_gptq = 0;
    uint32_t M = 2, B = 8, kmi = 0, beam = 0;
    double tol = 0; /* 0: the library's defaults */
    uint32_t iters = 0;
    const char *one16 = NULL, *only = NULL;
    for (int i = 3; i < argc; i++) {
        if (!strcmp(argv[i], "--layers") && i + 1 < argc) layers = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--shared")) shared = 1;
        else if (!strcmp(argv[i], "--verbose")) verbose = 1;
        else if (!strcmp(argv[i], "--no-gptq")) no_gptq = 1;
        else if (!strcmp(argv[i], "--mxb") && i + 2 < argc) {
            M = (uint32_t)atoi(argv[++i]);
            B = (uint32_t)atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--kmeans") && i + 1 < argc) kmi = (uint32_t)atoi(argv[++i]);
        else if (!strcmp(argv[i], "--beam") && i + 1 < argc) beam = (uint32_t)atoi(argv[++i]);
        else if (!strcmp(argv[i], "--tol") && i + 1 < argc) tol = atof(argv[++i]);
        else if (!strcmp(argv[i], "--iters") && i + 1 < argc) iters = (uint32_t)atoi(argv[++i]);
        else if (!strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
        else if (!strcmp(argv[i], "--1x16") && i + 1 < argc) one16 = argv[++i];
        else {
            fprintf(stderr, "unknown argument %s\n", argv[i]);
            return 2;
        }
    }
    sq_err err;
    sq_model *m = sq_model_open(argv[1], &err);
    sq_calib_file *cf = m ? sq_calib_open(argv[2], &err) : NULL;
    if (!m || !cf) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    const int nm = layers * 7;
    mx *x = calloc(nm, sizeof(mx));
    for (int l = 0; l < layers; l++)
        for (int k = 0; k < 7; k++) {
            char name[160];
            snprintf(name, sizeof name, "model.layers.%d.%s.weight", l, kinds[k]);
            if (load(m, cf, name, &x[k * layers + l], &err)) {
                fprintf(stderr, "%s: %s\n", name, err.msg);
                return 1;
            }
        }
    printf("%-38s %11s | %9s %6s %7s | %9s %6s | %9s %6s | %9s %6s\n", "matrix", "shape", "aqlm2x8", "bpw", "sec",
           gptq_schemes[0], "bpw", gptq_schemes[1], "bpw", gptq_schemes[2], "bpw");
    int counted = 0;
    double sum_a = 0, bits_a = 0, t_a = 0, weights = 0, sum_g[3] = {0}, bits_g[3] = {0}, t_g = 0;
    for (int i = 0; i < nm; i++) {
        mx *q = &x[i];
        if (only && !strstr(q->name, only)) continue;
        counted++;
        sq_aqlm_opts o = {.M = M, .B = B, .seed = 1, .n_threads = threads, .rel_tol = tol, .max_iters = iters,
                          .kmeans_iters = kmi, .beam = beam};
        sq_aqlm_result r;
        double t0 = now();
        if (sq_aqlm_quantize(q->w, q->rows, q->cols, q->h.xtx, &o, &r, &err)) {
            fprintf(stderr, "%s: %s\n", q->name, err.msg);
            return 1;
        }
        if (verbose) {
            fprintf(stderr, "%s objective after init, then (codebooks, scales, codes) per iteration:\n ", q->name);
            for (uint32_t h = 0; h < r.n_hist; h++) fprintf(stderr, " %.5f%s", r.hist[h], h % 3 == 0 ? " |" : "");
            fprintf(stderr, "\n");
        }
        double ta = now() - t0, bpw = sq_aqlm_bpw(q->rows, q->cols, M, B, 1), eg[3] = {0}, bg[3] = {0};
        t_a += ta;
        sum_a += r.rel_err;
        bits_a += bpw * q->rows * q->cols;
        weights += (double)q->rows * q->cols;
        float *dec = malloc(q->rows * q->cols * sizeof(float));
        for (int s = 0; s < 3 && !no_gptq; s++) {
            const sq_codec *c;
            uint32_t p[SQ_NPARAMS];
            sq_scheme_parse(gptq_schemes[s], &c, p, &err);
            eg[s] = INFINITY;
            for (int mode = 0; mode < 2; mode++) { /* the better of plain and act-order + static groups */
                sq_encoded g;
                sq_gptq_info info;
                sq_gptq_opts go = {.damp = 0.01, .act_order = mode, .static_groups = mode, .block = 128, .n_threads = threads};
                double t1 = now();
                if (sq_gptq_quantize(q->name, c, p, q->w, q->rows, q->cols, q->h.xtx, &go, &g, &info, &err)) {
                    fprintf(stderr, "%s: %s\n", q->name, err.msg);
                    return 1;
                }
                t_g += now() - t1;
                sq_tview v;
                sq_tview_from_encoded(&g, &v);
                sq_decode_mt(&v, dec, threads);
                double e = rel_err(q->w, dec, q->rows, q->cols, q->h.xtx);
                if (e < eg[s]) eg[s] = e;
                sq_encoded_free(&g);
            }
            bg[s] = sq_layout_bpw(c, p, q->rows, q->cols);
            sum_g[s] += eg[s];
            bits_g[s] += bg[s] * q->rows * q->cols;
        }
        printf("%-38s %5llux%-5llu | %9.5f %6.3f %7.2f | %9.5f %6.3f | %9.5f %6.3f | %9.5f %6.3f  (%u it)\n", q->name,
               (unsigned long long)q->rows, (unsigned long long)q->cols, r.rel_err, bpw, ta, eg[0], bg[0], eg[1], bg[1],
               eg[2], bg[2], r.iters);
        fflush(stdout);
        free(dec);
        sq_aqlm_result_free(&r);
    }
    printf("\n%d matrices, %.0f weights. mean proxy loss / bpw:\n", counted, weights);
    printf("  aqlm 2x8 (own codebooks)  %.5f at %.4f bpw, encode %.1f s (%d threads)\n", sum_a / counted, bits_a / weights,
           t_a, threads);
    for (int s = 0; s < 3; s++)
        printf("  gptq %-20s %.5f at %.4f bpw\n", gptq_schemes[s], sum_g[s] / counted, bits_g[s] / weights);
    printf("  (gptq encode, both modes, all schemes: %.1f s)\n", t_g);

    if (shared) {
        double sum_s = 0, bits_s = 0, t_s = 0;
        printf("\n2x8 with one codebook set per kind of matrix, shared by %d layers:\n", layers);
        for (int k = 0; k < 7; k++) {
            const float *ws[64];
            const double *hs[64];
            uint64_t rows[64];
            for (int l = 0; l < layers; l++) {
                ws[l] = x[k * layers + l].w;
                hs[l] = x[k * layers + l].h.xtx;
                rows[l] = x[k * layers + l].rows;
            }
            sq_aqlm_opts o = {.M = 2, .B = 8, .seed = 1, .n_threads = threads, .rel_tol = tol, .max_iters = iters};
            sq_aqlm_result *r = calloc(layers, sizeof *r);
            double t0 = now();
            if (sq_aqlm_quantize_shared(layers, ws, rows, x[k * layers].cols, hs, &o, r, &err)) {
                fprintf(stderr, "%s: %s\n", kinds[k], err.msg);
                return 1;
            }
            double ts = now() - t0, e = 0;
            const uint32_t its = r[0].iters;
            t_s += ts;
            for (int l = 0; l < layers; l++) {
                e += r[l].rel_err;
                bits_s += sq_aqlm_bpw(rows[l], x[k * layers].cols, 2, 8, layers) * rows[l] * x[k * layers].cols;
                sq_aqlm_result_free(&r[l]);
            }
            sum_s += e;
            printf("  %-18s mean proxy loss %.5f at %.4f bpw, %.1f s (%u it)\n", kinds[k], e / layers,
                   sq_aqlm_bpw(rows[0], x[k * layers].cols, 2, 8, layers), ts, its);
            fflush(stdout);
            free(r);
        }
        printf("  aqlm 2x8 shared per kind  %.5f at %.4f bpw, encode %.1f s\n", sum_s / nm, bits_s / weights, t_s);
    }
    if (one16) {
        mx q = {0};
        if (load(m, cf, one16, &q, &err)) {
            fprintf(stderr, "%s: %s\n", one16, err.msg);
            return 1;
        }
        for (int s = 0; s < 2; s++) {
            uint32_t M1 = s ? 1 : 2, B1 = s ? 16 : 8;
            sq_aqlm_opts o = {.M = M1, .B = B1, .seed = 1, .n_threads = threads};
            sq_aqlm_result r;
            double t0 = now();
            if (sq_aqlm_quantize(q.w, q.rows, q.cols, q.h.xtx, &o, &r, &err)) {
                fprintf(stderr, "%s: %s\n", one16, err.msg);
                return 1;
            }
            printf("\n%s %ux%u: proxy loss %.6f at %.4f bpw (codes %.3f + codebooks %.3f + scales %.3f), %.1f s, %u it",
                   one16, M1, B1, r.rel_err, sq_aqlm_bpw(q.rows, q.cols, M1, B1, 1),
                   r.codes_bytes * 8.0 / (q.rows * q.cols), r.codebooks_bytes * 8.0 / (q.rows * q.cols),
                   r.scales_bytes * 8.0 / (q.rows * q.cols), now() - t0, r.iters);
            sq_aqlm_result_free(&r);
        }
        printf("\n");
        free(q.w);
        sq_calib_site_free(&q.h);
    }
    for (int i = 0; i < nm; i++) {
        free(x[i].w);
        sq_calib_site_free(&x[i].h);
    }
    free(x);
    sq_calib_close(cf);
    sq_model_close(m);
    return 0;
}
