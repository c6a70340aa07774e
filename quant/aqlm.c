/* AQLM: residual k-means initialization, then alternating codebook least
 * squares, closed-form scales and a greedy code search, all under XᵀX
 * (see aqlm.h for the algorithm and its guarantees). */
#include "aqlm.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common/big_alloc.h"
#include "linalg.h"
#include "squish/codec.h" /* sq_parallel_for, sq_isa_active */
#include "squish/fp.h"

#define G8 SQ_AQLM_G

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [0, n) without modulo bias worth caring about (n < 2^40). */
static uint64_t rand_below(uint64_t *s, uint64_t n) { return (uint64_t)(((unsigned __int128)splitmix64(s) * n) >> 64); }

static double f16_round(double x) { return (double)sq_f16_to_f32(sq_f32_to_f16((float)x)); }

/* One matrix of the set sharing the codebooks. */
typedef struct mat {
    const float *w;
    const double *H;
    float *Hf;        /* H as float, for the conjugate-gradient products */
    uint64_t rows, r0; /* r0: its first row in the concatenation */
    double lam;       /* 1 / tr(W H Wᵀ): the objective sums relative errors */
} mat;

typedef struct state {
    uint32_t n;
    mat *mats;
    uint64_t R, cols, G, K;
    uint32_t M, B;
    uint32_t *mat_of; /* [R] matrix of a row */
    uint32_t *codes;  /* [R][G][M] */
    double *cb;       /* [M][K][8], exact f16 values */
    double *s;        /* [R], exact f16 values */
    double *rowloss;  /* [R] (W_o - Ŵ_o) H (W_o - Ŵ_o)ᵀ */
    double *whw;      /* [R] W_o H W_oᵀ */
    sq_isa isa;
    int nt;
    atomic_int oom;
} state;

/* Unscaled reconstruction of row o: u[8j + t] = Σ_m cb[m][code][t]. */
static void unscaled_row(const state *S, const double *cb, uint64_t o, double *u) {
    const uint32_t *c = S->codes + o * S->G * S->M;
    for (uint64_t j = 0; j < S->G; j++)
        for (int t = 0; t < G8; t++) {
            double a = 0;
            for (uint32_t m = 0; m < S->M; m++) a += cb[((uint64_t)m * S->K + c[j * S->M + m]) * G8 + t];
            u[j * G8 + t] = a;
        }
}

/* Rows are multiplied by H a tile at a time, so H streams through the
 * cache once per TILE rows instead of once per row (it is 18 MiB of
 * float64 for a 1536-wide layer). */
#define TILE 16

/* C[i] = A[i]·H for i < nr (rows of n doubles): every element is summed
 * over k ascending from 0, multiply then add (no fused multiply-add), so
 * the portable and AVX2 loops give the same bits and a row's result does
 * not depend on which rows share its tile. */
static void axpy_portable(double *c, double a, const double *h, uint64_t n) {
    for (uint64_t j = 0; j < n; j++) c[j] = c[j] + a * h[j];
}
#if defined(__x86_64__)
#include <immintrin.h>
__attribute__((target("avx2"))) static void axpy_avx2(double *c, double a, const double *h, uint64_t n) {
    const __m256d av = _mm256_set1_pd(a);
    uint64_t j = 0;
    for (; j + 4 <= n; j += 4)
        _mm256_storeu_pd(c + j, _mm256_add_pd(_mm256_loadu_pd(c + j), _mm256_mul_pd(av, _mm256_loadu_pd(h + j))));
    for (; j < n; j++) c[j] = c[j] + a * h[j];
}
#endif
static void tile_times_h(sq_isa isa, const double *A, uint64_t nr, const double *H, uint64_t n, double *C) {
    void (*axpy)(double *, double, const double *, uint64_t) = axpy_portable;
#if defined(__x86_64__)
    if (isa >= SQ_ISA_AVX2) axpy = axpy_avx2;
#endif
    memset(C, 0, nr * n * sizeof(double));
    for (uint64_t k0 = 0; k0 < n; k0 += 32) { /* a panel of H rows stays in cache for the tile */
        uint64_t k1 = k0 + 32 < n ? k0 + 32 : n;
        for (uint64_t i = 0; i < nr; i++)
            for (uint64_t k = k0; k < k1; k++) axpy(C + i * n, A[i * n + k], H + k * n, n);
    }
}

/* End of the tile starting at row o: at most TILE rows, within [o, b) and o's matrix. */
static uint64_t tile_end(const state *S, uint64_t o, uint64_t b) {
    const mat *mt = &S->mats[S->mat_of[o]];
    uint64_t e = o + TILE < b ? o + TILE : b;
    return e < mt->r0 + mt->rows ? e : mt->r0 + mt->rows;
}

/* ---------------- objective ---------------- */

typedef struct obj_ctx {
    state *S;
    const double *cb;
    double *loss; /* [R] */
} obj_ctx;

static void obj_rows(void *p, uint64_t a, uint64_t b) {
    obj_ctx *x = p;
    state *S = x->S;
    const uint64_t n = S->cols;
    double *A = malloc(2 * TILE * n * sizeof(double));
    if (!A) {
        atomic_store(&S->oom, 1);
        return;
    }
    double *C = A + TILE * n;
    for (uint64_t o0 = a, o1; o0 < b; o0 = o1) {
        o1 = tile_end(S, o0, b);
        const mat *mt = &S->mats[S->mat_of[o0]];
        for (uint64_t o = o0; o < o1; o++) {
            double *r = A + (o - o0) * n;
            const float *w = mt->w + (o - mt->r0) * n;
            unscaled_row(S, x->cb, o, r);
            for (uint64_t i = 0; i < n; i++) r[i] = (double)w[i] - S->s[o] * r[i];
        }
        tile_times_h(S->isa, A, o1 - o0, mt->H, n, C);
        for (uint64_t o = o0; o < o1; o++) x->loss[o] = sq_la_dot(S->isa, A + (o - o0) * n, C + (o - o0) * n, n);
    }
    free(A);
}

/* Σ_i lam_i Σ_{o in i} loss_o, in row order. */
static double total(const state *S, const double *loss) {
    double t = 0;
    for (uint32_t i = 0; i < S->n; i++) {
        double ti = 0;
        for (uint64_t o = S->mats[i].r0; o < S->mats[i].r0 + S->mats[i].rows; o++) ti += loss[o];
        t += S->mats[i].lam * ti;
    }
    return t;
}

/* Objective with codebooks cb (the current codes and scales); per-row
 * losses into loss. */
static double objective(state *S, const double *cb, double *loss) {
    obj_ctx x = {S, cb, loss};
    sq_parallel_for(S->nt, S->R, obj_rows, &x);
    return total(S, loss);
}

