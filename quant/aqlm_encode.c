/* Encoder of the aqlm codec: params[4] codebooks of params[5] bits, the
 * quantizer's defaults otherwise (aqlm.h), the seed and thread count from
 * the context. A matrix whose column count is not a multiple of 8 is
 * encoded as if padded with zero columns that no input reaches (XᵀX zero
 * there), so the padded entries cost nothing and decode drops them. */
#include "aqlm_encode.h"

#include <stdlib.h>
#include <string.h>

#include "aqlm.h"

static sq_status encode(const sq_encode_ctx *x, sq_encoded *out, sq_err *err) {
    const uint64_t rows = x->rows, cols = x->cols, pc = sq_aqlm_groups(cols) * SQ_AQLM_G;
    sq_aqlm_opts o = {.M = x->params[4], .B = x->params[5], .seed = x->seed, .n_threads = x->n_threads};
    const float *w = x->w;
    const double *H = x->xtx;
    float *wp = NULL;
    double *Hp = NULL;
    if (pc != cols) {
        wp = calloc(rows * pc, sizeof(float));
        Hp = calloc(pc * pc, sizeof(double));
        if (!wp || !Hp) {
            free(wp);
            free(Hp);
            return sq_err_set(err, SQ_ENOMEM, "aqlm: out of memory padding %llu columns to %llu",
                              (unsigned long long)cols, (unsigned long long)pc);
        }
        for (uint64_t r = 0; r < rows; r++) memcpy(wp + r * pc, w + r * cols, cols * sizeof(float));
        for (uint64_t i = 0; i < cols; i++) memcpy(Hp + i * pc, H + i * cols, cols * sizeof(double));
        w = wp;
        H = Hp;
    }
    sq_aqlm_result res;
    sq_status st = sq_aqlm_quantize(w, rows, pc, H, &o, &res, err);
    free(wp);
    free(Hp);
    if (st) return st;
    /* the padded matrix has the same groups, hence the same part sizes */
    st = sq_encoded_put_part(out, "codes", res.codes, res.codes_bytes, err);
    if (!st) res.codes = NULL;
    if (!st) st = sq_encoded_put_part(out, "codebooks", res.codebooks, o.M, err);
    if (!st) res.codebooks = NULL;
    if (!st) st = sq_encoded_put_part(out, "scales", res.scales, rows, err);
    if (!st) res.scales = NULL;
    sq_aqlm_result_free(&res);
    return st;
}

const sq_codec_encoder sq_aqlm_encoder = {.needs_xtx = 1, .encode = encode};
