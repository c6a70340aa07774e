/* QuIP# quantizer (see quip.h). */
#include "quip.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/big_alloc.h"
#include "codecs/quip/e8p.h"
#include "codecs/quip/quip_codec.h"
#include "e8p_encode.h"
#include "gptq.h"
#include "ldlq.h"
#include "linalg.h"
#include "rtn.h"
#include "squish/fp.h"

/* Stage-0 scale = RMS of the transformed row / opt_scale. quip-sharp's
 * values for its residual codebooks (opt_scale, opt_resid_scale); at 2 bits
 * and for the nested stages the minimum of the proxy loss over layers 0-1
 * of the 34M model (tests/measure_quip.c): a larger stage-0 scale trades
 * granular error for fewer vectors outside the E8P ball. */
static double default_opt_scale(uint32_t bits, uint32_t nested) {
    if (nested) return bits == 3 ? SQ_QUIP_OPT_SCALE_N3 : SQ_QUIP_OPT_SCALE_N4;
    return bits == 2 ? SQ_QUIP_OPT_SCALE_2 : bits == 3 ? 0.98 : 1.03;
}
static double default_resid_scale(uint32_t bits) { return bits == 3 ? 2.04 : 3.45; }

static float f16r(double v) { return sq_f16_to_f32(sq_f32_to_f16((float)v)); }

void sq_quip_result_free(sq_quip_result *r) {
    free(r->codes);
    free(r->codes2);
    free(r->codes3);
    free(r->su);
    free(r->sv);
    free(r->scales);
    memset(r, 0, sizeof *r);
}

void sq_quip_view_of(const sq_quip_result *r, sq_quip_view *v) {
    *v = (sq_quip_view){.rows = r->rows,
                        .cols = r->cols,
                        .bits = r->bits,
                        .nested = r->nested,
                        .codes = r->codes,
                        .codes2 = r->codes2,
                        .codes3 = r->codes3,
                        .su = r->su,
                        .sv = r->sv,
                        .scales = r->scales};
}

/* ---- the block quantizer: 8 values and the row's stage scales -> codes ----
 * Returns the codes (stage 0 | stage 1 << 16 | stage 2 << 24) and the
 * decoder's values, computed as the decoder does (s0·q0, + s1·q1, + s2·q2). */
typedef struct quip_q {
    uint32_t bits, nested, stages;
    int beam; /* stage-0 candidates tried where the exact search does not apply */
} quip_q;

static float block_err(const quip_q *q, const float s[3], const float *v, const float *q0, const float *q1,
                       const float *q2, float deq[8]) {
    float e = 0;
    for (int j = 0; j < 8; j++) {
        float o = s[0] * q0[j];
        if (q->stages > 1) o += s[1] * q1[j];
        if (q->stages > 2) o += s[2] * q2[j];
        deq[j] = o;
        e += (v[j] - o) * (v[j] - o);
    }
    return e;
}

/* The nested code of the point of the fine lattice (½E8 + ¼ at 3 bits, ¼E8 + ¼
 * at 4) nearest to a·y, split into E8P + E8R (+ E8R/2); 0 when its stage-0
 * part lies outside the E8P ball. */
static int nested_lattice(const quip_q *q, const float *y, float a, uint32_t *code, float q0[8], float q1[8],
                          float q2[8]) {
    const sq_e8p_tables *t = sq_e8p_tables_get();
    const float L = q->stages == 3 ? 4.0f : 2.0f;
    float x[8], e[8], c[8];
    for (int j = 0; j < 8; j++) x[j] = L * (a * y[j] - 0.25f);
    sq_e8_nearest(x, e);
    uint32_t k2 = 0;
    if (q->stages == 3) { /* e = 2·e1 + m2, m2 = 2·E8R[k2] */
        k2 = sq_e8r_of_coset(e);
        for (int j = 0; j < 8; j++) e[j] = 0.5f * (e[j] - 2.0f * t->e8r[k2][j]);
    }
    const uint32_t k1 = sq_e8r_of_coset(e); /* e = 2·c' + m1 */
    for (int j = 0; j < 8; j++) c[j] = 0.5f * (e[j] - 2.0f * t->e8r[k1][j]) + 0.25f;
    const int c0 = sq_e8p_code_of_value(c, q0);
    if (c0 < 0) return 0;
    memcpy(q1, t->e8r[k1], sizeof(float) * 8);
    memcpy(q2, t->e8r[k2], sizeof(float) * 8);
    *code = (uint32_t)c0 | k1 << 16 | k2 << 24;
    return 1;
}

