/* QuIP# pieces (issue 19, phase 1): the randomized Hadamard transform, the
 * E8P12 / E81B codebooks and their nearest search, BlockLDLQ, and the QuIP#
 * quantizer with its decode and GEMV. Every expected value is computed here
 * independently of the code under test (naive transforms, an enumeration
 * of D8 + 1/2, brute-force nearest search, plain GPTQ, output errors from
 * the decoded matrix in the original basis). */
#include <math.h>

#include "awq.h" /* sq_hessian_err */
#include "calib.h"
#include "codecs/quip/e8p.h"
#include "e8p_encode.h"
#include "encoders.h"
#include "codecs/quip/quip_codec.h"
#include "gptq.h"
#include "ldlq.h"
#include "quip.h"
#include "squish/model.h"
#include "testutil.h"
#include "xform/hadamard.h"

static double gauss(void) { /* sum of 12 uniforms - 6: unit variance */
    double g = 0;
    for (int k = 0; k < 12; k++) g += urand();
    return g - 6;
}

/* ---------------- Hadamard ---------------- */

START_TEST(hadamard_orders_are_hadamard) {
    int count = 0;
    for (uint32_t K = 2; K <= SQ_HAD_MAX_K; K++) {
        const int8_t *H = sq_had_matrix(K);
        if (!H) continue;
        count++;
        long bad = 0; /* plain counting: a Check assertion per element would dominate the run time */
        for (uint32_t i = 0; i < K; i++)
            for (uint32_t j = 0; j < K; j++) {
                long d = 0;
                for (uint32_t k = 0; k < K; k++) {
                    bad += H[i * K + k] != 1 && H[i * K + k] != -1;
                    d += H[i * K + k] * H[j * K + k];
                }
                bad += d != (i == j ? (long)K : 0);
            }
        ck_assert_msg(bad == 0, "order %u: %ld entries of H Hᵀ - K·I (or of H ∉ ±1) wrong", K, bad);
    }
    ck_assert(sq_had_order_supported(12) && sq_had_order_supported(20) && sq_had_order_supported(28));
    ck_assert(!sq_had_order_supported(52) && !sq_had_order_supported(6));
    ck_assert_int_ge(count, 30);
}
END_TEST

/* Ĥ·diag(s)·x by the definition: (H_K ⊗ H_2^m)[a][b] = H_K[a/M][b/M]·(-1)^popcount((a%M)&(b%M)). */
static void naive_rht(const sq_had_plan *p, const uint8_t *s, const float *x, double *y) {
    const uint64_t M = (uint64_t)1 << p->log2m, d = p->block;
    for (uint64_t b0 = 0; b0 < p->n; b0 += d)
        for (uint64_t a = 0; a < d; a++) {
            double acc = 0;
            for (uint64_t b = 0; b < d; b++) {
                int h = p->K > 1 ? p->HK[(a / M) * p->K + b / M] : 1;
                if (__builtin_popcountll((a % M) & (b % M)) & 1) h = -h;
                double xv = x[b0 + b] * (sq_rht_sign_neg(s, b0 + b) ? -1.0 : 1.0);
                acc += h * xv;
            }
            y[b0 + a] = acc / sqrt((double)d);
        }
}

START_TEST(hadamard_every_size) {
    /* direct sizes (incl. the 34M model's 512 and 1536) and fallback sizes */
    const uint64_t ns[] = {1, 8, 12, 24, 40, 56, 512, 1536, 896, 5120, 100, 7, 10920, 11008};
    const uint64_t blocks[] = {1, 8, 12, 24, 40, 56, 512, 1536, 896, 5120, 20, 1, 280, 256};
    for (size_t t = 0; t < sizeof ns / sizeof *ns; t++) {
        const uint64_t n = ns[t];
        sq_had_plan p;
        ck_assert_int_eq(sq_had_plan_init(&p, n, NULL), 0);
        ck_assert_msg(p.block == blocks[t], "n = %llu: block %llu", (unsigned long long)n, (unsigned long long)p.block);
        uint8_t *s = malloc((n + 7) / 8);
        sq_rht_signs(1234 + t, n, s);
        float *x = malloc(n * 4), *y = malloc(n * 4), *z = malloc(n * 4);
        double *ref = malloc(n * 8);
        for (uint64_t i = 0; i < n; i++) x[i] = (float)gauss();
        memcpy(y, x, n * 4);
        sq_rht_apply_plan(&p, s, y);
        memcpy(z, y, n * 4);
        sq_rht_inverse_plan(&p, s, z);
        double nx = 0, ny = 0, dinv = 0, dref = 0;
        if (n <= 1536 || p.block <= 512) naive_rht(&p, s, x, ref);
        for (uint64_t i = 0; i < n; i++) {
            nx += (double)x[i] * x[i];
            ny += (double)y[i] * y[i];
            dinv = fmax(dinv, fabs(z[i] - x[i]));
            if (n <= 1536 || p.block <= 512) dref = fmax(dref, fabs(y[i] - ref[i]));
        }
        ck_assert_msg(fabs(nx - ny) <= 1e-5 * nx, "n = %llu: norm %g -> %g", (unsigned long long)n, nx, ny);
        ck_assert_msg(dinv < 1e-5, "n = %llu: inverse off by %g", (unsigned long long)n, dinv);
        ck_assert_msg(dref < 1e-4, "n = %llu: differs from the definition by %g", (unsigned long long)n, dref);
        /* the float convenience form is the same transform */
        memcpy(z, x, n * 4);
        sq_rht_apply(s, z, n);
        ck_assert(memcmp(z, y, n * 4) == 0);
        free(s); free(x); free(y); free(z); free(ref);
    }
    ck_assert_int_eq(sq_had_plan_init(&(sq_had_plan){0}, 0, NULL), SQ_EUSAGE);
}
END_TEST

START_TEST(hadamard_orthogonal_and_double) {
    /* Ĥ orthogonal: the matrix of the transform (columns = images of unit
     * vectors) has MᵀM = I; the double path agrees with the float one */
    const uint64_t ns[] = {12, 48, 60, 96, 160, 252};
    for (size_t t = 0; t < sizeof ns / sizeof *ns; t++) {
        const uint64_t n = ns[t];
        sq_had_plan p;
        sq_had_plan_init(&p, n, NULL);
        ck_assert_uint_eq(p.block, n);
        uint8_t *s = malloc((n + 7) / 8);
        sq_rht_signs(99, n, s);
        double *M = calloc(n * n, 8);
        for (uint64_t j = 0; j < n; j++) {
            double *col = calloc(n, 8);
            col[j] = 1;
            sq_rht_apply_plan_f64(&p, s, col);
            for (uint64_t i = 0; i < n; i++) M[i * n + j] = col[i];
            free(col);
        }
        double worst = 0;
        for (uint64_t a = 0; a < n; a++)
            for (uint64_t b = 0; b < n; b++) {
                double d = 0;
                for (uint64_t i = 0; i < n; i++) d += M[i * n + a] * M[i * n + b];
                worst = fmax(worst, fabs(d - (a == b)));
            }
        ck_assert_msg(worst < 1e-12, "n = %llu: MᵀM - I up to %g", (unsigned long long)n, worst);
        free(M);
        free(s);
    }
}
END_TEST

