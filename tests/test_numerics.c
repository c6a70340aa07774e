/* The fixed-order numerics behind calibration, GPTQ and AWQ: every path
 * (portable, AVX2, AVX-512) gives the same bits as a plain reference loop
 * written here, XᵀX is symmetric by construction, the inverse-Hessian factor
 * is what it claims (UᵀU·H = I), and calibration files that older squish
 * wrote asymmetric by rounding are repaired on load, while a real asymmetry
 * is refused. */
#include <math.h>

#include "calib.h"
#include "descent.h"
#include "linalg.h"
#include "testutil.h"
#include "xtx_kernel.h"

/* activations with the dynamic range of real ones: heavy channels, tiny
 * values and exact zeros */
static float *acts(uint32_t T, uint32_t n) {
    float *x = malloc((size_t)T * n * sizeof(float));
    for (size_t i = 0; i < (size_t)T * n; i++) {
        double g = (urand() - 0.5) * (i % 13 == 0 ? 300.0 : 1.0);
        x[i] = i % 29 == 0 ? 0.0f : (float)(i % 31 == 0 ? g * 1e-30 : g);
    }
    return x;
}

static int isa_ok(sq_isa isa) { return isa == SQ_ISA_PORTABLE || sq_isa_supported(isa); }

START_TEST(xtx_same_bits_on_every_isa) {
    /* ragged sizes: tiles that are not multiples of the register blocks,
     * token counts that are not multiples of the token block */
    static const uint32_t shapes[][3] = {{70, 200, 1}, {129, 37, 2}, {64, 128, 3}, {5, 17, 1}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const uint32_t T = shapes[s][0], n = shapes[s][1], calls = shapes[s][2];
        float *x = acts(T * calls, n);
        double *ref = calloc((size_t)n * n, sizeof(double));
        /* the definition: each element summed over tokens in order */
        for (uint32_t t = 0; t < T * calls; t++)
            for (uint32_t i = 0; i < n; i++)
                for (uint32_t j = 0; j < n; j++) {
                    volatile double p = (double)x[(size_t)t * n + i] * (double)x[(size_t)t * n + j];
                    ref[(size_t)i * n + j] += p;
                }
        for (int isa = 0; isa < SQ_ISA_COUNT; isa++) {
            if (!isa_ok((sq_isa)isa)) continue;
            double *C = calloc((size_t)n * n, sizeof(double));
            /* in tiles of at most SQ_XTX_MAX_TILE, over several calls (windows) */
            for (uint32_t c = 0; c < calls; c++)
                for (uint32_t i0 = 0; i0 < n; i0 += SQ_XTX_MAX_TILE)
                    for (uint32_t j0 = 0; j0 < n; j0 += SQ_XTX_MAX_TILE) {
                        uint32_t ni = n - i0 < SQ_XTX_MAX_TILE ? n - i0 : SQ_XTX_MAX_TILE;
                        uint32_t nj = n - j0 < SQ_XTX_MAX_TILE ? n - j0 : SQ_XTX_MAX_TILE;
                        sq_xtx_accumulate((sq_isa)isa, C + (size_t)i0 * n + j0, n, x + (size_t)c * T * n, n, T, i0, ni,
                                          j0, nj);
                    }
            ck_assert_msg(!memcmp(C, ref, (size_t)n * n * sizeof(double)), "%s: XᵀX %ux%u over %u tokens differs",
                          sq_isa_name((sq_isa)isa), n, n, T * calls);
            for (uint32_t i = 0; i < n; i++)
                for (uint32_t j = 0; j < i; j++) ck_assert(C[(size_t)i * n + j] == C[(size_t)j * n + i]);
            /* the same from x packed in float64 column panels once per call */
            memset(C, 0, (size_t)n * n * sizeof(double));
            const uint32_t ng = (n + SQ_XTX_PANEL - 1) / SQ_XTX_PANEL;
            double *xp = malloc((size_t)ng * T * SQ_XTX_PANEL * sizeof(double));
            for (uint32_t c = 0; c < calls; c++) {
                sq_xtx_pack(x + (size_t)c * T * n, n, T, n, 0, ng, xp);
                for (uint32_t i0 = 0; i0 < n; i0 += SQ_XTX_MAX_TILE)
                    for (uint32_t j0 = 0; j0 < n; j0 += SQ_XTX_MAX_TILE) {
                        uint32_t ni = n - i0 < SQ_XTX_MAX_TILE ? n - i0 : SQ_XTX_MAX_TILE;
                        uint32_t nj = n - j0 < SQ_XTX_MAX_TILE ? n - j0 : SQ_XTX_MAX_TILE;
                        sq_xtx_accumulate_panels((sq_isa)isa, C + (size_t)i0 * n + j0, n, x + (size_t)c * T * n, xp, n,
                                                 T, i0, ni, j0, nj);
                    }
            }
            for (uint32_t i = 0; i < n; i++) /* the upper triangle: the lower one may be skipped */
                ck_assert_msg(!memcmp(C + (size_t)i * n + i, ref + (size_t)i * n + i, (n - i) * sizeof(double)),
                              "%s: panel XᵀX %ux%u over %u tokens differs in row %u", sq_isa_name((sq_isa)isa), n, n,
                              T * calls, i);
            free(xp);
            free(C);
        }
        free(ref);
        free(x);
    }
}
END_TEST

