/* QuIP# quantizer (see quip.h). */
#include "quip.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "e8p_encode.h"
#include "gptq.h"
#include "codecs/quip/quip_codec.h"
#include "linalg.h"
#include "rtn.h"
#include "squish/fp.h"

/* Defaults from quip-sharp's codebooks (opt_scale, opt_resid_scale). */
static double default_opt_scale(uint32_t bits) { return bits == 3 ? 0.98 : 1.03; }
static double default_resid_scale(uint32_t bits) { return bits == 3 ? 2.04 : 3.45; }

static float f16r(double v) { return sq_f16_to_f32(sq_f32_to_f16((float)v)); }

void sq_quip_result_free(sq_quip_result *r) {
    free(r->codes);
    free(r->codes2);
    free(r->su);
    free(r->sv);
    free(r->scales);
    memset(r, 0, sizeof *r);
}

void sq_quip_view_of(const sq_quip_result *r, sq_quip_view *v) {
    *v = (sq_quip_view){r->rows, r->cols, r->bits, r->codes, r->codes2, r->su, r->sv, r->scales};
}

/* ---- the error-feedback quantizer the generic driver (gptq.c) runs ----
 * One block = the 8 columns of one E8P group of one row. A row is one
 * statistics group: fit sets the stage scales from the row as the driver
 * enters it (before any error feedback: the transformed row's RMS), quant
 * rounds stage 0 to E8P12 and the residual to E81B (3 bits) or E8P12 (4
 * bits), returning exactly the decoder's values s0·q1 (+ s1·q2); a code is
 * stage0 | stage1 << 16. */
static uint32_t vq_bits(const sq_vq *q) { return q->params[SQ_QUIP_P_BITS]; }
static int vq_supports(const sq_codec *c, const uint32_t *p) {
    (void)c;
    return p[SQ_QUIP_P_BITS] >= 2 && p[SQ_QUIP_P_BITS] <= 4;
}
static uint64_t vq_group_len(const sq_vq *q) { return q->cols; }
static void vq_fit(const sq_vq *q, uint64_t row, uint64_t group, const float *v, uint64_t n, float stat[SQ_VQ_MAX_STAT]) {
    (void)group;
    const uint32_t bits = vq_bits(q);
    double ss = 0;
    for (uint64_t c = 0; c < n; c++) ss += (double)v[c] * v[c];
    stat[0] = f16r(sqrt(ss / (double)n) / default_opt_scale(bits));
    stat[1] = bits > 2 ? f16r(stat[0] / default_resid_scale(bits)) : 0.0f;
    uint16_t *scales = q->parts[bits > 2 ? 2 : 1];
    scales[row] = sq_f32_to_f16(stat[0]);
    if (bits > 2) scales[q->rows + row] = sq_f32_to_f16(stat[1]);
}
static uint32_t vq_quant(const sq_vq *q, const float stat[SQ_VQ_MAX_STAT], const float *v, float *deq) {
    const uint32_t bits = vq_bits(q);
    const float s0 = stat[0], s1 = stat[1];
    float y[8], q1[8], q2[8] = {0};
    for (int j = 0; j < 8; j++) y[j] = s0 > 0 ? v[j] / s0 : 0.0f;
    uint32_t code = sq_e8p_nearest(y, q1);
    if (bits > 2) {
        float z[8];
        for (int j = 0; j < 8; j++) z[j] = s1 > 0 ? (v[j] - s0 * q1[j]) / s1 : 0.0f;
        code |= (uint32_t)(bits == 3 ? sq_e81b_nearest(z, q2) : sq_e8p_nearest(z, q2)) << 16;
    }
    for (int j = 0; j < 8; j++) { /* the decoder's arithmetic: s0·q1, then + s1·q2 */
        float o = s0 * q1[j];
        if (bits > 2) o += s1 * q2[j];
        deq[j] = o;
    }
    return code;
}
static void vq_pack_row(const sq_vq *q, uint64_t row, const uint32_t *codes) {
    const uint32_t bits = vq_bits(q);
    const uint64_t G = q->cols / 8;
    uint16_t *c1 = (uint16_t *)q->parts[0] + row * G;
    for (uint64_t g = 0; g < G; g++) c1[g] = (uint16_t)(codes[g] & 0xFFFF);
    if (bits == 3)
        for (uint64_t g = 0; g < G; g++) ((uint8_t *)q->parts[1])[row * G + g] = (uint8_t)(codes[g] >> 16);
    if (bits == 4)
        for (uint64_t g = 0; g < G; g++) ((uint16_t *)q->parts[1])[row * G + g] = (uint16_t)(codes[g] >> 16);
}
static const sq_vq_ops quip_vq_ops = {.dim = 8,
                                      .supports = vq_supports,
                                      .group_len = vq_group_len,
                                      .fit = vq_fit,
                                      .quant = vq_quant,
                                      .pack_row = vq_pack_row};

