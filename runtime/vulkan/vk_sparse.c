/* SpQR (sparse + dense family, spec/codecs.md §13) on the Vulkan device: the
 * tensor's description and the recording of its GEMV/matmul
 * (shaders/gemv_sparse.comp, dequant_sparse.comp). The seven parts are read
 * as stored (bit-packed rows of codes and statistic codes, f16 stats2, the
 * CSR outliers); the perm link is applied to the activations on the host,
 * like every input transform. The dense part and the row's outliers are one
 * dispatch: invocations of a row take its groups, then its outliers, and a
 * fixed-order tree sum combines them. */
#include <string.h>

#include "vk_internal.h"

#define SPQR_MAX_COLS 65536u /* u16 outlier columns */

enum { SP_W = 1, SP_SB = 2, SP_G1 = 3, SP_G2 = 4, SP_RPW = 5 };

static uint64_t groups_of(const sq_vk_tensor *t) { return (t->cols + t->spec[SP_G1] - 1) / t->spec[SP_G1]; }

static sq_status record_sparse(sq_vk *vk, const sq_vk_tensor *w, const vk_buf *x, const vk_buf *y, uint32_t T,
                               sq_err *err) {
    /* two groups or more per invocation, at least 16 invocations per row */
    return sq_vk_record_rows(vk, w, NULL, x, y, T, VK_PROG_GEMV_SPARSE, VK_PROG_MATMUL_SPARSE,
                             vk->wg / sq_vk_threads_per_row(vk, groups_of(w), 2), err);
}

/* Word offsets of the parts the generic upload does not name (see shaders/sparse.glsl). */
static sq_status upload_sparse(sq_vk *vk, const sq_tview *v, sq_vk_tensor *t, const uint64_t *off, sq_err *err) {
    (void)vk;
    static const char *const names[] = {"codes", "scale_codes", "zero_codes", "stats2", "row_ptr", "outlier_cols",
                                        "outlier_vals"};
    uint32_t *dst[] = {&t->push.codes, &t->push.scales, &t->push.zeros, &t->push.aux,
                       &t->push.srow,  &t->push.gshift, &t->push.pad0};
    sq_part_spec sp[SQ_CODEC_MAX_PARTS];
    int n = v->codec->layout(v->codec, v->params, v->rows, v->cols, sp), found = 0;
    for (int i = 0; i < n; i++)
        for (int k = 0; k < 7; k++)
            if (!strcmp(sp[i].name, names[k])) {
                *dst[k] = (uint32_t)(off[i] / 4);
                found++;
            }
    return found == 7 ? SQ_OK : sq_err_set(err, SQ_EUSAGE, "vulkan: spqr tensor without its seven parts");
}

int sq_vk_describe_sparse(const sq_tview *v, sq_vk_tensor *t) {
    const uint32_t *p = v->params;
    const uint32_t wb = p[4] & 0xff, sb = p[4] >> 8 & 0xff, g1 = p[5] & 0xffff, g2 = p[5] >> 16;
    /* the kernels read 8 codes from one 32-bit window (w <= 4) or 4 from each of two (w5..w8) */
    if (wb < 2 || wb > 8 || sb < 1 || sb > 8 || g1 < 1 || g1 > 1024 || g2 < 1 || g2 > 1024 || v->cols > SPQR_MAX_COLS)
        return 0;
    t->family = VK_FAM_SPARSE;
    t->spec[SP_W] = wb;
    t->spec[SP_SB] = sb;
    t->spec[SP_G1] = g1;
    t->spec[SP_G2] = g2;
    t->upload = upload_sparse;
    t->record = record_sparse;
    t->dequant_prog = VK_PROG_DEQUANT_SPARSE;
    t->dequant_items = (uint32_t)v->cols;
    return 1;
}