START_TEST(matmul_same_bits_on_every_isa) {
    static const uint64_t shapes[][3] = {{64, 300, 128}, {13, 45, 7}, {8, 32, 1}, {3, 5, 200}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const uint64_t R = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
        float *A = acts((uint32_t)R, (uint32_t)K), *B = acts((uint32_t)K, (uint32_t)N), *C0 = acts((uint32_t)R, (uint32_t)N);
        float *ref = malloc(R * N * sizeof(float)), *C = malloc(R * N * sizeof(float));
        for (int sub = 0; sub < 2; sub++) {
            for (uint64_t r = 0; r < R; r++) /* the definition: fused multiply-adds over k in order */
                for (uint64_t j = 0; j < N; j++) {
                    float acc = 0;
                    for (uint64_t k = 0; k < K; k++) acc = fmaf(A[r * K + k], B[k * N + j], acc);
                    ref[r * N + j] = sub ? C0[r * N + j] - acc : acc;
                }
            for (int isa = 0; isa < SQ_ISA_COUNT; isa++) {
                if (!isa_ok((sq_isa)isa)) continue;
                memcpy(C, C0, R * N * sizeof(float));
                sq_la_matmul_f32((sq_isa)isa, sub, R, N, K, A, K, B, N, C, N);
                ck_assert_msg(!memcmp(C, ref, R * N * sizeof(float)), "%s: %llux%llux%llu (sub %d) differs",
                              sq_isa_name((sq_isa)isa), (unsigned long long)R, (unsigned long long)N,
                              (unsigned long long)K, sub);
                /* B packed once, as GPTQ's lazy updates use it */
                float *Bp = malloc(sq_la_packed_floats((sq_isa)isa, K, N) * sizeof(float));
                sq_la_pack_f32((sq_isa)isa, K, N, B, N, Bp);
                memcpy(C, C0, R * N * sizeof(float));
                ck_assert_int_eq(sq_la_matmul_packed_f32((sq_isa)isa, sub, R, N, K, A, K, Bp, C, N), K > SQ_LA_PACKED_MAX_K ? -1 : 0);
                if (K <= SQ_LA_PACKED_MAX_K)
                    ck_assert_msg(!memcmp(C, ref, R * N * sizeof(float)), "%s: packed %llux%llux%llu (sub %d) differs",
                                  sq_isa_name((sq_isa)isa), (unsigned long long)R, (unsigned long long)N,
                                  (unsigned long long)K, sub);
                free(Bp);
            }
        }
        free(A), free(B), free(C0), free(ref), free(C);
    }
}
END_TEST