START_TEST(rht_signs_are_splitmix64) {
    uint8_t s[64];
    sq_rht_signs(42, 500, s);
    uint64_t st = 42;
    int neg = 0;
    for (int i = 0; i < 500; i++) {
        uint64_t z = (st += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        ck_assert_int_eq(sq_rht_sign_neg(s, i), (int)(z >> 63));
        neg += (int)(z >> 63);
    }
    ck_assert(neg > 200 && neg < 300);
    ck_assert_int_eq(s[62] >> 4, 0); /* bits past n stay clear */
}
END_TEST

/* ---------------- E8P12 / E81B ---------------- */

static int cmp8(const void *a, const void *b) { return memcmp(a, b, 8); }
static int cmp32(const void *a, const void *b) { return memcmp(a, b, 32); }
/* Lexicographic order of 8 ints (not bytes: they are signed). */
static int memcmp_int8(const int *a, const int *b) {
    for (int i = 0; i < 8; i++)
        if (a[i] != b[i]) return a[i] < b[i] ? -1 : 1;
    return 0;
}
/* By norm, then lexicographically. */
static int cmp_norm_lex(const void *pa, const void *pb) {
    const int *a = pa, *b = pb;
    int na = 0, nb = 0;
    for (int i = 0; i < 8; i++) na += a[i] * a[i], nb += b[i] * b[i];
    if (na != nb) return na < nb ? -1 : 1;
    return memcmp_int8(a, b);
}

START_TEST(e8p_table_matches_definition) {
    /* independent enumeration: x in (Z + 1/2)^8 with coordinates -7/2..7/2,
     * even sum, ‖x‖² <= 10; |x| deduplicated and sorted lexicographically */
    static uint8_t absv[1 << 16][8];
    int na = 0;
    for (uint32_t idx = 0; idx < (1u << 24); idx++) { /* 8 coordinates of 3 bits: 2x = 2k - 7, k in 0..7 */
        int v[8], sum2 = 0, n8 = 0;
        for (int i = 0; i < 8; i++) {
            v[i] = 2 * (int)((idx >> (3 * i)) & 7) - 7;
            sum2 += v[i];
            n8 += v[i] * v[i];
        }
        if ((sum2 / 2) % 2 != 0 || n8 > 40) continue; /* Σx = sum2/2 even; ‖x‖² = n8/4 */
        uint8_t a[8];
        for (int i = 0; i < 8; i++) a[i] = (uint8_t)abs(v[i]);
        memcpy(absv[na++], a, 8);
    }
    qsort(absv, na, 8, cmp8);
    int nu = 0;
    for (int i = 0; i < na; i++)
        if (nu == 0 || memcmp(absv[nu - 1], absv[i], 8)) memcpy(absv[nu++], absv[i], 8);
    ck_assert_int_eq(nu, 227);
    uint8_t tab[256][8];
    for (int A = 0; A < 256; A++)
        for (int i = 0; i < 8; i++) tab[A][i] = (uint8_t)((sq_e8p_abs[A] >> (4 * i)) & 15);
    for (int A = 0; A < 227; A++) ck_assert_msg(!memcmp(tab[A], absv[A], 8), "abs entry %d", A);
    for (int A = 227; A < 256; A++) { /* five 3/2's, three 1/2's: norm² 12 */
        int n3 = 0, n1 = 0;
        for (int i = 0; i < 8; i++) n3 += tab[A][i] == 3, n1 += tab[A][i] == 1;
        ck_assert_msg(n3 == 5 && n1 == 3, "entry %d", A);
    }
    uint8_t sorted[256][8];
    memcpy(sorted, tab, sizeof tab);
    qsort(sorted, 256, 8, cmp8);
    for (int A = 1; A < 256; A++) ck_assert_msg(memcmp(sorted[A - 1], sorted[A], 8), "duplicate absolute vector");
    /* the reference's first and last norm-12 rows */
    ck_assert_uint_eq(sq_e8p_abs[227], 0x33331113u);
    ck_assert_uint_eq(sq_e8p_abs[255], 0x13331133u);
}
END_TEST

START_TEST(e8p_decode_properties) {
    static float all[65536][8];
    for (uint32_t c = 0; c < 65536; c++) {
        float v[8];
        sq_e8p_decode((uint16_t)c, v);
        const unsigned A = c >> 8, S = c & 0xFF;
        const float t = (__builtin_popcount(S) & 1) ? -0.25f : 0.25f;
        int sum2 = 0, ok = 1;
        for (int i = 0; i < 8; i++) {
            float u = v[i] - t; /* in Z + 1/2, |u| = a_i */
            int u2 = (int)lrintf(2 * u);
            ok &= 2 * u == (float)u2 && (u2 & 1);
            ok &= abs(u2) == (int)((sq_e8p_abs[A] >> (4 * i)) & 15);
            sum2 += u2;
        }
        ok &= (sum2 / 2) % 2 == 0;
        memcpy(all[c], v, sizeof v);
        /* exact search returns the code of every codeword */
        float q[8];
        ok &= sq_e8p_nearest(v, q) == c && !memcmp(q, v, sizeof v);
        if (!ok) ck_abort_msg("code %04x: value - shift not in D8 + 1/2 with |.| = a, or not its own nearest code", c);
    }
    /* all 2^16 values distinct */
    static float srt[65536][8];
    memcpy(srt, all, sizeof all);
    qsort(srt, 65536, 32, cmp32); /* any total order on the bytes works */
    int dup = 0;
    for (int c = 1; c < 65536; c++) dup += !memcmp(srt[c - 1], srt[c], 32);
    ck_assert_int_eq(dup, 0);
    /* test vectors (definition in e8p.h) */
    float v[8];
    sq_e8p_decode(0x0000, v);
    for (int i = 0; i < 8; i++) ck_assert(v[i] == 0.75f);
    sq_e8p_decode(0x0001, v);
    for (int i = 0; i < 8; i++) ck_assert(v[i] == 0.25f);
    sq_e8p_decode(0x0003, v); /* f = 3: bits 0, 1 -> coordinates 0, 2 */
    for (int i = 0; i < 8; i++) ck_assert(v[i] == ((i == 0 || i == 2) ? -0.25f : 0.75f));
    sq_e8p_decode(0xE310, v); /* A = 227 (3,1,1,1,3,3,3,3)/2, Σ = 9 odd: b7 < 0; S = 0x10 odd: p = 1, f = 0x11 */
    const float want[8] = {-1.5f - 0.25f, -0.5f - 0.25f, 0.5f - 0.25f, 0.5f - 0.25f,
                           1.5f - 0.25f, 1.5f - 0.25f, 1.5f - 0.25f, -1.5f - 0.25f};
    /* f bit 0 -> coordinate 0, bit 4 -> coordinate 1 */
    for (int i = 0; i < 8; i++) ck_assert_msg(v[i] == want[i], "0xE310[%d] = %g", i, v[i]);
}
END_TEST

START_TEST(e8p_nearest_is_exact) {
    static float cb[65536][8];
    for (uint32_t c = 0; c < 65536; c++) sq_e8p_decode((uint16_t)c, cb[c]);
    const int trials = test_quick() ? 150 : 1500;
    for (int t = 0; t < trials; t++) {
        float y[8], q[8];
        const double sc = t % 3 == 0 ? 0.3 : t % 3 == 1 ? 1.0 : 2.5;
        for (int i = 0; i < 8; i++) y[i] = (float)(sc * gauss());
        uint16_t c = sq_e8p_nearest(y, q);
        double best = INFINITY, got = 0;
        for (uint32_t k = 0; k < 65536; k++) {
            double d = 0;
            for (int i = 0; i < 8; i++) d += ((double)y[i] - cb[k][i]) * ((double)y[i] - cb[k][i]);
            best = fmin(best, d);
        }
        for (int i = 0; i < 8; i++) got += ((double)y[i] - q[i]) * ((double)y[i] - q[i]);
        ck_assert(!memcmp(q, cb[c], 32));
        ck_assert_msg(got <= best + 1e-5 * (1 + best), "trial %d: %g vs brute force %g", t, got, best);
    }
}
END_TEST

START_TEST(e81b_grid_and_nearest) {
    int n2 = 0, n4 = 0;
    for (int c = 0; c < 256; c++) {
        int sum = 0, nrm = 0, odd = sq_e81b_grid2[c][0] & 1;
        for (int i = 0; i < 8; i++) {
            int v = sq_e81b_grid2[c][i];
            ck_assert_int_eq(v & 1, odd); /* all integer or all half-integer */
            sum += v;
            nrm += v * v;
        }
        ck_assert_msg((sum / 2) % 2 == 0, "E81B %d not in E8", c); /* Σx even */
        n2 += nrm <= 8;
        n4 += nrm == 16;
        for (int d = 0; d < c; d++) ck_assert(memcmp(sq_e81b_grid2[c], sq_e81b_grid2[d], 8));
        float v[8], q[8];
        sq_e81b_decode((uint8_t)c, v);
        ck_assert_int_eq(sq_e81b_nearest(v, q), c);
    }
    ck_assert_int_eq(n2, 241);
    ck_assert_int_eq(n4, 15);
    for (int t = 0; t < 2000; t++) {
        float y[8], q[8];
        for (int i = 0; i < 8; i++) y[i] = (float)(0.7 * gauss());
        sq_e81b_nearest(y, q);
        double best = INFINITY, got = 0;
        for (int c = 0; c < 256; c++) {
            double d = 0;
            for (int i = 0; i < 8; i++) d += (y[i] - 0.5 * sq_e81b_grid2[c][i]) * (y[i] - 0.5 * sq_e81b_grid2[c][i]);
            best = fmin(best, d);
        }
        for (int i = 0; i < 8; i++) got += (double)(y[i] - q[i]) * (y[i] - q[i]);
        ck_assert(got <= best + 1e-5 * (1 + best));
    }
}
END_TEST

/* ---------------- E8R and the nested stages ---------------- */

/* x = X/2 with X integer: in E8 = D8 ∪ (D8 + ½) when all X_i have one
 * parity and Σx = ΣX/2 is even. */
static int in_e8(const int X[8]) {
    int par = X[0] & 1, sum = 0;
    for (int i = 0; i < 8; i++) {
        if ((X[i] & 1) != par) return 0;
        sum += X[i];
    }
    return sum % 4 == 0;
}

START_TEST(e8r_table_matches_definition) {
    /* every E8 point with ‖x‖² <= 4 (X = 2x in -4..4), grouped by coset of
     * 2E8 (u ~ v when (u - v)/2 is in E8) */
    static int pts[4096][8], cls[4096];
    int np = 0;
    for (uint32_t idx = 0; idx < 43046721u; idx++) { /* 9^8 */
        int X[8], n = 0;
        uint32_t t = idx;
        for (int i = 0; i < 8; i++) {
            X[i] = (int)(t % 9) - 4;
            t /= 9;
            n += X[i] * X[i];
        }
        if (n > 16 || !in_e8(X)) continue;
        ck_assert_int_lt(np, 4096);
        memcpy(pts[np++], X, sizeof X);
    }
    ck_assert_int_eq(np, 1 + 240 + 2160);
    int ncls = 0, size[256] = {0}, rep[256];
    for (int a = 0; a < np; a++) {
        cls[a] = -1;
        for (int b = 0; b < a && cls[a] < 0; b++) {
            int D[8], even = 1;
            for (int i = 0; i < 8; i++) {
                even &= ((pts[a][i] - pts[b][i]) & 1) == 0;
                D[i] = (pts[a][i] - pts[b][i]) / 2;
            }
            if (even && in_e8(D)) cls[a] = cls[b];
        }
        if (cls[a] < 0) {
            ck_assert_int_lt(ncls, 256);
            cls[a] = ncls++;
        }
        size[cls[a]]++;
    }
    ck_assert_int_eq(ncls, 256);
    /* representative: the shortest, ties to the lexicographically greatest */
    for (int k = 0; k < 256; k++) rep[k] = -1;
    for (int a = 0; a < np; a++) {
        int k = cls[a], r = rep[k];
        int na = 0, nr = 0;
        for (int i = 0; i < 8; i++) na += pts[a][i] * pts[a][i];
        if (r >= 0)
            for (int i = 0; i < 8; i++) nr += pts[r][i] * pts[r][i];
        if (r < 0 || na < nr || (na == nr && memcmp_int8(pts[a], pts[r]) > 0)) rep[k] = a;
    }
    int want[256][8], ns[3] = {0, 0, 0};
    for (int k = 0; k < 256; k++) {
        memcpy(want[k], pts[rep[k]], sizeof want[k]);
        int n = 0;
        for (int i = 0; i < 8; i++) n += want[k][i] * want[k][i];
        ck_assert(n == 0 || n == 8 || n == 16);
        ns[n / 8]++;
        ck_assert_int_eq(size[k], n == 0 ? 1 : n == 8 ? 2 : 16); /* ±root pairs; 16 norm-4 vectors (8 orthogonal ± pairs) */
    }
    ck_assert(ns[0] == 1 && ns[1] == 120 && ns[2] == 135);
    qsort(want, 256, sizeof want[0], cmp_norm_lex);
    for (int k = 0; k < 256; k++) {
        float v[8];
        sq_e8r_decode((uint8_t)k, v);
        for (int i = 0; i < 8; i++) {
            ck_assert_msg(sq_e8r_grid4[k][i] == want[k][i], "E8R %d[%d]: %d, want %d", k, i, sq_e8r_grid4[k][i], want[k][i]);
            ck_assert(v[i] == 0.25f * (float)want[k][i]); /* value = member / 2 */
        }
        /* in the Voronoi cell of E8 (its relevant vectors are the 240 roots): ‖v‖ <= ‖v - λ‖ */
        for (int a = 1; a < np; a++) {
            int n = 0;
            for (int i = 0; i < 8; i++) n += pts[a][i] * pts[a][i];
            if (n != 8) continue;
            double d0 = 0, d1 = 0;
            for (int i = 0; i < 8; i++) {
                d0 += (double)v[i] * v[i];
                d1 += ((double)v[i] - 0.5 * pts[a][i]) * ((double)v[i] - 0.5 * pts[a][i]);
            }
            ck_assert_msg(d0 <= d1 + 1e-12, "E8R %d outside the Voronoi cell", k);
        }
    }
}
END_TEST

/* Nearest point of E8 by enumeration: every integer and half-integer
 * vector within one step of x in each coordinate. */
static double e8_brute(const float x[8]) {
    double best = INFINITY;
    for (int half = 0; half < 2; half++)
        for (uint32_t m = 0; m < 256; m++) {
            int X[8];
            double d = 0;
            for (int i = 0; i < 8; i++) {
                double base = half ? floor(x[i] - 0.5) + 0.5 : floor(x[i]);
                double c = base + ((m >> i) & 1);
                X[i] = (int)lrint(2 * c);
                d += (x[i] - c) * (x[i] - c);
            }
            if (in_e8(X)) best = fmin(best, d);
        }
    return best;
}

START_TEST(e8_nearest_and_cosets) {
    for (int t = 0; t < 3000; t++) {
        float x[8], p[8];
        for (int i = 0; i < 8; i++) x[i] = (float)(3 * gauss());
        sq_e8_nearest(x, p);
        int X[8];
        double d = 0;
        for (int i = 0; i < 8; i++) {
            X[i] = (int)lrintf(2 * p[i]);
            ck_assert(2 * p[i] == (float)X[i]);
            d += ((double)x[i] - p[i]) * ((double)x[i] - p[i]);
        }
        ck_assert(in_e8(X));
        const double b = e8_brute(x);
        ck_assert_msg(d <= b + 1e-5, "trial %d: %g vs brute force %g", t, d, b);
        /* the coset of 2E8 of member(k) + 2p is k's, for every E8R code k */
        for (int k = t % 7; k < 256; k += 7) {
            float e[8];
            for (int i = 0; i < 8; i++) e[i] = 0.5f * (float)sq_e8r_grid4[k][i] + 2 * p[i];
            ck_assert_int_eq(sq_e8r_of_coset(e), k);
        }
    }
}
END_TEST

START_TEST(e8r_nearest_is_exact) {
    float tab[256][8];
    for (int c = 0; c < 256; c++) sq_e8r_decode((uint8_t)c, tab[c]);
    const int trials = test_quick() ? 400 : 4000;
    for (int t = 0; t < trials; t++) {
        float y[8], q[8];
        const double sc = t % 3 == 0 ? 0.15 : t % 3 == 1 ? 0.4 : 1.2; /* inside the cell (the lattice shortcut) and far out */
        for (int i = 0; i < 8; i++) y[i] = (float)(sc * gauss());
        const int c = sq_e8r_nearest(y, q);
        ck_assert(!memcmp(q, tab[c], sizeof q));
        double best = INFINITY, got = 0;
        for (int k = 0; k < 256; k++) {
            double d = 0;
            for (int i = 0; i < 8; i++) d += ((double)y[i] - tab[k][i]) * ((double)y[i] - tab[k][i]);
            best = fmin(best, d);
        }
        for (int i = 0; i < 8; i++) got += ((double)y[i] - q[i]) * ((double)y[i] - q[i]);
        ck_assert_msg(got <= best + 1e-6 * (1 + best), "trial %d: %g vs brute force %g", t, got, best);
    }
}
END_TEST

START_TEST(e8p_code_of_value_round_trips) {
    for (uint32_t c = 0; c < 65536; c++) {
        float v[8], q[8];
        sq_e8p_decode((uint16_t)c, v);
        const int got = sq_e8p_code_of_value(v, q);
        if (got != (int)c || memcmp(q, v, sizeof v)) ck_abort_msg("code %04x: code_of_value gives %d", c, got);
    }
    /* points of E8 + ¼ outside the set: a coordinate of magnitude 7/2, and norm² 20 */
    const float out1[8] = {3.75f, 0.75f, 0.75f, 0.75f, 0.75f, 0.75f, 0.75f, 1.75f}; /* x = (3.5, .5 x6, 1.5) + ¼ */
    const float out2[8] = {2.75f, 2.75f, 2.75f, 0.75f, 0.75f, 0.75f, 0.75f, 0.75f}; /* Σx = 10, ‖x‖² = 20 */
    float q[8];
    ck_assert_int_eq(sq_e8p_code_of_value(out1, q), -1);
    ck_assert_int_eq(sq_e8p_code_of_value(out2, q), -1);
}
END_TEST

/* The nested quantizer (the codec's vq op) with the nominal stage scales
 * (s, s, s/2 at 4 bits; s, s at 3) returns a point of the fine lattice
 * (¼E8 + ¼ resp. ½E8 + ¼, times s), the nearest one whenever that lies in
 * the codebook, and the value its codes decode to. */
START_TEST(nested_quantizer_is_the_fine_lattice) {
    for (uint32_t bits = 3; bits <= 4; bits++) {
        const sq_codec *c;
        uint32_t p[SQ_NPARAMS];
        char scheme[16];
        snprintf(scheme, sizeof scheme, "quip:%u", bits);
        ck_assert_int_eq(sq_scheme_parse(scheme, &c, p, NULL), 0);
        ck_assert_uint_eq(p[SQ_QUIP_P_NESTED], 1);
        const sq_codec_encoder *enc = sq_quant_encoder(c);
        const float s = 0.375f, L = bits == 4 ? 4.0f : 2.0f;
        const float stat[SQ_VQ_MAX_STAT] = {s, s, bits == 4 ? 0.5f * s : 0.0f, 0};
        const sq_vq vq = {c, p, 1, 8, NULL};
        int nearest = 0;
        const int T = 3000;
        for (int t = 0; t < T; t++) {
            float v[8], deq[8];
            for (int i = 0; i < 8; i++) v[i] = (float)(0.8 * s * gauss());
            const uint32_t code = enc->vq->quant(&vq, stat, v, deq);
            /* a fine-lattice point: L·(deq/s - ¼) in E8 */
            float y[8];
            int X[8];
            for (int i = 0; i < 8; i++) {
                y[i] = L * (v[i] / s - 0.25f);
                const float u = L * (deq[i] / s - 0.25f);
                X[i] = (int)lrintf(2 * u);
                ck_assert_msg(fabsf(2 * u - (float)X[i]) < 1e-4f, "trial %d: not a fine-lattice point", t);
            }
            ck_assert(in_e8(X));
            /* the codes decode to deq (the decoder's arithmetic) */
            float q0[8], q1[8], q2[8] = {0};
            sq_e8p_decode((uint16_t)(code & 0xFFFF), q0);
            sq_e8r_decode((uint8_t)(code >> 16), q1);
            if (bits == 4) sq_e8r_decode((uint8_t)(code >> 24), q2);
            for (int i = 0; i < 8; i++) {
                float o = stat[0] * q0[i];
                o += stat[1] * q1[i];
                if (bits == 4) o += stat[2] * q2[i];
                ck_assert(o == deq[i]);
            }
            /* distance in lattice units against the fine lattice's nearest point */
            double d = 0;
            for (int i = 0; i < 8; i++) d += (double)(y[i] - 0.5f * X[i]) * (y[i] - 0.5f * X[i]);
            const double b = e8_brute(y);
            ck_assert(d >= b - 1e-4);
            nearest += d <= b + 1e-4;
        }
        /* inside the E8P ball (most points at this scale) the fine lattice's nearest point is returned */
        ck_assert_msg(nearest > T * 3 / 4, "%u bits: nearest in %d of %d", bits, nearest, T);
    }
}
END_TEST

/* ---------------- LDLQ ---------------- */

static double *random_hessian(uint64_t n, uint64_t T) {
    /* XᵀX of correlated activations with a few loud channels */
    double *H = calloc(n * n, 8), *x = malloc(n * 8), *mix = malloc(8 * n * 8);
    for (uint64_t i = 0; i < 8 * n; i++) mix[i] = gauss();
    for (uint64_t t = 0; t < T; t++) {
        double src[8];
        for (int k = 0; k < 8; k++) src[k] = gauss();
        for (uint64_t j = 0; j < n; j++) {
            double v = 0.3 * gauss();
            for (int k = 0; k < 8; k++) v += src[k] * mix[k * n + j];
            x[j] = v * (j % 17 == 0 ? 6 : 1);
        }
        for (uint64_t i = 0; i < n; i++)
            for (uint64_t j = 0; j < n; j++) H[i * n + j] += x[i] * x[j];
    }
    free(x);
    free(mix);
    return H;
}

/* The codec's own error-feedback quantizer (what GPTQ drives) as an LDLQ callback. */
typedef struct int_vq {
    const sq_vq_ops *ops;
    sq_vq vq;
    const float *stat; /* SQ_VQ_MAX_STAT per row: one group per row */
} int_vq;

static sq_status int_round(void *ctx, uint64_t r0, uint64_t nrows, uint64_t c0, uint32_t width, const float *v,
                           size_t ldv, float *q, size_t ldq) {
    const int_vq *x = ctx;
    for (uint64_t r = 0; r < nrows; r++)
        for (uint32_t j = 0; j < width; j += x->ops->dim)
            x->ops->quant(&x->vq, x->stat + (r0 + r) * SQ_VQ_MAX_STAT, v + r * ldv + j, q + r * ldq + j);
    (void)c0;
    return SQ_OK;
}

START_TEST(ldlq_width1_is_gptq) {
    const uint64_t rows = 150, cols = 200; /* 3 row tiles; a ragged lazy batch */
    float *w = random_matrix(rows * cols, 1);
    double *H = random_hessian(cols, 400);
    const sq_codec *c;
    uint32_t p[SQ_NPARAMS];
    sq_err err;
    ck_assert_int_eq(sq_scheme_parse("int3:pc:asym", &c, p, &err), 0);
    sq_encoded g;
    sq_gptq_info info;
    /* the sweep alone: the coordinate descent after it is GPTQ's, not LDLQ's */
    sq_gptq_opts go = {.damp = 0.01, .act_order = 0, .static_groups = 0, .block = 128, .n_threads = 1, .refine = -1};
    ck_assert_int_eq(sq_gptq_quantize("t", c, p, w, rows, cols, H, &go, &g, &info, &err), 0);
    ck_assert_int_eq(info.retries, 0);
    float *dg = malloc(rows * cols * 4), *dl = malloc(rows * cols * 4), *U = malloc(cols * cols * 4);
    sq_tview tv;
    sq_tview_from_encoded(&g, &tv);
    sq_decode_mt(&tv, dg, 1);
    /* per-row statistics fitted on the original row (what GPTQ does at column 0) */
    const sq_vq_ops *ops = c->enc ? c->enc->vq : NULL;
    ck_assert_ptr_nonnull(ops);
    ck_assert_uint_eq(ops->dim, 1);
    sq_encoded scratch;
    ck_assert_int_eq(sq_encoded_alloc(c, p, rows, cols, &scratch, &err), 0);
    int_vq ctx = {ops, {c, scratch.params, rows, cols, scratch.data}, NULL};
    ck_assert_uint_eq(ops->group_len(&ctx.vq), cols);
    float *stat = malloc(rows * SQ_VQ_MAX_STAT * 4);
    for (uint64_t r = 0; r < rows; r++) ops->fit(&ctx.vq, r, 0, w + r * cols, cols, stat + r * SQ_VQ_MAX_STAT);
    ctx.stat = stat;
    sq_gptq_info hi = {0};
    ck_assert_int_eq(sq_gptq_hinv(H, cols, NULL, 0.01, U, 1, &hi, &err), 0);
    for (int thr = 1; thr <= 2; thr++) {
        sq_ldlq_opts lo = {1, 128, 64, thr};
        ck_assert_int_eq(sq_ldlq_run(w, rows, cols, U, &lo, int_round, &ctx, dl, &err), 0);
        int diff = 0;
        for (uint64_t i = 0; i < rows * cols; i++) diff += dl[i] != dg[i];
        ck_assert_msg(diff == 0, "%d values of LDLQ(width 1) differ from GPTQ's", diff);
    }
    /* width 8 with the same rounding: still lowers the output error against RTN */
    sq_ldlq_opts l8 = {8, 128, 64, 2};
    ck_assert_int_eq(sq_ldlq_run(w, rows, cols, U, &l8, int_round, &ctx, dl, &err), 0);
    float *rtn = malloc(rows * cols * 4), *Hf = malloc(cols * cols * 4);
    for (uint64_t r = 0; r < rows; r++)
        for (uint64_t j = 0; j < cols; j++) ops->quant(&ctx.vq, stat + r * SQ_VQ_MAX_STAT, w + r * cols + j, rtn + r * cols + j);
    for (uint64_t i = 0; i < cols * cols; i++) Hf[i] = (float)H[i];
    double e8 = sq_hessian_err(dl, w, rows, cols, Hf), er = sq_hessian_err(rtn, w, rows, cols, Hf);
    ck_assert_msg(e8 < 0.8 * er, "block LDLQ %g vs RTN %g", e8, er);
    ck_assert_int_eq(sq_ldlq_run(w, rows, cols - 3, U, &l8, int_round, &ctx, dl, &err), SQ_EUSAGE);
    sq_encoded_free(&g);
    sq_encoded_free(&scratch);
    free(w); free(H); free(dg); free(dl); free(U); free(stat); free(rtn); free(Hf);
}
END_TEST

/* ---------------- QuIP# ---------------- */

static double proxy_of(const float *dec, const float *w, uint64_t rows, uint64_t cols, const double *H) {
    float *Hf = malloc(cols * cols * 4), *zero = calloc(rows * cols, 4);
    for (uint64_t i = 0; i < cols * cols; i++) Hf[i] = (float)H[i];
    double r = sq_hessian_err(dec, w, rows, cols, Hf) / sq_hessian_err(w, zero, rows, cols, Hf);
    free(Hf);
    free(zero);
    return r;
}

START_TEST(quip_decode_gemv_threads) {
    const uint64_t rows = 184, cols = 96; /* 184 = 8·23: no order 92 or 184, so the output side takes the blocking fallback (blocks of 8) */
    float *w = random_matrix(rows * cols, 1);
    double *H = random_hessian(cols, 300);
    const struct { uint32_t bits, nested; } var[] = {{2, 0}, {3, 0}, {4, 0}, {3, 1}, {4, 1}};
    double proxy[5] = {0};
    for (int k = 0; k < 5; k++) {
        const uint32_t bits = var[k].bits, S = sq_quip_stages(bits, var[k].nested);
        sq_quip_opts o = {.bits = bits, .nested = var[k].nested, .seed = 7, .n_threads = 1};
        sq_quip_result r1, r2;
        sq_err err;
        ck_assert_int_eq(sq_quip_quantize(w, rows, cols, H, &o, &r1, &err), 0);
        ck_assert_uint_eq(r1.had_block_in, 96);
        ck_assert_uint_eq(r1.had_block_out, 8);
        o.n_threads = 2;
        ck_assert_int_eq(sq_quip_quantize(w, rows, cols, H, &o, &r2, &err), 0);
        const uint64_t G = cols / 8;
        ck_assert(!memcmp(r1.codes, r2.codes, rows * G * 2));
        if (S > 1) ck_assert(!memcmp(r1.codes2, r2.codes2, rows * G * (bits == 4 && !var[k].nested ? 2 : 1)));
        if (S > 2) ck_assert(!memcmp(r1.codes3, r2.codes3, rows * G));
        ck_assert((S > 2) == (r1.codes3 != NULL));
        ck_assert(!memcmp(r1.scales, r2.scales, S * rows * 2));
        ck_assert(!memcmp(r1.su, r2.su, (cols + 7) / 8) && !memcmp(r1.sv, r2.sv, (rows + 7) / 8));
        /* decode in the original basis: its output error is the result's own figure */
        sq_quip_view v;
        sq_quip_view_of(&r1, &v);
        ck_assert_int_eq(sq_quip_view_check(&v, &err), 0);
        float *dec = malloc(rows * cols * 4);
        ck_assert_int_eq(sq_quip_decode(&v, dec, &err), 0);
        double px = proxy_of(dec, w, rows, cols, H);
        ck_assert_msg(fabs(px - r1.proxy) <= 1e-3 * r1.proxy + 1e-7, "%u bits: decoded %g, reported %g", bits, px,
                      r1.proxy);
        /* the refit lowers the first pass's error, later passes lower it further (each row keeps its best) */
        ck_assert_msg(r1.proxy_refit <= r1.proxy_norefit, "%u bits: refit %g > %g", bits, r1.proxy_refit,
                      r1.proxy_norefit);
        ck_assert_msg(r1.proxy <= r1.proxy_refit, "%u bits: stored %g > first pass %g", bits, r1.proxy, r1.proxy_refit);
        /* the codebooks compared under BlockLDLQ and the refit alone: the block descent
         * (tune_iters) gains more on the residual forms, whose greedy stage search leaves it more */
        sq_quip_opts ou = o;
        ou.tune_iters = -1;
        sq_quip_result ru;
        ck_assert_int_eq(sq_quip_quantize(w, rows, cols, H, &ou, &ru, &err), 0);
        ck_assert_msg(r1.proxy < ru.proxy, "%u bits: with the descent %g, without %g", bits, r1.proxy, ru.proxy);
        proxy[k] = ru.proxy;
        sq_quip_result_free(&ru);
        /* GEMV against decode-then-dot (double): |Δy_r| <= 1e-5 · Σ_j |W_rj x_j| + 1e-6·‖x‖·max‖W̃_r‖ */
        float *x = malloc(cols * 4), *y = malloc(rows * 4), *work = malloc((cols + cols / 8) * 4);
        for (uint64_t j = 0; j < cols; j++) x[j] = (float)gauss();
        sq_quip_gemv(&v, x, y, work);
        double xn = 0, wmax = 0;
        for (uint64_t j = 0; j < cols; j++) xn += (double)x[j] * x[j];
        for (uint64_t r = 0; r < rows; r++) {
            double wn = 0;
            for (uint64_t j = 0; j < cols; j++) wn += (double)dec[r * cols + j] * dec[r * cols + j];
            wmax = fmax(wmax, sqrt(wn));
        }
        for (uint64_t r = 0; r < rows; r++) {
            double ref = 0, mag = 0;
            for (uint64_t j = 0; j < cols; j++) {
                ref += (double)dec[r * cols + j] * x[j];
                mag += fabs((double)dec[r * cols + j] * x[j]);
            }
            ck_assert_msg(fabs(y[r] - ref) <= 1e-5 * mag + 1e-6 * sqrt(xn) * wmax, "%u bits row %llu: %g vs %g", bits,
                          (unsigned long long)r, y[r], ref);
        }
        /* the no-refit option: one pass with the initial scales; its codes are a one-pass run's and its
         * error the first pass's before the refit */
        sq_quip_opts on = o, o1 = o;
        on.no_refit = 1;
        o1.passes = 1;
        sq_quip_result r3, r4;
        ck_assert_int_eq(sq_quip_quantize(w, rows, cols, H, &on, &r3, &err), 0);
        ck_assert_int_eq(sq_quip_quantize(w, rows, cols, H, &o1, &r4, &err), 0);
        ck_assert(!memcmp(r4.codes, r3.codes, rows * G * 2));
        ck_assert_double_eq(r4.proxy, r4.proxy_refit);
        sq_quip_view_of(&r3, &v);
        ck_assert_int_eq(sq_quip_decode(&v, dec, &err), 0);
        px = proxy_of(dec, w, rows, cols, H);
        ck_assert_msg(fabs(px - r1.proxy_norefit) <= 1e-3 * px + 1e-7, "no refit: decoded %g, reported %g", px,
                      r1.proxy_norefit);
        sq_quip_result_free(&r1);
        sq_quip_result_free(&r2);
        sq_quip_result_free(&r3);
        sq_quip_result_free(&r4);
        free(dec); free(x); free(y); free(work);
    }
    /* error falls with the bits in both forms, and the nested stages beat quip-sharp's residual ones */
    ck_assert_msg(proxy[1] < proxy[0] && proxy[2] < proxy[1], "residual: %g %g %g", proxy[0], proxy[1], proxy[2]);
    ck_assert_msg(proxy[3] < proxy[0] && proxy[4] < proxy[3], "nested: %g %g", proxy[3], proxy[4]);
    ck_assert_msg(proxy[3] < proxy[1] && proxy[4] < proxy[2], "nested %g %g vs residual %g %g", proxy[3], proxy[4], proxy[1],
                  proxy[2]);
    free(w);
    free(H);
}
END_TEST

/* The ablations: BlockLDLQ against nearest rounding after the transforms,
 * and the transforms against none, on a Hessian with correlated inputs and
 * loud channels (where both pay). */
START_TEST(quip_ablations) {
    const uint64_t rows = 64, cols = 128;
    float *w = random_matrix(rows * cols, 3);
    for (uint64_t r = 0; r < rows; r++) w[r * cols + 5] *= 8; /* an outlier column: incoherence pays */
    double *H = random_hessian(cols, 400);
    sq_err err;
    for (uint32_t bits = 2; bits <= 4; bits += 2) {
        sq_quip_opts o = {.bits = bits, .nested = bits > 2, .seed = 3, .n_threads = 2};
        sq_quip_result full, nofb, norht;
        ck_assert_int_eq(sq_quip_quantize(w, rows, cols, H, &o, &full, &err), 0);
        o.no_feedback = 1;
        ck_assert_int_eq(sq_quip_quantize(w, rows, cols, H, &o, &nofb, &err), 0);
        o.no_feedback = 0;
        o.no_rht = 1;
        ck_assert_int_eq(sq_quip_quantize(w, rows, cols, H, &o, &norht, &err), 0);
        ck_assert_msg(full.proxy < nofb.proxy, "%u bits: BlockLDLQ %g not below nearest rounding %g", bits, full.proxy,
                      nofb.proxy);
        ck_assert_msg(full.proxy < norht.proxy, "%u bits: with RHT %g not below without %g", bits, full.proxy, norht.proxy);
        ck_assert(norht.su == NULL && norht.sv == NULL && norht.had_block_in == 0);
        /* stored without the transforms: the decode is the codes in the original basis, with the reported error */
        sq_quip_view v;
        sq_quip_view_of(&norht, &v);
        ck_assert_int_eq(sq_quip_view_check(&v, &err), 0);
        float *dec = malloc(rows * cols * 4), *dt = malloc(rows * cols * 4);
        ck_assert_int_eq(sq_quip_decode(&v, dec, &err), 0);
        sq_quip_decode_transformed(&v, 0, rows, dt);
        ck_assert(!memcmp(dec, dt, rows * cols * 4));
        const double px = proxy_of(dec, w, rows, cols, H);
        ck_assert_msg(fabs(px - norht.proxy) <= 1e-3 * px + 1e-7, "no rht: decoded %g, reported %g", px, norht.proxy);
        v.sv = full.sv; /* one sign vector without the other */
        ck_assert_int_eq(sq_quip_view_check(&v, &err), SQ_EUSAGE);
        free(dec);
        free(dt);
        sq_quip_result_free(&full);
        sq_quip_result_free(&nofb);
        sq_quip_result_free(&norht);
    }
    free(w);
    free(H);
}
END_TEST

/* The block coordinate descent after BlockLDLQ (tune_iters): one pass, no
 * refit, so the reported error is the pass's own. Each sweep only takes a
 * block's new code where it lowers the error, so more sweeps never raise it,
 * and on a correlated Hessian the descent pays at every width; the decode
 * reproduces the reported error (the codes the descent wrote are the ones
 * it scored). */
START_TEST(quip_tune_is_monotone) {
    const uint64_t rows = 48, cols = 128;
    float *w = random_matrix(rows * cols, 5);
    double *H = random_hessian(cols, 500);
    sq_err err;
    const struct { uint32_t bits, nested; } var[] = {{2, 0}, {3, 1}, {4, 1}, {4, 0}};
    for (int k = 0; k < 4; k++) {
        double px[4];
        const int iters[4] = {-1, 1, 2, 6};
        for (int i = 0; i < 4; i++) {
            sq_quip_opts o = {.bits = var[k].bits, .nested = var[k].nested, .seed = 11, .n_threads = 2,
                              .passes = 1, .no_refit = 1, .tune_iters = iters[i]};
            sq_quip_result r;
            ck_assert_int_eq(sq_quip_quantize(w, rows, cols, H, &o, &r, &err), 0);
            px[i] = r.proxy;
            sq_quip_view v;
            sq_quip_view_of(&r, &v);
            float *dec = malloc(rows * cols * 4);
            ck_assert_int_eq(sq_quip_decode(&v, dec, &err), 0);
            const double d = proxy_of(dec, w, rows, cols, H);
            ck_assert_msg(fabs(d - r.proxy) <= 1e-3 * d + 1e-7, "%u bits, %d sweeps: decoded %g, reported %g",
                          var[k].bits, iters[i], d, r.proxy);
            free(dec);
            sq_quip_result_free(&r);
        }
        ck_assert_msg(px[1] < 0.99 * px[0], "%u bits: one sweep %g, none %g", var[k].bits, px[1], px[0]);
        ck_assert_msg(px[2] <= px[1] && px[3] <= px[2], "%u bits: sweeps raised the error: %g %g %g", var[k].bits,
                      px[1], px[2], px[3]);
    }
    free(w);
    free(H);
}
END_TEST

START_TEST(quip_bad_input) {
    float w[16 * 12] = {0};
    double H[12 * 12] = {0}; /* used as 12 x 12 and as 8 x 8 */
    for (int i = 0; i < 12; i++) H[i * 12 + i] = 1;
    sq_quip_opts o = {.bits = 2};
    sq_quip_result r;
    sq_err err;
    ck_assert_int_eq(sq_quip_quantize(w, 16, 12, H, &o, &r, &err), SQ_EUSAGE); /* 12 columns: not a multiple of 8 */
    ck_assert_ptr_nonnull(strstr(err.msg, "multiple of 8"));
    o.bits = 5;
    ck_assert_int_eq(sq_quip_quantize(w, 24, 8, H, &o, &r, &err), SQ_EUSAGE);
    o.bits = 2;
    w[5] = NAN;
    ck_assert_int_ne(sq_quip_quantize(w, 24, 8, H, &o, &r, &err), 0);
    w[5] = 0;
    H[3] = INFINITY;
    ck_assert_int_eq(sq_quip_quantize(w, 24, 8, H, &o, &r, &err), SQ_ECORRUPT);
    memset(H, 0, sizeof H);
    for (int i = 0; i < 8; i++) H[i * 8 + i] = -1; /* negative definite: no damping helps */
    ck_assert_int_eq(sq_quip_quantize(w, 24, 8, H, &o, &r, &err), SQ_ECHECK);
    ck_assert_ptr_nonnull(strstr(err.msg, "not positive definite"));
    for (int i = 0; i < 8; i++) H[i * 8 + i] = 1 + i;
    /* an all-zero matrix quantizes to zero (scale 0), odd row count (fallback transform) */
    ck_assert_int_eq(sq_quip_quantize(w, 13, 8, H, &o, &r, &err), 0);
    sq_quip_view v;
    sq_quip_view_of(&r, &v);
    float dec[13 * 8];
    ck_assert_int_eq(sq_quip_decode(&v, dec, &err), 0);
    for (int i = 0; i < 13 * 8; i++) ck_assert(dec[i] == 0);
    uint16_t bad = r.scales[0];
    r.scales[0] = 0x7E00; /* NaN */
    ck_assert_int_eq(sq_quip_view_check(&v, &err), SQ_ECORRUPT);
    r.scales[0] = bad;
    v.bits = 3; /* codes2 missing */
    ck_assert_int_eq(sq_quip_view_check(&v, &err), SQ_EUSAGE);
    sq_quip_result_free(&r);
}
END_TEST

/* A real layer of the 34M model with its calibrated Hessian. */
static int load_layer(const char *name, float **w, uint64_t *rows, uint64_t *cols, double **H) {
    const char *calib = getenv("SQUISH_CALIB16") ? getenv("SQUISH_CALIB16") : "/work/calib16.h5";
    if (!have_shared() || access(calib, R_OK)) return 0;
    sq_err err;
    sq_model *m = sq_model_open(shared_path("models/squish-lm-34m"), &err);
    ck_assert_msg(m != NULL, "%s", err.msg);
    const sq_model_tensor *t = sq_model_find(m, name);
    ck_assert_ptr_nonnull(t);
    *cols = t->dims[t->ndim - 1];
    *rows = sq_model_tensor_elems(t) / *cols;
    *w = malloc(*rows * *cols * 4);
    ck_assert_int_eq(sq_model_tensor_f32(m, t, *w, &err), 0);
    sq_model_close(m);
    sq_calib_file *f = sq_calib_open(calib, &err);
    ck_assert_msg(f != NULL, "%s", err.msg);
    uint32_t layer;
    sq_site site;
    ck_assert(sq_calib_site_of(name, &layer, &site));
    sq_calib_site s;
    ck_assert_int_eq(sq_calib_read_site(f, layer, site, &s, &err), 0);
    ck_assert_uint_eq(s.n, *cols);
    *H = s.xtx;
    s.xtx = NULL;
    sq_calib_site_free(&s);
    sq_calib_close(f);
    return 1;
}

START_TEST(quip2_beats_gptq_int2_on_a_real_layer) {
    const char *names[] = {"model.layers.3.self_attn.q_proj.weight", "model.layers.3.mlp.down_proj.weight"};
    for (int k = 0; k < 2; k++) {
        float *w;
        double *H;
        uint64_t rows, cols;
        if (!load_layer(names[k], &w, &rows, &cols, &H)) {
            fprintf(stderr, "skipped: no shared model or calibration file\n");
            return;
        }
        sq_quip_opts o = {.bits = 2, .seed = 1, .n_threads = 2};
        sq_quip_result r;
        sq_err err;
        ck_assert_int_eq(sq_quip_quantize(w, rows, cols, H, &o, &r, &err), 0);
        sq_quip_view v;
        sq_quip_view_of(&r, &v);
        float *dec = malloc(rows * cols * 4);
        ck_assert_int_eq(sq_quip_decode(&v, dec, &err), 0);
        double pq = proxy_of(dec, w, rows, cols, H);
        const sq_codec *c;
        uint32_t p[SQ_NPARAMS];
        ck_assert_int_eq(sq_scheme_parse("int2:g64", &c, p, &err), 0);
        sq_encoded g;
        sq_gptq_info info;
        sq_gptq_opts go = {.damp = 0.01, .act_order = 0, .static_groups = 0, .block = 128, .n_threads = 2};
        ck_assert_int_eq(sq_gptq_quantize("t", c, p, w, rows, cols, H, &go, &g, &info, &err), 0);
        sq_tview tv;
        sq_tview_from_encoded(&g, &tv);
        sq_decode_mt(&tv, dec, 1);
        double pg = proxy_of(dec, w, rows, cols, H);
        fprintf(stderr, "%s: quip:2 %.4f (%.3f bpw), gptq int2:g64 %.4f (%.3f bpw)\n", names[k], pq,
                sq_quip_bpw(rows, cols, 2, 0), pg, sq_layout_bpw(c, p, rows, cols));
        ck_assert_msg(pq < pg, "%s: QuIP# 2-bit proxy %g not below GPTQ int2 g64's %g", names[k], pq, pg);
        ck_assert_double_lt(sq_quip_bpw(rows, cols, 2, 0), sq_layout_bpw(c, p, rows, cols));
        sq_encoded_free(&g);
        sq_quip_result_free(&r);
        free(dec);
        free(w);
        free(H);
    }
}
END_TEST

/* SQ_ENC_ROWS_APART (the allocator's QuIP# for embeddings and lm_head): the
 * encoder writes rht_in alone, so a row decodes on its own to exactly its
 * row of the whole matrix's decode; with H = I the rows-apart encoding of
 * each row is the same whatever the other rows hold (no transform mixes
 * them), unlike the default's. */
START_TEST(quip_rows_apart) {
    const uint64_t rows = 48, cols = 64;
    float *w = random_matrix(rows * cols, 11), *w2 = malloc(rows * cols * 4);
    double *eye = calloc(cols * cols, sizeof(double));
    for (uint64_t i = 0; i < cols; i++) eye[i * cols + i] = 1;
    memcpy(w2, w, rows * cols * 4);
    for (uint64_t c = 0; c < cols; c++) w2[(rows - 1) * cols + c] *= -3; /* another last row */
    const sq_codec *c;
    uint32_t p[SQ_NPARAMS];
    sq_err err;
    ck_assert_int_eq(sq_scheme_parse("quip:3", &c, p, &err), 0);
    float *full = malloc(rows * cols * 4), *full2 = malloc(rows * cols * 4), *row = malloc(cols * 4);
    for (int apart = 0; apart < 2; apart++) {
        sq_encoded e, e2;
        sq_encode_ctx x = {.codec = c, .params = p, .w = w, .rows = rows, .cols = cols, .xtx = eye, .seed = 5,
                           .n_threads = 2, .flags = apart ? SQ_ENC_ROWS_APART : 0u};
        ck_assert_int_eq(sq_quant_encode(&x, &e, &err), 0);
        x.w = w2;
        ck_assert_int_eq(sq_quant_encode(&x, &e2, &err), 0);
        sq_tview v, v2;
        sq_tview_from_encoded(&e, &v);
        sq_tview_from_encoded(&e2, &v2);
        ck_assert(v.xf[SQ_XFORM_RHT_IN] != NULL);
        ck_assert_int_eq(v.xf[SQ_XFORM_RHT_OUT] != NULL, !apart);
        ck_assert_int_eq(sq_tview_has_output_xform(&v), !apart);
        ck_assert_int_eq(sq_decode_mt(&v, full, 1), SQ_OK);
        ck_assert_int_eq(sq_decode_mt(&v2, full2, 1), SQ_OK);
        for (uint64_t r = 0; r < rows; r++) {
            ck_assert_int_eq(sq_decode_rows(&v, r, r + 1, row), SQ_OK);
            ck_assert_msg(!memcmp(row, full + r * cols, cols * 4), "apart %d: row %llu decodes otherwise alone", apart,
                          (unsigned long long)r);
        }
        /* rows 0..rows-2 are the same in w and w2: apart, they decode identically */
        const int same = !memcmp(full, full2, (rows - 1) * cols * 4);
        ck_assert_msg(same == apart, "apart %d: the other rows' decode %s with the last row", apart,
                      same ? "does not change" : "changes");
        double err2 = 0, ref = 0;
        for (uint64_t i = 0; i < rows * cols; i++) {
            err2 += ((double)full[i] - w[i]) * ((double)full[i] - w[i]);
            ref += (double)w[i] * w[i];
        }
        ck_assert_msg(err2 < 0.035 * ref, "apart %d: relative error %g at 3 bits", apart, err2 / ref);
        sq_encoded_free(&e);
        sq_encoded_free(&e2);
    }
    free(w); free(w2); free(eye); free(full); free(full2); free(row);
}
END_TEST

START_TEST(quip_bpw_counts_every_part) {
    /* 512 x 1536 at 2 bits: codes 16 bits per 8 weights, 1536 + 512 sign bits, 512 f16 scales */
    const double n = 512.0 * 1536;
    ck_assert_double_eq_tol(sq_quip_bpw(512, 1536, 2, 0), (n * 2 + 1536 + 512 + 16 * 512) / n, 1e-12);
    ck_assert_double_eq_tol(sq_quip_bpw(512, 1536, 3, 0), (n * 3 + 1536 + 512 + 32 * 512) / n, 1e-12);
    ck_assert_double_eq_tol(sq_quip_bpw(512, 1536, 4, 0), (n * 4 + 1536 + 512 + 32 * 512) / n, 1e-12);
    /* the nested stages: the same codes at 3 bits, a third scale per row at 4 */
    ck_assert_double_eq_tol(sq_quip_bpw(512, 1536, 3, 1), (n * 3 + 1536 + 512 + 32 * 512) / n, 1e-12);
    ck_assert_double_eq_tol(sq_quip_bpw(512, 1536, 4, 1), (n * 4 + 1536 + 512 + 48 * 512) / n, 1e-12);
}
END_TEST

/* one case per test, so CK_RUN_CASE=name runs one of them */
#define ADD(s, name)                                 \
    do {                                             \
        TCase *tc = tcase_create(#name);             \
        tcase_set_timeout(tc, 600);                  \
        tcase_add_test(tc, name);                    \
        suite_add_tcase(s, tc);                      \
    } while (0)

static Suite *suite(void) {
    Suite *s = suite_create("quip");
    ADD(s, hadamard_orders_are_hadamard);
    ADD(s, hadamard_every_size);
    ADD(s, hadamard_orthogonal_and_double);
    ADD(s, rht_signs_are_splitmix64);
    ADD(s, e8p_table_matches_definition);
    ADD(s, e8p_decode_properties);
    ADD(s, e8p_nearest_is_exact);
    ADD(s, e81b_grid_and_nearest);
    ADD(s, e8r_table_matches_definition);
    ADD(s, e8_nearest_and_cosets);
    ADD(s, e8r_nearest_is_exact);
    ADD(s, e8p_code_of_value_round_trips);
    ADD(s, nested_quantizer_is_the_fine_lattice);
    ADD(s, ldlq_width1_is_gptq);
    ADD(s, quip_decode_gemv_threads);
    ADD(s, quip_ablations);
    ADD(s, quip_tune_is_monotone);
    ADD(s, quip_bad_input);
    ADD(s, quip_rows_apart);
    ADD(s, quip_bpw_counts_every_part);
    ADD(s, quip2_beats_gptq_int2_on_a_real_layer);
    return s;
}
RUN_SUITE(suite())