static uint32_t quant_block(const quip_q *q, const float s[3], const float *v, float deq[8]) {
    float y[8], q0[8], q1[8] = {0}, q2[8] = {0}, d[8];
    for (int j = 0; j < 8; j++) y[j] = s[0] > 0 ? v[j] / s[0] : 0.0f;
    if (q->stages == 1) { /* E8P12 alone: the exact nearest code */
        const uint32_t code = sq_e8p_nearest(y, q0);
        block_err(q, s, v, q0, q1, q2, deq);
        return code;
    }
    uint32_t best = 0;
    float be = INFINITY;
    if (q->nested) {
        const int nominal = s[1] == s[0] && (q->stages < 3 || s[2] == 0.5f * s[0]);
        uint32_t code;
        if (nested_lattice(q, y, 1.0f, &code, q0, q1, q2)) {
            be = block_err(q, s, v, q0, q1, q2, deq);
            best = code;
            if (nominal) return best; /* the codebook's nearest point: the fine lattice's */
        } else { /* outside the ball: the lattice point of a shrunk y, where one is inside */
            float a = 1.0f;
            for (int k = 0; k < 12; k++) {
                a *= 0.97f;
                if (nested_lattice(q, y, a, &code, q0, q1, q2)) {
                    be = block_err(q, s, v, q0, q1, q2, deq);
                    best = code;
                    break;
                }
            }
        }
    }
    /* greedy stages from the nearest stage-0 candidates (quip-sharp's
     * residual search with beam = 1). The later stages move a point by at
     * most R = Σ_k s_k·max‖stage k‖ (/ s0 in y's units), so a candidate at
     * distance d gives an error >= s0²·(d - R)²: the rest are skipped. */
    uint16_t cand[SQ_E8P_MAX_CAND];
    float cval[SQ_E8P_MAX_CAND * 8], cdist[SQ_E8P_MAX_CAND];
    const int nc = sq_e8p_candidates(y, q->beam > 0 ? q->beam : 1, cand, cval, cdist);
    const float R = s[0] > 0 ? (s[1] * (q->nested ? 1.0f : q->bits == 3 ? 2.0f : 4.2f) + s[2] * 1.0f) / s[0] : 0.0f;
    for (int k = 0; k < nc; k++) {
        const float gap = 0.999f * sqrtf(cdist[k] > 0 ? cdist[k] : 0) - R; /* slack for rounding */
        if (k > 0 && gap > 0 && s[0] * s[0] * gap * gap > be) break;
        const float *c0 = cval + 8 * k;
        float z[8];
        for (int j = 0; j < 8; j++) z[j] = s[1] > 0 ? (v[j] - s[0] * c0[j]) / s[1] : 0.0f;
        uint32_t code = cand[k], k1;
        if (!q->nested) k1 = q->bits == 3 ? sq_e81b_nearest(z, q1) : sq_e8p_nearest(z, q1);
        else k1 = sq_e8r_nearest(z, q1);
        code |= k1 << 16;
        if (q->stages == 3) {
            for (int j = 0; j < 8; j++) z[j] = s[2] > 0 ? (v[j] - s[0] * c0[j] - s[1] * q1[j]) / s[2] : 0.0f;
            code |= (uint32_t)sq_e8r_nearest(z, q2) << 24;
        }
        const float e = block_err(q, s, v, c0, q1, q2, d);
        if (e < be) {
            be = e;
            best = code;
            memcpy(deq, d, sizeof d);
        }
    }
    return best;
}

/* ---- the error-feedback quantizer the generic driver (gptq.c) runs ----
 * One block = the 8 columns of one E8P group of one row. A row is one
 * statistics group: fit sets the stage scales from the row as the driver
 * enters it (before any error feedback: the transformed row's RMS); quant
 * is quant_block. sq_quip_quantize runs the same quantizer through the
 * BlockLDLQ driver of ldlq.c, which lets it rerun with refitted scales. */
static quip_q quip_q_of(const uint32_t *p) {
    quip_q q = {p[SQ_QUIP_P_BITS], p[SQ_QUIP_P_NESTED], sq_quip_stages(p[SQ_QUIP_P_BITS], p[SQ_QUIP_P_NESTED]),
                SQ_QUIP_BEAM};
    return q;
}
static void initial_scales(const quip_q *q, double rms, double opt_scale, float s[3]) {
    s[0] = f16r(rms / (opt_scale > 0 ? opt_scale : default_opt_scale(q->bits, q->nested)));
    s[1] = q->stages < 2 ? 0.0f : q->nested ? s[0] : f16r(s[0] / default_resid_scale(q->bits));
    s[2] = q->stages < 3 ? 0.0f : 0.5f * s[0];
}
static int vq_supports(const sq_codec *c, const uint32_t *p) {
    (void)c;
    return p[SQ_QUIP_P_BITS] >= 2 && p[SQ_QUIP_P_BITS] <= 4 && p[SQ_QUIP_P_NESTED] <= (p[SQ_QUIP_P_BITS] > 2);
}
static uint64_t vq_group_len(const sq_vq *q) { return q->cols; }
static void vq_fit(const sq_vq *v, uint64_t row, uint64_t group, const float *x, uint64_t n, float stat[SQ_VQ_MAX_STAT]) {
    (void)group;
    const quip_q q = quip_q_of(v->params);
    double ss = 0;
    for (uint64_t c = 0; c < n; c++) ss += (double)x[c] * x[c];
    initial_scales(&q, sqrt(ss / (double)n), 0, stat);
    uint16_t *scales = v->parts[q.stages];
    for (uint32_t k = 0; k < q.stages; k++) scales[k * v->rows + row] = sq_f32_to_f16(stat[k]);
}
static uint32_t vq_quant(const sq_vq *v, const float stat[SQ_VQ_MAX_STAT], const float *x, float *deq) {
    const quip_q q = quip_q_of(v->params);
    return quant_block(&q, stat, x, deq);
}
static void put_codes(uint32_t bits, uint32_t nested, void *c1, void *c2, void *c3, uint64_t at, uint32_t code) {
    ((uint16_t *)c1)[at] = (uint16_t)(code & 0xFFFF);
    if (bits == 4 && !nested) ((uint16_t *)c2)[at] = (uint16_t)(code >> 16);
    else if (bits > 2) ((uint8_t *)c2)[at] = (uint8_t)(code >> 16);
    if (bits == 4 && nested) ((uint8_t *)c3)[at] = (uint8_t)(code >> 24);
}
static void vq_pack_row(const sq_vq *v, uint64_t row, const uint32_t *codes) {
    const quip_q q = quip_q_of(v->params);
    const uint64_t G = v->cols / 8;
    for (uint64_t g = 0; g < G; g++)
        put_codes(q.bits, q.nested, v->parts[0], q.stages > 1 ? v->parts[1] : NULL, q.stages > 2 ? v->parts[2] : NULL,
                  row * G + g, codes[g]);
}
static const sq_vq_ops quip_vq_ops = {.dim = 8,
                                      .supports = vq_supports,
                                      .group_len = vq_group_len,
                                      .fit = vq_fit,
                                      .quant = vq_quant,
                                      .pack_row = vq_pack_row};

