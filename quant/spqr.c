/* SpQR quantizer: the reference's steps (act-order, relative damping, the
 * inverse Cholesky factor, GPTQ lazy block updates, groups of β₁ columns
 * refit on the error-updated weights with a leave-one-out outlier test,
 * second-level 3-bit statistics over β₂ rows, per-weight outliers by the
 * Hessian-weighted error) writing squish's packed parts directly. Rows are
 * processed in tiles of whole β₂ blocks: everything a tile computes
 * depends only on its rows, the inverse factor and the layer-wide outlier
 * threshold, so the output is the same for any thread count. */
#include "spqr.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/big_alloc.h"
#include "codecs/spqr/spqr_params.h"
#include "descent.h"
#include "gptq.h"
#include "linalg.h"
#include "rtn.h"
#include "squish/codec.h"
#include "squish/fp.h"

#define TILE_ROWS 64   /* rows per work unit, rounded up to whole β₂ blocks */
#define STEP_EPS 1e-9f /* the reference's scale.clamp_min(eps) when rounding */
#define MAX_LOO 1024   /* largest β₁ (per-row leave-one-out buffers live on the stack) */

void sq_spqr_opts_default(sq_spqr_opts *o) {
    memset(o, 0, sizeof *o);
    o->wbits = 3;
    o->group = 16;
    o->stat_group = 16;
    o->stat_bits = 3;
    o->search = 1;
    o->tau = 0.2;
    o->fraction_iters = 10;
    o->damp = 0.01;
    o->block = 128;
    o->refine = SQ_SPQR_DEFAULT_REFINE;
    o->n_threads = 1;
}

static uint64_t ceil_div(uint64_t a, uint64_t b) { return (a + b - 1) / b; }

/* Min-max affine quantizer with a fractional zero (quant_groups.py, round_zero
 * off): step = (max - min) / maxq, zero = -min / step. For equal values the
 * reference uses the range [-1, 1], which can put the only value far from
 * any level; here the range is stretched to include 0 instead (all zeros:
 * [0, 1]), so such a group is represented exactly before statistics rounding. */
static void fit_minmax(float mn, float mx, uint32_t maxq, float *step, float *zero) {
    if (mn == mx) {
        if (mn > 0) mn = 0;
        else if (mx < 0) mx = 0;
        else mx = 1;
    }
    *step = (mx - mn) / (float)maxq;
    *zero = -mn / *step;
}

static uint32_t quant_code(float x, float step, float zero, uint32_t maxq) {
    float q = nearbyintf(x / (step > STEP_EPS ? step : STEP_EPS) + zero); /* ties to even, like torch.round */
    return !(q > 0) ? 0 : q >= (float)maxq ? maxq : (uint32_t)q; /* NaN: 0, never an undefined conversion */
}

/* f16 of an outlier, saturating at ±65504 (the stored value must be finite). */
static uint16_t f16_sat(float x) {
    uint16_t h = sq_f32_to_f16(x);
    return (h & 0x7fff) == 0x7c00 ? (uint16_t)((h & 0x8000) | 0x7bff) : h;
}

static void put_code(uint8_t *row, uint64_t k, uint32_t b, uint32_t code) {
    uint64_t bit = k * b;
    uint32_t v = code << (bit & 7);
    for (uint64_t i = bit >> 3; v; i++, v >>= 8) row[i] |= (uint8_t)v;
}

/* Σ wt (step (q - zero) - x)² with q the nearest code: the error the sweep
 * will see for this (step, zero) if nothing else moved. */
static double fit_err(const float *x, const float *wt, uint32_t n, float step, float zero, uint32_t maxq) {
    double e = 0;
    for (uint32_t j = 0; j < n; j++) {
        const double t = (double)sq_spqr_weight_value(step, zero, quant_code(x[j], step, zero, maxq)) - x[j];
        e += wt[j] * t * t;
    }
    return e;
}

/* The weighted least-squares affine fit x ≈ a q + b for the given codes
 * (a > 0 required), as (step, zero) = (a, -b / a); 0 when the codes do
 * not determine one (all equal) or the slope is not positive. */
