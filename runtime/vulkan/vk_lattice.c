/* The lattice family (QuIP#, spec/codecs.md §11) on the Vulkan backend: the
 * tensor's description, its table buffer (codebooks, the Hadamard links'
 * signs and Paley matrices), and the GEMV with the randomized Hadamard
 * transforms of x and y on the device (see vk_lattice.h). */
#include "vk_lattice.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "codecs/quip/e8p.h"
#include "codecs/quip/quip_codec.h"
#include "vk_internal.h"
#include "xform/hadamard.h"

#define SQ_CHUNK 32
#define HAD_SH 4096 /* floats of hadamard.comp's shared tile (SH) */
#define MAX_PASSES 8

/* The table buffer (shaders/lattice.glsl): 256 absolute vectors (nibble i =
 * 2|a_i|), 8 words of odd-sum bits, 256 E81B points (nibble i = 2 x_i, signed),
 * 256 E8R values (nibble i = 4 x_i, signed), then each device-run link: its
 * sign bits, then H_K's bits when K > 1. */
enum { TAB_ABS = 0, TAB_ODD = 256, TAB_E81B = 264, TAB_E8R = 520, TAB_CODEBOOKS = 776 };

int sq_vk_describe_lattice(const sq_tview *v, sq_vk_tensor *t) {
    const uint32_t bits = v->params[SQ_QUIP_P_BITS];
    if (v->codec->id != SQ_CODEC_QUIP || bits < 2 || bits > 4 || v->cols % 8 || !v->rows) return 0;
    const uint32_t nested = v->params[SQ_QUIP_P_NESTED];
    if (nested > 1 || (nested && bits == 2)) return 0;
    t->family = SQ_VK_FAMILY_LATTICE;
    t->spec[1] = bits;
    t->spec[2] = nested; /* lattice.glsl's NESTED: E8R stages (codes3 at push.pad0 at 4 bits) */
    t->push.nchunks = (uint32_t)((v->cols + SQ_CHUNK - 1) / SQ_CHUNK); /* activations zero padded to whole chunks */
    t->push.srow = 1;   /* the scale index of row r is r (gemv_rows.glsl) */
    t->push.gshift = 31;
    t->push.aux = (uint32_t)v->rows; /* stage s's scales start at s * rows */
    return 1;
}

/* ---------------- the table buffer ---------------- */
static void codebook_words(uint32_t *t) {
    for (int A = 0; A < 256; A++) {
        uint32_t a = sq_e8p_abs[A], sum2 = 0;
        for (int i = 0; i < 8; i++) sum2 += (a >> (4 * i)) & 15;
        t[TAB_ABS + A] = a;
        if ((sum2 / 2) % 2) t[TAB_ODD + A / 32] |= 1u << (A % 32); /* sum a_i odd: b_7 = -a_7 */
        uint32_t e = 0, r = 0;
        for (int i = 0; i < 8; i++) e |= ((uint32_t)sq_e81b_grid2[A][i] & 15u) << (4 * i);
        for (int i = 0; i < 8; i++) r |= ((uint32_t)sq_e8r_grid4[A][i] & 15u) << (4 * i);
        t[TAB_E81B + A] = e;
        t[TAB_E8R + A] = r;
    }
}

/* Words of one link's tables: sign bits, then H_K's bits (K > 1). */
static uint64_t link_words(uint64_t n) {
    sq_had_plan pl;
    sq_had_plan_init(&pl, n, NULL);
    return (n + 31) / 32 + (pl.K > 1 ? ((uint64_t)pl.K * pl.K + 31) / 32 : 0);
}

static void link_fill(const uint8_t *signs, uint64_t n, uint32_t *out) {
    for (uint64_t i = 0; i < (n + 7) / 8; i++) out[i / 4] |= (uint32_t)signs[i] << (8 * (i % 4));
    sq_had_plan pl;
    sq_had_plan_init(&pl, n, NULL);
    uint32_t *h = out + (n + 31) / 32;
    for (uint64_t i = 0; pl.K > 1 && i < (uint64_t)pl.K * pl.K; i++)
        if (pl.HK[i] < 0) h[i / 32] |= 1u << (i % 32);
}

/* A device-local buffer holding n words of src. */
static sq_status put_words(sq_vk *vk, vk_buf *b, const uint32_t *src, uint64_t n, sq_err *err) {
    const VkDeviceSize bytes = n * 4;
    sq_status st = sq_vk_buf_create(vk, bytes, 0, b, err);
    if (st || b->map) {
        if (!st) memcpy(b->map, src, bytes);
        return st;
    }
    st = sq_vk_buf_reserve(vk, &vk->staging, bytes, 1, err);
    if (!st) st = sq_vk_begin(vk, err);
    if (st) return st;
    memcpy(vk->staging.map, src, bytes);
    VkBufferCopy reg = {0, 0, bytes};
    vk->f.vkCmdCopyBuffer(vk->cmd, vk->staging.buf, b->buf, 1, &reg);
    return sq_vk_submit_wait(vk, err);
}