START_TEST(dot_same_bits_on_every_isa) {
    static const uint64_t lens[] = {0, 1, 31, 32, 33, 100, 257};
    double *a = malloc(300 * sizeof(double)), *b = malloc(300 * sizeof(double));
    for (int i = 0; i < 300; i++) {
        a[i] = (urand() - 0.5) * (i % 7 ? 1 : 1e6);
        b[i] = (urand() - 0.5) * (i % 5 ? 1 : 1e-6);
    }
    for (size_t t = 0; t < sizeof lens / sizeof lens[0]; t++) {
        const uint64_t n = lens[t], whole = n / 32 * 32;
        double lane[32] = {0}, s8[8];
        for (uint64_t i = 0; i < whole; i++) lane[i % 32] = fma(a[i], b[i], lane[i % 32]);
        for (int k = 0; k < 8; k++) s8[k] = (lane[k] + lane[8 + k]) + (lane[16 + k] + lane[24 + k]);
        double want = ((s8[0] + s8[4]) + (s8[2] + s8[6])) + ((s8[1] + s8[5]) + (s8[3] + s8[7]));
        for (uint64_t i = whole; i < n; i++) want = fma(a[i], b[i], want);
        for (int isa = 0; isa < SQ_ISA_COUNT; isa++) {
            if (!isa_ok((sq_isa)isa)) continue;
            double got = sq_la_dot((sq_isa)isa, a, b, n);
            ck_assert_msg(!memcmp(&got, &want, sizeof got), "%s: dot of %llu: %.17g, want %.17g",
                          sq_isa_name((sq_isa)isa), (unsigned long long)n, got, want);
        }
    }
    free(a);
    free(b);
}
END_TEST

START_TEST(sub_scaled_same_bits_on_every_isa) {
    /* w -= e·u with the product rounded first, at lengths around the vector widths */
    static const uint64_t lens[] = {0, 1, 7, 8, 15, 16, 17, 33, 100};
    float *u = acts(1, 100), *w0 = acts(1, 100), *w = malloc(100 * sizeof(float)), *ref = malloc(100 * sizeof(float));
    const float e = -0.3712f;
    for (size_t t = 0; t < sizeof lens / sizeof lens[0]; t++) {
        for (uint64_t j = 0; j < 100; j++) {
            volatile float p = e * u[j];
            ref[j] = j < lens[t] ? w0[j] - p : w0[j];
        }
        for (int isa = 0; isa < SQ_ISA_COUNT; isa++) {
            if (!isa_ok((sq_isa)isa)) continue;
            memcpy(w, w0, 100 * sizeof(float));
            sq_la_sub_scaled_f32((sq_isa)isa, w, e, u, lens[t]);
            ck_assert_msg(!memcmp(w, ref, 100 * sizeof(float)), "%s: length %llu differs", sq_isa_name((sq_isa)isa),
                          (unsigned long long)lens[t]);
        }
    }
    free(u), free(w0), free(w), free(ref);
}
END_TEST

START_TEST(axpy_f64_same_bits_on_every_isa) {
    /* y = fma(a, x, y) in float64, at lengths around the vector widths and the descent's chunk */
    static const uint64_t lens[] = {0, 1, 3, 4, 7, 8, 9, 17, 100, 256, 300};
    double *x = malloc(300 * sizeof(double)), *y0 = malloc(300 * sizeof(double)), *y = malloc(300 * sizeof(double)),
           *ref = malloc(300 * sizeof(double));
    for (uint64_t j = 0; j < 300; j++) {
        x[j] = sin(0.37 * (double)j) * 1e3 / (1.0 + (double)j);
        y0[j] = cos(1.3 * (double)j) - 0.25;
    }
    const double a = -0.30000000000000004;
    for (size_t t = 0; t < sizeof lens / sizeof lens[0]; t++) {
        for (uint64_t j = 0; j < 300; j++) ref[j] = j < lens[t] ? fma(a, x[j], y0[j]) : y0[j];
        for (int isa = 0; isa < SQ_ISA_COUNT; isa++) {
            if (!isa_ok((sq_isa)isa)) continue;
            memcpy(y, y0, 300 * sizeof(double));
            sq_la_axpy_f64((sq_isa)isa, y, a, x, lens[t]);
            ck_assert_msg(!memcmp(y, ref, 300 * sizeof(double)), "%s: length %llu differs", sq_isa_name((sq_isa)isa),
                          (unsigned long long)lens[t]);
        }
    }
    free(x), free(y0), free(y), free(ref);
}
END_TEST