/* Rows of a (n x n, row-major) transformed: A <- V A Vᵀ with V = Ĥ diag(s). */
static void transform_hessian(double *A, uint64_t n, const sq_had_plan *p, const uint8_t *s) {
    for (uint64_t i = 0; i < n; i++) sq_rht_apply_plan_f64(p, s, A + i * n); /* A Vᵀ */
    for (uint64_t i = 0; i < n; i++)
        for (uint64_t j = i + 1; j < n; j++) {
            double t = A[i * n + j];
            A[i * n + j] = A[j * n + i];
            A[j * n + i] = t;
        }
    for (uint64_t i = 0; i < n; i++) sq_rht_apply_plan_f64(p, s, A + i * n); /* (V A Vᵀ)ᵀ rows */
    for (uint64_t i = 0; i < n; i++)
        for (uint64_t j = i + 1; j < n; j++) {
            double m = 0.5 * (A[i * n + j] + A[j * n + i]);
            A[i * n + j] = A[j * n + i] = m;
        }
}

/* ---- one BlockLDLQ pass with given per-row scales ---- */
typedef struct pass_ctx {
    quip_q q;
    const float *scales; /* [stages][rows] */
    uint64_t rows, G;
    void *c1, *c2, *c3;  /* the result's code arrays */
} pass_ctx;

static sq_status pass_block(void *ctx, uint64_t r0, uint64_t nrows, uint64_t c0, uint32_t width, const float *v,
                            size_t ldv, float *qv, size_t ldq) {
    const pass_ctx *x = ctx;
    (void)width;
    for (uint64_t r = 0; r < nrows; r++) {
        const uint64_t row = r0 + r;
        float s[3] = {0, 0, 0};
        for (uint32_t k = 0; k < x->q.stages; k++) s[k] = x->scales[k * x->rows + row];
        const uint32_t code = quant_block(&x->q, s, v + r * ldv, qv + r * ldq);
        put_codes(x->q.bits, x->q.nested, x->c1, x->c2, x->c3, row * x->G + c0 / 8, code);
    }
    return SQ_OK;
}

/* ---- the refit: per row, the stage scales minimizing the calibrated
 * output error (w̃ - Σ_k s_k q_k) H̃ (…)ᵀ with the codes fixed ---- */
typedef struct refit_stats {
    double *ww;  /* [rows] w̃ H̃ w̃ᵀ */
    double *g;   /* [rows][3]  q_k H̃ w̃ᵀ */
    double *Gm;  /* [rows][3][3] q_j H̃ q_kᵀ */
} refit_stats;

/* Stage k of rows [r0, r1) with unit scale, into out ((r1 - r0) x cols). */
static void stage_values(const sq_quip_result *res, const quip_q *q, uint32_t k, uint64_t r0, uint64_t r1, float *out) {
    const sq_e8p_tables *t = sq_e8p_tables_get();
    const uint64_t G = res->cols / 8;
    const sq_quip_book book = sq_quip_stage_book(q->bits, q->nested, k);
    const void *codes = k == 0 ? (const void *)res->codes : k == 1 ? res->codes2 : (const void *)res->codes3;
    for (uint64_t i = r0 * G; i < r1 * G; i++) {
        float *o = out + 8 * (i - r0 * G);
        if (book == SQ_QUIP_E8P) {
            const uint16_t c = ((const uint16_t *)codes)[i];
            for (int j = 0; j < 8; j++) o[j] = t->base[c >> 8][j] * t->sign[c & 0xFF][j] + t->shift[c & 0xFF];
        } else {
            const uint8_t c = ((const uint8_t *)codes)[i];
            memcpy(o, book == SQ_QUIP_E81B ? t->e81b[c] : t->e8r[c], 8 * sizeof(float));
        }
    }
}

/* Gram statistics of the codes in res (or, with res NULL, ww only) against
 * w̃ under Hf, in tiles of rows on threads: each row's sums are the same
 * for any tiling (sq_la_matmul_f32 sums every element in one order). */
#define REFIT_TILE 32
typedef struct refit_ctx {
    const sq_quip_result *res;
    const quip_q *q;
    const float *Wt, *Hf;
    uint64_t rows, cols;
    refit_stats *rs;
    int failed;
} refit_ctx;