sq_status sq_vk_lattice_upload(sq_vk *vk, const sq_tview *v, sq_vk_tensor *t, sq_err *err) {
    const uint8_t *link[2] = {v->xf[SQ_XFORM_RHT_IN], v->xf[SQ_XFORM_RHT_OUT]};
    const uint64_t len[2] = {v->cols, v->rows};
    uint64_t words = TAB_CODEBOOKS, off[2] = {0, 0};
    for (int s = 0; s < 2; s++)
        if (link[s]) {
            off[s] = words;
            words += link_words(len[s]);
        }
    if (words > UINT32_MAX) return sq_err_set(err, SQ_ENOMEM, "vulkan: the Hadamard links of a %llu x %llu matrix are too "
                                              "large", (unsigned long long)v->rows, (unsigned long long)v->cols);
    uint32_t *tab = calloc(words, 4);
    if (!tab) return sq_err_set(err, SQ_ENOMEM, "out of memory");
    codebook_words(tab);
    for (int s = 0; s < 2; s++)
        if (link[s]) link_fill(link[s], len[s], tab + off[s]);
    sq_status st = put_words(vk, &t->lut, tab, words, err);
    free(tab);
    if (st) return st;
    /* the device runs both links: the host's chain keeps perm and in_scale only */
    for (int s = 0; s < 2; s++) t->rht[s] = (uint32_t)off[s];
    t->xform.xf[SQ_XFORM_RHT_IN] = NULL;
    t->xform.xf[SQ_XFORM_RHT_OUT] = NULL;
    return SQ_OK;
}

/* ---------------- the Hadamard passes ---------------- */
/* mirrors Push in shaders/hadamard.comp */
typedef struct had_push {
    uint32_t stride, seglen, lgseg, lgb;
    uint32_t lb, step, len, lglen;
    uint32_t lgc, ncol, signs, hk;
    uint32_t flags, norm, grid_x, tiles;
    uint32_t unused[4]; /* vk_push's crow, swz, ngroups, pad2 */
} had_push;
_Static_assert(sizeof(had_push) == sizeof(vk_push), "hadamard.comp's push constants fill the pipelines' push range");
enum { F_SIGN_LOAD = 1, F_NORM_STORE = 2, F_SIGN_STORE = 4, F_TRANSPOSE = 8 };
enum { MODE_WHT = 0, MODE_KMIX = 1 };

static uint32_t log2u(uint64_t v) {
    uint32_t l = 0;
    while ((1ull << l) < v) l++;
    return l;
}

/* Columns per tile: as many as len-element columns fill the tile, no more than the row has. */
static uint32_t tile_cols(uint64_t len, uint64_t ncol) {
    uint64_t c = 1;
    while (2 * c * len <= HAD_SH && c < ncol) c *= 2;
    return log2u(c);
}

typedef struct had_pass {
    int mode;
    had_push h;
} had_pass;

/* The passes of x <- Ĥ·diag(s)·x (inv = 0) or diag(s)·Ĥᵀ·x (inv = 1) for length n:
 * Ĥ applies the Sylvester levels then H_K, Ĥᵀ H_Kᵀ then the levels (hadamard.c's order). */
static int plan_rht(uint64_t n, int inv, had_pass *ps) {
    sq_had_plan pl;
    sq_had_plan_init(&pl, n, NULL);
    const uint64_t M = 1ull << pl.log2m, d = pl.block;
    had_pass lv[MAX_PASSES], km = {MODE_KMIX, {0}};
    int nl = 0, np = 0;
    for (uint64_t B = 1, L; B < M && nl < MAX_PASSES - 2; B *= L) { /* levels of at most HAD_SH */
        L = M / B < HAD_SH ? M / B : HAD_SH;
        had_push h = {.seglen = (uint32_t)M, .lgseg = log2u(M / L), .lgb = log2u(B), .lb = (uint32_t)(L * B),
                      .step = (uint32_t)B, .len = (uint32_t)L, .lglen = log2u(L), .ncol = (uint32_t)(n / L)};
        h.lgc = tile_cols(L, h.ncol);
        lv[nl++] = (had_pass){MODE_WHT, h};
    }
    if (pl.K > 1) {
        km.h = (had_push){.seglen = (uint32_t)d, .lgseg = pl.log2m, .lgb = pl.log2m, .step = (uint32_t)M, .len = pl.K,
                          .ncol = (uint32_t)(n / d * M), .flags = inv ? F_TRANSPOSE : 0};
        km.h.lgc = tile_cols(pl.K, km.h.ncol);
    }
    if (inv && pl.K > 1) ps[np++] = km;
    for (int i = 0; i < nl; i++) ps[np++] = lv[i];
    if (!inv && pl.K > 1) ps[np++] = km;
    if (!np) { /* blocks of 1: the signs alone (and the scale 1) */
        had_push h = {.seglen = 1, .lb = 1, .step = 1, .len = 1, .ncol = (uint32_t)n};
        h.lgc = tile_cols(1, n);
        ps[np++] = (had_pass){MODE_WHT, h};
    }
    float norm = (float)(1.0 / sqrt((double)d)); /* hadamard.c's scale */
    for (int i = 0; i < np; i++) memcpy(&ps[i].h.norm, &norm, 4);
    ps[0].h.flags |= inv ? 0 : F_SIGN_LOAD;
    ps[np - 1].h.flags |= F_NORM_STORE | (inv ? F_SIGN_STORE : 0);
    return np;
}

