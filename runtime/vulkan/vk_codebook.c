/* AQLM (codebook family, spec/codecs.md §12) on the Vulkan device: the
 * tensor's description, the codebook upload and the recording of its GEMVs
 * (shaders/gemv_codebook.comp, codebook_slabs.comp, dequant_codebook.comp).
 *
 * The codes and row scales stay in the tensor's buffer as stored; the
 * codebooks are also uploaded as f32 [M][2^B][8] (exact conversions) to a
 * device-local buffer of their own, which the shaders read as vec4 pairs.
 *
 * GEMV (T = 1): where a codebook set has at most 4096 codewords in all
 * (M 2^B <= 4096: 2x8, 1x8, 4x8, ...) the lookup-table kernel runs: per
 * block of groups a workgroup fills a table of x's dot products with every
 * codeword in shared memory and adds one entry per code for 512 rows (128
 * invocations x 4; 8-bit codes of a row and block in one 16-byte load where
 * rows are aligned). A table costs M 2^B 8 multiply-adds per group, so it
 * pays only over many rows: the matrix is split into row tiles x column
 * slabs (about SLAB_TARGET workgroups), and a second pass adds the slabs'
 * partial sums in slab order. Larger codebooks (1x16) and the matmul
 * (T > 1) decode each group's codeword sum directly and dot it with x.
 * SQUISH_VULKAN_AQLM=lut|direct picks the GEMV kernel for every tensor
 * (lut only where the table fits). */
#include <stdlib.h>
#include <string.h>

#include "squish/fp.h"
#include "vk_internal.h"

#define CB_G 8              /* inputs per group */
#define LUT_FLOATS 4096     /* the table's shared memory: 16 KiB, Vulkan's guaranteed minimum */
#define LUT_MAX_GB 16       /* groups per table block (xs[2 GB] in shared memory) */
#define LUT_RPT 4           /* rows per invocation of the table kernel */
#define SLAB_TARGET 256     /* workgroups the split table GEMV aims at */
#define LUT_MIN_ROWS_PER_K 2 /* table GEMV by default where rows >= 2^B / 2 (the CPU kernel's rule) */

enum { SP_M = 1, SP_B = 2, SP_GB = 3, SP_RPT = 4, SP_RPW = 5, SP_VEC = 5 }; /* RPW: direct kernel; VEC: table kernel */

uint32_t sq_vk_threads_per_row(const sq_vk *vk, uint64_t units, uint32_t min_units) {
    uint32_t tpr = vk->wg;
    const char *e = getenv("SQUISH_VULKAN_TPR");
    if (e && *e) {
        uint32_t v = (uint32_t)atoi(e);
        if (v >= 1 && v <= vk->wg && !(v & (v - 1))) return v;
    }
    while (tpr > 16 && tpr * min_units > units) tpr /= 2;
    return tpr;
}

sq_status sq_vk_record_rows(sq_vk *vk, const sq_vk_tensor *w, const vk_buf *aux, const vk_buf *x, const vk_buf *y, uint32_t T,
                            int gemv_prog, int matmul_prog, uint32_t rpw, sq_err *err) {
    const uint32_t tt = T > 1 ? VK_MATMUL_TOKENS : 1;
    uint32_t spec[VK_NSPEC];
    memcpy(spec, w->spec, sizeof spec);
    spec[SP_RPW] = rpw;
    VkPipeline pipe;
    sq_status st = sq_vk_pipeline(vk, T > 1 ? matmul_prog : gemv_prog, spec, &pipe, err);
    if (st) return st;
    vk_push push = w->push;
    push.T = T;
    push.xstride = w->push.nchunks * 32;
    push.ystride = (uint32_t)w->rows;
    uint32_t gx, gz;
    sq_vk_grid((w->rows + rpw - 1) / rpw, &gx, &gz);
    push.grid_x = gx;
    st = sq_vk_bind(vk, pipe, &w->buf, aux, x, (VkDeviceSize)T * push.xstride * 4, y, (VkDeviceSize)T * w->rows * 4, &push,
                    err);
    if (!st) vk->f.vkCmdDispatch(vk->cmd, gx, (T + tt - 1) / tt, gz);
    return st;
}

static uint64_t groups_of(const sq_vk_tensor *t) { return (t->cols + CB_G - 1) / CB_G; }

/* The split of the table GEMV: slabs of gps groups each (a multiple of the block). */
typedef struct lut_split {
    uint32_t tiles, slabs, gps;
} lut_split;

static lut_split split_of(const sq_vk *vk, const sq_vk_tensor *t) {
    const uint64_t G = groups_of(t), gb = t->spec[SP_GB], blocks = (G + gb - 1) / gb;
    lut_split s;
    s.tiles = (uint32_t)((t->rows + (uint64_t)vk->wg * LUT_RPT - 1) / ((uint64_t)vk->wg * LUT_RPT));
    uint64_t want = (SLAB_TARGET + s.tiles - 1) / s.tiles;
    if (want > blocks) want = blocks;
    if (want < 1) want = 1;
    uint64_t bps = (blocks + want - 1) / want; /* blocks per slab */
    s.slabs = (uint32_t)((blocks + bps - 1) / bps);
    s.gps = (uint32_t)(bps * gb);
    return s;
}

static int lut_fits(const sq_vk_tensor *t) { return t->spec[SP_GB] != 0; }