static void refit_tiles(void *p, uint64_t t0, uint64_t t1) {
    refit_ctx *x = p;
    const uint64_t cols = x->cols, S = x->res ? x->q->stages : 0;
    float *Q = malloc((S ? S : 1) * REFIT_TILE * cols * sizeof(float)), *T = malloc(REFIT_TILE * cols * sizeof(float));
    if (!Q || !T) {
        x->failed = 1;
        goto out;
    }
    const sq_isa isa = sq_isa_active();
    for (uint64_t tile = t0; tile < t1; tile++) {
        const uint64_t r0 = tile * REFIT_TILE, r1 = r0 + REFIT_TILE < x->rows ? r0 + REFIT_TILE : x->rows, R = r1 - r0;
        const float *W = x->Wt + r0 * cols;
        if (!S) { /* w̃ H̃ w̃ᵀ */
            if (sq_la_matmul_f32(isa, 0, R, cols, cols, W, cols, x->Hf, cols, T, cols)) {
                x->failed = 1;
                goto out;
            }
            for (uint64_t r = 0; r < R; r++) {
                double a = 0;
                for (uint64_t c = 0; c < cols; c++) a += (double)T[r * cols + c] * W[r * cols + c];
                x->rs->ww[r0 + r] = a;
            }
            continue;
        }
        for (uint32_t k = 0; k < S; k++) stage_values(x->res, x->q, k, r0, r1, Q + k * REFIT_TILE * cols);
        for (uint32_t k = 0; k < S; k++) {
            if (sq_la_matmul_f32(isa, 0, R, cols, cols, Q + k * REFIT_TILE * cols, cols, x->Hf, cols, T, cols)) {
                x->failed = 1;
                goto out;
            }
            for (uint64_t r = 0; r < R; r++) {
                const float *tr = T + r * cols;
                double g = 0;
                for (uint64_t c = 0; c < cols; c++) g += (double)tr[c] * W[r * cols + c];
                x->rs->g[(r0 + r) * 3 + k] = g;
                for (uint32_t j = 0; j <= k; j++) {
                    double a = 0;
                    const float *qj = Q + j * REFIT_TILE * cols + r * cols;
                    for (uint64_t c = 0; c < cols; c++) a += (double)tr[c] * qj[c];
                    x->rs->Gm[(r0 + r) * 9 + j * 3 + k] = x->rs->Gm[(r0 + r) * 9 + k * 3 + j] = a;
                }
            }
        }
    }
out:
    free(Q);
    free(T);
}

static int refit_gather(const sq_quip_result *res, const quip_q *q, const float *Wt, const float *Hf, uint64_t rows,
                        uint64_t cols, int n_threads, refit_stats *rs) {
    refit_ctx x = {res, q, Wt, Hf, rows, cols, rs, 0};
    sq_parallel_for(n_threads, (rows + REFIT_TILE - 1) / REFIT_TILE, refit_tiles, &x);
    return x.failed ? -1 : 0;
}

static double row_err(const refit_stats *rs, uint64_t r, uint32_t S, const double *s) {
    double e = rs->ww[r];
    for (uint32_t j = 0; j < S; j++) {
        e -= 2 * s[j] * rs->g[r * 3 + j];
        for (uint32_t k = 0; k < S; k++) e += s[j] * s[k] * rs->Gm[r * 9 + j * 3 + k];
    }
    return e;
}

/* Solves the S x S normal equations of row r (Gaussian elimination with
 * partial pivoting); 0 when singular. */
static int solve_row(const refit_stats *rs, uint64_t r, uint32_t S, double *x) {
    double M[3][4];
    for (uint32_t j = 0; j < S; j++) {
        for (uint32_t k = 0; k < S; k++) M[j][k] = rs->Gm[r * 9 + j * 3 + k];
        M[j][S] = rs->g[r * 3 + j];
    }
    const double tiny = 1e-12 * (rs->Gm[r * 9] + (S > 1 ? rs->Gm[r * 9 + 4] : 0) + (S > 2 ? rs->Gm[r * 9 + 8] : 0));
    for (uint32_t c = 0; c < S; c++) {
        uint32_t p = c;
        for (uint32_t i = c + 1; i < S; i++)
            if (fabs(M[i][c]) > fabs(M[p][c])) p = i;
        if (!(fabs(M[p][c]) > tiny)) return 0;
        for (uint32_t k = 0; k <= S; k++) {
            double t = M[c][k];
            M[c][k] = M[p][k];
            M[p][k] = t;
        }
        for (uint32_t i = c + 1; i < S; i++) {
            const double f = M[i][c] / M[c][c];
            for (uint32_t k = c; k <= S; k++) M[i][k] -= f * M[c][k];
        }
    }
    for (int c = (int)S - 1; c >= 0; c--) {
        double v = M[c][S];
        for (uint32_t k = (uint32_t)c + 1; k < S; k++) v -= M[c][k] * x[k];
        x[c] = v / M[c][c];
    }
    return 1;
}

/* New scales (f16-rounded) of row r where they lower its error; returns the
 * row's error with the scales it keeps. */
static double refit_row(const refit_stats *rs, uint64_t r, uint32_t S, float *s, int enabled) {
    double cur[3] = {s[0], s[1], s[2]}, x[3] = {0, 0, 0};
    const double e0 = row_err(rs, r, S, cur);
    if (!enabled) return e0;
    int ok = solve_row(rs, r, S, x);
    if (!ok) { /* degenerate: one common factor on the current scales */
        double num = 0, den = 0;
        for (uint32_t j = 0; j < S; j++) {
            num += cur[j] * rs->g[r * 3 + j];
            for (uint32_t k = 0; k < S; k++) den += cur[j] * cur[k] * rs->Gm[r * 9 + j * 3 + k];
        }
        if (!(den > 0)) return e0;
        for (uint32_t j = 0; j < S; j++) x[j] = cur[j] * num / den;
    }
    double f[3] = {0, 0, 0};
    for (uint32_t j = 0; j < S; j++) {
        f[j] = f16r(x[j]);
        if (!isfinite(f[j])) return e0;
    }
    const double e1 = row_err(rs, r, S, f);
    if (!(e1 < e0)) return e0;
    for (uint32_t j = 0; j < S; j++) s[j] = (float)f[j];
    return e1;
}