START_TEST(descent_gradient_same_bits_on_every_isa) {
    /* G = E (H + lam I) by its definition: lam e_j, then fma(e_k, H[k][j], .) in increasing k skipping e_k = 0
     * (zeros of both signs sprinkled in E); ragged rows and columns around the register tiles, and K past the
     * kernels' blocks of 1024 k steps (a tile waits in G between blocks) */
    static const uint64_t shapes[][2] = {{1, 1}, {3, 7}, {4, 8}, {5, 33}, {9, 70}, {6, 100}, {13, 12}, {5, 2100}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const uint64_t R = shapes[s][0], K = shapes[s][1];
        double *E = malloc(R * K * sizeof(double)), *H = malloc(K * K * sizeof(double));
        double *ref = malloc(R * K * sizeof(double)), *G = malloc(R * K * sizeof(double));
        for (uint64_t i = 0; i < R * K; i++) E[i] = i % 5 == 2 ? (i % 2 ? -0.0 : 0.0) : sin(0.71 * (double)i) * 1e-2 / (1.0 + (double)(i % 13));
        for (uint64_t i = 0; i < K; i++)
            for (uint64_t j = 0; j < K; j++) H[i * K + j] = H[j * K + i] = cos(0.3 * (double)(i + 2 * j)) + (i == j ? (double)K : 0.0);
        const double lam = 0.0123;
        for (uint64_t r = 0; r < R; r++)
            for (uint64_t j = 0; j < K; j++) {
                double g = lam * E[r * K + j];
                for (uint64_t k = 0; k < K; k++)
                    if (E[r * K + k] != 0) g = fma(E[r * K + k], H[k * K + j], g);
                ref[r * K + j] = g;
            }
        for (int isa = 0; isa < SQ_ISA_COUNT; isa++) {
            if (!isa_ok((sq_isa)isa)) continue;
            memset(G, 0xff, R * K * sizeof(double));
            sq_descent_gradient((sq_isa)isa, E, R, K, H, lam, G);
            ck_assert_msg(!memcmp(G, ref, R * K * sizeof(double)), "%s: %llu x %llu differs", sq_isa_name((sq_isa)isa),
                          (unsigned long long)R, (unsigned long long)K);
        }
        free(E), free(H), free(ref), free(G);
    }
}
END_TEST

/* The factor's definition, unblocked: with A = P·H·P, each element of L is
 * A[i][k] minus one sq_la_dot per 64-wide segment of [0, k) in order (the
 * last one partial, possibly empty), then sqrt or the division; each
 * element of L⁻¹ below the diagonal is -(Σ of one dot per 64-grid segment of
 * [j, i), added in order to 0) / L[i][i]. */
static void factor_reference(const double *H, uint64_t n, double *U) {
    double *L = calloc(n * n, sizeof(double)), *X = calloc(n * n, sizeof(double));
    for (uint64_t i = 0; i < n; i++)
        for (uint64_t k = 0; k <= i; k++) {
            double v = H[(n - 1 - i) * n + (n - 1 - k)];
            for (uint64_t s = 0; s + 64 <= k; s += 64) v -= sq_la_dot(SQ_ISA_PORTABLE, L + i * n + s, L + k * n + s, 64);
            v -= sq_la_dot(SQ_ISA_PORTABLE, L + i * n + k / 64 * 64, L + k * n + k / 64 * 64, k % 64);
            L[i * n + k] = i == k ? sqrt(v) : v / L[k * n + k];
        }
    for (uint64_t j = 0; j < n; j++) {
        X[j * n + j] = 1.0 / L[j * n + j];
        for (uint64_t i = j + 1; i < n; i++) {
            double acc = 0;
            for (uint64_t s = j; s < i;) {
                const uint64_t e = (s / 64 + 1) * 64 < i ? (s / 64 + 1) * 64 : i;
                acc += sq_la_dot(SQ_ISA_PORTABLE, L + i * n + s, X + j * n + s, e - s);
                s = e;
            }
            X[j * n + i] = -acc / L[i * n + i];
        }
    }
    for (uint64_t i = 0; i < n; i++) /* U[i][j] = (L⁻¹)[n-1-i][n-1-j] = X[n-1-j][n-1-i] */
        for (uint64_t j = 0; j < n; j++) U[i * n + j] = j < i ? 0.0 : X[(n - 1 - j) * n + (n - 1 - i)];
    free(L);
    free(X);
}