static int use_lut(const sq_vk_tensor *t) {
    const char *e = getenv("SQUISH_VULKAN_AQLM");
    if (!lut_fits(t)) return 0;
    if (e && !strcmp(e, "lut")) return 1;
    if (e && !strcmp(e, "direct")) return 0;
    return t->rows * LUT_MIN_ROWS_PER_K >= (1ull << t->spec[SP_B]);
}

static sq_status record_lut(sq_vk *vk, const sq_vk_tensor *w, const vk_buf *x, const vk_buf *y, sq_err *err) {
    const lut_split s = split_of(vk, w);
    /* 8-bit codes with every row on a 16-byte boundary: one load per row and block (GB M = 16 for B = 8) */
    const uint64_t G = groups_of(w), M = w->spec[SP_M];
    uint32_t spec[VK_NSPEC];
    memcpy(spec, w->spec, sizeof spec);
    spec[SP_VEC] = w->spec[SP_B] == 8 && w->cols % CB_G == 0 && G * M % 16 == 0 && w->spec[SP_GB] * M == 16;
    VkPipeline pipe;
    sq_status st = sq_vk_pipeline(vk, VK_PROG_GEMV_CODEBOOK_LUT, spec, &pipe, err);
    if (st) return st;
    vk_push push = w->push;
    push.T = 1;
    push.xstride = w->push.nchunks * 32;
    push.ystride = (uint32_t)w->rows;
    push.srow = s.gps;
    push.pad1 = s.slabs;
    uint32_t gx, gz;
    sq_vk_grid(s.tiles, &gx, &gz);
    push.grid_x = gx;
    /* one slab: the rows' results straight into y; else the partial sums into extra */
    const vk_buf *out = s.slabs == 1 ? y : &w->extra;
    st = sq_vk_bind(vk, pipe, &w->buf, &w->lut, x, (VkDeviceSize)push.xstride * 4, out,
                    (VkDeviceSize)s.slabs * w->rows * 4, &push, err);
    if (st) return st;
    vk->f.vkCmdDispatch(vk->cmd, gx, s.slabs, gz);
    if (s.slabs == 1) return SQ_OK;
    sq_vk_barrier(vk);
    if ((st = sq_vk_pipeline(vk, VK_PROG_CODEBOOK_SLABS, w->spec, &pipe, err))) return st;
    sq_vk_grid((w->rows + vk->wg - 1) / vk->wg, &gx, &gz);
    push.grid_x = gx;
    st = sq_vk_bind(vk, pipe, &w->buf, &w->lut, &w->extra, (VkDeviceSize)s.slabs * w->rows * 4, y, w->rows * 4, &push,
                    err);
    if (!st) vk->f.vkCmdDispatch(vk->cmd, gx, 1, gz);
    return st;
}

static sq_status record_codebook(sq_vk *vk, const sq_vk_tensor *w, const vk_buf *x, const vk_buf *y, uint32_t T,
                                 sq_err *err) {
    if (T == 1 && use_lut(w)) return record_lut(vk, w, x, y, err);
    return sq_vk_record_rows(vk, w, &w->lut, x, y, T, VK_PROG_GEMV_CODEBOOK, VK_PROG_MATMUL_CODEBOOK,
                             vk->wg / sq_vk_threads_per_row(vk, groups_of(w), 4), err);
}

/* The codebooks as f32 in their own buffer, and the table GEMV's partial sums. */
static sq_status upload_codebook(sq_vk *vk, const sq_tview *v, sq_vk_tensor *t, const uint64_t *off, sq_err *err) {
    (void)off; /* codes and scales: found by name in sq_vk_upload */
    const uint64_t n = (uint64_t)t->spec[SP_M] << t->spec[SP_B] << 3;
    const uint8_t *cb = sq_tview_part(v, "codebooks");
    if (!cb) return sq_err_set(err, SQ_EUSAGE, "vulkan: aqlm tensor without a codebooks part");
    float *f = malloc(n * sizeof(float));
    if (!f) return sq_err_set(err, SQ_ENOMEM, "out of memory");
    for (uint64_t i = 0; i < n; i++) f[i] = sq_f16_to_f32((uint16_t)(cb[2 * i] | cb[2 * i + 1] << 8));
    sq_status st = sq_vk_buf_create(vk, n * sizeof(float), 0, &t->lut, err);
    if (!st) st = sq_vk_copy_in(vk, &t->lut, 0, f, n * sizeof(float), err);
    free(f);
    if (!st && lut_fits(t)) {
        const lut_split s = split_of(vk, t);
        if (s.slabs > 1) st = sq_vk_buf_create(vk, (VkDeviceSize)s.slabs * t->rows * 4, 0, &t->extra, err);
    }
    return st;
}

int sq_vk_describe_codebook(const sq_tview *v, sq_vk_tensor *t) {
    const uint32_t M = v->params[4], B = v->params[5];
    if (M < 1 || M > 8 || B < 1 || B > 16) return 0;
    t->family = VK_FAM_CODEBOOK;
    t->spec[SP_M] = M;
    t->spec[SP_B] = B;
    const uint32_t mk = M << B;
    uint32_t gb = mk <= LUT_FLOATS ? LUT_FLOATS / mk : 0;
    t->spec[SP_GB] = gb > LUT_MAX_GB ? LUT_MAX_GB : gb;
    t->spec[SP_RPT] = LUT_RPT;
    t->upload = upload_codebook;
    t->record = record_codebook;
    t->dequant_prog = VK_PROG_DEQUANT_CODEBOOK;
    t->dequant_items = (uint32_t)((v->cols + CB_G - 1) / CB_G);
    return 1;
}