/* Rows of a (n x n, row-major) transformed: A <- V A Vᵀ with V = Ĥ diag(s). */
static sq_status transform_hessian(double *A, uint64_t n, const sq_had_plan *p, const uint8_t *s) {
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
    return SQ_OK;
}

sq_status sq_quip_quantize(const float *w, uint64_t rows, uint64_t cols, const double *H, const sq_quip_opts *o,
                           sq_quip_result *res, sq_err *err) {
    memset(res, 0, sizeof *res);
    const uint32_t bits = o->bits;
    if (bits < 2 || bits > 4) return sq_err_set(err, SQ_EUSAGE, "QuIP#: %u bits per weight (2, 3 or 4)", bits);
    if (!rows || !cols || cols % 8)
        return sq_err_set(err, SQ_EUSAGE, "QuIP#: shape %llu x %llu (columns must be a non-zero multiple of 8)",
                          (unsigned long long)rows, (unsigned long long)cols);
    sq_status st = sq_check_finite("QuIP# weights", w, rows * cols, err);
    if (st) return st;
    for (uint64_t i = 0; i < cols * cols; i++)
        if (!isfinite(H[i])) return sq_err_set(err, SQ_ECORRUPT, "QuIP#: Hessian element %llu is not finite", (unsigned long long)i);
    const uint32_t stages = sq_quip_stages(bits);
    const uint64_t nthr = o->n_threads > 0 ? (uint64_t)o->n_threads : 1;
    const double rs = default_resid_scale(bits);
    res->rows = rows;
    res->cols = cols;
    res->bits = bits;
    res->su = malloc((cols + 7) / 8);
    res->sv = malloc((rows + 7) / 8);
    float *Wt = malloc(rows * cols * sizeof(float));
    float *s0 = malloc(rows * sizeof(float)), *s1 = malloc(rows * sizeof(float)), *col = malloc(rows * sizeof(float));
    double *Ht = malloc(cols * cols * sizeof(double));
    float *Q = NULL, *T = NULL, *Hf = NULL, *Q2 = NULL;
    double *acc = NULL;
    if (!res->su || !res->sv || !Wt || !s0 || !s1 || !col || !Ht) {
        st = sq_err_set(err, SQ_ENOMEM, "QuIP#: out of memory for a %llu x %llu matrix", (unsigned long long)rows,
                        (unsigned long long)cols);
        goto out;
    }
    sq_had_plan pin, pout;
    sq_had_plan_init(&pin, cols, NULL);
    sq_had_plan_init(&pout, rows, NULL);
    res->had_block_in = pin.block;
    res->had_block_out = pout.block;
    sq_rht_signs(o->seed, cols, res->su);
    sq_rht_signs(o->seed ^ SQ_QUIP_SV_SEED_XOR, rows, res->sv);

    /* W̃ = Ĥ diag(sv) W diag(su) Ĥᵀ; inputs never active (H_ii = 0) get zero weights, as in GPTQ */
    memcpy(Wt, w, rows * cols * sizeof(float));
    for (uint64_t c = 0; c < cols; c++)
        if (H[c * cols + c] == 0)
            for (uint64_t r = 0; r < rows; r++) Wt[r * cols + c] = 0;
    for (uint64_t r = 0; r < rows; r++) sq_rht_apply_plan(&pin, res->su, Wt + r * cols);
    for (uint64_t c = 0; c < cols; c++) {
        for (uint64_t r = 0; r < rows; r++) col[r] = Wt[r * cols + c];
        sq_rht_apply_plan(&pout, res->sv, col);
        for (uint64_t r = 0; r < rows; r++) Wt[r * cols + c] = col[r];
    }
    /* H̃ = V H Vᵀ; BlockLDLQ (blocks of 8) by the generic error-feedback
     * driver with the codec's quantizer above; it factors (H̃ + damp)⁻¹ */
    memcpy(Ht, H, cols * cols * sizeof(double));
    transform_hessian(Ht, cols, &pin, res->su);
    {
        uint32_t params[SQ_NPARAMS] = {0};
        params[SQ_QUIP_P_BITS] = bits;
        sq_gptq_opts go = {.damp = o->damp > 0 ? o->damp : 0.01, .block = 128, .n_threads = (int)nthr};
        sq_gptq_info info = {0};
        sq_encoded enc;
        sq_err gerr;
        st = sq_gptq_quantize("QuIP#", &sq_codec_quip, params, Wt, rows, cols, Ht, &go, &enc, &info, &gerr);
        if (st || info.fell_back) {
            if (!st) sq_encoded_free(&enc);
            st = info.fell_back
                     ? sq_err_set(err, SQ_ECHECK,
                                  "QuIP#: the transformed Hessian (%llu x %llu) is not positive definite even at damping 1.0",
                                  (unsigned long long)cols, (unsigned long long)cols)
                     : sq_err_set(err, st, "QuIP#: %s", gerr.msg);
            goto out;
        }
        res->damp_used = info.damp_used;
        /* take the parts over: codes, [codes2,] scales */
        res->codes = enc.data[0];
        res->codes2 = bits > 2 ? enc.data[1] : NULL;
        res->scales = enc.data[bits > 2 ? 2 : 1];
        for (int i = 0; i < SQ_CODEC_MAX_PARTS; i++) enc.data[i] = NULL;
        for (uint64_t r = 0; r < rows; r++) {
            s0[r] = sq_f16_to_f32(res->scales[r]);
            s1[r] = bits > 2 ? sq_f16_to_f32(res->scales[rows + r]) : 0.0f;
        }
    }

    /* refit: per row, minimize (w̃ - Σ s_k q_k) H̃ (…)ᵀ over the stage scales
     * (H̃ undamped: the calibrated output error) */
    Q = malloc(rows * cols * sizeof(float));
    T = malloc(rows * cols * sizeof(float));
    Hf = malloc(cols * cols * sizeof(float));
    acc = calloc(rows * 6, sizeof(double)); /* per row: ww, g0, g1, G00, G01, G11 */
    if (!Q || !T || !Hf || !acc) {
        st = sq_err_set(err, SQ_ENOMEM, "QuIP#: out of memory for the scale refit");
        goto out;
    }
    for (uint64_t i = 0; i < cols * cols; i++) Hf[i] = (float)Ht[i];
    const sq_isa isa = sq_isa_active();
    if (sq_la_matmul_f32(isa, 0, rows, cols, cols, Wt, cols, Hf, cols, T, cols)) {
        st = sq_err_set(err, SQ_ENOMEM, "QuIP#: out of memory for the scale refit");
        goto out;
    }
    for (uint64_t r = 0; r < rows; r++) {
        double a = 0;
        for (uint64_t c = 0; c < cols; c++) a += (double)T[r * cols + c] * Wt[r * cols + c];
        acc[r * 6] = a;
    }
    /* unscaled stage values: decode with unit scales */
    sq_quip_view v = {rows, cols, bits, res->codes, res->codes2, res->su, res->sv, res->scales};
    for (uint32_t k = 0; k < stages; k++) {
        for (uint64_t r = 0; r < rows; r++) {
            res->scales[r] = sq_f32_to_f16(k == 0 ? 1.0f : 0.0f);
            if (bits > 2) res->scales[rows + r] = sq_f32_to_f16(k == 1 ? 1.0f : 0.0f);
        }
        sq_quip_decode_transformed(&v, 0, rows, Q);
        if (sq_la_matmul_f32(isa, 0, rows, cols, cols, Q, cols, Hf, cols, T, cols)) {
            st = sq_err_set(err, SQ_ENOMEM, "QuIP#: out of memory for the scale refit");
            goto out;
        }
        for (uint64_t r = 0; r < rows; r++) {
            double g = 0, gkk = 0, g01 = 0;
            for (uint64_t c = 0; c < cols; c++) {
                g += (double)T[r * cols + c] * Wt[r * cols + c];
                gkk += (double)T[r * cols + c] * Q[r * cols + c];
            }
            if (k == 1)
                for (uint64_t c = 0; c < cols; c++) g01 += (double)T[r * cols + c] * Q2[r * cols + c];
            acc[r * 6 + 1 + k] = g;
            acc[r * 6 + (k == 0 ? 3 : 5)] = gkk;
            if (k == 1) acc[r * 6 + 4] = g01;
        }
        if (k == 0 && stages == 2) { /* keep stage 0's values for the cross term */
            Q2 = Q;
            Q = T;
            T = malloc(rows * cols * sizeof(float));
            if (!T) {
                st = sq_err_set(err, SQ_ENOMEM, "QuIP#: out of memory for the scale refit");
                goto out;
            }
        }
    }
    double tot_w = 0, tot_before = 0, tot_after = 0;
    for (uint64_t r = 0; r < rows; r++) {
        const double *a = acc + r * 6;
        const double ww = a[0], g0 = a[1], g1 = a[2], G00 = a[3], G01 = a[4], G11 = a[5];
#define ERR(x0, x1) (ww - 2 * ((x0) * g0 + (x1) * g1) + (x0) * (x0) * G00 + 2 * (x0) * (x1) * G01 + (x1) * (x1) * G11)
        const double e_before = ERR((double)s0[r], (double)s1[r]);
        double n0 = s0[r], n1 = s1[r];
        if (stages == 1) {
            if (G00 > 0) n0 = g0 / G00;
        } else {
            const double det = G00 * G11 - G01 * G01;
            if (det > 1e-9 * G00 * G11 && G00 > 0) {
                n0 = (g0 * G11 - g1 * G01) / det;
                n1 = (G00 * g1 - G01 * g0) / det;
            } else if (G00 > 0) { /* degenerate: keep the ratio of the stages */
                const double l = (g0 + g1 / rs) / (G00 + 2 * G01 / rs + G11 / (rs * rs));
                n0 = l;
                n1 = l / rs;
            }
        }
        float f0 = f16r(n0), f1 = stages == 2 ? f16r(n1) : 0.0f;
        double e_after = ERR((double)f0, (double)f1);
        if (!(e_after <= e_before) || !isfinite(f0) || !isfinite(f1)) { /* rounding made it worse: keep */
            f0 = s0[r];
            f1 = s1[r];
            e_after = e_before;
        }
#undef ERR
        tot_w += ww;
        tot_before += e_before;
        tot_after += e_after;
        const int keep = o->no_refit;
        res->scales[r] = sq_f32_to_f16(keep ? s0[r] : f0);
        if (stages == 2) res->scales[rows + r] = sq_f32_to_f16(keep ? s1[r] : f1);
    }
    res->proxy_norefit = tot_w > 0 ? tot_before / tot_w : 0;
    res->proxy_refit = tot_w > 0 ? tot_after / tot_w : 0;
    res->proxy = o->no_refit ? res->proxy_norefit : res->proxy_refit;
out:
    if (st) sq_quip_result_free(res);
    free(Wt);
    free(s0);
    free(s1);
    free(col);
    free(Ht);
    free(Q);
    free(Q2);
    free(T);
    free(Hf);
    free(acc);
    return st;
}

