/* mix (per-block mixed precision, spec/codecs.md §14) on the Vulkan device:
 * the tensor's description and the recording of its GEMV/matmul
 * (shaders/gemv_mix.comp, dequant_mix.comp). The five parts are read as
 * stored; the perm link is applied to the activations on the host, like
 * every input transform. */
#include <string.h>

#include "vk_internal.h"

enum { MX_B = 1, MX_WSET = 2, MX_RPW = 5 };

/* Invocations per row: each takes runs of eight codes (shaders/gemv_mix.comp),
 * four or more of them, and a row has at least one block's worth (B / 8). */
static sq_status record_mix(sq_vk *vk, const sq_vk_tensor *w, const vk_buf *x, const vk_buf *y, uint32_t T, sq_err *err) {
    uint32_t tpr = sq_vk_threads_per_row(vk, (w->cols + 7) / 8, 4);
    if (tpr < w->spec[MX_B] / 8) tpr = w->spec[MX_B] / 8;
    return sq_vk_record_rows(vk, w, NULL, x, y, T, VK_PROG_GEMV_MIX, VK_PROG_MATMUL_MIX, vk->wg / tpr, err);
}

/* Word offsets of the parts the generic upload does not name (see shaders/mix.glsl). */
static sq_status upload_mix(sq_vk *vk, const sq_tview *v, sq_vk_tensor *t, const uint64_t *off, sq_err *err) {
    (void)vk;
    static const char *const names[] = {"mins", "widths", "row_ptr"};
    uint32_t *dst[] = {&t->push.zeros, &t->push.aux, &t->push.srow};
    sq_part_spec sp[SQ_CODEC_MAX_PARTS];
    int n = v->codec->layout(v->codec, v->params, v->rows, v->cols, sp), found = 0;
    for (int i = 0; i < n; i++)
        for (int k = 0; k < 3; k++)
            if (!strcmp(sp[i].name, names[k])) {
                *dst[k] = (uint32_t)(off[i] / 4);
                found++;
            }
    return found == 3 ? SQ_OK : sq_err_set(err, SQ_EUSAGE, "vulkan: mix tensor without its widths, mins and row_ptr");
}

int sq_vk_describe_mix(const sq_tview *v, sq_vk_tensor *t) {
    const uint32_t B = v->params[SQ_P_GROUP], ws = v->params[5];
    if ((B != 32 && B != 64 && B != 128) || ws >> 16 || v->cols > (1u << 30) / 8) return 0;
    t->family = VK_FAM_MIX;
    t->spec[MX_B] = B;
    t->spec[MX_WSET] = ws;
    t->upload = upload_mix;
    t->record = record_mix;
    t->dequant_prog = VK_PROG_DEQUANT_MIX;
    t->dequant_items = (uint32_t)v->cols;
    return 1;
}