/* ---- block coordinate descent on the calibrated error (quip-sharp's
 * quip_tune_iters) ----
 * With the scales fixed, each block k of a row in turn is re-quantized at
 * the minimizer of the row's error e H eᵀ over that block alone (e = w̃ - q,
 * H = H̃ + λI, the other blocks fixed): t = q_k + (eH)_k H_kk⁻¹. The new
 * code is kept only where it lowers the error (its exact change, -2 δ·(eH)_k
 * + δ H_kk δᵀ for δ = q_k' - q_k, is negative), so every sweep is monotone;
 * then eH -= δ H_k. Rows are independent and each row's arithmetic has one
 * order: the same bytes for any thread count. */
typedef struct tune_ctx {
    quip_q q;
    const float *scales;  /* [stages][rows] */
    const sq_quip_result *res;
    void *c1, *c2, *c3;   /* = res's code arrays, written where a block changes */
    const float *Wt, *Hf; /* w̃; H̃ (float, cols x cols) */
    double lam;           /* added to H̃'s diagonal */
    const double *Hinv;   /* [G][8][8] inverses of H's diagonal blocks */
    uint64_t rows, cols;
    int iters;
    int failed;
} tune_ctx;

/* One sweep over the blocks of a row; returns whether a code changed. */
static int tune_sweep(const tune_ctx *x, const float s[3], uint64_t r, float *q, double *g) {
    const uint64_t cols = x->cols, G = cols / 8;
    int changed = 0;
    for (uint64_t b = 0; b < G; b++) {
        const double *Hi = x->Hinv + b * 64, *gb = g + 8 * b;
        float t[8], nq[8];
        for (int i = 0; i < 8; i++) {
            double a = q[8 * b + i];
            for (int j = 0; j < 8; j++) a += gb[j] * Hi[j * 8 + i];
            t[i] = (float)a;
        }
        const uint32_t code = quant_block(&x->q, s, t, nq);
        double d[8], dlt = 0;
        int any = 0;
        for (int i = 0; i < 8; i++) {
            d[i] = (double)nq[i] - q[8 * b + i];
            any |= d[i] != 0;
        }
        if (!any) continue;
        for (int i = 0; i < 8; i++) {
            const float *Hr = x->Hf + (8 * b + i) * cols + 8 * b;
            double a = x->lam * d[i];
            for (int j = 0; j < 8; j++) a += (double)Hr[j] * d[j];
            dlt += d[i] * (a - 2 * gb[i]);
        }
        if (!(dlt < 0)) continue;
        changed = 1;
        memcpy(q + 8 * b, nq, sizeof nq);
        put_codes(x->q.bits, x->q.nested, x->c1, x->c2, x->c3, r * G + b, code);
        for (int i = 0; i < 8; i++) {
            const double di = d[i];
            const float *Hr = x->Hf + (8 * b + i) * cols;
            if (di == 0) continue;
            for (uint64_t j = 0; j < cols; j++) g[j] -= di * Hr[j];
            g[8 * b + i] -= x->lam * di;
        }
    }
    return changed;
}

#define TUNE_TILE 16
static void tune_tiles(void *p, uint64_t t0, uint64_t t1) {
    tune_ctx *x = p;
    const uint64_t cols = x->cols;
    const uint32_t S = x->q.stages;
    float *V = malloc(S * TUNE_TILE * cols * sizeof(float)), *Q = malloc(TUNE_TILE * cols * sizeof(float));
    float *E = malloc(TUNE_TILE * cols * sizeof(float)), *T = malloc(TUNE_TILE * cols * sizeof(float));
    double *g = malloc(cols * sizeof(double));
    if (!V || !Q || !E || !T || !g) {
        x->failed = 1;
        goto out;
    }
    const sq_isa isa = sq_isa_active();
    for (uint64_t tile = t0; tile < t1; tile++) {
        const uint64_t r0 = tile * TUNE_TILE, r1 = r0 + TUNE_TILE < x->rows ? r0 + TUNE_TILE : x->rows, R = r1 - r0;
        for (uint32_t k = 0; k < S; k++) stage_values(x->res, &x->q, k, r0, r1, V + k * TUNE_TILE * cols);
        for (uint64_t r = 0; r < R; r++)
            for (uint64_t c = 0; c < cols; c++) { /* the decoder's values, in its order */
                const uint64_t i = r * cols + c;
                float o = x->scales[r0 + r] * V[i];
                if (S > 1) o += x->scales[x->rows + r0 + r] * V[TUNE_TILE * cols + i];
                if (S > 2) o += x->scales[2 * x->rows + r0 + r] * V[2 * TUNE_TILE * cols + i];
                Q[i] = o;
                E[i] = x->Wt[(r0 + r) * cols + c] - o;
            }
        if (sq_la_matmul_f32(isa, 0, R, cols, cols, E, cols, x->Hf, cols, T, cols)) { /* T = E H̃ */
            x->failed = 1;
            goto out;
        }
        for (uint64_t r = 0; r < R; r++) {
            float s[3] = {0, 0, 0};
            for (uint32_t k = 0; k < S; k++) s[k] = x->scales[k * x->rows + r0 + r];
            for (uint64_t c = 0; c < cols; c++) g[c] = (double)T[r * cols + c] + x->lam * (double)E[r * cols + c];
            for (int it = 0; it < x->iters; it++)
                if (!tune_sweep(x, s, r0 + r, Q + r * cols, g)) break;
        }
    }
out:
    free(V);
    free(Q);
    free(E);
    free(T);
    free(g);
}

/* Inverse of the symmetric positive definite 8x8 matrix A (Gauss-Jordan
 * with partial pivoting); 0 when singular. */