/* ---------------- initialization: residual k-means ---------------- */

typedef struct km_ctx {
    const double *pts; /* [N][8] */
    const double *cen; /* [K][8] */
    const double *cnorm;
    uint64_t K;
    uint32_t *assign;
    atomic_int changed;
} km_ctx;

static void km_assign(void *p, uint64_t a, uint64_t b) {
    km_ctx *x = p;
    int changed = 0;
    for (uint64_t i = a; i < b; i++) {
        const double *v = x->pts + i * G8;
        uint32_t best = 0;
        double bd = INFINITY;
        for (uint64_t k = 0; k < x->K; k++) {
            const double *c = x->cen + k * G8;
            double d = 0;
            for (int t = 0; t < G8; t++) d += v[t] * c[t];
            d = x->cnorm[k] - 2 * d;
            if (d < bd) {
                bd = d;
                best = (uint32_t)k;
            }
        }
        if (x->assign[i] != best) changed = 1;
        x->assign[i] = best;
    }
    if (changed) atomic_store(&x->changed, 1);
}

/* Lloyd's k-means on pts (N x 8) into cen (K x 8, f16-rounded), assign[N].
 * Seeded start at K distinct random points; with N <= K every point is its
 * own centroid (the rest zero). Empty clusters keep their centroid. */
static sq_status kmeans(state *S, const double *pts, uint64_t N, uint64_t K, uint32_t iters, uint64_t *rng, double *cen,
                        uint32_t *assign, sq_err *err) {
    memset(cen, 0, K * G8 * sizeof(double));
    if (N <= K) {
        for (uint64_t i = 0; i < N; i++) {
            for (int t = 0; t < G8; t++) cen[i * G8 + t] = f16_round(pts[i * G8 + t]);
            assign[i] = (uint32_t)i;
        }
        return SQ_OK;
    }
    double *cnorm = malloc(K * sizeof(double)), *sum = malloc(K * G8 * sizeof(double));
    uint64_t *cnt = malloc(K * sizeof(uint64_t)), *idx = malloc(N * sizeof(uint64_t));
    if (!cnorm || !sum || !cnt || !idx) {
        free(cnorm);
        free(sum);
        free(cnt);
        free(idx);
        return sq_err_set(err, SQ_ENOMEM, "AQLM: out of memory for k-means over %llu points", (unsigned long long)N);
    }
    for (uint64_t i = 0; i < N; i++) idx[i] = i;
    for (uint64_t k = 0; k < K; k++) { /* partial Fisher-Yates: K distinct points */
        uint64_t r = k + rand_below(rng, N - k), t = idx[k];
        idx[k] = idx[r];
        idx[r] = t;
        memcpy(cen + k * G8, pts + idx[k] * G8, G8 * sizeof(double));
    }
    for (uint64_t i = 0; i < N; i++) assign[i] = UINT32_MAX;
    for (uint32_t it = 0;; it++) {
        for (uint64_t k = 0; k < K; k++) {
            if (it == iters) /* the last assignment is against the stored (f16) centroids */
                for (int t = 0; t < G8; t++) cen[k * G8 + t] = f16_round(cen[k * G8 + t]);
            double q = 0;
            for (int t = 0; t < G8; t++) q += cen[k * G8 + t] * cen[k * G8 + t];
            cnorm[k] = q;
        }
        km_ctx x = {pts, cen, cnorm, K, assign, 0};
        sq_parallel_for(S->nt, N, km_assign, &x);
        if (it == iters) break;
        if (!atomic_load(&x.changed)) {
            iters = it + 1; /* converged: round, assign once more */
            continue;
        }
        memset(sum, 0, K * G8 * sizeof(double));
        memset(cnt, 0, K * sizeof(uint64_t));
        for (uint64_t i = 0; i < N; i++) { /* point order: fixed sums */
            cnt[assign[i]]++;
            for (int t = 0; t < G8; t++) sum[assign[i] * G8 + t] += pts[i * G8 + t];
        }
        for (uint64_t k = 0; k < K; k++)
            if (cnt[k])
                for (int t = 0; t < G8; t++) cen[k * G8 + t] = sum[k * G8 + t] / (double)cnt[k];
    }
    free(cnorm);
    free(sum);
    free(cnt);
    free(idx);
    return SQ_OK;
}

static sq_status init_kmeans(state *S, const sq_aqlm_opts *o, sq_err *err) {
    const uint64_t N = S->R * S->G;
    double *pts = malloc(N * G8 * sizeof(double));
    uint32_t *assign = malloc(N * sizeof(uint32_t));
    if (!pts || !assign) {
        free(pts);
        free(assign);
        return sq_err_set(err, SQ_ENOMEM, "AQLM: out of memory for the initialization (%llu groups)",
                          (unsigned long long)N);
    }
    for (uint64_t r = 0; r < S->R; r++) { /* scale = row norm; points = the rows divided by it */
        const mat *mt = &S->mats[S->mat_of[r]];
        const float *w = mt->w + (r - mt->r0) * S->cols;
        double q = 0;
        for (uint64_t i = 0; i < S->cols; i++) q += (double)w[i] * w[i];
        double s = f16_round(sqrt(q));
        if (!isfinite(s)) {
            free(pts);
            free(assign);
            return sq_err_set(err, SQ_EUSAGE, "AQLM: matrix %u row %llu: its norm %g does not fit the f16 scale",
                              S->mat_of[r], (unsigned long long)(r - mt->r0), sqrt(q));
        }
        S->s[r] = s;
        for (uint64_t i = 0; i < S->cols; i++) pts[r * S->cols + i] = s > 0 ? w[i] / s : 0;
    }
    uint64_t rng = o->seed ^ 0x61716c6d6b6d6e73ull; /* "aqlmkmns" */
    sq_status st = SQ_OK;
    for (uint32_t m = 0; m < S->M && !st; m++) {
        double *cen = S->cb + (uint64_t)m * S->K * G8;
        st = kmeans(S, pts, N, S->K, o->kmeans_iters, &rng, cen, assign, err);
        for (uint64_t i = 0; i < N && !st; i++) {
            S->codes[i * S->M + m] = assign[i];
            for (int t = 0; t < G8; t++) pts[i * G8 + t] -= cen[(uint64_t)assign[i] * G8 + t];
        }
    }
    free(pts);
    free(assign);
    return st;
}

/* ---------------- (b) scales ---------------- */

typedef struct scale_ctx {
    state *S;
} scale_ctx;

