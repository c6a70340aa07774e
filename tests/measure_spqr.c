/* Output error (proxy loss tr(ΔW H ΔWᵀ) / tr(W H Wᵀ), H = XᵀX / tokens of the
 * layer's calibration site), bits per weight and time of SpQR at 2/3/4 bits
 * beside GPTQ act-order with the int codecs, over every linear matrix of a
 * Llama model. Not a test: run by hand for the figures in reports.
 *   measure_spqr MODEL_DIR CALIB.h5 [THREADS [LAYERS [LABEL-SUBSTRING]]]
 * With --big N [THREADS]: quantization time of one N x N layer (weights and a
 * Hessian made up: XᵀX of 64 random sources plus noise) and GEMV speed of the
 * result (portable, AVX2) beside the int4:g128 GEMV of the same weights. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "awq.h"
#include "calib.h"
#include "gptq.h"
#include "spqr.h"
#include "squish/model.h"

typedef struct config {
    const char *label;
    int spqr;
    uint32_t wbits, group; /* group 0: 16 */
    double tau, fraction, damp;
    const char *scheme; /* GPTQ */
} config;

static const config configs[] = {
    {"spqr w2", 1, 2, 0, 0.2, 0, 0.01, NULL},
    {"spqr w3", 1, 3, 0, 0.2, 0, 0.01, NULL},
    {"spqr w4", 1, 4, 0, 0.2, 0, 0.01, NULL},
    {"spqr w3 no-outl", 1, 3, 0, INFINITY, 0, 0.01, NULL},
    {"spqr w3 <=0.5%", 1, 3, 0, 0.2, 0.005, 0.01, NULL},
    {"spqr w2 <=0.5%", 1, 2, 0, 0.2, 0.005, 0.01, NULL},
    {"spqr w3 damp1", 1, 3, 0, 0.2, 0, 1.0, NULL},
    {"spqr w4 b64", 1, 4, 64, 0.2, 0, 0.01, NULL},
    {"spqr w4 b64 noout", 1, 4, 64, INFINITY, 0, 0.01, NULL},
    {"spqr w3 b8 noout", 1, 3, 8, INFINITY, 0, 0.01, NULL},
    {"gptq int2:g32", 0, 0, 0, 0, 0, 0.01, "int2:g32:asym"},
    {"gptq int3:g32", 0, 0, 0, 0, 0, 0.01, "int3:g32:asym"},
    {"gptq int3:g128", 0, 0, 0, 0, 0, 0.01, "int3:g128:asym"},
    {"gptq int4:g128", 0, 0, 0, 0, 0, 0.01, "int4:g128:asym"},
    {"gptq int4:g32", 0, 0, 0, 0, 0, 0.01, "int4:g32:asym"},
};
#define NCFG (sizeof configs / sizeof configs[0])

static const char *const linears[7] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                                       "mlp.gate_proj",    "mlp.up_proj",      "mlp.down_proj"};

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int fail(const sq_err *e) {
    fprintf(stderr, "measure_spqr: %s\n", e->msg);
    return 1;
}