static int inv8(const double *A, double *X) {
    double M[8][16];
    for (int i = 0; i < 8; i++)
        for (int j = 0; j < 16; j++) M[i][j] = j < 8 ? A[i * 8 + j] : (j - 8 == i);
    for (int c = 0; c < 8; c++) {
        int p = c;
        for (int i = c + 1; i < 8; i++)
            if (fabs(M[i][c]) > fabs(M[p][c])) p = i;
        if (!(fabs(M[p][c]) > 0)) return 0;
        for (int j = 0; j < 16; j++) {
            double t = M[c][j];
            M[c][j] = M[p][j];
            M[p][j] = t;
        }
        const double f = 1.0 / M[c][c];
        for (int j = 0; j < 16; j++) M[c][j] *= f;
        for (int i = 0; i < 8; i++)
            if (i != c) {
                const double m = M[i][c];
                for (int j = 0; j < 16; j++) M[i][j] -= m * M[c][j];
            }
    }
    for (int i = 0; i < 8; i++)
        for (int j = 0; j < 8; j++) X[i * 8 + j] = M[i][j + 8];
    return 1;
}

/* Runs the descent on res's codes with the given scales, on the error
 * under H̃ (float Hf) + lam·I. Returns -1 when out of memory. */
static int tune_codes(sq_quip_result *res, const quip_q *q, const float *scales, const float *Wt, const float *Hf,
                      double lam, uint64_t rows, uint64_t cols, int iters, int n_threads) {
    const uint64_t G = cols / 8;
    double *Hinv = malloc(G * 64 * sizeof(double));
    if (!Hinv) return -1;
    for (uint64_t b = 0; b < G; b++) {
        double A[64];
        for (int i = 0; i < 8; i++)
            for (int j = 0; j < 8; j++) A[i * 8 + j] = (double)Hf[(8 * b + i) * cols + 8 * b + j] + (i == j ? lam : 0);
        if (!inv8(A, Hinv + b * 64)) memset(Hinv + b * 64, 0, 64 * sizeof(double)); /* target = current values */
    }
    tune_ctx x = {*q, scales, res, res->codes, res->codes2, res->codes3, Wt, Hf, lam, Hinv, rows, cols, iters, 0};
    sq_parallel_for(n_threads, (rows + TUNE_TILE - 1) / TUNE_TILE, tune_tiles, &x);
    free(Hinv);
    return x.failed ? -1 : 0;
}

static sq_status oom(sq_err *err, uint64_t rows, uint64_t cols) {
    return sq_err_set(err, SQ_ENOMEM, "QuIP#: out of memory for a %llu x %llu matrix", (unsigned long long)rows,
                      (unsigned long long)cols);
}

static sq_status alloc_codes(sq_quip_result *r, const quip_q *q) {
    const uint64_t n = r->rows * (r->cols / 8);
    r->codes = malloc(n * 2);
    if (q->stages > 1) r->codes2 = malloc(n * (q->bits == 4 && !q->nested ? 2 : 1));
    if (q->stages > 2) r->codes3 = malloc(n);
    r->scales = malloc(q->stages * r->rows * 2);
    return r->codes && (q->stages < 2 || r->codes2) && (q->stages < 3 || r->codes3) && r->scales ? SQ_OK : SQ_ENOMEM;
}

