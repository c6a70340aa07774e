/* The transform chain (spec/codecs.md §9): the links a stored matrix may
 * carry and the one place the CPU applies them. Each link maps the
 * activations into the stored column order and scale (input side) and
 * decoded rows back to the original columns. */
#include <string.h>

#include "squish/codec.h"

static const sq_xform_desc chain[SQ_XFORM_KINDS] = {
    [SQ_XFORM_PERM] = {.kind = SQ_XFORM_PERM, .flag = SQ_XF_PERM, .part = "perm", .dtype = SQ_DT_U32, .side = SQ_XF_INPUT},
    [SQ_XFORM_IN_SCALE] = {.kind = SQ_XFORM_IN_SCALE, .flag = SQ_XF_IN_SCALE, .part = "in_scale", .dtype = SQ_DT_F32,
                           .side = SQ_XF_INPUT},
};

const sq_xform_desc *sq_xform_list(void) { return chain; }

/* x'[j] = x[perm[j]] / in_scale[j]: the links in chain order, fused into one pass. */
void sq_xform_input(const sq_tview *t, const float *x, uint64_t T, float *xs) {
    const uint64_t K = t->cols;
    const uint32_t *perm = sq_tview_perm(t);
    const float *in_scale = sq_tview_in_scale(t);
    for (uint64_t r = 0; r < T; r++) {
        const float *xr = x + r * K;
        float *o = xs + r * K;
        for (uint64_t j = 0; j < K; j++) {
            float v = perm ? xr[perm[j]] : xr[j];
            o[j] = in_scale ? v / in_scale[j] : v;
        }
    }
}

/* W[r][perm[j]] = stored(r, j) / in_scale[j]: the links undone in reverse order. */
void sq_xform_unapply_rows(const sq_tview *t, uint64_t n, float *out, float *tmp) {
    const uint64_t K = t->cols;
    const uint32_t *perm = sq_tview_perm(t);
    const float *in_scale = sq_tview_in_scale(t);
    if (!perm && !in_scale) return;
    for (uint64_t r = 0; r < n; r++) {
        float *o = out + r * K;
        memcpy(tmp, o, K * sizeof(float));
        for (uint64_t j = 0; j < K; j++) {
            float v = in_scale ? tmp[j] / in_scale[j] : tmp[j];
            o[perm ? perm[j] : j] = v;
        }
    }
}
