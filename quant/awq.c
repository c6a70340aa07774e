/* AWQ scale search, folding and clipping search (see awq.h). Candidates are
 * scored in parallel, one per thread, with the fixed-order products of
 * linalg.h, so the choice depends neither on the thread count nor on the
 * machine. */
#include "awq.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "linalg.h"

double sq_hessian_err(const float *a, const float *b, uint64_t rows, uint64_t cols, const float *H) {
    const uint64_t RT = 64;
    float *D = malloc(RT * cols * sizeof(float)), *M = malloc(RT * cols * sizeof(float));
    double tot = D && M ? 0 : NAN; /* out of memory: NaN, which every caller refuses as a non-finite error */
    const sq_isa isa = sq_isa_active();
    for (uint64_t r0 = 0; D && M && r0 < rows; r0 += RT) {
        uint64_t R = rows - r0 < RT ? rows - r0 : RT;
        for (uint64_t i = 0; i < R * cols; i++) D[i] = a[r0 * cols + i] - b[r0 * cols + i];
        if (sq_la_matmul_f32(isa, 0, R, cols, cols, D, cols, H, cols, M, cols)) {
            tot = NAN;
            break;
        }
        for (uint64_t i = 0; i < R * cols; i++) tot += (double)D[i] * M[i];
    }
    free(D);
    free(M);
    return tot;
}

/* Quantize-dequantize with the layer's own codec (encode + decode). */
static sq_status pseudo_quant(const sq_awq_linear *l, const float *w, float *out, sq_err *err) {
    sq_encoded e;
    sq_status st = sq_encode(l->c, l->params, w, l->rows, l->cols, 1, &e, err);
    if (st) return st;
    sq_tview v;
    sq_tview_from_encoded(&e, &v);
    sq_decode_mt(&v, out, 1);
    sq_encoded_free(&e);
    return SQ_OK;
}

typedef struct scale_ctx {
    sq_awq_linear *const *lin;
    int n;
    const double *x_mean, *w_mean;
    const float *H;
    const sq_awq_opts *o;
    double *loss; /* per candidate */
    sq_status st;
    sq_err err;
} scale_ctx;

static void candidate_scales(const scale_ctx *c, int i, float *s, uint64_t K) {
    double a = (double)i / c->o->n_grid, mx = 0, mn = INFINITY;
    for (uint64_t j = 0; j < K; j++) {
        double v = pow(c->x_mean[j], a);
        if (c->o->duo) v = v / (pow(c->w_mean[j], 1 - a) + 1e-4);
        if (!(v > 1e-4)) v = 1e-4;
        s[j] = (float)v;
        if (v > mx) mx = v;
        if (v < mn) mn = v;
    }
    double norm = sqrt(mx * mn);
    for (uint64_t j = 0; j < K; j++) s[j] = (float)(s[j] / norm);
}

static void score_scales(void *p, uint64_t i0, uint64_t i1) {
    scale_ctx *c = p;
    const uint64_t K = c->lin[0]->cols;
    float *s = malloc(K * sizeof(float));
    for (uint64_t i = i0; i < i1; i++) {
        double tot = 0;
        candidate_scales(c, (int)i, s, K);
        for (int k = 0; k < c->n && isfinite(tot); k++) {
            const sq_awq_linear *l = c->lin[k];
            uint64_t n = l->rows * K;
            float *ws = malloc(n * sizeof(float)), *dq = malloc(n * sizeof(float));
            sq_err e;
            if (!s || !ws || !dq) {
                tot = NAN;
            } else {
                for (uint64_t r = 0; r < l->rows; r++)
                    for (uint64_t j = 0; j < K; j++) ws[r * K + j] = l->w[r * K + j] * s[j];
                if (pseudo_quant(l, ws, dq, &e)) tot = NAN;
                else {
                    for (uint64_t r = 0; r < l->rows; r++)
                        for (uint64_t j = 0; j < K; j++) dq[r * K + j] /= s[j];
                    tot += sq_hessian_err(dq, l->w, l->rows, K, c->H);
                }
            }
            free(ws);
            free(dq);
        }
        c->loss[i] = tot;
    }
    free(s);
}