static int lsq_fit(const float *x, const float *wt, const uint32_t *q, uint32_t n, float *step, float *zero) {
    double sw = 0, sq = 0, sx = 0, sqq = 0, sqx = 0;
    for (uint32_t j = 0; j < n; j++) {
        const double w = wt[j], qq = q[j];
        sw += w;
        sq += w * qq;
        sx += w * x[j];
        sqq += w * qq * qq;
        sqx += w * qq * x[j];
    }
    const double det = sw * sqq - sq * sq;
    if (!(det > 1e-12 * sw * sqq)) return 0;
    const double a = (sw * sqx - sq * sx) / det, b = (sx - a * sq) / sw;
    if (!(a > STEP_EPS) || !isfinite(b / a)) return 0;
    *step = (float)a;
    *zero = (float)(-b / a);
    return 1;
}

#define SEARCH_STEPS 20 /* range scalings tried: maxq ± 1 levels in steps of 0.1 */

/* Importance-weighted statistics search (the idea of llama.cpp's
 * imatrix-weighted k-quant fit, written for a fractional zero): starting
 * from min-max, try range scalings that put maxq - 1 .. maxq + 1 levels
 * across [min, max]; for each, round, refit (step, zero) by weighted least
 * squares on those codes, re-round, and keep the pair of least weighted
 * error (wt = 1 / U_jj², what an error in column j costs the GPTQ
 * objective). Deterministic: a fixed grid and strict improvements only. */
static void fit_search(const float *x, const float *wt, uint32_t n, float mn, float mx, uint32_t maxq, float *step,
                       float *zero) {
    fit_minmax(mn, mx, maxq, step, zero);
    if (mn == mx || n < 2) return;
    double best = fit_err(x, wt, n, *step, *zero, maxq);
    uint32_t q[MAX_LOO];
    for (int is = 0; is <= SEARCH_STEPS; is++) {
        const float iscale = ((float)maxq - 1.0f + 0.1f * (float)is) / (mx - mn);
        for (uint32_t j = 0; j < n; j++) {
            const float t = nearbyintf(iscale * (x[j] - mn));
            q[j] = !(t > 0) ? 0 : t >= (float)maxq ? maxq : (uint32_t)t;
        }
        float s, z;
        for (int it = 0; it < 2 && lsq_fit(x, wt, q, n, &s, &z); it++) { /* fit, re-round, fit once more */
            const double e = fit_err(x, wt, n, s, z, maxq);
            if (e < best) {
                best = e;
                *step = s;
                *zero = z;
            }
            for (uint32_t j = 0; j < n; j++) q[j] = quant_code(x[j], s, z, maxq);
        }
    }
}

typedef struct spqr_ctx {
    const float *w; /* original, row-major */
    uint64_t rows, cols;
    const uint32_t *perm;
    const uint8_t *dead; /* per original column */
    const float *U;      /* processing order */
    const sq_spqr_opts *o;
    uint64_t tile, block;
    double thr; /* INFINITY: no outliers */
    sq_spqr_result *out;
    uint8_t *mask; /* rows x cols, stored column order: 1 = outlier */
    int failed;
    sq_isa isa;
} spqr_ctx;

/* Hessian-weighted squared error of the values x (skipping index skip) under
 * the min-max quantizer fitted on the same values. */
static float loo_err(const float *x, const float *d, uint32_t n, uint32_t skip, uint32_t maxq) {
    float mn = INFINITY, mx = -INFINITY, step, zero, e = 0;
    for (uint32_t j = 0; j < n; j++)
        if (j != skip) {
            mn = x[j] < mn ? x[j] : mn;
            mx = x[j] > mx ? x[j] : mx;
        }
    fit_minmax(mn, mx, maxq, &step, &zero);
    for (uint32_t j = 0; j < n; j++)
        if (j != skip) {
            float t = (step * ((float)quant_code(x[j], step, zero, maxq) - zero) - x[j]) / d[j];
            e += t * t;
        }
    return e;
}

/* First-level (step, zero) of one row's group. With outliers on, the
 * reference's leave-one-out test first: a weight whose removal lowers the
 * group's Hessian-weighted error by more than the threshold is a likely
 * outlier and is replaced by the mean of the others before fitting. */