/* A well-conditioned but dense SPD matrix: XᵀX/T + 0.1 I of correlated data. */
static double *spd(uint64_t n) {
    const uint32_t T = 3 * (uint32_t)n;
    float *x = acts(T, (uint32_t)n);
    double *H = calloc(n * n, sizeof(double));
    sq_xtx_accumulate(SQ_ISA_PORTABLE, H, n, x, n, T, 0, (uint32_t)n, 0, (uint32_t)n);
    for (uint64_t i = 0; i < n * n; i++) H[i] /= T;
    for (uint64_t i = 0; i < n; i++) H[i * n + i] += 0.1 * H[i * n + i] + 1e-3;
    free(x);
    return H;
}

START_TEST(chol_inverse_factor) {
    static const uint64_t sizes[] = {1, 7, 100, 300}; /* 300: several panels, ragged tiles and blocks */
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        const uint64_t n = sizes[s];
        double *H = spd(n), *U0 = NULL;
        for (int isa = 0; isa < SQ_ISA_COUNT; isa++) {
            if (!isa_ok((sq_isa)isa)) continue;
            for (int threads = 1; threads <= 3; threads += 2) {
                double *U = malloc(n * n * sizeof(double)), *W = malloc(n * n * sizeof(double));
                ck_assert_int_eq(sq_la_chol_inv_upper((sq_isa)isa, H, n, U, W, threads), 0);
                if (!U0) {
                    /* the order of every sum is the definition's */
                    double *R = malloc(n * n * sizeof(double));
                    factor_reference(H, n, R);
                    ck_assert_msg(!memcmp(U, R, n * n * sizeof(double)), "n %llu: %s differs from the unblocked definition",
                                  (unsigned long long)n, sq_isa_name((sq_isa)isa));
                    free(R);
                    /* upper triangular with a positive diagonal, and H·UᵀU = I */
                    double worst = 0;
                    for (uint64_t i = 0; i < n; i++) {
                        ck_assert(U[i * n + i] > 0);
                        for (uint64_t j = 0; j < i; j++) ck_assert(U[i * n + j] == 0);
                    }
                    double *M = calloc(n * n, sizeof(double)); /* M = UᵀU */
                    for (uint64_t m = 0; m < n; m++)
                        for (uint64_t k = m; k < n; k++)
                            for (uint64_t j = m; j < n; j++) M[k * n + j] += U[m * n + k] * U[m * n + j];
                    for (uint64_t i = 0; i < n; i++)
                        for (uint64_t j = 0; j < n; j++) {
                            double v = 0;
                            for (uint64_t k = 0; k < n; k++) v += H[i * n + k] * M[k * n + j];
                            double e = fabs(v - (i == j));
                            if (e > worst) worst = e;
                        }
                    free(M);
                    ck_assert_msg(worst < 1e-9, "n %llu: |H·UᵀU - I| = %g", (unsigned long long)n, worst);
                    U0 = U;
                } else {
                    ck_assert_msg(!memcmp(U, U0, n * n * sizeof(double)), "n %llu: %s, %d threads differ",
                                  (unsigned long long)n, sq_isa_name((sq_isa)isa), threads);
                    free(U);
                }
                free(W);
            }
        }
        /* in place (U = H) gives the same factor */
        double *W = malloc(n * n * sizeof(double)), *Hc = malloc(n * n * sizeof(double));
        memcpy(Hc, H, n * n * sizeof(double));
        ck_assert_int_eq(sq_la_chol_inv_upper(sq_isa_active(), Hc, n, Hc, W, 2), 0);
        ck_assert(!memcmp(Hc, U0, n * n * sizeof(double)));
        /* not positive definite: refused, never NaN */
        memcpy(Hc, H, n * n * sizeof(double));
        Hc[(n / 2) * n + n / 2] = -1;
        ck_assert_int_eq(sq_la_chol_inv_upper(sq_isa_active(), Hc, n, Hc, W, 1), -1);
        free(W), free(Hc), free(H), free(U0);
    }
}
END_TEST

/* Writes a calibration file of one layer whose mlp_act XᵀX has the pair
 * [0][6] / [6][0] apart by rel times its bound, and reads it back. */