static double cpu_now(void) { /* this process's CPU time: the machine is shared, wall time is not the cost */
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static float lcg(uint64_t *s) { /* uniform in [-1, 1) */
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((double)(*s >> 11) / 4503599627370496.0 - 1.0);
}

static int big(uint64_t n, int threads) {
    uint64_t seed = 1;
    float *w = malloc(n * n * sizeof(float)), *A = malloc(n * 64 * sizeof(float));
    double *H = malloc(n * n * sizeof(double));
    if (!w || !A || !H) return 1;
    for (uint64_t i = 0; i < n * n; i++) w[i] = 0.02f * (lcg(&seed) + lcg(&seed) + lcg(&seed));
    for (uint64_t i = 0; i < n * 64; i++) A[i] = lcg(&seed) * (i / 64 % 17 == 0 ? 4.0f : 1.0f);
    for (uint64_t i = 0; i < n; i++)
        for (uint64_t j = i; j < n; j++) {
            double t = i == j ? 1.0 : 0.0;
            for (int k = 0; k < 64; k++) t += (double)A[i * 64 + k] * A[j * 64 + k];
            H[i * n + j] = H[j * n + i] = t;
        }
    sq_err err;
    sq_spqr_opts o;
    sq_spqr_opts_default(&o);
    o.n_threads = threads;
    sq_spqr_result r;
    double t0 = now(), c0 = cpu_now();
    if (sq_spqr_quantize(w, n, n, H, &o, &r, &err)) return fail(&err);
    const double tq = now() - t0, cq = cpu_now() - c0;
    printf("spqr w3 %llu x %llu: quantized in %.2f s wall, %.2f s CPU, %d thread(s); %.4f bpw, %.3f%% outliers\n",
           (unsigned long long)n, (unsigned long long)n, tq, cq, threads, sq_spqr_bpw(&r.shape),
           100.0 * (double)r.shape.nnz / (double)(n * n));
    sq_spqr_view v;
    sq_spqr_view_of(&r, &v);
    float *x = malloc(n * sizeof(float)), *y = malloc(n * sizeof(float));
    for (uint64_t j = 0; j < n; j++) x[j] = lcg(&seed);
    const double bytes = (double)sq_spqr_bytes(&r.shape);
    void (*fns[2])(const sq_spqr_view *, const float *, float *, uint64_t, uint64_t) = {sq_spqr_gemv_portable,
                                                                                       sq_spqr_gemv_avx2};
    const char *names[2] = {"portable", "avx2"};
    for (int f = 0; f < 2; f++) {
        int it = 0;
        t0 = cpu_now();
        do fns[f](&v, x, y, 0, n);
        while (++it < 3 || cpu_now() - t0 < 1.0);
        const double dt = (cpu_now() - t0) / it;
        printf("spqr gemv %-8s 1 thread: %.3f ms CPU, %.2f GB/s of parts\n", names[f], 1e3 * dt, bytes / dt / 1e9);
    }
    const sq_codec *c;
    uint32_t params[SQ_NPARAMS];
    sq_encoded e;
    if (sq_scheme_parse("int4:g128:asym", &c, params, &err) || sq_encode(c, params, w, n, n, threads, &e, &err))
        return fail(&err);
    sq_tview tv;
    sq_tview_from_encoded(&e, &tv);
    double eb = 0;
    for (int i = 0; i < e.nparts; i++) eb += (double)e.bytes[i];
    int it = 0;
    t0 = cpu_now();
    do sq_gemv(&tv, x, y, 0, n);
    while (++it < 3 || cpu_now() - t0 < 1.0);
    const double dt = (cpu_now() - t0) / it;
    printf("int4:g128 gemv (%s) 1 thread: %.3f ms CPU, %.2f GB/s of parts\n", sq_isa_name(sq_isa_active()), 1e3 * dt,
           eb / dt / 1e9);
    sq_encoded_free(&e);
    sq_spqr_result_free(&r);
    free(w);
    free(A);
    free(H);
    free(x);
    free(y);
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 3 && !strcmp(argv[1], "--big")) return big((uint64_t)atoll(argv[2]), argc > 3 ? atoi(argv[3]) : 1);
    if (argc < 3) {
        fprintf(stderr, "usage: measure_spqr MODEL_DIR CALIB.h5 [THREADS [LAYERS]]\n");
        return 2;
    }
    const int threads = argc > 3 ? atoi(argv[3]) : 1;
    sq_err err;
    sq_model *m = sq_model_open(argv[1], &err);
    if (!m) return fail(&err);
    sq_calib_file *cf = sq_calib_open(argv[2], &err);
    if (!cf) return fail(&err);
    const uint32_t layers = argc > 4 ? (uint32_t)atoi(argv[4]) : sq_calib_file_info(cf)->n_layers;
    const char *only = argc > 5 ? argv[5] : NULL; /* run only the methods whose label contains this */
    double sum_loss[NCFG] = {0}, sum_bits[NCFG] = {0}, sum_time[NCFG] = {0}, weights = 0;
    uint64_t sum_nnz[NCFG] = {0};
    printf("%-34s %-16s %10s %7s %8s %8s\n", "matrix", "method", "loss", "bpw", "outl%", "time s");
    for (uint32_t l = 0; l < layers; l++)
        for (int li = 0; li < 7; li++) {
            char name[160];
            snprintf(name, sizeof name, "model.layers.%u.%s.weight", l, linears[li]);
            const sq_model_tensor *t = sq_model_find(m, name);
            uint32_t layer;
            sq_site site;
            if (!t || !sq_calib_site_of(name, &layer, &site)) {
                fprintf(stderr, "measure_spqr: no tensor or site for %s\n", name);
                return 1;
            }
            const uint64_t rows = t->dims[0], cols = t->dims[1], n = rows * cols;
            float *w = malloc(n * sizeof(float)), *dec = malloc(n * sizeof(float)), *zero = calloc(n, sizeof(float));
            sq_calib_site s;
            if (!w || !dec || !zero) return 1;
            if (sq_model_tensor_f32(m, t, w, &err) || sq_calib_read_site(cf, layer, site, &s, &err)) return fail(&err);
            float *H = sq_calib_site_hessian(&s, NULL);
            const double den = sq_hessian_err(w, zero, rows, cols, H);
            weights += (double)n;
            for (size_t ci = 0; ci < NCFG; ci++) {
                const config *c = &configs[ci];
                if (only && !strstr(c->label, only)) continue;
                double bits = 0, t0 = now();
                uint64_t nnz = 0;
                if (c->spqr) {
                    sq_spqr_opts o;
                    sq_spqr_opts_default(&o);
                    o.wbits = c->wbits;
                    if (c->group) o.group = c->group;
                    o.tau = c->tau;
                    o.outlier_fraction = c->fraction;
                    o.damp = c->damp;
                    o.n_threads = threads;
                    sq_spqr_result r;
                    if (sq_spqr_quantize(w, rows, cols, s.xtx, &o, &r, &err)) return fail(&err);
                    memcpy(dec, r.deq, n * sizeof(float));
                    bits = 8.0 * (double)sq_spqr_bytes(&r.shape);
                    nnz = r.shape.nnz;
                    sq_spqr_result_free(&r);
                } else {
                    const sq_codec *codec;
                    uint32_t params[SQ_NPARAMS];
                    if (sq_scheme_parse(c->scheme, &codec, params, &err)) return fail(&err);
                    sq_gptq_opts go = {.damp = c->damp, .act_order = 1, .static_groups = 0, .block = 128, .n_threads = threads};
                    sq_gptq_info gi;
                    sq_encoded e;
                    if (sq_gptq_quantize(name, codec, params, w, rows, cols, s.xtx, &go, &e, &gi, &err)) return fail(&err);
                    sq_tview v;
                    sq_tview_from_encoded(&e, &v);
                    sq_decode_mt(&v, dec, threads);
                    for (int i = 0; i < e.nparts; i++) bits += 8.0 * (double)e.bytes[i];
                    sq_encoded_free(&e);
                }
                const double secs = now() - t0, loss = sq_hessian_err(dec, w, rows, cols, H) / den;
                sum_loss[ci] += loss;
                sum_bits[ci] += bits;
                sum_time[ci] += secs;
                sum_nnz[ci] += nnz;
                printf("%-34s %-18s %10.6f %7.4f %8.4f %8.3f\n", name + 6, c->label, loss, bits / (double)n,
                       100.0 * (double)nnz / (double)n, secs);
                fflush(stdout);
            }
            free(H);
            sq_calib_site_free(&s);
            free(w);
            free(dec);
            free(zero);
        }
    const double nm = 7.0 * layers;
    printf("\ntotal over %u matrices (%.0f weights), %d thread(s):\n", (unsigned)nm, weights, threads);
    printf("%-16s %12s %7s %8s %9s\n", "method", "mean loss", "bpw", "outl%", "time s");
    for (size_t ci = 0; ci < NCFG; ci++)
        if (!only || strstr(configs[ci].label, only))
            printf("%-16s %12.6f %7.4f %8.4f %9.2f\n", configs[ci].label, sum_loss[ci] / nm, sum_bits[ci] / weights,
               100.0 * (double)sum_nnz[ci] / weights, sum_time[ci]);
    sq_calib_close(cf);
    sq_model_close(m);
    return 0;
}