static void fit_row_group(const spqr_ctx *c, const float *x, const float *d, const float *wt, uint32_t n, float *step,
                          float *zero) {
    const uint32_t maxq = (1u << c->o->wbits) - 1;
    float mn = x[0], mx = x[0];
    for (uint32_t j = 1; j < n; j++) {
        mn = x[j] < mn ? x[j] : mn;
        mx = x[j] > mx ? x[j] : mx;
    }
    if (isinf(c->thr) || n < 2) {
        if (c->o->search) fit_search(x, wt, n, mn, mx, maxq, step, zero);
        else fit_minmax(mn, mx, maxq, step, zero);
        return;
    }
    float base = loo_err(x, d, n, n, maxq), e[MAX_LOO], s, z;
    fit_minmax(mn, mx, maxq, &s, &z);
    uint32_t nmn = 0, nmx = 0;
    for (uint32_t j = 0; j < n; j++) {
        float t = (s * ((float)quant_code(x[j], s, z, maxq) - z) - x[j]) / d[j];
        e[j] = t * t;
        nmn += x[j] == mn;
        nmx += x[j] == mx;
    }
    float sum = 0, cnt = 0;
    uint8_t likely[MAX_LOO];
    for (uint32_t k = 0; k < n; k++) {
        float lo;
        if ((x[k] == mn && nmn == 1) || (x[k] == mx && nmx == 1)) lo = loo_err(x, d, n, k, maxq); /* the fit moves */
        else {
            lo = 0; /* the fit is unchanged: the same errors, without this one */
            for (uint32_t j = 0; j < n; j++)
                if (j != k) lo += e[j];
        }
        likely[k] = (double)(base - lo) > c->thr;
        if (!likely[k]) {
            sum += x[k];
            cnt += 1;
        }
    }
    const float mean = sum / (cnt > 1 ? cnt : 1);
    mn = INFINITY;
    mx = -INFINITY;
    float y[MAX_LOO];
    for (uint32_t j = 0; j < n; j++) {
        float v = y[j] = likely[j] ? mean : x[j];
        mn = v < mn ? v : mn;
        mx = v > mx ? v : mx;
    }
    if (c->o->search) fit_search(y, wt, n, mn, mx, maxq, step, zero);
    else fit_minmax(mn, mx, maxq, step, zero);
}

/* Second level: the first-level steps (or zeros) of one block of rows, quantized
 * to stat_bits with their own min-max (f16 step and zero). Writes the codes,
 * the two f16 statistics and the decoded values. */
static void fit_stat_block(const float *v, uint32_t n, uint32_t bits, uint16_t *st, uint8_t *codes, uint64_t stride,
                           uint64_t g, float *dec) {
    const uint32_t maxq = (1u << bits) - 1;
    float mn = v[0], mx = v[0], step, zero;
    for (uint32_t i = 1; i < n; i++) {
        mn = v[i] < mn ? v[i] : mn;
        mx = v[i] > mx ? v[i] : mx;
    }
    fit_minmax(mn, mx, maxq, &step, &zero);
    if (!(fabsf(zero) <= 65504.0f)) /* a narrow range far from 0: -mn/step is no f16; widen the range to 0 */
        fit_minmax(mn < 0 ? mn : 0, mx > 0 ? mx : 0, maxq, &step, &zero);
    st[0] = sq_f32_to_f16(step);
    st[1] = sq_f32_to_f16(zero);
    const float s16 = sq_f16_to_f32(st[0]), z16 = sq_f16_to_f32(st[1]);
    for (uint32_t i = 0; i < n; i++) {
        uint32_t q = quant_code(v[i], s16, z16, maxq);
        put_code(codes + i * stride, g, bits, q);
        dec[i] = sq_spqr_stat_value(st[0], st[1], q);
    }
}