/* Searches the scales for linears sharing one input; writes them to s. */
static sq_status search_scales(sq_awq_linear *const *lin, int n, const sq_calib_site *site, const sq_awq_opts *o,
                               float *s, double *ratio, double *gain, sq_err *err) {
    const uint64_t K = site->n;
    for (int k = 0; k < n; k++)
        if (lin[k]->cols != K)
            return sq_err_set(err, SQ_EUSAGE, "%s has %llu input columns but the calibration site has %llu channels",
                              lin[k]->name, (unsigned long long)lin[k]->cols, (unsigned long long)K);
    float *H = sq_calib_site_hessian(site, NULL);
    double *w_mean = calloc(K, sizeof(double)), *loss = malloc((size_t)o->n_grid * sizeof(double));
    if (!H || !w_mean || !loss) {
        free(H);
        free(w_mean);
        free(loss);
        return sq_err_set(err, SQ_ENOMEM, "AWQ: out of memory");
    }
    if (o->duo) { /* mean over rows of |w| normalised by its group's max, per input channel */
        uint64_t rows = 0;
        for (int k = 0; k < n; k++) {
            const sq_awq_linear *l = lin[k];
            uint32_t g = l->params[0];
            uint64_t gs = (g == SQ_GROUP_ROW || g == SQ_GROUP_TENSOR || g == 0) ? K : g;
            for (uint64_t r = 0; r < l->rows; r++)
                for (uint64_t c0 = 0; c0 < K; c0 += gs) {
                    uint64_t c1 = c0 + gs < K ? c0 + gs : K;
                    float m = 0;
                    for (uint64_t j = c0; j < c1; j++) m = fmaxf(m, fabsf(l->w[r * K + j]));
                    for (uint64_t j = c0; j < c1; j++) w_mean[j] += fabsf(l->w[r * K + j]) / (m + 1e-6);
                }
            rows += l->rows;
        }
        for (uint64_t j = 0; j < K; j++) w_mean[j] /= (double)rows;
    }
    scale_ctx c = {lin, n, site->abs_mean, w_mean, H, o, loss, SQ_OK, {0}};
    sq_parallel_for(o->n_threads, (uint64_t)o->n_grid, score_scales, &c);
    int best = -1;
    for (int i = 0; i < o->n_grid; i++)
        if (isfinite(loss[i]) && (best < 0 || loss[i] < loss[best])) best = i;
    sq_status st = SQ_OK;
    if (best < 0) st = sq_err_set(err, SQ_ECORRUPT, "AWQ: no finite error for any scale of %s (non-finite weights?)", lin[0]->name);
    else {
        candidate_scales(&c, best, s, K);
        *ratio = (double)best / o->n_grid;
        *gain = loss[0] > 0 ? loss[best] / loss[0] : 1.0;
    }
    free(H);
    free(w_mean);
    free(loss);
    return st;
}

/* Clipping search: per (row, group) the shrink of the range in
 * {1, 0.95, ..., 0.55} that minimises the group's output error
 * Δw_g H_gg Δw_gᵀ; weights are clamped to it in place. */
typedef struct clip_ctx {
    const sq_awq_linear *l;
    const float *H;
    uint64_t gs, ng;
    float *amax;   /* [rows][ng] */
    double *err;   /* [n_cand][rows][ng] */
    sq_status st;
} clip_ctx;

#define N_CLIP 10