static void scale_rows(void *p, uint64_t a, uint64_t b) {
    state *S = ((scale_ctx *)p)->S;
    const uint64_t n = S->cols;
    double *U = malloc((2 * TILE + 1) * n * sizeof(double));
    if (!U) {
        atomic_store(&S->oom, 1);
        return;
    }
    double *HU = U + TILE * n, *wd = HU + TILE * n;
    for (uint64_t o0 = a, o1; o0 < b; o0 = o1) {
        o1 = tile_end(S, o0, b);
        const mat *mt = &S->mats[S->mat_of[o0]];
        for (uint64_t o = o0; o < o1; o++) unscaled_row(S, S->cb, o, U + (o - o0) * n);
        tile_times_h(S->isa, U, o1 - o0, mt->H, n, HU);
        for (uint64_t o = o0; o < o1; o++) {
            const float *w = mt->w + (o - mt->r0) * n;
            const double *u = U + (o - o0) * n, *hu = HU + (o - o0) * n;
            for (uint64_t i = 0; i < n; i++) wd[i] = w[i];
            double uhu = sq_la_dot(S->isa, u, hu, n), whu = sq_la_dot(S->isa, wd, hu, n), whw = S->whw[o];
            /* loss(s) = whw - 2 s whu + s² uhu; keep the f16 optimum only if it is no worse */
            double s0 = S->s[o], l0 = whw - 2 * s0 * whu + s0 * s0 * uhu;
            if (uhu > 0) {
                double s1 = f16_round(whu / uhu), l1 = whw - 2 * s1 * whu + s1 * s1 * uhu;
                if (isfinite(s1) && l1 < l0) {
                    S->s[o] = s1;
                    l0 = l1;
                }
            }
            S->rowloss[o] = l0;
        }
    }
    free(U);
}

/* ---------------- (c) codes: beam search per group (beam 1: greedy) ---------------- */

typedef struct code_ctx {
    state *S;
    const mat *mt;
    const uint32_t *order; /* groups in search order */
    const double *norms;   /* [G][M][K]: cbᵀ H_JJ cb */
    uint32_t beam;         /* hypotheses kept per group (1: greedy) */
} code_ctx;

static void norms_groups(void *p, uint64_t a, uint64_t b) {
    code_ctx *x = p;
    const state *S = x->S;
    const double *H = x->mt->H;
    double *nr = (double *)x->norms;
    for (uint64_t q = a; q < b; q++) { /* q = j * M + m */
        uint64_t j = q / S->M, m = q % S->M;
        const double *Hb = H + j * G8 * S->cols + j * G8;
        for (uint64_t k = 0; k < S->K; k++) {
            const double *c = S->cb + (m * S->K + k) * G8;
            double n = 0;
            for (int t = 0; t < G8; t++) {
                double hc = 0;
                for (int v = 0; v < G8; v++) hc += Hb[t * S->cols + v] * c[v];
                n += c[t] * hc;
            }
            nr[q * S->K + k] = n;
        }
    }
}

/* Beam search over one group's M codes (the reference's beam search
 * under XᵀX): the group's cost as a function of its unscaled
 * reconstruction u is s² uᵀH_JJ u - 2 s u·b (+ const), b = the H product
 * of the residual with the group's part removed. Hypotheses start from
 * the current codes; for each codebook in turn every hypothesis tries all
 * K codewords in place of its own, and the best `beam` distinct code
 * tuples are kept (ties: first found). Writes the best tuple into best
 * and returns its cost; cur_sc gets the cost of the current codes, so
 * the caller changes the codes only when the best is strictly lower. */
#define MAX_BEAM 16
static double beam_group(const state *S, const double *Hb, uint64_t n, const double *norms_j, const uint32_t *codes,
                         double s, const double *b, uint32_t beam, uint32_t *best, double *cur_sc) {
    const uint32_t M = S->M;
    const uint64_t K = S->K;
    uint32_t hyp[MAX_BEAM][SQ_AQLM_MAX_M], nh = 1, top[MAX_BEAM][SQ_AQLM_MAX_M], nt;
    double hsc[MAX_BEAM], tsc[MAX_BEAM];
    memcpy(hyp[0], codes, M * sizeof(uint32_t));
    hsc[0] = 0;
    int have_cur = 0;
    for (uint32_t m = 0; m < M; m++) {
        const double *cbm = S->cb + (uint64_t)m * K * G8, *nr = norms_j + (uint64_t)m * K;
        nt = 0;
        for (uint32_t h = 0; h < nh; h++) {
            double v[G8], hv[G8], g[G8], base = 0;
            for (int t = 0; t < G8; t++) { /* v: the hypothesis without codebook m */
                double a = 0;
                for (uint32_t mm = 0; mm < M; mm++)
                    if (mm != m) a += S->cb[((uint64_t)mm * K + hyp[h][mm]) * G8 + t];
                v[t] = a;
            }
            for (int t = 0; t < G8; t++) {
                double a = 0;
                for (int u = 0; u < G8; u++) a += Hb[t * n + u] * v[u];
                hv[t] = a;
            }
            for (int t = 0; t < G8; t++) base += s * s * v[t] * hv[t] - 2 * s * v[t] * b[t];
            for (int t = 0; t < G8; t++) g[t] = 2 * s * s * hv[t] - 2 * s * b[t];
            for (uint64_t k = 0; k < K; k++) {
                const double *e = cbm + k * G8;
                double sc = base + s * s * nr[k] +
                            (e[0] * g[0] + e[1] * g[1] + e[2] * g[2] + e[3] * g[3] + e[4] * g[4] + e[5] * g[5] +
                             e[6] * g[6] + e[7] * g[7]);
                if (!have_cur && m == 0 && h == 0 && k == codes[0]) {
                    *cur_sc = sc;
                    have_cur = 1;
                }
                if (nt == beam && !(sc < tsc[nt - 1])) continue;
                int dup = 0; /* the same tuple from another hypothesis (they differ only in code m) */
                for (uint32_t q = 0; q < nt && !dup; q++) {
                    dup = top[q][m] == (uint32_t)k;
                    for (uint32_t mm = 0; mm < M && dup; mm++)
                        if (mm != m && top[q][mm] != hyp[h][mm]) dup = 0;
                    if (dup && sc < tsc[q]) { /* keep the lower cost, re-sort below */
                        tsc[q] = sc;
                        for (uint32_t z = q; z > 0 && tsc[z] < tsc[z - 1]; z--) {
                            double ts = tsc[z];
                            tsc[z] = tsc[z - 1];
                            tsc[z - 1] = ts;
                            uint32_t tt[SQ_AQLM_MAX_M];
                            memcpy(tt, top[z], sizeof tt);
                            memcpy(top[z], top[z - 1], sizeof tt);
                            memcpy(top[z - 1], tt, sizeof tt);
                        }
                    }
                }
                if (dup) continue;
                uint32_t z = nt < beam ? nt++ : nt - 1; /* insert, dropping the worst when full */
                while (z > 0 && sc < tsc[z - 1]) {
                    tsc[z] = tsc[z - 1];
                    memcpy(top[z], top[z - 1], sizeof top[z]);
                    z--;
                }
                tsc[z] = sc;
                memcpy(top[z], hyp[h], sizeof top[z]);
                top[z][m] = (uint32_t)k;
            }
        }
        memcpy(hyp, top, sizeof hyp);
        memcpy(hsc, tsc, sizeof hsc);
        nh = nt;
    }
    memcpy(best, hyp[0], M * sizeof(uint32_t));
    return hsc[0];
}