static void spqr_tiles(void *p, uint64_t t0, uint64_t t1) {
    spqr_ctx *c = p;
    const sq_spqr_opts *o = c->o;
    sq_spqr_result *out = c->out;
    const uint64_t K = c->cols, gs = o->group, B = c->block, ng = ceil_div(K, gs);
    const uint64_t cstride = sq_spqr_code_stride(&out->shape), sstride = sq_spqr_stat_stride(&out->shape);
    const uint32_t maxq = (1u << o->wbits) - 1;
    const uint64_t T = c->tile;
    float *W = malloc(T * K * sizeof(float)), *E = malloc(T * B * sizeof(float));
    float *S = malloc(T * sizeof(float)), *Z = malloc(T * sizeof(float));
    float *fs = malloc(T * sizeof(float)), *fz = malloc(T * sizeof(float)), *dg = malloc(gs * sizeof(float));
    float *wt = malloc(gs * sizeof(float));
    uint8_t *Q = malloc(T * K);
    if (!W || !E || !S || !Z || !fs || !fz || !dg || !wt || !Q) {
        c->failed = 1;
        goto done;
    }
    for (uint64_t tile = t0; tile < t1; tile++) {
        const uint64_t r0 = tile * T, R = c->rows - r0 < T ? c->rows - r0 : T;
        for (uint64_t r = 0; r < R; r++)
            for (uint64_t i = 0; i < K; i++) {
                uint32_t oc = c->perm[i];
                W[r * K + i] = c->dead[oc] ? 0.0f : c->w[(r0 + r) * K + oc];
            }
        for (uint64_t i1 = 0; i1 < K; i1 += B) {
            const uint64_t i2 = i1 + B < K ? i1 + B : K;
            for (uint64_t i = i1; i < i2; i++) {
                if (i % gs == 0) { /* refit on the current, error-updated weights */
                    const uint64_t g = i / gs, n = (i + gs < K ? i + gs : K) - i;
                    for (uint64_t j = 0; j < n; j++) {
                        dg[j] = c->U[(i + j) * K + i + j];
                        wt[j] = 1.0f / (dg[j] * dg[j]);
                    }
                    for (uint64_t r = 0; r < R; r++)
                        fit_row_group(c, W + r * K + i, dg, wt, (uint32_t)n, &fs[r], &fz[r]);
                    for (uint64_t b0 = 0; b0 < R; b0 += o->stat_group) {
                        const uint32_t nb = (uint32_t)(R - b0 < o->stat_group ? R - b0 : o->stat_group);
                        uint16_t *st = out->stats2 + (((r0 + b0) / o->stat_group) * ng + g) * 4;
                        fit_stat_block(fs + b0, nb, o->stat_bits, st, out->scale_codes + (r0 + b0) * sstride, sstride, g,
                                       S + b0);
                        fit_stat_block(fz + b0, nb, o->stat_bits, st + 2, out->zero_codes + (r0 + b0) * sstride, sstride,
                                       g, Z + b0);
                    }
                }
                const float d = c->U[i * K + i], *Ui = c->U + i * K;
                const uint32_t oc = c->perm[i];
                for (uint64_t r = 0; r < R; r++) {
                    float *wr = W + r * K, x = wr[i];
                    uint32_t q = quant_code(x, S[r], Z[r], maxq);
                    float deq = sq_spqr_weight_value(S[r], Z[r], q), e = (x - deq) / d;
                    if ((double)e * e > c->thr) { /* an outlier: kept in f16, its error (rounding) still spread */
                        deq = sq_f16_to_f32(f16_sat(x));
                        e = (x - deq) / d;
                        c->mask[(r0 + r) * K + i] = 1;
                    }
                    Q[r * K + i] = (uint8_t)q;
                    out->deq[(r0 + r) * K + oc] = deq;
                    E[r * B + (i - i1)] = e;
                    for (uint64_t j = i + 1; j < i2; j++) wr[j] -= e * Ui[j];
                }
            }
            if (i2 < K && sq_la_matmul_f32(c->isa, 1, R, K - i2, i2 - i1, E, B, c->U + i1 * K + i2, K, W + i2, K)) {
                c->failed = 1;
                goto done;
            }
        }
        for (uint64_t r = 0; r < R; r++)
            for (uint64_t i = 0; i < K; i++) put_code(out->codes + (r0 + r) * cstride, i, o->wbits, Q[r * K + i]);
    }
done:
    free(W);
    free(E);
    free(S);
    free(Z);
    free(fs);
    free(fz);
    free(dg);
    free(wt);
    free(Q);
}

/* ---- coordinate descent after the sweep (the idea of QuantEase, Behdin et
 * al. 2023): with the statistics and outliers fixed, each code is moved to
 * the level nearest its exact optimum given all the others, for the loss
 * the sweep approximates, e H eᵀ per row (e = w - deq, H damped as in the
 * sweep). Every accepted move lowers that loss, so the result is never worse
 * than GPTQ's on the calibration objective (descent.h). Rows are
 * independent, and each row's arithmetic is in a fixed order: the same
 * bytes at any thread count. */