static void score_clip(void *p, uint64_t k0, uint64_t k1) {
    clip_ctx *c = p;
    const sq_awq_linear *l = c->l;
    const uint64_t K = l->cols, n = l->rows * K;
    float *wc = malloc(n * sizeof(float)), *dq = malloc(n * sizeof(float)), *M = malloc(l->rows * c->gs * sizeof(float));
    float *D = malloc(l->rows * c->gs * sizeof(float));
    sq_err e;
    if (!wc || !dq || !M || !D) {
        c->st = SQ_ENOMEM;
        k1 = k0; /* nothing scored: the search reports the failure */
    }
    for (uint64_t k = k0; k < k1; k++) {
        float shrink = 1.0f - (float)k / 20.0f;
        for (uint64_t r = 0; r < l->rows; r++)
            for (uint64_t g = 0; g < c->ng; g++) {
                float mv = c->amax[r * c->ng + g] * shrink;
                for (uint64_t j = g * c->gs; j < (g + 1) * c->gs && j < K; j++) {
                    float v = l->w[r * K + j];
                    wc[r * K + j] = v > mv ? mv : v < -mv ? -mv : v;
                }
            }
        if (pseudo_quant(l, wc, dq, &e)) {
            c->st = e.status;
            continue;
        }
        for (uint64_t g = 0; g < c->ng; g++) {
            uint64_t c0 = g * c->gs, w = c0 + c->gs < K ? c->gs : K - c0;
            for (uint64_t r = 0; r < l->rows; r++)
                for (uint64_t j = 0; j < w; j++) D[r * w + j] = dq[r * K + c0 + j] - l->w[r * K + c0 + j];
            if (sq_la_matmul_f32(sq_isa_active(), 0, l->rows, w, w, D, w, c->H + c0 * K + c0, K, M, w)) {
                c->st = SQ_ENOMEM;
                break;
            }
            for (uint64_t r = 0; r < l->rows; r++) {
                double s = 0;
                for (uint64_t j = 0; j < w; j++) s += (double)D[r * w + j] * M[r * w + j];
                c->err[(k * l->rows + r) * c->ng + g] = s;
            }
        }
    }
    free(wc);
    free(dq);
    free(M);
    free(D);
}

static uint64_t clip_group(const sq_awq_linear *l) {
    if (l->c->group_ok & SQ_GROUPOK_NONE) return 0;
    return sq_codec_group_len(l->params, l->cols);
}

static sq_status clip_search(sq_awq_linear *l, const float *H, const sq_awq_opts *o, sq_err *err) {
    const uint64_t K = l->cols, gs = clip_group(l);
    if (!gs) return SQ_OK; /* lossless codecs: nothing to clip */
    const uint64_t ng = (K + gs - 1) / gs;
    clip_ctx c = {l, H, gs, ng, malloc(l->rows * ng * sizeof(float)), malloc(N_CLIP * l->rows * ng * sizeof(double)), SQ_OK};
    if (!c.amax || !c.err) {
        free(c.amax);
        free(c.err);
        return sq_err_set(err, SQ_ENOMEM, "AWQ: out of memory");
    }
    for (uint64_t r = 0; r < l->rows; r++)
        for (uint64_t g = 0; g < ng; g++) {
            float m = 0;
            for (uint64_t j = g * gs; j < (g + 1) * gs && j < K; j++) m = fmaxf(m, fabsf(l->w[r * K + j]));
            c.amax[r * ng + g] = m;
        }
    sq_parallel_for(o->n_threads, N_CLIP, score_clip, &c);
    sq_status st = c.st ? sq_err_set(err, c.st, "AWQ: clipping search failed on %s", l->name) : SQ_OK;
    for (uint64_t r = 0; !st && r < l->rows; r++)
        for (uint64_t g = 0; g < ng; g++) {
            int best = 0;
            for (int k = 1; k < N_CLIP; k++)
                if (c.err[((uint64_t)k * l->rows + r) * ng + g] < c.err[((uint64_t)best * l->rows + r) * ng + g]) best = k;
            float mv = c.amax[r * ng + g] * (1.0f - (float)best / 20.0f);
            for (uint64_t j = g * gs; j < (g + 1) * gs && j < K; j++) {
                float *v = &l->w[r * K + j];
                *v = *v > mv ? mv : *v < -mv ? -mv : *v;
            }
        }
    free(c.amax);
    free(c.err);
    return st;
}

static void scale_cols(sq_awq_linear *l, const float *s) {
    for (uint64_t r = 0; r < l->rows; r++)
        for (uint64_t j = 0; j < l->cols; j++) l->w[r * l->cols + j] *= s[j];
}