static void code_rows(void *p, uint64_t a, uint64_t b) {
    code_ctx *x = p;
    state *S = x->S;
    const mat *mt = x->mt;
    const uint64_t n = S->cols, K = S->K;
    double *A = malloc(2 * TILE * n * sizeof(double));
    if (!A) {
        atomic_store(&S->oom, 1);
        return;
    }
    double *C = A + TILE * n;
    for (uint64_t o = mt->r0 + a, t0 = o, o1 = o; o < mt->r0 + b; o++) { /* a, b: rows of this matrix */
        if (o == o1) { /* next tile: residuals and their H products */
            t0 = o;
            o1 = tile_end(S, o, mt->r0 + b);
            for (uint64_t q = o; q < o1; q++) {
                double *rq = A + (q - o) * n;
                const float *w = mt->w + (q - mt->r0) * n;
                unscaled_row(S, S->cb, q, rq);
                for (uint64_t i = 0; i < n; i++) rq[i] = (double)w[i] - S->s[q] * rq[i];
            }
            tile_times_h(S->isa, A, o1 - o, mt->H, n, C);
        }
        double *r = A + (o - t0) * n, *h = C + (o - t0) * n;
        const double s = S->s[o];
        uint32_t *codes = S->codes + o * S->G * S->M;
        double loss = sq_la_dot(S->isa, r, h, n);
        if (s != 0)
            for (uint64_t jj = 0; jj < S->G; jj++) {
                const uint64_t j = x->order[jj], J = j * G8;
                const double *Hb = mt->H + J * n + J;
                if (x->beam > 1) {
                    double u[G8], b0[G8], cur_sc = 0;
                    uint32_t bt[SQ_AQLM_MAX_M];
                    for (int t = 0; t < G8; t++) {
                        double q = 0;
                        for (uint32_t m = 0; m < S->M; m++) q += S->cb[((uint64_t)m * K + codes[j * S->M + m]) * G8 + t];
                        u[t] = q;
                    }
                    for (int t = 0; t < G8; t++) { /* H product of the residual without the group's part */
                        double q = 0;
                        for (int v = 0; v < G8; v++) q += Hb[t * n + v] * u[v];
                        b0[t] = h[J + t] + s * q;
                    }
                    double best_sc = beam_group(S, Hb, n, x->norms + j * S->M * K, codes + j * S->M, s, b0, x->beam,
                                                bt, &cur_sc);
                    if (!(best_sc < cur_sc)) continue;
                    double dw[G8];
                    for (int t = 0; t < G8; t++) {
                        double q = 0;
                        for (uint32_t m = 0; m < S->M; m++) q += S->cb[((uint64_t)m * K + bt[m]) * G8 + t];
                        dw[t] = s * (q - u[t]);
                    }
                    for (int t = 0; t < G8; t++) {
                        r[J + t] -= dw[t];
                        const double *Ht = mt->H + (J + t) * n;
                        for (uint64_t i = 0; i < n; i++) h[i] -= dw[t] * Ht[i];
                    }
                    memcpy(codes + j * S->M, bt, S->M * sizeof(uint32_t));
                    loss += best_sc - cur_sc;
                    continue;
                }
                for (uint32_t m = 0; m < S->M; m++) {
                    const uint32_t c = codes[j * S->M + m];
                    const double *cbm = S->cb + (uint64_t)m * K * G8, *nr = x->norms + (j * S->M + m) * K;
                    /* with this codebook's part removed the residual is r + s·cb[c]; its H product on the
                     * group is h_J + H_JJ s·cb[c]. Candidate k then costs s² nr[k] - 2 s cb[k]·bv (+ const). */
                    double bv[G8];
                    for (int t = 0; t < G8; t++) {
                        double a2 = 0;
                        for (int v = 0; v < G8; v++) a2 += Hb[t * n + v] * cbm[(uint64_t)c * G8 + v];
                        bv[t] = h[J + t] + s * a2;
                    }
                    double best_sc = 0;
                    uint32_t best = c;
                    {
                        double d = 0;
                        for (int t = 0; t < G8; t++) d += cbm[(uint64_t)c * G8 + t] * bv[t];
                        best_sc = s * s * nr[c] - 2 * s * d;
                    }
                    const double cur_sc = best_sc;
                    for (uint64_t k = 0; k < K; k++) {
                        const double *e = cbm + k * G8;
                        double d = e[0] * bv[0] + e[1] * bv[1] + e[2] * bv[2] + e[3] * bv[3] + e[4] * bv[4] +
                                   e[5] * bv[5] + e[6] * bv[6] + e[7] * bv[7];
                        double sc = s * s * nr[k] - 2 * s * d;
                        if (sc < best_sc) {
                            best_sc = sc;
                            best = (uint32_t)k;
                        }
                    }
                    if (best == c) continue;
                    double dw[G8]; /* change of Ŵ on the group */
                    for (int t = 0; t < G8; t++) dw[t] = s * (cbm[(uint64_t)best * G8 + t] - cbm[(uint64_t)c * G8 + t]);
                    for (int t = 0; t < G8; t++) {
                        r[J + t] -= dw[t];
                        const double *Ht = mt->H + (J + t) * n; /* H symmetric: column J+t = row J+t */
                        for (uint64_t i = 0; i < n; i++) h[i] -= dw[t] * Ht[i];
                    }
                    codes[j * S->M + m] = best;
                    loss += best_sc - cur_sc;
                }
            }
        S->rowloss[o] = loss;
    }
    free(A);
}