typedef struct refine_ctx {
    const float *w;        /* rows x cols, original column order */
    const double *H;       /* cols x cols, original order */
    double damp;           /* added to H's diagonal (absolute) */
    const uint8_t *dead;   /* original order */
    const uint32_t *order; /* processing index -> original column */
    const uint8_t *mask;   /* rows x cols, processing order: outliers stay */
    const sq_spqr_opts *o;
    sq_spqr_result *out;
    uint32_t *row_moves;   /* per row, summed after the parallel part */
    int failed;
} refine_ctx;

static void set_code(uint8_t *row, uint64_t k, uint32_t b, uint32_t code) {
    const uint64_t bit = k * b;
    uint32_t m = ((1u << b) - 1) << (bit & 7), v = code << (bit & 7);
    for (uint64_t i = bit >> 3; m; i++, m >>= 8, v >>= 8) row[i] = (uint8_t)((row[i] & ~m) | (v & m));
}

#define REFINE_ROWS 64 /* rows per gradient product (H read once per tile) */

static void refine_rows(void *p, uint64_t t0, uint64_t t1) {
    refine_ctx *c = p;
    sq_spqr_result *out = c->out;
    const uint64_t K = out->shape.cols, gs = c->o->group, ng = ceil_div(K, gs), rows = out->shape.rows;
    const uint32_t b = c->o->wbits, maxq = (1u << b) - 1;
    const uint64_t cstride = sq_spqr_code_stride(&out->shape);
    const sq_isa isa = sq_isa_active();
    double *E = malloc(REFINE_ROWS * K * sizeof(double)), *G = malloc(REFINE_ROWS * K * sizeof(double));
    float *S = malloc(ng * sizeof(float)), *Z = malloc(ng * sizeof(float));
    if (!E || !G || !S || !Z) {
        c->failed = 1;
        goto done;
    }
    sq_spqr_view v;
    sq_spqr_view_of(out, &v);
    for (uint64_t t = t0; t < t1; t++) {
        const uint64_t r0 = t * REFINE_ROWS, R = rows - r0 < REFINE_ROWS ? rows - r0 : REFINE_ROWS;
        for (uint64_t r = 0; r < R; r++)
            for (uint64_t j = 0; j < K; j++)
                E[r * K + j] = c->dead[j] ? 0.0 : (double)c->w[(r0 + r) * K + j] - out->deq[(r0 + r) * K + j];
        sq_descent_gradient(isa, E, R, K, c->H, c->damp, G);
        for (uint64_t r = 0; r < R; r++) {
            float *deq = out->deq + (r0 + r) * K;
            uint8_t *codes = out->codes + (r0 + r) * cstride;
            double *g = G + r * K;
            for (uint64_t gi = 0; gi < ng; gi++) sq_spqr_group_stats(&v, r0 + r, gi, &S[gi], &Z[gi]);
            uint32_t moves = 0;
            for (uint32_t pass = 0; pass < c->o->refine; pass++) {
                uint32_t moved = 0;
                for (uint64_t i = 0; i < K; i++) {
                    const uint32_t oc = c->order[i];
                    if (c->dead[oc] || c->mask[(r0 + r) * K + i]) continue;
                    const float s = S[i / gs], z = Z[i / gs];
                    const uint32_t q1 = quant_code((float)sq_descent_optimum(c->H, K, c->damp, g, oc, deq[oc]), s, z, maxq);
                    if (q1 == sq_spqr_code_at(codes, i, b)) continue;
                    const float v1 = sq_spqr_weight_value(s, z, q1);
                    if (!sq_descent_move(isa, c->H, K, c->damp, g, oc, (double)v1 - deq[oc])) continue;
                    deq[oc] = v1;
                    set_code(codes, i, b, q1);
                    moved++;
                }
                moves += moved;
                if (!moved) break;
            }
            c->row_moves[r0 + r] = moves;
        }
    }
done:
    free(E);
    free(G);
    free(S);
    free(Z);
}

/* One full sweep at threshold thr; returns the outlier count, or UINT64_MAX on allocation failure. */
static uint64_t sweep(spqr_ctx *c, double thr) {
    sq_spqr_result *out = c->out;
    const sq_spqr_shape *s = &out->shape;
    memset(out->codes, 0, s->rows * sq_spqr_code_stride(s));
    memset(out->scale_codes, 0, s->rows * sq_spqr_stat_stride(s));
    memset(out->zero_codes, 0, s->rows * sq_spqr_stat_stride(s));
    memset(c->mask, 0, s->rows * s->cols);
    c->thr = thr;
    c->failed = 0;
    sq_parallel_for(c->o->n_threads, ceil_div(c->rows, c->tile), spqr_tiles, c);
    out->sweeps++;
    if (c->failed) return UINT64_MAX;
    uint64_t n = 0;
    for (uint64_t i = 0; i < s->rows * s->cols; i++) n += c->mask[i];
    return n;
}

