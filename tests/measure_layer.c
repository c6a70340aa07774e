/* Encoding time of QuIP# and AQLM on one synthetic layer (not a test; run by hand):
 *   measure_layer [n] [n_threads] [scheme...]    scheme: quip:2|quip:3|quip:4|aqlm:MxB
 * (rows may be limited with SQ_ROWS=R to time a slice of the layer)
 * W is n x n with uniform entries; XᵀX is synthetic (no calibration): an
 * AR(1) correlation ρ = 0.5 between neighbouring inputs, a diagonal spread
 * over two orders of magnitude and one dominant direction, H_ij =
 * √(d_i d_j)·ρ^|i-j| + n·v_i v_j, positive definite by construction. Prints
 * the wall time of sq_quip_quantize / sq_aqlm_quantize per scheme (default
 * n = 4096, 2 threads, quip:2 quip:3 quip:4) with its proxy loss. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <string.h>

#include "aqlm.h"
#include "quip.h"

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static double urand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0;
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv) {
    const uint64_t n = argc > 1 ? (uint64_t)atoll(argv[1]) : 4096;
    const int threads = argc > 2 ? atoi(argv[2]) : 2;
    if (n < 8 || n % 8 || threads < 1) {
        fprintf(stderr, "usage: %s [n (multiple of 8)] [n_threads] [quip:B | aqlm:MxB ...]\n", argv[0]);
        return 2;
    }
    const uint64_t rows = getenv("SQ_ROWS") ? (uint64_t)atoll(getenv("SQ_ROWS")) : n;
    if (!rows || rows > n) {
        fprintf(stderr, "SQ_ROWS must be 1..%llu\n", (unsigned long long)n);
        return 2;
    }
    float *w = malloc(n * n * sizeof(float));
    double *H = malloc(n * n * sizeof(double)), *d = malloc(n * sizeof(double)), *v = malloc(n * sizeof(double));
    if (!w || !H || !d || !v) {
        fprintf(stderr, "out of memory\n");
        return 6;
    }
    for (uint64_t i = 0; i < n * n; i++) w[i] = (float)((urand() * 2 - 1) * 0.02);
    for (uint64_t i = 0; i < n; i++) {
        d[i] = exp(4.6 * urand());
        v[i] = urand() * 2 - 1;
    }
    for (uint64_t i = 0; i < n; i++)
        for (uint64_t j = 0; j < n; j++) {
            const uint64_t k = i > j ? i - j : j - i;
            H[i * n + j] = sqrt(d[i] * d[j]) * pow(0.5, (double)k) + (double)n * v[i] * v[j];
        }
    static const char *const dflt[] = {"quip:2", "quip:3", "quip:4"};
    const int nb = argc > 3 ? argc - 3 : 3;
    for (int a = 0; a < nb; a++) {
        const char *scheme = argc > 3 ? argv[3 + a] : dflt[a];
        unsigned bits = 0, M = 0, B = 0;
        double proxy;
        sq_err err;
        const double t0 = now();
        if (sscanf(scheme, "quip:%u", &bits) == 1 && bits >= 2 && bits <= 4) {
            sq_quip_opts o = {.bits = bits, .nested = bits > 2, .seed = 1, .n_threads = threads};
            sq_quip_result r;
            if (sq_quip_quantize(w, rows, n, H, &o, &r, &err)) {
                fprintf(stderr, "%s\n", err.msg);
                return 1;
            }
            proxy = r.proxy;
            sq_quip_result_free(&r);
        } else if (sscanf(scheme, "aqlm:%ux%u", &M, &B) == 2) {
            sq_aqlm_opts o = {.M = M, .B = B, .seed = 1, .n_threads = threads};
            sq_aqlm_opts_default(&o);
            sq_aqlm_result r;
            if (sq_aqlm_quantize(w, rows, n, H, &o, &r, &err)) {
                fprintf(stderr, "%s\n", err.msg);
                return 1;
            }
            proxy = r.rel_err;
            sq_aqlm_result_free(&r);
        } else {
            fprintf(stderr, "unknown scheme %s (quip:2|quip:3|quip:4|aqlm:MxB)\n", scheme);
            return 2;
        }
        printf("%s on %llu rows of a %llux%llu layer, synthetic XtX, %d threads: %.2f s (proxy %.5f)\n", scheme,
               (unsigned long long)rows, (unsigned long long)n, (unsigned long long)n, threads, now() - t0, proxy);
        fflush(stdout);
    }
    free(w);
    free(H);
    free(d);
    free(v);
    return 0;
}