static sq_status code_pass(state *S, uint64_t *rng, uint32_t beam, sq_err *err) {
    uint32_t *order = malloc(S->G * sizeof(uint32_t));
    double *norms = malloc(S->G * S->M * S->K * sizeof(double));
    if (!order || !norms) {
        free(order);
        free(norms);
        return sq_err_set(err, SQ_ENOMEM, "AQLM: out of memory for the code search's tables (%llu doubles)",
                          (unsigned long long)(S->G * S->M * S->K));
    }
    for (uint64_t j = 0; j < S->G; j++) order[j] = (uint32_t)j;
    for (uint64_t j = S->G; j > 1; j--) { /* seeded shuffle: the same order for every row */
        uint64_t r = rand_below(rng, j);
        uint32_t t = order[j - 1];
        order[j - 1] = order[r];
        order[r] = t;
    }
    for (uint32_t i = 0; i < S->n; i++) {
        code_ctx x = {S, &S->mats[i], order, norms, beam};
        sq_parallel_for(S->nt, S->G * S->M, norms_groups, &x);
        sq_parallel_for(S->nt, S->mats[i].rows, code_rows, &x);
    }
    free(order);
    free(norms);
    return SQ_OK;
}

/* ---------------- (a) codebooks: least squares by PCG ---------------- */

#define MM_TILE 64 /* rows per matmul work unit */

typedef struct cg {
    state *S;
    uint64_t P;          /* unknowns: M·K·8 */
    uint64_t *off;       /* [M·K + 1] occurrences of each codeword (CSR) */
    uint32_t *occ;       /* group ids o·G + j, ascending */
    float *WH, *D, *PH;  /* [R][cols]: W·H, a decoded direction, D·H */
    double *pinv;        /* [M·K][8][8] inverse of each codeword's diagonal block (0 when unused) */
    const double *dir;   /* direction being decoded */
    double *out;         /* scatter target */
    const float *src;    /* what is scattered: WH or PH */
} cg;

static void cg_decode(void *p, uint64_t a, uint64_t b) {
    cg *c = p;
    const state *S = c->S;
    for (uint64_t o = a; o < b; o++) {
        const uint32_t *cd = S->codes + o * S->G * S->M;
        float *dst = c->D + o * S->cols;
        for (uint64_t j = 0; j < S->G; j++)
            for (int t = 0; t < G8; t++) {
                double v = 0;
                for (uint32_t m = 0; m < S->M; m++) v += c->dir[((uint64_t)m * S->K + cd[j * S->M + m]) * G8 + t];
                dst[j * G8 + t] = (float)(S->s[o] * v);
            }
    }
}

typedef struct mm_ctx {
    state *S;
    const float *A;
    float *C;
    atomic_int fail;
} mm_ctx;

/* C = A·H for tiles of MM_TILE rows, each within one matrix. */
static void mm_tiles(void *p, uint64_t a, uint64_t b) {
    mm_ctx *x = p;
    state *S = x->S;
    for (uint64_t tile = a; tile < b; tile++) {
        uint64_t r0 = tile * MM_TILE, r1 = r0 + MM_TILE < S->R ? r0 + MM_TILE : S->R;
        while (r0 < r1) { /* split at matrix boundaries */
            const mat *mt = &S->mats[S->mat_of[r0]];
            uint64_t e = mt->r0 + mt->rows < r1 ? mt->r0 + mt->rows : r1;
            if (sq_la_matmul_f32(S->isa, 0, e - r0, S->cols, S->cols, x->A + r0 * S->cols, S->cols, mt->Hf, S->cols,
                                 x->C + r0 * S->cols, S->cols))
                atomic_store(&x->fail, 1);
            r0 = e;
        }
    }
}

static int times_h(state *S, const float *A, float *C) {
    mm_ctx x = {S, A, C, 0};
    sq_parallel_for(S->nt, (S->R + MM_TILE - 1) / MM_TILE, mm_tiles, &x);
    return atomic_load(&x.fail) ? -1 : 0;
}

/* out[(m,k)][t] = Σ over occurrences (o, j) of lam·s_o·src[o][8j + t], in occurrence order. */
static void cg_scatter(void *p, uint64_t a, uint64_t b) {
    cg *c = p;
    const state *S = c->S;
    for (uint64_t q = a; q < b; q++) {
        double acc[G8] = {0};
        for (uint64_t e = c->off[q]; e < c->off[q + 1]; e++) {
            uint64_t gid = c->occ[e], o = gid / S->G, j = gid % S->G;
            double f = S->mats[S->mat_of[o]].lam * S->s[o];
            for (int t = 0; t < G8; t++) acc[t] += f * c->src[o * S->cols + j * G8 + t];
        }
        for (int t = 0; t < G8; t++) c->out[q * G8 + t] = acc[t];
    }
}

/* Inverse of each codeword's 8x8 block Σ lam s_o² H[J][J'] over pairs of its occurrences in one row. */
static void cg_precond(void *p, uint64_t a, uint64_t b) {
    cg *c = p;
    const state *S = c->S;
    const uint64_t n = S->cols;
    for (uint64_t q = a; q < b; q++) {
        double A[64] = {0}, L[64] = {0}, *inv = c->pinv + q * 64;
        memset(inv, 0, 64 * sizeof(double));
        for (uint64_t e0 = c->off[q], e1; e0 < c->off[q + 1]; e0 = e1) {
            const uint64_t o = c->occ[e0] / S->G; /* occurrences ascend: one row's are a run */
            for (e1 = e0 + 1; e1 < c->off[q + 1] && c->occ[e1] / S->G == o; e1++) {}
            const mat *mt = &S->mats[S->mat_of[o]];
            double f = mt->lam * S->s[o] * S->s[o];
            for (uint64_t e = e0; e < e1; e++)
            for (uint64_t e2 = e0; e2 < e1; e2++) {
                uint64_t J = (c->occ[e] % S->G) * G8, J2 = (c->occ[e2] % S->G) * G8;
                for (int t = 0; t < G8; t++)
                    for (int v = 0; v < G8; v++) A[t * 8 + v] += f * mt->H[(J + t) * n + J2 + v];
            }
        }
        double tr = 0;
        for (int t = 0; t < G8; t++) tr += A[t * 9];
        if (!(tr > 0)) continue; /* unused codeword (or zero scale): never updated */
        for (int t = 0; t < G8; t++) A[t * 9] += 1e-8 * tr / G8; /* keep the factorization defined */
        int ok = 1;
        for (int i = 0; i < G8 && ok; i++) /* Cholesky A = L Lᵀ */
            for (int j = 0; j <= i; j++) {
                double v = A[i * 8 + j];
                for (int k = 0; k < j; k++) v -= L[i * 8 + k] * L[j * 8 + k];
                if (i == j) {
                    if (!(v > 0)) ok = 0;
                    else L[i * 8 + i] = sqrt(v);
                } else
                    L[i * 8 + j] = v / L[j * 8 + j];
            }
        if (!ok) continue;
        for (int col = 0; col < G8; col++) { /* inverse column by column: L y = e, Lᵀ x = y */
            double y[G8];
            for (int i = 0; i < G8; i++) {
                double v = i == col;
                for (int k = 0; k < i; k++) v -= L[i * 8 + k] * y[k];
                y[i] = v / L[i * 8 + i];
            }
            for (int i = G8 - 1; i >= 0; i--) {
                double v = y[i];
                for (int k = i + 1; k < G8; k++) v -= L[k * 8 + i] * inv[k * 8 + col];
                inv[i * 8 + col] = v / L[i * 8 + i];
            }
        }
    }
}

