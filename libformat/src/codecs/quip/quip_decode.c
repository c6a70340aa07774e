/* QuIP# reference decode and portable fused GEMV (see quip_decode.h). */
#include "quip_decode.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "e8p.h"
#include "squish/fp.h"

double sq_quip_bpw(uint64_t rows, uint64_t cols, uint32_t bits) {
    const double n = (double)rows * (double)cols, groups = n / 8;
    double b = groups * 16 + (bits == 3 ? groups * 8 : bits == 4 ? groups * 16 : 0);
    b += 8.0 * (double)((cols + 7) / 8) + 8.0 * (double)((rows + 7) / 8) + 16.0 * sq_quip_stages(bits) * (double)rows;
    return b / n;
}

sq_status sq_quip_view_check(const sq_quip_view *v, sq_err *err) {
    if (v->bits < 2 || v->bits > 4) return sq_err_set(err, SQ_EUSAGE, "QuIP#: %u bits per weight (2, 3 or 4)", v->bits);
    if (!v->rows || !v->cols || v->cols % 8)
        return sq_err_set(err, SQ_EUSAGE, "QuIP#: shape %llu x %llu (columns must be a non-zero multiple of 8)",
                          (unsigned long long)v->rows, (unsigned long long)v->cols);
    if (!v->codes || !v->su || !v->sv || !v->scales || (v->bits > 2) != (v->codes2 != NULL))
        return sq_err_set(err, SQ_EUSAGE, "QuIP#: a part is missing (codes, codes2 at 3/4 bits, su, sv, scales)");
    for (uint64_t i = 0; i < sq_quip_stages(v->bits) * v->rows; i++)
        if (!isfinite(sq_f16_to_f32(v->scales[i])))
            return sq_err_set(err, SQ_ECORRUPT, "QuIP#: scales[%llu] is not finite", (unsigned long long)i);
    return SQ_OK;
}

void sq_quip_decode_transformed(const sq_quip_view *v, uint64_t r0, uint64_t r1, float *out) {
    const sq_e8p_tables *t = sq_e8p_tables_get();
    const uint64_t G = v->cols / 8;
    for (uint64_t r = r0; r < r1; r++) {
        float *o = out + (r - r0) * v->cols;
        const float s0 = sq_f16_to_f32(v->scales[r]);
        const float s1 = v->bits > 2 ? sq_f16_to_f32(v->scales[v->rows + r]) : 0;
        for (uint64_t g = 0; g < G; g++) {
            const uint16_t c = v->codes[r * G + g];
            const unsigned A = c >> 8, S = c & 0xFF;
            for (int i = 0; i < 8; i++) o[8 * g + i] = s0 * (t->base[A][i] * t->sign[S][i] + t->shift[S]);
            if (v->bits == 3) {
                const uint8_t c2 = ((const uint8_t *)v->codes2)[r * G + g];
                for (int i = 0; i < 8; i++) o[8 * g + i] += s1 * t->e81b[c2][i];
            } else if (v->bits == 4) {
                const uint16_t c2 = ((const uint16_t *)v->codes2)[r * G + g];
                const unsigned A2 = c2 >> 8, S2 = c2 & 0xFF;
                for (int i = 0; i < 8; i++) o[8 * g + i] += s1 * (t->base[A2][i] * t->sign[S2][i] + t->shift[S2]);
            }
        }
    }
}

sq_status sq_quip_decode(const sq_quip_view *v, float *out, sq_err *err) {
    sq_had_plan pin, pout;
    sq_had_plan_init(&pin, v->cols, NULL);
    sq_had_plan_init(&pout, v->rows, NULL);
    float *col = malloc(v->rows * sizeof(float));
    if (!col) return sq_err_set(err, SQ_ENOMEM, "QuIP#: out of memory decoding %llu rows", (unsigned long long)v->rows);
    sq_quip_decode_transformed(v, 0, v->rows, out);
    for (uint64_t r = 0; r < v->rows; r++) sq_rht_inverse_plan(&pin, v->su, out + r * v->cols);
    for (uint64_t c = 0; c < v->cols; c++) {
        for (uint64_t r = 0; r < v->rows; r++) col[r] = out[r * v->cols + c];
        sq_rht_inverse_plan(&pout, v->sv, col);
        for (uint64_t r = 0; r < v->rows; r++) out[r * v->cols + c] = col[r];
    }
    free(col);
    return SQ_OK;
}

void sq_quip_gemv_prepare(const sq_quip_view *v, const float *x, float *xt, float *xsum8) {
    sq_had_plan p;
    sq_had_plan_init(&p, v->cols, NULL);
    memcpy(xt, x, v->cols * sizeof(float));
    sq_rht_apply_plan(&p, v->su, xt);
    for (uint64_t g = 0; g < v->cols / 8; g++) {
        float s = 0;
        for (int i = 0; i < 8; i++) s += xt[8 * g + i];
        xsum8[g] = s;
    }
}

/* Σ_g [ (base[A]⊙sign[S])·x̃_g + shift[S]·Σx̃_g ] for one E8P stage. */
static float e8p_dot(const sq_e8p_tables *t, const uint16_t *codes, const float *xt, const float *xsum8, uint64_t G) {
    float acc[8] = {0}, sh = 0;
    for (uint64_t g = 0; g < G; g++) {
        const unsigned A = codes[g] >> 8, S = codes[g] & 0xFF;
        const float *x = xt + 8 * g;
        for (int i = 0; i < 8; i++) acc[i] += t->base[A][i] * t->sign[S][i] * x[i];
        sh += t->shift[S] * xsum8[g];
    }
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7])) + sh;
}

void sq_quip_gemv_rows(const sq_quip_view *v, const float *xt, const float *xsum8, float *yt, uint64_t r0,
                       uint64_t r1) {
    const sq_e8p_tables *t = sq_e8p_tables_get();
    const uint64_t G = v->cols / 8;
    for (uint64_t r = r0; r < r1; r++) {
        float y = sq_f16_to_f32(v->scales[r]) * e8p_dot(t, v->codes + r * G, xt, xsum8, G);
        if (v->bits == 4) {
            y += sq_f16_to_f32(v->scales[v->rows + r]) * e8p_dot(t, (const uint16_t *)v->codes2 + r * G, xt, xsum8, G);
        } else if (v->bits == 3) {
            const uint8_t *c2 = (const uint8_t *)v->codes2 + r * G;
            float acc[8] = {0};
            for (uint64_t g = 0; g < G; g++)
                for (int i = 0; i < 8; i++) acc[i] += t->e81b[c2[g]][i] * xt[8 * g + i];
            y += sq_f16_to_f32(v->scales[v->rows + r]) *
                 (((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7])));
        }
        yt[r] = y;
    }
}

void sq_quip_gemv_finish(const sq_quip_view *v, float *y) {
    sq_had_plan p;
    sq_had_plan_init(&p, v->rows, NULL);
    sq_rht_inverse_plan(&p, v->sv, y);
}

void sq_quip_gemv(const sq_quip_view *v, const float *x, float *y, float *work) {
    float *xt = work, *xs = work + v->cols;
    sq_quip_gemv_prepare(v, x, xt, xs);
    sq_quip_gemv_rows(v, xt, xs, y, 0, v->rows);
    sq_quip_gemv_finish(v, y);
}