static sq_status roundtrip_asym(double rel, sq_calib_site *out, uint64_t *repaired, char *msg, size_t msglen) {
    sq_rt_config cfg = {.n_layers = 1, .hidden = 16, .n_heads = 2, .n_kv_heads = 1, .head_dim = 8, .inter = 24};
    sq_calib_acc a;
    sq_err err = {0};
    test_rng = 88172645463325252ull; /* the same activations in every call */
    ck_assert_int_eq(sq_calib_acc_init(&a, &cfg, 0, 1, 1, &err), 0);
    a.info.samples = 1;
    a.info.seqlen = 40;
    memset(a.info.model_sha256, 'a', 64);
    memset(a.info.text_sha256, 'b', 64);
    a.info.provenance = strdup("{}");
    for (int s = 0; s < SQ_SITE_COUNT; s++) {
        uint32_t n = s == SQ_SITE_MLP_ACT ? 24 : 16;
        float *x = acts(40, n);
        sq_calib_tap(&a, 0, (sq_site)s, x, 40, n);
        free(x);
    }
    ck_assert_int_eq(a.status, 0);
    sq_calib_acc_symmetrize(&a);
    sq_calib_site *m = &a.sites[SQ_SITE_MLP_ACT];
    double *x06 = &m->xtx[0 * 24 + 6];
    *x06 += rel * sqrt(m->xtx[0] * m->xtx[6 * 24 + 6]);
    char path[] = "/tmp/squish-test-calib-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    ck_assert_int_eq(sq_calib_write(path, &a, &err), 0);
    sq_calib_acc_free(&a);
    sq_calib_file *f = sq_calib_open(path, &err);
    ck_assert_msg(f != NULL, "%s", err.msg);
    sq_status st = sq_calib_read_site(f, 0, SQ_SITE_MLP_ACT, out, &err);
    *repaired = sq_calib_file_repairs(f, NULL);
    snprintf(msg, msglen, "%s", st ? err.msg : "");
    sq_calib_close(f);
    unlink(path);
    return st;
}

START_TEST(asymmetric_calibration_files) {
    sq_calib_site s;
    uint64_t repaired;
    char msg[512];
    /* never asymmetric when written now */
    ck_assert_int_eq(roundtrip_asym(0, &s, &repaired, msg, sizeof msg), 0);
    ck_assert_int_eq(repaired, 0);
    double exact06 = s.xtx[6];
    sq_calib_site_free(&s);
    /* a rounding-sized difference (sgemm in float32 under squish <= 0.1.0): repaired to the pair's mean */
    ck_assert_int_eq(roundtrip_asym(3e-8, &s, &repaired, msg, sizeof msg), 0);
    ck_assert_int_eq(repaired, 1);
    ck_assert(s.xtx[6] == s.xtx[6 * 24]);
    const double half = 0.5 * 3e-8 * sqrt(s.xtx[0] * s.xtx[6 * 24 + 6]); /* the mean moved by half the difference */
    ck_assert_msg(fabs(fabs(s.xtx[6] - exact06) - half) <= 1e-6 * half, "%.17g vs %.17g", s.xtx[6], exact06);
    sq_calib_site_free(&s);
    /* a difference no rounding explains: refused, naming the dataset and the pair */
    ck_assert_int_eq(roundtrip_asym(1e-2, &s, &repaired, msg, sizeof msg), SQ_ECORRUPT);
    ck_assert_msg(strstr(msg, "/layers/0/mlp_act/xtx is not symmetric at [0][6]"), "message: %s", msg);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("numerics");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, xtx_same_bits_on_every_isa);
    tcase_add_test(tc, matmul_same_bits_on_every_isa);
    tcase_add_test(tc, dot_same_bits_on_every_isa);
    tcase_add_test(tc, sub_scaled_same_bits_on_every_isa);
    tcase_add_test(tc, axpy_f64_same_bits_on_every_isa);
    tcase_add_test(tc, descent_gradient_same_bits_on_every_isa);
    tcase_add_test(tc, chol_inverse_factor);
    tcase_add_test(tc, asymmetric_calibration_files);
    suite_add_tcase(s, tc);
    return s;
}

RUN_SUITE(suite())