/* Records the transform of T rows of n floats (stride floats apart) of buf,
 * the link's tables at word off of tab; a barrier between passes. */
static sq_status record_rht(sq_vk *vk, const vk_buf *tab, uint32_t off, uint64_t n, int inv, const vk_buf *buf,
                            uint32_t T, uint32_t stride, sq_err *err) {
    had_pass ps[MAX_PASSES];
    const int np = plan_rht(n, inv, ps);
    sq_status st = SQ_OK;
    for (int i = 0; !st && i < np; i++) {
        uint32_t spec[VK_NSPEC] = {0};
        spec[1] = (uint32_t)ps[i].mode;
        VkPipeline pipe;
        if ((st = sq_vk_pipeline(vk, VK_PROG_HADAMARD, spec, &pipe, err))) break;
        had_push h = ps[i].h;
        h.stride = stride;
        h.signs = off;
        h.hk = off + (uint32_t)((n + 31) / 32);
        h.tiles = (h.ncol + (1u << h.lgc) - 1) >> h.lgc;
        uint32_t gx, gz;
        sq_vk_grid((uint64_t)T * h.tiles, &gx, &gz);
        h.grid_x = gx;
        vk_push push;
        memcpy(&push, &h, sizeof push);
        if (i) sq_vk_barrier(vk);
        st = sq_vk_bind(vk, pipe, NULL, tab, NULL, 0, buf, (VkDeviceSize)T * stride * 4, &push, err);
        if (!st) vk->f.vkCmdDispatch(vk->cmd, gx, 1, gz);
    }
    return st;
}

/* ---------------- GEMV, matmul, dequantize ---------------- */
/* Loading the next chunk's codes ahead (gemv_rows.glsl's PF): off unless
 * SQUISH_VULKAN_PREFETCH=1 (not measured on a GPU yet); the same results. */
static uint32_t prefetch(void) {
    const char *e = getenv("SQUISH_VULKAN_PREFETCH");
    return e && !strcmp(e, "1");
}

#define GEMV_NR 4 /* rows per invocation of the GEMV (gemv_lattice.comp, -DNR) */

sq_status sq_vk_record_gemv_lattice(sq_vk *vk, const sq_vk_tensor *w, const vk_buf *x, const vk_buf *y, uint32_t T,
                                    sq_err *err) {
    const uint32_t xs = w->push.nchunks * SQ_CHUNK, nr = T > 1 ? 1 : GEMV_NR, tt = T > 1 ? VK_MATMUL_TOKENS : 1;
    sq_status st = SQ_OK;
    if (w->rht[0]) {
        st = record_rht(vk, &w->lut, w->rht[0], w->cols, 0, x, T, xs, err);
        sq_vk_barrier(vk);
    }
    uint32_t spec[VK_NSPEC];
    memcpy(spec, w->spec, sizeof spec);
    const uint32_t rpw = vk->wg / sq_vk_threads_per_row(vk, w->push.nchunks, 4); /* four chunks or more each */
    spec[5] = rpw;
    spec[6] = prefetch();
    VkPipeline pipe;
    if (!st) st = sq_vk_pipeline(vk, T > 1 ? VK_PROG_MATMUL_LATTICE : VK_PROG_GEMV_LATTICE, spec, &pipe, err);
    if (st) return st;
    vk_push push = w->push;
    push.T = T;
    push.xstride = xs;
    push.ystride = (uint32_t)w->rows;
    uint32_t gx, gz;
    sq_vk_grid((w->rows + rpw * nr - 1) / (rpw * nr), &gx, &gz);
    push.grid_x = gx;
    st = sq_vk_bind(vk, pipe, &w->buf, &w->lut, x, (VkDeviceSize)T * xs * 4, y, (VkDeviceSize)T * w->rows * 4, &push, err);
    if (st) return st;
    vk->f.vkCmdDispatch(vk->cmd, gx, (T + tt - 1) / tt, gz);
    if (w->rht[1]) {
        sq_vk_barrier(vk);
        st = record_rht(vk, &w->lut, w->rht[1], w->rows, 1, y, T, (uint32_t)w->rows, err);
    }
    return st;
}

