/* AVX2 against AVX-512 speed of every codec's GEMV kernels (issue 21: AVX2
 * paths within 20% of AVX-512), timed in thread CPU time so that a loaded
 * machine's time slicing does not enter the figures. Not a test: run by hand
 * (scripts/gemv-isa-ratio.sh runs it beside squish-bench's cold figures).
 *   measure_kernels [ROWS COLS [ROUNDS [SCHEMES]]]   (default 256 4096 5, the list below)
 * For each scheme and ISA: the exact GEMV the dispatcher picks (sq_gemv_for)
 * and the integer-activation one (sq_gemv_q8_for), GB/s of stored bytes, the
 * best call over ROUNDS rounds that alternate the ISAs; a matrix this small
 * stays in cache, so the figures are the kernels' own speed. quip (whose
 * encoder needs X^T X) runs on random codes and scales. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codecs/codecs.h"

/* Uniform values in [-1, 1) from a fixed LCG, every 97th times 8 (outliers for the scales). */
static float *random_matrix(uint64_t n, int outliers) {
    float *m = malloc((size_t)n * sizeof(float));
    uint64_t st = 0x9e3779b97f4a7c15ull ^ n;
    for (uint64_t i = 0; m && i < n; i++) {
        st = st * 6364136223846793005ull + 1442695040888963407ull;
        m[i] = (float)((double)(st >> 11) * 0x1p-52 - 1.0) * (outliers && i % 97 == 0 ? 8.0f : 1.0f);
    }
    return m;
}

static double cpu_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Best seconds per call over n calls of the exact (q8 == NULL) or q8 kernel. */
static double best_call(sq_gemv_fn f, sq_gemv_q8_fn q8, const sq_tview *v, const float *x, const sq_act_q8 *a, float *y, int n) {
    double best = 1e30;
    for (int i = 0; i < n; i++) {
        double t0 = cpu_now();
        if (q8) q8(v, a, y, 0, v->rows);
        else f(v, x, y, 0, v->rows);
        double t = cpu_now() - t0;
        if (t < best) best = t;
    }
    return best;
}

int main(int argc, char **argv) {
    const uint64_t rows = argc > 1 ? strtoull(argv[1], NULL, 10) : 256, cols = argc > 2 ? strtoull(argv[2], NULL, 10) : 4096;
    const int rounds = argc > 3 ? atoi(argv[3]) : 5;
    char list[1024];
    snprintf(list, sizeof list, "%s",
             argc > 4 ? argv[4]
                      : "int4:g32:sym,int4:g32:asym,int4:g64:sym,int4:g64:asym,int4:g128:sym,int4:g128:asym,int8:g32:sym,"
                        "int8,int3,int3:g64,int2:g32:asym,int2,mxfp4,fp4_e2m1,nf4");
    if (!sq_isa_supported(SQ_ISA_AVX512)) {
        fprintf(stderr, "measure_kernels: this CPU has no AVX-512 VNNI to compare with\n");
        return 1;
    }
    printf("# %llux%llu, thread CPU time, best call of %d rounds x 20 calls, rounds alternate avx512 and avx2\n",
           (unsigned long long)rows, (unsigned long long)cols, rounds);
    printf("| scheme | exact avx512 GB/s | exact avx2 GB/s | exact avx2/avx512 | q8 avx512 GB/s | q8 avx2 GB/s | q8 avx2/avx512 |\n");
    printf("|---|---|---|---|---|---|---|\n");
    for (char *save = NULL, *s = strtok_r(list, ",", &save); s; s = strtok_r(NULL, ",", &save)) {
        const sq_codec *c;
        uint32_t p[SQ_NPARAMS];
        sq_err err;
        if (sq_scheme_parse(s, &c, p, &err)) {
            fprintf(stderr, "measure_kernels: %s: %s\n", s, err.msg);
            return 2;
        }
        float *w = random_matrix(rows * cols, 1), *x = random_matrix(cols, 0), *y = malloc(rows * sizeof(float));
        sq_encoded e = {0};
        sq_tview v;
        double bytes = 0;
        void *rparts[SQ_CODEC_MAX_PARTS] = {0};
        if (c->family == SQ_FAMILY_LATTICE) {
            /* quip's encoder needs X^T X: random codes instead (every code is valid) and scales in [0.5, 1) */
            sq_part_spec ps[SQ_CODEC_MAX_PARTS];
            v = (sq_tview){.codec = c, .rows = rows, .cols = cols, .nparts = c->layout(c, p, rows, cols, ps)};
            memcpy(v.params, p, sizeof p);
            uint64_t st = 12345;
            for (int i = 0; i < v.nparts; i++) {
                size_t n = sq_dtype_size(ps[i].dtype);
                for (uint32_t d = 0; d < ps[i].ndim; d++) n *= ps[i].dims[d];
                uint8_t *b = malloc(n);
                for (size_t j = 0; j < n; j++) {
                    st = st * 6364136223846793005ull + 1442695040888963407ull;
                    b[j] = (uint8_t)(st >> 56);
                    if (ps[i].dtype == SQ_DT_F16 && j % 2) b[j] = 0x38; /* f16 0x38xx */
                }
                rparts[i] = b;
                v.part[i] = b;
                bytes += (double)n;
            }
        } else {
            if (sq_encode(c, p, w, rows, cols, 1, &e, &err)) {
                fprintf(stderr, "measure_kernels: %s: %s\n", s, err.msg);
                return 2;
            }
            sq_tview_from_encoded(&e, &v);
            for (int i = 0; i < e.nparts; i++) bytes += (double)e.bytes[i];
        }
        sq_act_q8 a;
        if (sq_act_q8_init(&a, x, cols, &err)) return 2;
        const sq_isa isas[2] = {SQ_ISA_AVX512, SQ_ISA_AVX2};
        double tg[2] = {1e30, 1e30}, tq[2] = {1e30, 1e30};
        for (int r = 0; r < rounds; r++)
            for (int k = 0; k < 2; k++) {
                double t = best_call(sq_gemv_for(c, isas[k]), NULL, &v, x, NULL, y, 20);
                if (t < tg[k]) tg[k] = t;
                sq_gemv_q8_fn q8 = sq_gemv_q8_for(c, isas[k]);
                if (q8 && (t = best_call(NULL, q8, &v, NULL, &a, y, 20)) < tq[k]) tq[k] = t;
            }
        char q8s[96] = "- | - | -";
        if (tq[0] < 1e30)
            snprintf(q8s, sizeof q8s, "%.2f | %.2f | %.2f", bytes / tq[0] / 1e9, bytes / tq[1] / 1e9, tq[0] / tq[1]);
        printf("| %s | %.2f | %.2f | %.2f | %s |\n", s, bytes / tg[0] / 1e9, bytes / tg[1] / 1e9, tg[0] / tg[1], q8s);
        fflush(stdout);
        sq_act_q8_free(&a);
        if (c->family == SQ_FAMILY_LATTICE)
            for (int i = 0; i < v.nparts; i++) free(rparts[i]);
        else sq_encoded_free(&e);
        free(w); free(x); free(y);
    }
    return 0;
}