static void precond_apply(const cg *c, const double *r, double *z) {
    for (uint64_t q = 0; q < c->P / G8; q++)
        for (int t = 0; t < G8; t++) {
            double v = 0;
            for (int u = 0; u < G8; u++) v += c->pinv[q * 64 + t * 8 + u] * r[q * G8 + u];
            z[q * G8 + t] = v;
        }
}

static double vdot(const double *a, const double *b, uint64_t n) {
    double s = 0;
    for (uint64_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

/* out = A·d (the normal-equation matrix applied to d). */
static int apply_A(cg *c, const double *d, double *out) {
    state *S = c->S;
    c->dir = d;
    sq_parallel_for(S->nt, S->R, cg_decode, c);
    if (times_h(S, c->D, c->PH)) return -1;
    c->src = c->PH;
    c->out = out;
    sq_parallel_for(S->nt, S->M * S->K, cg_scatter, c);
    return 0;
}

/* Builds the occurrence lists of the current codes. */
static void build_occ(cg *c) {
    const state *S = c->S;
    const uint64_t MK = (uint64_t)S->M * S->K;
    memset(c->off, 0, (MK + 1) * sizeof(uint64_t));
    for (uint64_t g = 0; g < S->R * S->G; g++)
        for (uint32_t m = 0; m < S->M; m++) c->off[(uint64_t)m * S->K + S->codes[g * S->M + m] + 1]++;
    for (uint64_t q = 0; q < MK; q++) c->off[q + 1] += c->off[q];
    uint64_t *pos = c->off; /* fill in group order using a running cursor per codeword */
    for (uint64_t g = 0; g < S->R * S->G; g++)
        for (uint32_t m = 0; m < S->M; m++) c->occ[pos[(uint64_t)m * S->K + S->codes[g * S->M + m]]++] = (uint32_t)g;
    for (uint64_t q = MK; q > 0; q--) c->off[q] = c->off[q - 1]; /* the cursors ended at the next start */
    c->off[0] = 0;
}

/* One codebook update; returns the new objective (or the old one when the
 * rounded solution was not better). *cur: current objective. */
static sq_status codebook_step(state *S, cg *c, uint32_t iters, double *cur, sq_err *err) {
    const uint64_t P = c->P;
    double *x = malloc(6 * P * sizeof(double)), *loss = malloc(S->R * sizeof(double));
    if (!x || !loss) {
        free(x);
        free(loss);
        return sq_err_set(err, SQ_ENOMEM, "AQLM: out of memory for the codebook update");
    }
    double *b = x + P, *r = b + P, *z = r + P, *p = z + P, *q = p + P;
    build_occ(c);
    sq_parallel_for(S->nt, S->M * S->K, cg_precond, c);
    c->src = c->WH;
    c->out = b;
    sq_parallel_for(S->nt, S->M * S->K, cg_scatter, c);
    memcpy(x, S->cb, P * sizeof(double));
    sq_status st = SQ_OK;
    if (apply_A(c, x, q)) goto oom;
    for (uint64_t i = 0; i < P; i++) r[i] = b[i] - q[i];
    precond_apply(c, r, z);
    memcpy(p, z, P * sizeof(double));
    double rz = vdot(r, z, P);
    for (uint32_t it = 0; it < iters && rz > 0; it++) {
        if (apply_A(c, p, q)) goto oom;
        double pq = vdot(p, q, P);
        if (!(pq > 0)) break;
        double alpha = rz / pq;
        for (uint64_t i = 0; i < P; i++) {
            x[i] += alpha * p[i];
            r[i] -= alpha * q[i];
        }
        precond_apply(c, r, z);
        double rz2 = vdot(r, z, P);
        for (uint64_t i = 0; i < P; i++) p[i] = z[i] + (rz2 / rz) * p[i];
        rz = rz2;
    }
    for (uint64_t i = 0; i < P; i++) x[i] = f16_round(x[i]);
    int finite = 1;
    for (uint64_t i = 0; i < P; i++) finite &= isfinite(x[i]) != 0;
    if (finite) {
        double nl = objective(S, x, loss);
        if (atomic_load(&S->oom)) goto oom;
        if (nl < *cur) {
            memcpy(S->cb, x, P * sizeof(double));
            memcpy(S->rowloss, loss, S->R * sizeof(double));
            *cur = nl;
        }
    }
    free(x);
    free(loss);
    return st;
oom:
    free(x);
    free(loss);
    return sq_err_set(err, SQ_ENOMEM, "AQLM: out of memory in the codebook update");
}

/* ---------------- driver ---------------- */

typedef struct {
    uint32_t n_hist;
    double hist[SQ_AQLM_MAX_HIST];
} obj_hist; /* the objective after every step, as the results report it */

/* Codebook update, then the per-row scales for the current codes; *cur and
 * the history follow each. On allocation failure in the scale pass S->oom is
 * set and *cur is left as the codebook step made it (the caller checks). */
static sq_status refit_step(state *S, cg *c, uint32_t cg_iters, double *cur, obj_hist *rep, sq_err *err) {
    sq_status st = codebook_step(S, c, cg_iters, cur, err);
    if (st) return st;
    if (rep->n_hist < SQ_AQLM_MAX_HIST) rep->hist[rep->n_hist++] = *cur;
    scale_ctx sx = {S};
    sq_parallel_for(S->nt, S->R, scale_rows, &sx);
    if (atomic_load(&S->oom)) return SQ_OK;
    *cur = total(S, S->rowloss);
    if (rep->n_hist < SQ_AQLM_MAX_HIST) rep->hist[rep->n_hist++] = *cur;
    return SQ_OK;
}

void sq_aqlm_opts_default(sq_aqlm_opts *o) {
    if (!o->M) o->M = 2;
    if (!o->B) o->B = 8;
    if (!o->max_iters) o->max_iters = 20;
    if (!(o->rel_tol > 0)) o->rel_tol = 0.005;
    if (!o->kmeans_iters) o->kmeans_iters = 20;
    if (!o->cg_iters) o->cg_iters = 12;
    if (!o->beam) o->beam = 8;
    if (o->n_threads < 1) o->n_threads = 1;
}

void sq_aqlm_result_free(sq_aqlm_result *r) {
    if (!r) return;
    free(r->codes);
    free(r->codebooks);
    free(r->scales);
    memset(r, 0, sizeof *r);
}

void sq_aqlm_result_view(const sq_aqlm_result *r, sq_aqlm_view *v) {
    *v = (sq_aqlm_view){r->rows,      r->cols,   r->M,          r->B,          r->codes, r->codes_bytes,
                        r->codebooks, r->codebooks_bytes, r->scales, r->scales_bytes};
}

double sq_aqlm_bpw(uint64_t rows, uint64_t cols, uint32_t M, uint32_t B, uint32_t n_share) {
    if (!rows || !cols || !n_share) return 0;
    double bytes = (double)sq_aqlm_codes_bytes(rows, cols, M, B) +
                   (double)sq_aqlm_codebooks_bytes(M, B) / n_share + (double)sq_aqlm_scales_bytes(rows);
    return bytes * 8 / ((double)rows * (double)cols);
}

static void put16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

/* Packs matrix i's parts into out (LSB-first bit stream of codes). */
static sq_status pack(const state *S, uint32_t i, sq_aqlm_result *out, sq_err *err) {
    const mat *mt = &S->mats[i];
    memset(out, 0, sizeof *out);
    out->rows = mt->rows;
    out->cols = S->cols;
    out->M = S->M;
    out->B = S->B;
    out->codes_bytes = sq_aqlm_codes_bytes(mt->rows, S->cols, S->M, S->B);
    out->codebooks_bytes = sq_aqlm_codebooks_bytes(S->M, S->B);
    out->scales_bytes = sq_aqlm_scales_bytes(mt->rows);
    out->codes = calloc(out->codes_bytes ? out->codes_bytes : 1, 1);
    out->codebooks = malloc(out->codebooks_bytes);
    out->scales = malloc(out->scales_bytes);
    if (!out->codes || !out->codebooks || !out->scales) {
        sq_aqlm_result_free(out);
        return sq_err_set(err, SQ_ENOMEM, "AQLM: out of memory for the parts");
    }
    const uint64_t nc = mt->rows * S->G * S->M;
    const uint32_t *codes = S->codes + mt->r0 * S->G * S->M;
    for (uint64_t k = 0; k < nc; k++) {
        uint64_t bit = k * S->B;
        for (uint32_t b = 0; b < S->B; b++, bit++)
            if (codes[k] >> b & 1) out->codes[bit >> 3] |= (uint8_t)(1u << (bit & 7));
    }
    for (uint64_t k = 0; k < (uint64_t)S->M * S->K * G8; k++) put16(out->codebooks + 2 * k, sq_f32_to_f16((float)S->cb[k]));
    for (uint64_t o = 0; o < mt->rows; o++) put16(out->scales + 2 * o, sq_f32_to_f16((float)S->s[mt->r0 + o]));
    return SQ_OK;
}

/* tr(ΔW H ΔWᵀ) / tr(W H Wᵀ) of a result's f16 decode, in float64. */
static double decoded_rel_err(const sq_aqlm_result *res, const float *w, const double *H, sq_isa isa) {
    const uint64_t n = res->cols;
    float *dec = malloc(n * sizeof(float));
    double *d = malloc(2 * n * sizeof(double));
    if (!dec || !d) {
        free(dec);
        free(d);
        return -1;
    }
    double *h = d + n, num = 0, den = 0;
    sq_aqlm_view v;
    sq_aqlm_result_view(res, &v);
    for (uint64_t o = 0; o < res->rows; o++) {
        sq_aqlm_decode_rows(&v, o, o + 1, dec);
        for (uint64_t i = 0; i < n; i++) d[i] = (double)w[o * n + i];
        for (uint64_t i = 0; i < n; i++) h[i] = sq_la_dot(isa, H + i * n, d, n);
        den += sq_la_dot(isa, d, h, n);
        for (uint64_t i = 0; i < n; i++) d[i] -= (double)dec[i];
        for (uint64_t i = 0; i < n; i++) h[i] = sq_la_dot(isa, H + i * n, d, n);
        num += sq_la_dot(isa, d, h, n);
    }
    free(dec);
    free(d);
    return den > 0 ? num / den : 0;
}

static sq_status check_inputs(uint32_t n, const float *const *w, const uint64_t *rows, uint64_t cols,
                              const double *const *H, const sq_aqlm_opts *o, sq_err *err) {
    if (o->M < 1 || o->M > SQ_AQLM_MAX_M || o->B < 1 || o->B > SQ_AQLM_MAX_B)
        return sq_err_set(err, SQ_EUSAGE, "AQLM: %ux%u: need 1..%d codebooks of 1..%d bits", o->M, o->B, SQ_AQLM_MAX_M,
                          SQ_AQLM_MAX_B);
    if (o->beam < 1 || o->beam > MAX_BEAM)
        return sq_err_set(err, SQ_EUSAGE, "AQLM: beam width %u: need 1..%d", o->beam, MAX_BEAM);
    if (!n || !cols || cols % G8)
        return sq_err_set(err, SQ_EUSAGE, "AQLM: %llu input columns: need a positive multiple of the group size %d",
                          (unsigned long long)cols, G8);
    uint64_t R = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (!rows[i]) return sq_err_set(err, SQ_EUSAGE, "AQLM: matrix %u has no rows", i);
        R += rows[i];
        for (uint64_t k = 0; k < rows[i] * cols; k++)
            if (!isfinite(w[i][k]))
                return sq_err_set(err, SQ_EUSAGE, "AQLM: matrix %u: weight [%llu][%llu] is not finite", i,
                                  (unsigned long long)(k / cols), (unsigned long long)(k % cols));
        for (uint64_t k = 0; k < cols * cols; k++)
            if (!isfinite(H[i][k]))
                return sq_err_set(err, SQ_EUSAGE, "AQLM: matrix %u: XᵀX[%llu][%llu] is not finite", i,
                                  (unsigned long long)(k / cols), (unsigned long long)(k % cols));
    }
    if (R * (cols / G8) >= UINT32_MAX)
        return sq_err_set(err, SQ_EUSAGE, "AQLM: %llu rows x %llu columns is too large", (unsigned long long)R,
                          (unsigned long long)cols);
    return SQ_OK;
}

sq_status sq_aqlm_quantize_shared(uint32_t n, const float *const *w, const uint64_t *rows, uint64_t cols,
                                  const double *const *H, const sq_aqlm_opts *opts, sq_aqlm_result *out, sq_err *err) {
    sq_aqlm_opts o = opts ? *opts : (sq_aqlm_opts){0};
    sq_aqlm_opts_default(&o);
    for (uint32_t i = 0; i < n; i++) memset(&out[i], 0, sizeof out[i]);
    sq_status st = check_inputs(n, w, rows, cols, H, &o, err);
    if (st) return st;
    state S = {0};
    cg c = {0};
    S.n = n;
    S.cols = cols;
    S.G = cols / G8;
    S.M = o.M;
    S.B = o.B;
    S.K = (uint64_t)1 << o.B;
    S.isa = sq_isa_active();
    S.nt = o.n_threads;
    for (uint32_t i = 0; i < n; i++) S.R += rows[i];
    const uint64_t P = (uint64_t)S.M * S.K * G8;
    S.mats = calloc(n, sizeof(mat));
    S.mat_of = malloc(S.R * sizeof(uint32_t));
    S.codes = malloc(S.R * S.G * S.M * sizeof(uint32_t));
    S.cb = malloc(P * sizeof(double));
    S.s = malloc(S.R * sizeof(double));
    S.rowloss = malloc(S.R * sizeof(double));
    S.whw = malloc(S.R * sizeof(double));
    c.S = &S;
    c.P = P;
    c.off = malloc(((uint64_t)S.M * S.K + 1) * sizeof(uint64_t));
    c.occ = malloc(S.R * S.G * S.M * sizeof(uint32_t));
    c.WH = malloc(S.R * cols * sizeof(float));
    c.D = malloc(S.R * cols * sizeof(float));
    c.PH = malloc(S.R * cols * sizeof(float));
    c.pinv = malloc((uint64_t)S.M * S.K * 64 * sizeof(double));
    int ok = S.mats && S.mat_of && S.codes && S.cb && S.s && S.rowloss && S.whw && c.off && c.occ && c.WH && c.D && c.PH && c.pinv;
    for (uint32_t i = 0; ok && i < n; i++) {
        mat *mt = &S.mats[i];
        mt->w = w[i];
        mt->H = H[i];
        mt->rows = rows[i];
        mt->r0 = i ? S.mats[i - 1].r0 + rows[i - 1] : 0;
        for (uint64_t r = 0; r < rows[i]; r++) S.mat_of[mt->r0 + r] = i;
        if (!(mt->Hf = sq_big_alloc(cols * cols * sizeof(float)))) ok = 0;
        else
            for (uint64_t k = 0; k < cols * cols; k++) mt->Hf[k] = (float)H[i][k];
    }
    if (!ok) {
        st = sq_err_set(err, SQ_ENOMEM, "AQLM: out of memory for %llu x %llu at %ux%u", (unsigned long long)S.R,
                        (unsigned long long)cols, S.M, S.B);
        goto done;
    }
    /* lam_i = 1 / tr(W_i H_i W_iᵀ), so the objective is a sum of relative errors */
    for (uint32_t i = 0; i < n; i++) S.mats[i].lam = 1;
    memset(S.codes, 0, S.R * S.G * S.M * sizeof(uint32_t));
    memset(S.cb, 0, P * sizeof(double));
    for (uint64_t r = 0; r < S.R; r++) S.s[r] = 1;
    double *loss = S.rowloss;
    objective(&S, S.cb, loss); /* all-zero reconstruction: loss = w H wᵀ */
    memcpy(S.whw, loss, S.R * sizeof(double));
    for (uint32_t i = 0; i < n; i++) {
        double t = 0;
        for (uint64_t r = S.mats[i].r0; r < S.mats[i].r0 + rows[i]; r++) t += loss[r];
        S.mats[i].lam = t > 0 ? 1 / t : 1;
    }
    if (atomic_load(&S.oom)) goto oom;
    for (uint32_t i = 0; i < n; i++) memcpy(c.WH + S.mats[i].r0 * cols, w[i], rows[i] * cols * sizeof(float));
    memcpy(c.D, c.WH, S.R * cols * sizeof(float));
    if (times_h(&S, c.D, c.WH)) goto oom;

    if ((st = init_kmeans(&S, &o, err))) goto done;
    obj_hist hh = {0}, *rep = &hh;
    double cur = objective(&S, S.cb, S.rowloss), start_iter;
    if (atomic_load(&S.oom)) goto oom;
    rep->hist[rep->n_hist++] = cur;
    uint64_t rng = o.seed ^ 0x61716c6d62656d73ull;
    uint32_t it;
    for (it = 0; it < o.max_iters; it++) {
        start_iter = cur;
        if ((st = refit_step(&S, &c, o.cg_iters, &cur, rep, err))) goto done;
        if (atomic_load(&S.oom)) goto oom;
        if ((st = code_pass(&S, &rng, o.beam, err))) goto done;
        if (atomic_load(&S.oom)) goto oom;
        cur = total(&S, S.rowloss);
        if (rep->n_hist < SQ_AQLM_MAX_HIST) rep->hist[rep->n_hist++] = cur;
        if (!(start_iter - cur > o.rel_tol * start_iter)) {
            it++;
            break;
        }
    }
    /* the last codes get their codebooks and scales too (about 1% lower at no code-search cost) */
    if ((st = refit_step(&S, &c, o.cg_iters, &cur, rep, err))) goto done;
    if (atomic_load(&S.oom)) goto oom;
    for (uint32_t i = 0; i < n && !st; i++) st = pack(&S, i, &out[i], err);
    if (st) goto done;
    for (uint32_t i = 0; i < n; i++) {
        out[i].iters = it;
        out[i].rel_err = decoded_rel_err(&out[i], w[i], H[i], S.isa);
        out[i].n_hist = rep->n_hist;
        memcpy(out[i].hist, rep->hist, sizeof rep->hist);
        if (out[i].rel_err < 0) goto oom;
    }
    goto done;
oom:
    st = sq_err_set(err, SQ_ENOMEM, "AQLM: out of memory for %llu x %llu at %ux%u", (unsigned long long)S.R,
                    (unsigned long long)cols, S.M, S.B);
done:
    if (st)
        for (uint32_t i = 0; i < n; i++) sq_aqlm_result_free(&out[i]);
    for (uint32_t i = 0; S.mats && i < n; i++) free(S.mats[i].Hf);
    free(S.mats);
    free(S.mat_of);
    free(S.codes);
    free(S.cb);
    free(S.s);
    free(S.rowloss);
    free(S.whw);
    free(c.off);
    free(c.occ);
    free(c.WH);
    free(c.D);
    free(c.PH);
    free(c.pinv);
    return st;
}

sq_status sq_aqlm_quantize(const float *w, uint64_t rows, uint64_t cols, const double *H, const sq_aqlm_opts *o,
                           sq_aqlm_result *out, sq_err *err) {
    return sq_aqlm_quantize_shared(1, &w, &rows, cols, &H, o, out, err);
}