sq_status sq_awq_block_run(sq_awq_block *b, sq_calib_file *cf, uint32_t layer, const sq_awq_opts *o, sq_err *err) {
    sq_calib_site site[SQ_SITE_COUNT];
    memset(site, 0, sizeof site);
    float *s[SQ_SITE_COUNT] = {0};
    sq_status st = SQ_OK;
    for (int i = 0; i < SQ_SITE_COUNT && !st; i++) {
        st = sq_calib_read_site(cf, layer, (sq_site)i, &site[i], err);
        if (!st && !(s[i] = malloc(site[i].n * sizeof(float)))) st = sq_err_set(err, SQ_ENOMEM, "AWQ: out of memory");
    }
    sq_awq_linear *qkv[3] = {&b->q, &b->k, &b->v}, *o_[1] = {&b->o}, *gu[2] = {&b->gate, &b->up}, *dn[1] = {&b->down};
    if (!st) st = search_scales(qkv, 3, &site[SQ_SITE_ATTN_IN], o, s[0], &b->ratio[0], &b->gain[0], err);
    if (!st) st = search_scales(o_, 1, &site[SQ_SITE_ATTN_OUT], o, s[1], &b->ratio[1], &b->gain[1], err);
    if (!st) st = search_scales(gu, 2, &site[SQ_SITE_MLP_IN], o, s[2], &b->ratio[2], &b->gain[2], err);
    if (!st) st = search_scales(dn, 1, &site[SQ_SITE_MLP_ACT], o, s[3], &b->ratio[3], &b->gain[3], err);
    if (!st) {
        /* fold: the next linears' input columns times s, the previous op divided by s */
        const uint64_t H = b->q.cols, n_inter = b->down.cols;
        for (int k = 0; k < 3; k++) scale_cols(qkv[k], s[0]);
        for (uint64_t j = 0; j < H; j++) b->attn_norm[j] /= s[0][j];
        scale_cols(&b->o, s[1]);
        if (b->n_heads == b->n_kv_heads && b->v.rows == b->o.cols) {
            for (uint64_t r = 0; r < b->v.rows; r++)
                for (uint64_t j = 0; j < b->v.cols; j++) b->v.w[r * b->v.cols + j] /= s[1][r];
            b->o_has_in_scale = 0;
        } else { /* grouped-query attention: v_proj rows feed several o_proj columns */
            memcpy(b->o_in_scale, s[1], b->o.cols * sizeof(float));
            b->o_has_in_scale = 1;
        }
        scale_cols(&b->gate, s[2]);
        scale_cols(&b->up, s[2]);
        for (uint64_t j = 0; j < H; j++) b->ffn_norm[j] /= s[2][j];
        scale_cols(&b->down, s[3]);
        for (uint64_t r = 0; r < b->up.rows && r < n_inter; r++)
            for (uint64_t j = 0; j < b->up.cols; j++) b->up.w[r * b->up.cols + j] /= s[3][r];
    }
    if (!st && o->clip) { /* clipping, on the scaled weights with the scaled inputs' Hessian; not q/k */
        sq_awq_linear *cl[5] = {&b->v, &b->o, &b->gate, &b->up, &b->down};
        const int site_of[5] = {SQ_SITE_ATTN_IN, SQ_SITE_ATTN_OUT, SQ_SITE_MLP_IN, SQ_SITE_MLP_IN, SQ_SITE_MLP_ACT};
        for (int k = 0; k < 5 && !st; k++) {
            float *Hs = sq_calib_site_hessian(&site[site_of[k]], s[site_of[k]]);
            if (!Hs) st = sq_err_set(err, SQ_ENOMEM, "AWQ: out of memory");
            else st = clip_search(cl[k], Hs, o, err);
            free(Hs);
        }
    }
    for (int i = 0; i < SQ_SITE_COUNT; i++) {
        sq_calib_site_free(&site[i]);
        free(s[i]);
    }
    return st;
}
