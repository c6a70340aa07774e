/* QuIP# reference decode and portable fused GEMV (see quip_decode.h). */
#include "quip_decode.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "e8p.h"
#include "squish/fp.h"

double sq_quip_bpw(uint64_t rows, uint64_t cols, uint32_t bits, uint32_t nested) {
    const double n = (double)rows * (double)cols, groups = n / 8;
    double b = groups * 16 + (bits == 3 ? groups * 8 : bits == 4 ? groups * 16 : 0);
    b += 8.0 * (double)((cols + 7) / 8) + 8.0 * (double)((rows + 7) / 8) +
         16.0 * sq_quip_stages(bits, nested) * (double)rows;
    return b / n;
}

sq_status sq_quip_view_check(const sq_quip_view *v, sq_err *err) {
    if (v->bits < 2 || v->bits > 4) return sq_err_set(err, SQ_EUSAGE, "QuIP#: %u bits per weight (2, 3 or 4)", v->bits);
    if (v->nested > 1 || (v->nested && v->bits == 2))
        return sq_err_set(err, SQ_EUSAGE, "QuIP#: nested stages %u at %u bits (0, or 1 at 3 and 4 bits)", v->nested, v->bits);
    if (!v->rows || !v->cols || v->cols % 8)
        return sq_err_set(err, SQ_EUSAGE, "QuIP#: shape %llu x %llu (columns must be a non-zero multiple of 8)",
                          (unsigned long long)v->rows, (unsigned long long)v->cols);
    const uint32_t S = sq_quip_stages(v->bits, v->nested);
    if (!v->codes || !v->scales || (S > 1) != (v->codes2 != NULL) || (S > 2) != (v->codes3 != NULL) ||
        (v->su == NULL) != (v->sv == NULL))
        return sq_err_set(err, SQ_EUSAGE,
                          "QuIP#: a part is missing (codes, codes2/codes3 of the later stages, scales; su and sv both or neither)");
    for (uint64_t i = 0; i < S * v->rows; i++)
        if (!isfinite(sq_f16_to_f32(v->scales[i])))
            return sq_err_set(err, SQ_ECORRUPT, "QuIP#: scales[%llu] is not finite", (unsigned long long)i);
    return SQ_OK;
}

/* The unit-scale value of code k of a stage: E8P into tmp, table rows as they are. */
static inline const float *stage_value(const sq_e8p_tables *t, sq_quip_book book, const void *codes, uint64_t k,
                                       float tmp[8]) {
    if (book == SQ_QUIP_E8P) {
        const uint16_t c = ((const uint16_t *)codes)[k];
        const unsigned A = c >> 8, S = c & 0xFF;
        for (int i = 0; i < 8; i++) tmp[i] = t->base[A][i] * t->sign[S][i] + t->shift[S];
        return tmp;
    }
    const uint8_t c = ((const uint8_t *)codes)[k];
    return book == SQ_QUIP_E81B ? t->e81b[c] : t->e8r[c];
}

void sq_quip_decode_transformed(const sq_quip_view *v, uint64_t r0, uint64_t r1, float *out) {
    const sq_e8p_tables *t = sq_e8p_tables_get();
    const uint64_t G = v->cols / 8;
    const uint32_t S = sq_quip_stages(v->bits, v->nested);
    for (uint64_t r = r0; r < r1; r++) {
        float *o = out + (r - r0) * v->cols;
        for (uint32_t s = 0; s < S; s++) { /* stage 0's product, then each later stage's added */
            const float sc = sq_f16_to_f32(v->scales[s * v->rows + r]);
            const sq_quip_book book = sq_quip_stage_book(v->bits, v->nested, s);
            const void *codes = sq_quip_stage_codes(v, s);
            for (uint64_t g = 0; g < G; g++) {
                float tmp[8];
                const float *q = stage_value(t, book, codes, r * G + g, tmp);
                if (s == 0)
                    for (int i = 0; i < 8; i++) o[8 * g + i] = sc * q[i];
                else
                    for (int i = 0; i < 8; i++) o[8 * g + i] += sc * q[i];
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
    if (!v->su) { /* stored without the transforms */
        free(col);
        return SQ_OK;
    }
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
    if (v->su) sq_rht_apply_plan(&p, v->su, xt);
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

/* Σ_g tab[c_g]·x̃_g for an 8-bit stage (E81B or E8R). */
static float tab_dot(const float (*tab)[8], const uint8_t *codes, const float *xt, uint64_t G) {
    float acc[8] = {0};
    for (uint64_t g = 0; g < G; g++)
        for (int i = 0; i < 8; i++) acc[i] += tab[codes[g]][i] * xt[8 * g + i];
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

void sq_quip_gemv_rows(const sq_quip_view *v, const float *xt, const float *xsum8, float *yt, uint64_t r0,
                       uint64_t r1) {
    const sq_e8p_tables *t = sq_e8p_tables_get();
    const uint64_t G = v->cols / 8;
    const uint32_t S = sq_quip_stages(v->bits, v->nested);
    for (uint64_t r = r0; r < r1; r++) {
        float y = 0;
        for (uint32_t s = 0; s < S; s++) {
            const sq_quip_book book = sq_quip_stage_book(v->bits, v->nested, s);
            const void *codes = sq_quip_stage_codes(v, s);
            const float d = book == SQ_QUIP_E8P ? e8p_dot(t, (const uint16_t *)codes + r * G, xt, xsum8, G)
                                                : tab_dot(book == SQ_QUIP_E81B ? t->e81b : t->e8r,
                                                          (const uint8_t *)codes + r * G, xt, G);
            y += sq_f16_to_f32(v->scales[s * v->rows + r]) * d;
        }
        yt[r] = y;
    }
}

void sq_quip_gemv_finish(const sq_quip_view *v, float *y) {
    sq_had_plan p;
    sq_had_plan_init(&p, v->rows, NULL);
    if (v->sv) sq_rht_inverse_plan(&p, v->sv, y);
}

void sq_quip_gemv(const sq_quip_view *v, const float *x, float *y, float *work) {
    float *xt = work, *xs = work + v->cols;
    sq_quip_gemv_prepare(v, x, xt, xs);
    sq_quip_gemv_rows(v, xt, xs, y, 0, v->rows);
    sq_quip_gemv_finish(v, y);
}