/* Ends the recording (st: the status of recording it) after copying bytes of
 * src to the host buffer dst, runs it and waits. */
static sq_status finish_copy_out(sq_vk *vk, sq_status st, const vk_buf *src, const vk_buf *dst, VkDeviceSize bytes,
                                 sq_err *err) {
    if (st) {
        vk->f.vkEndCommandBuffer(vk->cmd);
        return st;
    }
    sq_vk_barrier(vk);
    VkBufferCopy c = {0, 0, bytes};
    vk->f.vkCmdCopyBuffer(vk->cmd, src->buf, dst->buf, 1, &c);
    VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER, .srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT,
                          .dstAccessMask = VK_ACCESS_HOST_READ_BIT};
    vk->f.vkCmdPipelineBarrier(vk->cmd, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &mb, 0, NULL, 0,
                               NULL);
    return sq_vk_submit_wait(vk, err);
}

#define SCRATCH_MAX (64ull << 20) /* bytes of results per submission */

sq_status sq_vk_dequant_lattice(sq_vk *vk, const sq_vk_tensor *w, uint64_t r0, uint64_t r1, float *out, sq_err *err) {
    const uint64_t K = w->cols, G = K / 8;
    uint64_t per = SCRATCH_MAX / (4 * K);
    if (per < 1) per = 1;
    uint32_t spec[VK_NSPEC];
    memcpy(spec, w->spec, sizeof spec);
    VkPipeline pipe;
    sq_status st = sq_vk_pipeline(vk, VK_PROG_DEQUANT_LATTICE, spec, &pipe, err);
    for (uint64_t a = r0; !st && a < r1; a += per) {
        const uint64_t nr = r1 - a < per ? r1 - a : per;
        const VkDeviceSize ob = nr * K * 4;
        st = sq_vk_buf_reserve(vk, &vk->y_dev, ob, 0, err);
        if (!st) st = sq_vk_buf_reserve(vk, &vk->y_host, ob, 1, err);
        if (!st) st = sq_vk_begin(vk, err);
        if (st) break;
        vk_push push = w->push; /* rows of the slice from row_base; stage 1's scales stay at push.aux */
        push.rows = (uint32_t)nr;
        push.row_base = (uint32_t)a;
        uint32_t gx, gz;
        sq_vk_grid((nr * G + vk->wg - 1) / vk->wg, &gx, &gz);
        push.grid_x = gx;
        st = sq_vk_bind(vk, pipe, &w->buf, &w->lut, NULL, 0, &vk->y_dev, ob, &push, err);
        if (!st) vk->f.vkCmdDispatch(vk->cmd, gx, 1, gz);
        st = finish_copy_out(vk, st, &vk->y_dev, &vk->y_host, ob, err);
        if (!st) memcpy(out + (a - r0) * K, vk->y_host.map, ob);
    }
    return st;
}

/* ---------------- the transform alone ---------------- */
sq_status sq_vk_rht(sq_vk *vk, const uint8_t *signs, uint64_t n, int inverse, float *x, uint32_t T, sq_err *err) {
    if (!n || !T) return SQ_OK;
    if (n > UINT32_MAX / T) return sq_err_set(err, SQ_EUSAGE, "vulkan: %u rows of %llu values are too many", T,
                                              (unsigned long long)n);
    const uint64_t words = link_words(n);
    uint32_t *tab = calloc(words, 4);
    if (!tab) return sq_err_set(err, SQ_ENOMEM, "out of memory");
    link_fill(signs, n, tab);
    vk_buf tb = {0};
    const VkDeviceSize bytes = (VkDeviceSize)T * n * 4;
    sq_status st = put_words(vk, &tb, tab, words, err);
    free(tab);
    if (!st) st = sq_vk_buf_reserve(vk, &vk->x_host, bytes, 1, err);
    if (!st) st = sq_vk_buf_reserve(vk, &vk->x_dev, bytes, 0, err);
    if (!st) st = sq_vk_begin(vk, err);
    if (!st) {
        memcpy(vk->x_host.map, x, bytes);
        VkBufferCopy c = {0, 0, bytes};
        vk->f.vkCmdCopyBuffer(vk->cmd, vk->x_host.buf, vk->x_dev.buf, 1, &c);
        sq_vk_barrier(vk);
        st = finish_copy_out(vk, record_rht(vk, &tb, 0, n, inverse, &vk->x_dev, T, (uint32_t)n, err), &vk->x_dev,
                             &vk->x_host, bytes, err);
    }
    if (!st) memcpy(x, vk->x_host.map, bytes);
    sq_vk_buf_free(vk, &tb);
    return st;
}