sq_status sq_quip_quantize(const float *w, uint64_t rows, uint64_t cols, const double *H, const sq_quip_opts *o,
                           sq_quip_result *res, sq_err *err) {
    memset(res, 0, sizeof *res);
    const uint32_t bits = o->bits, nested = o->nested;
    if (bits < 2 || bits > 4) return sq_err_set(err, SQ_EUSAGE, "QuIP#: %u bits per weight (2, 3 or 4)", bits);
    if (nested > 1 || (nested && bits == 2))
        return sq_err_set(err, SQ_EUSAGE, "QuIP#: nested stages need 3 or 4 bits (got %u bits)", bits);
    if (!rows || !cols || cols % 8)
        return sq_err_set(err, SQ_EUSAGE, "QuIP#: shape %llu x %llu (columns must be a non-zero multiple of 8)",
                          (unsigned long long)rows, (unsigned long long)cols);
    sq_status st = sq_check_finite("QuIP# weights", w, rows * cols, err);
    if (st) return st;
    for (uint64_t i = 0; i < cols * cols; i++)
        if (!isfinite(H[i])) return sq_err_set(err, SQ_ECORRUPT, "QuIP#: Hessian element %llu is not finite", (unsigned long long)i);
    quip_q q = {bits, nested, sq_quip_stages(bits, nested), o->beam > 0 ? o->beam : SQ_QUIP_BEAM};
    const uint32_t S = q.stages;
    const uint64_t n = rows * cols, G = cols / 8;
    res->rows = rows;
    res->cols = cols;
    res->bits = bits;
    res->nested = nested;
    float *Wt = sq_big_alloc(n * sizeof(float)), *col = malloc(rows * sizeof(float)), *U = sq_big_alloc(cols * cols * sizeof(float));
    double *Ht = sq_big_alloc(cols * cols * sizeof(double));
    float *cur = malloc(S * rows * sizeof(float)), *bestsc = malloc(S * rows * sizeof(float));
    double *besterr = malloc(rows * sizeof(double));
    float *Hf = NULL;
    refit_stats rs = {0};
    sq_quip_result trial = {0};
    if (!Wt || !col || !U || !Ht || !cur || !bestsc || !besterr) {
        st = oom(err, rows, cols);
        goto out;
    }
    const int rht_out = !o->no_rht && !o->no_rht_out;
    if (!o->no_rht) {
        res->su = malloc((cols + 7) / 8);
        res->sv = rht_out ? malloc((rows + 7) / 8) : NULL;
        if (!res->su || (rht_out && !res->sv)) {
            st = oom(err, rows, cols);
            goto out;
        }
    }
    sq_had_plan pin, pout;
    sq_had_plan_init(&pin, cols, NULL);
    sq_had_plan_init(&pout, rows, NULL);
    res->had_block_in = o->no_rht ? 0 : pin.block;
    res->had_block_out = rht_out ? pout.block : 0;

    /* W̃ = Ĥ diag(sv) W diag(su) Ĥᵀ; inputs never active (H_ii = 0) get zero weights, as in GPTQ */
    memcpy(Wt, w, n * sizeof(float));
    for (uint64_t c = 0; c < cols; c++)
        if (H[c * cols + c] == 0)
            for (uint64_t r = 0; r < rows; r++) Wt[r * cols + c] = 0;
    memcpy(Ht, H, cols * cols * sizeof(double));
    if (!o->no_rht) {
        sq_rht_signs(o->seed, cols, res->su);
        if (rht_out) sq_rht_signs(o->seed ^ SQ_QUIP_SV_SEED_XOR, rows, res->sv);
        for (uint64_t r = 0; r < rows; r++) sq_rht_apply_plan(&pin, res->su, Wt + r * cols);
        for (uint64_t c = 0; rht_out && c < cols; c++) {
            for (uint64_t r = 0; r < rows; r++) col[r] = Wt[r * cols + c];
            sq_rht_apply_plan(&pout, res->sv, col);
            for (uint64_t r = 0; r < rows; r++) Wt[r * cols + c] = col[r];
        }
        transform_hessian(Ht, cols, &pin, res->su); /* H̃ = V H Vᵀ */
    }
    /* U with UᵀU = (H̃ + damp)⁻¹ for BlockLDLQ; without error feedback
     * (nearest rounding in the transformed basis) U = I */
    if (o->no_feedback) {
        memset(U, 0, cols * cols * sizeof(float));
        for (uint64_t i = 0; i < cols; i++) U[i * cols + i] = 1;
    } else {
        sq_gptq_info info = {0};
        sq_err herr;
        if (sq_gptq_hinv(Ht, cols, NULL, o->damp > 0 ? o->damp : 0.01, U, o->n_threads, &info, &herr)) {
            st = sq_err_set(err, SQ_ECHECK,
                            "QuIP#: the transformed Hessian (%llu x %llu) is not positive definite even at damping 1.0",
                            (unsigned long long)cols, (unsigned long long)cols);
            goto out;
        }
        res->damp_used = info.damp_used;
    }
    /* initial scales from each row's RMS */
    for (uint64_t r = 0; r < rows; r++) {
        double ss = 0;
        for (uint64_t c = 0; c < cols; c++) ss += (double)Wt[r * cols + c] * Wt[r * cols + c];
        float s[3];
        initial_scales(&q, sqrt(ss / (double)cols), o->opt_scale, s);
        for (uint32_t k = 0; k < S; k++) cur[k * rows + r] = s[k];
    }
    Hf = sq_big_alloc(cols * cols * sizeof(float));
    rs.ww = malloc(rows * sizeof(double));
    rs.g = calloc(rows * 3, sizeof(double));
    rs.Gm = calloc(rows * 9, sizeof(double));
    if (!Hf || !rs.ww || !rs.g || !rs.Gm) {
        st = oom(err, rows, cols);
        goto out;
    }
    /* the proxy's H̃: undamped, the calibrated output error */
    for (uint64_t i = 0; i < cols * cols; i++) Hf[i] = (float)Ht[i];
    if (refit_gather(NULL, &q, Wt, Hf, rows, cols, o->n_threads, &rs)) {
        st = oom(err, rows, cols);
        goto out;
    }
    double tot_w = 0;
    for (uint64_t r = 0; r < rows; r++) tot_w += rs.ww[r];
    /* passes: BlockLDLQ with the current scales, then the refit; from the
     * second pass on, each row keeps the pass (codes and scales) with the
     * lower error. Rows are independent, so this is per row. */
    const uint32_t passes = 1 + (o->no_refit ? 0 : o->passes > 0 ? (uint32_t)o->passes - 1 : SQ_QUIP_PASSES - 1);
    trial.rows = rows;
    trial.cols = cols;
    trial.bits = bits;
    trial.nested = nested;
    if (alloc_codes(res, &q) || alloc_codes(&trial, &q)) {
        st = oom(err, rows, cols);
        goto out;
    }
    const size_t csz = q.bits == 4 && !q.nested ? 2 : 1;
    /* the descent's Hessian: H̃ with the relative damping tune_damp (0: the BlockLDLQ's) */
    const int tune = o->no_feedback || o->tune_iters < 0 ? 0 : o->tune_iters > 0 ? o->tune_iters : SQ_QUIP_TUNE_ITERS;
    double mean_diag = 0;
    for (uint64_t i = 0; i < cols; i++) mean_diag += Ht[i * cols + i];
    mean_diag /= (double)cols;
    const double tune_lam = (o->tune_damp > 0 ? o->tune_damp : o->tune_damp < 0 ? 0 : res->damp_used) * mean_diag;
    for (uint32_t pass = 0; pass < passes; pass++) {
        sq_quip_result *dst = pass == 0 ? res : &trial;
        pass_ctx px = {q, cur, rows, G, dst->codes, dst->codes2, dst->codes3};
        sq_ldlq_opts lo = {8, 128, 64, o->n_threads};
        if ((st = sq_ldlq_run(Wt, rows, cols, U, &lo, pass_block, &px, NULL, err))) goto out;
        if (tune > 0 && tune_codes(dst, &q, cur, Wt, Hf, tune_lam, rows, cols, tune, o->n_threads)) {
            st = oom(err, rows, cols);
            goto out;
        }
        if (refit_gather(dst, &q, Wt, Hf, rows, cols, o->n_threads, &rs)) {
            st = oom(err, rows, cols);
            goto out;
        }
        double tot_before = 0, tot_after = 0;
        for (uint64_t r = 0; r < rows; r++) {
            float s[3] = {0, 0, 0};
            for (uint32_t k = 0; k < S; k++) s[k] = cur[k * rows + r];
            double s0d[3] = {s[0], s[1], s[2]};
            tot_before += row_err(&rs, r, S, s0d);
            const double e = refit_row(&rs, r, S, s, !o->no_refit);
            tot_after += e;
            if (pass == 0 || e < besterr[r]) {
                besterr[r] = e;
                for (uint32_t k = 0; k < S; k++) bestsc[k * rows + r] = s[k];
                if (pass > 0) { /* this row's codes from the trial */
                    memcpy(res->codes + r * G, trial.codes + r * G, G * 2);
                    if (S > 1) memcpy((char *)res->codes2 + r * G * csz, (char *)trial.codes2 + r * G * csz, G * csz);
                    if (S > 2) memcpy(res->codes3 + r * G, trial.codes3 + r * G, G);
                }
            }
            if (o->free_passes || q.stages == 1) {
                for (uint32_t k = 0; k < S; k++) cur[k * rows + r] = s[k]; /* the next pass starts from the refit */
            } else { /* or from the best scales in the initial ratios (for the nested stages: the lattice's) */
                double rt[3] = {1, cur[rows + r] / cur[r], S > 2 ? cur[2 * rows + r] / cur[r] : 0}, num = 0, den = 0;
                for (uint32_t j = 0; j < S; j++) {
                    num += rt[j] * rs.g[r * 3 + j];
                    for (uint32_t k = 0; k < S; k++) den += rt[j] * rt[k] * rs.Gm[r * 9 + j * 3 + k];
                }
                if (den > 0 && isfinite(cur[r]) && cur[r] > 0) {
                    const float l = f16r(num / den);
                    if (l > 0 && isfinite(l)) {
                        const float s1 = q.nested ? l : f16r(l / default_resid_scale(q.bits));
                        cur[r] = l;
                        cur[rows + r] = s1;
                        if (S > 2) cur[2 * rows + r] = 0.5f * l;
                    }
                }
            }
        }
        if (pass == 0) {
            res->proxy_norefit = tot_w > 0 ? tot_before / tot_w : 0;
            res->proxy_refit = tot_w > 0 ? tot_after / tot_w : 0;
        }
    }
    double tot = 0;
    for (uint64_t r = 0; r < rows; r++) {
        tot += besterr[r];
        for (uint32_t k = 0; k < S; k++) res->scales[k * rows + r] = sq_f32_to_f16(bestsc[k * rows + r]);
    }
    res->proxy = tot_w > 0 ? tot / tot_w : 0;
out:
    if (st) sq_quip_result_free(res);
    sq_quip_result_free(&trial);
    free(Wt);
    free(col);
    free(U);
    free(Ht);
    free(cur);
    free(bestsc);
    free(besterr);
    free(Hf);
    free(rs.ww);
    free(rs.g);
    free(rs.Gm);
    return st;
}