/* ---- the codec's encoder (quant/encoders.c): whole tensor, needs XᵀX ----
 * The sign vectors become the transform chain's rht_in (su, columns side)
 * and rht_out (sv, rows side) links; the codec's parts hold W̃. */
static sq_status quip_encode(const sq_encode_ctx *x, sq_encoded *out, sq_err *err) {
    sq_quip_opts o = {.bits = x->params[SQ_QUIP_P_BITS], .seed = x->seed, .n_threads = x->n_threads};
    sq_quip_result r;
    sq_status st = sq_quip_quantize(x->w, x->rows, x->cols, x->xtx, &o, &r, err);
    if (st) return st;
    if (!(st = sq_encoded_put_part(out, "codes", r.codes, x->rows, err))) r.codes = NULL;
    if (!st && r.bits > 2 && !(st = sq_encoded_put_part(out, "codes2", r.codes2, x->rows, err))) r.codes2 = NULL;
    if (!st && !(st = sq_encoded_put_part(out, "scales", r.scales, sq_quip_stages(r.bits), err))) r.scales = NULL;
    if (!st) st = sq_encoded_add_xform(out, SQ_XFORM_RHT_IN, r.su, err);
    if (!st) st = sq_encoded_add_xform(out, SQ_XFORM_RHT_OUT, r.sv, err);
    sq_quip_result_free(&r);
    return st;
}

const sq_codec_encoder sq_quip_encoder = {.needs_xtx = 1, .encode = quip_encode, .vq = &quip_vq_ops};
