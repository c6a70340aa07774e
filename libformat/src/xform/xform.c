/* The transform chain (spec/codecs.md §2.1): the links a stored matrix may
 * carry and the one place the CPU applies them. Input links map the
 * activations into the stored column order and basis (and decoded rows back
 * to the original columns); output links map the stored outputs back to the
 * layer's outputs. */
#include <stdlib.h>
#include <string.h>

#include "squish/codec.h"
#include "xform/hadamard.h"

static const sq_xform_desc chain[SQ_XFORM_KINDS] = {
    [SQ_XFORM_PERM] = {.kind = SQ_XFORM_PERM, .flag = SQ_XF_PERM, .part = "perm", .dtype = SQ_DT_U32, .side = SQ_XF_INPUT},
    [SQ_XFORM_IN_SCALE] = {.kind = SQ_XFORM_IN_SCALE, .flag = SQ_XF_IN_SCALE, .part = "in_scale", .dtype = SQ_DT_F32,
                           .side = SQ_XF_INPUT},
    [SQ_XFORM_RHT_IN] = {.kind = SQ_XFORM_RHT_IN, .flag = SQ_XF_RHT_IN, .part = "rht_in", .dtype = SQ_DT_U8,
                         .side = SQ_XF_INPUT, .packed_bits = 1},
    [SQ_XFORM_RHT_OUT] = {.kind = SQ_XFORM_RHT_OUT, .flag = SQ_XF_RHT_OUT, .part = "rht_out", .dtype = SQ_DT_U8,
                          .side = SQ_XF_OUTPUT, .packed_bits = 1},
};

const sq_xform_desc *sq_xform_list(void) { return chain; }

uint64_t sq_xform_part_len(const sq_xform_desc *d, uint64_t rows, uint64_t cols) {
    uint64_t n = d->side == SQ_XF_INPUT ? cols : rows;
    return d->packed_bits ? (n + 7) / 8 : n;
}

/* x' = Ĥ·diag(s)·(x[perm[j]] / in_scale[j]): perm and in_scale fused into one pass, then the Hadamard link. */
void sq_xform_input(const sq_tview *t, const float *x, uint64_t T, float *xs) {
    const uint64_t K = t->cols;
    const uint32_t *perm = sq_tview_perm(t);
    const float *in_scale = sq_tview_in_scale(t);
    const uint8_t *rht = t->xf[SQ_XFORM_RHT_IN];
    for (uint64_t r = 0; r < T; r++) {
        const float *xr = x + r * K;
        float *o = xs + r * K;
        for (uint64_t j = 0; j < K; j++) {
            float v = perm ? xr[perm[j]] : xr[j];
            o[j] = in_scale ? v / in_scale[j] : v;
        }
        if (rht) sq_rht_apply(rht, o, K);
    }
}

/* y = diag(t)·Ĥᵀ·y' for each of T output rows. */
void sq_xform_output(const sq_tview *t, float *y, uint64_t T) {
    const uint8_t *rht = t->xf[SQ_XFORM_RHT_OUT];
    if (!rht) return;
    for (uint64_t r = 0; r < T; r++) sq_rht_inverse(rht, y + r * t->rows, t->rows);
}

/* W[r][perm[j]] = (stored row · Ĥ·diag(s))[j] / in_scale[j]: the input links undone in reverse order. */
void sq_xform_unapply_rows(const sq_tview *t, uint64_t n, float *out, float *tmp) {
    const uint64_t K = t->cols;
    const uint32_t *perm = sq_tview_perm(t);
    const float *in_scale = sq_tview_in_scale(t);
    const uint8_t *rht = t->xf[SQ_XFORM_RHT_IN];
    for (uint64_t r = 0; r < n; r++) {
        float *o = out + r * K;
        /* row · Ĥ·diag(s) is (diag(s)·Ĥᵀ·rowᵀ)ᵀ: the inverse transform of the row */
        if (rht) sq_rht_inverse(rht, o, K);
        if (!perm && !in_scale) continue;
        memcpy(tmp, o, K * sizeof(float));
        for (uint64_t j = 0; j < K; j++) {
            float v = in_scale ? tmp[j] / in_scale[j] : tmp[j];
            o[perm ? perm[j] : j] = v;
        }
    }
}

/* W = diag(t)·Ĥᵀ·W': every column of the decoded matrix transformed. */
int sq_xform_unapply_output(const sq_tview *t, float *m) {
    const uint8_t *rht = t->xf[SQ_XFORM_RHT_OUT];
    if (!rht) return 0;
    const uint64_t R = t->rows, K = t->cols;
    float *col = malloc(R * sizeof(float));
    if (!col) return -1;
    for (uint64_t j = 0; j < K; j++) {
        for (uint64_t r = 0; r < R; r++) col[r] = m[r * K + j];
        sq_rht_inverse(rht, col, R);
        for (uint64_t r = 0; r < R; r++) m[r * K + j] = col[r];
    }
    free(col);
    return 0;
}