/* ---- the codec's encoder (quant/encoders.c): whole tensor, needs XᵀX ----
 * The sign vectors become the transform chain's rht_in (su, columns side)
 * and rht_out (sv, rows side) links; the codec's parts hold W̃. */
static sq_status quip_encode(const sq_encode_ctx *x, sq_encoded *out, sq_err *err) {
    sq_quip_opts o = {.bits = x->params[SQ_QUIP_P_BITS],
                      .nested = x->params[SQ_QUIP_P_NESTED],
                      .seed = x->seed,
                      .no_feedback = (x->flags & SQ_ENC_NO_FEEDBACK) != 0,
                      .no_refit = (x->flags & SQ_ENC_NO_REFIT) != 0,
                      .no_rht = (x->flags & SQ_ENC_NO_RHT) != 0,
                      .no_rht_out = (x->flags & SQ_ENC_ROWS_APART) != 0,
                      .n_threads = x->n_threads};
    sq_quip_result r;
    sq_status st = sq_quip_quantize(x->w, x->rows, x->cols, x->xtx, &o, &r, err);
    if (st) return st;
    const uint32_t S = sq_quip_stages(r.bits, r.nested);
    if (!(st = sq_encoded_put_part(out, "codes", r.codes, x->rows, err))) r.codes = NULL;
    if (!st && S > 1 && !(st = sq_encoded_put_part(out, "codes2", r.codes2, x->rows, err))) r.codes2 = NULL;
    if (!st && S > 2 && !(st = sq_encoded_put_part(out, "codes3", r.codes3, x->rows, err))) r.codes3 = NULL;
    if (!st && !(st = sq_encoded_put_part(out, "scales", r.scales, S, err))) r.scales = NULL;
    if (!st && r.su) st = sq_encoded_add_xform(out, SQ_XFORM_RHT_IN, r.su, err);
    if (!st && r.sv) st = sq_encoded_add_xform(out, SQ_XFORM_RHT_OUT, r.sv, err);
    sq_quip_result_free(&r);
    return st;
}

const sq_codec_encoder sq_quip_encoder = {.needs_xtx = 1, .encode = quip_encode, .vq = &quip_vq_ops};