typedef struct diag_key {
    double d;
    uint32_t i;
} diag_key;

/* act-order: decreasing diag H, ties in column order (a total order, so qsort's result is unique) */
static int cmp_diag_desc(const void *a, const void *b) {
    const diag_key *x = a, *y = b;
    if (x->d != y->d) return x->d > y->d ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

/* mean over columns of var_r(W[r][j]) / U_jj² (unbiased variance, in
 * float64, sums in row order): the reference's outlier_scale. */
static double outlier_scale(const float *w, uint64_t rows, uint64_t cols, const uint32_t *perm, const uint8_t *dead,
                            const float *U, sq_err *err, int *ok) {
    double *mean = calloc(cols, sizeof(double)), *var = calloc(cols, sizeof(double));
    *ok = mean && var;
    double tot = 0;
    if (*ok && rows > 1) {
        for (uint64_t r = 0; r < rows; r++)
            for (uint64_t j = 0; j < cols; j++) mean[j] += dead[j] ? 0.0 : w[r * cols + j];
        for (uint64_t j = 0; j < cols; j++) mean[j] /= (double)rows;
        for (uint64_t r = 0; r < rows; r++)
            for (uint64_t j = 0; j < cols; j++) {
                double t = (dead[j] ? 0.0 : w[r * cols + j]) - mean[j];
                var[j] += t * t;
            }
        for (uint64_t i = 0; i < cols; i++) {
            const double dd = U[i * cols + i];
            tot += var[perm[i]] / (double)(rows - 1) / (dd * dd);
        }
        tot /= (double)cols;
    }
    free(mean);
    free(var);
    if (!*ok) sq_err_set(err, SQ_ENOMEM, "spqr: out of memory");
    return tot;
}

void sq_spqr_result_free(sq_spqr_result *r) {
    free(r->codes);
    free(r->scale_codes);
    free(r->zero_codes);
    free(r->stats2);
    free(r->perm);
    free(r->row_ptr);
    free(r->outlier_cols);
    free(r->outlier_vals);
    free(r->deq);
    memset(r, 0, sizeof *r);
}

void sq_spqr_view_of(const sq_spqr_result *r, sq_spqr_view *v) {
    v->shape = r->shape;
    v->codes = r->codes;
    v->scale_codes = r->scale_codes;
    v->zero_codes = r->zero_codes;
    v->stats2 = r->stats2;
    v->perm = r->perm;
    v->row_ptr = r->row_ptr;
    v->outlier_cols = r->outlier_cols;
    v->outlier_vals = r->outlier_vals;
}

double sq_spqr_result_bpw(const sq_spqr_result *r) { return sq_spqr_bpw(&r->shape); }

static sq_status check_opts(const sq_spqr_opts *o, uint64_t rows, uint64_t cols, sq_err *err) {
    if (o->wbits < 2 || o->wbits > 8) return sq_err_set(err, SQ_EUSAGE, "spqr: weight bits %u (2..8; SpQR uses 2..4)", o->wbits);
    if (o->group < 1 || o->group > MAX_LOO)
        return sq_err_set(err, SQ_EUSAGE, "spqr: group (beta1) %u out of range 1..%u", o->group, MAX_LOO);
    if (o->stat_group < 1 || o->stat_group > 1024)
        return sq_err_set(err, SQ_EUSAGE, "spqr: statistics group (beta2) %u out of range 1..1024", o->stat_group);
    if (o->stat_bits < 1 || o->stat_bits > 8)
        return sq_err_set(err, SQ_EUSAGE, "spqr: statistic bits %u out of range 1..8", o->stat_bits);
    if (!(o->tau > 0)) return sq_err_set(err, SQ_EUSAGE, "spqr: outlier threshold tau must be > 0 (inf: no outliers)");
    if (!(o->outlier_fraction >= 0 && o->outlier_fraction < 1))
        return sq_err_set(err, SQ_EUSAGE, "spqr: outlier fraction %g out of range [0, 1)", o->outlier_fraction);
    if (!(o->damp > 0 && o->damp <= 1)) return sq_err_set(err, SQ_EUSAGE, "spqr: damping %g out of range (0, 1]", o->damp);
    if (!rows || !cols || rows >= UINT32_MAX) return sq_err_set(err, SQ_EUSAGE, "spqr: bad shape %llu x %llu",
                                                                (unsigned long long)rows, (unsigned long long)cols);
    if (cols > SQ_SPQR_MAX_COLS)
        return sq_err_set(err, SQ_EUNSUPPORTED, "spqr: %llu input columns; outlier columns are u16 (at most %u)",
                          (unsigned long long)cols, SQ_SPQR_MAX_COLS);
    return SQ_OK;
}

sq_status sq_spqr_quantize(const float *w, uint64_t rows, uint64_t cols, const double *H, const sq_spqr_opts *o,
                           sq_spqr_result *out, sq_err *err) {
    memset(out, 0, sizeof *out);
    sq_status st = check_opts(o, rows, cols, err);
    if (st || (st = sq_check_finite("spqr: weights", w, rows * cols, err))) return st;
    for (uint64_t i = 0; i < cols * cols; i++)
        if (!isfinite(H[i]))
            return sq_err_set(err, SQ_ECORRUPT, "spqr: Hessian element (%llu, %llu) is not finite",
                              (unsigned long long)(i / cols), (unsigned long long)(i % cols));
    out->shape = (sq_spqr_shape){rows, cols, o->wbits, o->group, o->stat_group, o->stat_bits, 0};
    const uint64_t ng = ceil_div(cols, o->group), nrb = ceil_div(rows, o->stat_group);
    out->codes = calloc(rows, sq_spqr_code_stride(&out->shape));
    out->scale_codes = calloc(rows, sq_spqr_stat_stride(&out->shape));
    out->zero_codes = calloc(rows, sq_spqr_stat_stride(&out->shape));
    out->stats2 = calloc(nrb * ng * 4, sizeof(uint16_t));
    out->perm = malloc(cols * sizeof(uint16_t));
    uint32_t *order = malloc(cols * sizeof(uint32_t)); /* processing order -> original column */
    out->row_ptr = calloc(rows + 1, sizeof(uint32_t));
    out->deq = malloc(rows * cols * sizeof(float));
    uint8_t *dead = calloc(cols, 1), *mask = malloc(rows * cols);
    float *U = sq_big_alloc(cols * cols * sizeof(float));
    double *diag = malloc(cols * sizeof(double));
    if (!out->codes || !out->scale_codes || !out->zero_codes || !out->stats2 || !out->perm || !out->row_ptr ||
        !out->deq || !order || !dead || !mask || !U || !diag) {
        st = sq_err_set(err, SQ_ENOMEM, "spqr: out of memory for a %llu x %llu matrix", (unsigned long long)rows,
                        (unsigned long long)cols);
        goto out;
    }
    for (uint64_t i = 0; i < cols; i++) {
        order[i] = (uint32_t)i;
        diag[i] = H[i * cols + i];
        dead[i] = diag[i] == 0;
        out->dead += dead[i];
    }
    diag_key *keys = malloc(cols * sizeof *keys);
    if (!keys) {
        st = sq_err_set(err, SQ_ENOMEM, "spqr: out of memory");
        goto out;
    }
    for (uint64_t i = 0; i < cols; i++) keys[i] = (diag_key){diag[i], (uint32_t)i};
    if (!o->no_act_order) qsort(keys, cols, sizeof *keys, cmp_diag_desc);
    for (uint64_t i = 0; i < cols; i++) order[i] = keys[i].i;
    free(keys);
    for (uint64_t i = 0; i < cols; i++) out->perm[i] = (uint16_t)order[i]; /* cols <= 65536 */
    sq_gptq_info gi;
    memset(&gi, 0, sizeof gi);
    if ((st = sq_gptq_hinv(H, cols, order, o->damp, U, o->n_threads, &gi, err))) {
        if (st != SQ_ENOMEM) st = sq_err_set(err, SQ_ECHECK, "spqr: the Hessian is not positive definite even with damping raised to 1.0");
        goto out;
    }
    out->damp_used = gi.damp_used;
    int ok;
    const double scale = outlier_scale(w, rows, cols, order, dead, U, err, &ok);
    if (!ok) {
        st = SQ_ENOMEM;
        goto out;
    }
    const uint64_t tile = o->stat_group * ceil_div(TILE_ROWS, o->stat_group);
    const uint64_t blk = o->group * ceil_div(o->block ? o->block : 128, o->group); /* groups never straddle blocks */
    spqr_ctx c = {w, rows, cols, order, dead, U, o, tile, blk, INFINITY, out, mask, 0, sq_isa_active()};
    /* rows < 2 have no variance to scale by: no outliers */
    const int outliers = isfinite(o->tau) && rows > 1 && scale > 0;
    double tau = outliers ? o->tau : INFINITY;
    uint64_t nnz;
    if (outliers && o->outlier_fraction > 0) {
        /* the smallest tau (most outliers) whose count stays within the budget,
         * by bracketing in factors of 4, then bisection of log tau */
        const uint64_t budget = (uint64_t)floor(o->outlier_fraction * (double)rows * (double)cols);
        double lo = tau, hi = tau; /* count(lo) > budget >= count(hi), once bracketed */
        uint64_t n = sweep(&c, tau * scale);
        if (n == UINT64_MAX) goto oom;
        int k = 0;
        if (n > budget) {
            while (n > budget && k++ < 20) {
                lo = hi;
                hi *= 4;
                if ((n = sweep(&c, hi * scale)) == UINT64_MAX) goto oom;
            }
            if (n > budget) hi = INFINITY;
        } else {
            while (n <= budget && k++ < 20) {
                hi = lo;
                lo /= 4;
                if ((n = sweep(&c, lo * scale)) == UINT64_MAX) goto oom;
            }
            if (n <= budget) hi = lo; /* even the smallest tried fits */
        }
        if (isfinite(hi) && hi != lo)
            for (uint32_t it = 0; it < (o->fraction_iters ? o->fraction_iters : 10); it++) {
                double mid = sqrt(lo * hi);
                if ((n = sweep(&c, mid * scale)) == UINT64_MAX) goto oom;
                if (n > budget) lo = mid;
                else hi = mid;
            }
        tau = hi;
    }
    if ((nnz = sweep(&c, tau * scale)) == UINT64_MAX) goto oom;
    if (nnz > UINT32_MAX) {
        st = sq_err_set(err, SQ_EUNSUPPORTED, "spqr: %llu outliers exceed the u32 row offsets", (unsigned long long)nnz);
        goto out;
    }
    if (o->refine) {
        uint32_t *row_moves = calloc(rows, sizeof(uint32_t));
        if (!row_moves) goto oom;
        refine_ctx rc = {w, H, gi.damp_added, dead, order, mask, o, out, row_moves, 0};
        sq_parallel_for(o->n_threads, ceil_div(rows, REFINE_ROWS), refine_rows, &rc);
        for (uint64_t r = 0; r < rows; r++) out->refine_moves += row_moves[r];
        free(row_moves);
        if (rc.failed) goto oom;
    }
    out->tau_used = tau;
    out->threshold = tau * scale;
    out->shape.nnz = nnz;
    out->outlier_cols = malloc((nnz ? nnz : 1) * sizeof(uint16_t));
    out->outlier_vals = malloc((nnz ? nnz : 1) * sizeof(uint16_t));
    if (!out->outlier_cols || !out->outlier_vals) goto oom;
    uint64_t k = 0;
    for (uint64_t r = 0; r < rows; r++) {
        for (uint64_t j = 0; j < cols; j++)
            if (mask[r * cols + j]) {
                out->outlier_cols[k] = (uint16_t)j;
                out->outlier_vals[k++] = sq_f32_to_f16(out->deq[r * cols + out->perm[j]]); /* exact: deq came from f16 */
            }
        out->row_ptr[r + 1] = (uint32_t)k;
    }
    /* what a reader will check, checked here: statistics beyond f16 range
     * (weights near 65504) or a numerical blow-up fail now, not at load time */
    sq_spqr_view v;
    sq_spqr_view_of(out, &v);
    sq_err verr;
    if (sq_spqr_validate(&v, &verr))
        st = sq_err_set(err, SQ_ECHECK, "spqr: the quantized parts do not validate (%s)", verr.msg);
    goto out;
oom:
    st = sq_err_set(err, SQ_ENOMEM, "spqr: out of memory in the GPTQ sweep");
out:
    if (st) sq_spqr_result_free(out);
    free(order);
    free(dead);
    free(mask);
    free(U);
    free(diag);
    return st;
}
