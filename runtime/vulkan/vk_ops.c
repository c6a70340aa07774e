/* Matrix products, dequantization and the benchmark kernels on the device. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "vk_internal.h"
#include "vk_lattice.h"

#define SQ_CHUNK 32
#define SCRATCH_MAX (64ull << 20) /* bytes of activations or results per submission */
#define MIN_GROUPS 528              /* see min_groups: 4 per multiprocessor of an H100 (132) */
#define SPREAD_MAX_WEIGHTS (1ull << 24) /* see spread; docs/vulkan-decode.md has the larger shapes measured */

static uint32_t xstride_of(const sq_vk_tensor *w) { return w->push.nchunks * SQ_CHUNK; }

/* Invocations per row (sq_vk_threads_per_row: rows are short in small
 * models) giving each min_chunks chunks or more. */
static uint32_t threads_per_row_min_chunks(const sq_vk *vk, const sq_vk_tensor *w, uint32_t min_chunks) {
    return sq_vk_threads_per_row(vk, w->push.nchunks, min_chunks);
}

/* The float-activation kernels: four chunks or more per invocation. */
static uint32_t threads_per_row(const sq_vk *vk, const sq_vk_tensor *w) { return threads_per_row_min_chunks(vk, w, 4); }

/* Rows per invocation of the GEMV (T = 1) of codec-coded weights, which
 * share one load of x. SQUISH_VULKAN_NR overrides (1, 2, 4, 8 or 16). */
static uint32_t rows_per_invocation(void) {
    const char *e = getenv("SQUISH_VULKAN_NR");
    if (e && (!strcmp(e, "1") || !strcmp(e, "2") || !strcmp(e, "4") || !strcmp(e, "8") || !strcmp(e, "16")))
        return (uint32_t)atoi(e);
    return 4;
}

/* Rows per invocation of the limb GEMV: 4, or 8 where SQUISH_VULKAN_NR says 8. */
static uint32_t limb_rows(void) {
    const char *e = getenv("SQUISH_VULKAN_NR");
    return e && !strcmp(e, "8") ? 8 : 4;
}

/* What the GEMVs over codes load ahead of the chunk they compute (constant
 * PF of shaders/gemv_rows.glsl): 1, the next chunk's code words, by default
 * for 4- and 2-bit codes, whose chunk is one 16- or 8-byte word per row
 * (wider chunks would hold twice as many registers: static counts on RDNA3,
 * 8-bit 84 -> 132 VGPRs, 6-bit spills; measured slower on an H100 for 3-, 6-
 * and 8-bit codes, faster for 2-bit: docs/vulkan-gemv.md, 2026-12-07c), else
 * 0; 2, its activations too (slower everywhere there). SQUISH_VULKAN_PREFETCH
 * =0|1|2 decides for all. Results are the same. */
static uint32_t prefetch(const sq_vk_tensor *w) {
    const char *e = getenv("SQUISH_VULKAN_PREFETCH");
    if (e && (!strcmp(e, "0") || !strcmp(e, "1") || !strcmp(e, "2"))) return (uint32_t)(e[0] - '0');
    return w->spec[1] == 4 || w->spec[1] == 2;
}

/* Whether the float GEMV reads f16/bf16 rows eight values per 16-byte load
 * (constant VEC of shaders/gemv_float.comp): rows of a multiple of 8 values;
 * SQUISH_VULKAN_F16VEC=0 keeps one value per load. */
static uint32_t float_vec(const sq_vk_tensor *w) {
    const char *e = getenv("SQUISH_VULKAN_F16VEC");
    return w->spec[1] != 0 && w->cols % 8 == 0 && !(e && !strcmp(e, "0"));
}

/* Workgroups a GEMV (T = 1) should have at least: a matrix of few rows (a
 * small model's, or a narrow one's k/v) otherwise runs on a few of the GPU's
 * cores, each invocation a long chain of loads. SQUISH_VULKAN_MIN_GROUPS
 * sets it (0: the settings of large matrices everywhere). */
static uint32_t min_groups(void) {
    const char *e = getenv("SQUISH_VULKAN_MIN_GROUPS");
    return e && *e ? (uint32_t)atoi(e) : MIN_GROUPS;
}

/* Narrows a GEMV's work per invocation (*nr rows, then chunks: *tpr
 * invocations per row, up to vk->wg and one chunk each) until its grid has
 * min_groups() workgroups; the explicit settings (SQUISH_VULKAN_NR, _TPR) stay. */
static void spread(const sq_vk *vk, const sq_vk_tensor *w, uint32_t *nr, uint32_t *tpr) {
    const char *e = getenv("SQUISH_VULKAN_MIN_GROUPS");
    /* measured faster on matrices of up to 5632 x 2048 (docs/vulkan-decode.md, 2026-12-07d); at 4096 x 14336
     * it slowed the 4-bit float kernels 9-15% (2026-12-07e), so larger ones keep the settings their GEMV
     * table was measured with unless the variable asks */
    if (!(e && *e) && (uint64_t)w->rows * w->cols > SPREAD_MAX_WEIGHTS) return;
    const uint32_t want = min_groups();
    const int fixed_nr = getenv("SQUISH_VULKAN_NR") != NULL, fixed_tpr = getenv("SQUISH_VULKAN_TPR") != NULL;
    for (;;) {
        uint64_t groups = (w->rows + (uint64_t)*nr * (vk->wg / *tpr) - 1) / ((uint64_t)*nr * (vk->wg / *tpr));
        if (groups >= want) return;
        if (*nr > 1 && !fixed_nr) *nr /= 2;
        else if (*tpr < vk->wg && *tpr * 2 <= w->push.nchunks && !fixed_tpr) *tpr *= 2;
        else return;
    }
}

/* The GEMV (T = 1) or matmul program for w; *rows_per_group: rows one workgroup covers. */
static sq_status gemv_pipeline(sq_vk *vk, const sq_vk_tensor *w, uint32_t T, VkPipeline *pipe, uint32_t *rows_per_group,
                               sq_err *err) {
    uint32_t spec[VK_NSPEC];
    memcpy(spec, w->spec, sizeof spec);
    uint32_t tpr = threads_per_row(vk, w), nr = w->family || T > 1 ? 1 : rows_per_invocation();
    if (T == 1) spread(vk, w, &nr, &tpr);
    uint32_t rpw = vk->wg / tpr;
    int prog;
    if (w->family) prog = T > 1 ? VK_PROG_MATMUL_FLOAT : VK_PROG_GEMV_FLOAT;
    else if (T > 1) prog = VK_PROG_MATMUL_CODES;
    else {
        prog = nr == 1    ? VK_PROG_GEMV_CODES_NR1
               : nr == 2  ? VK_PROG_GEMV_CODES_NR2
               : nr == 4  ? VK_PROG_GEMV_CODES_NR4
               : nr == 8  ? VK_PROG_GEMV_CODES_NR8
                          : VK_PROG_GEMV_CODES_NR16;
    }
    spec[5] = rpw;
    spec[6] = w->family ? float_vec(w) : prefetch(w);
    *rows_per_group = rpw * nr;
    return sq_vk_pipeline(vk, prog, spec, pipe, err);
}

static uint64_t gcd64(uint64_t a, uint64_t b) {
    while (b) {
        uint64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* The order in which a GEMV's workgroups take their rows (push.swz, see
 * flat_group in shaders/common.glsl): in row order by default;
 * SQUISH_VULKAN_SWIZZLE=1 spreads consecutive workgroups over the matrix
 * (group g takes row group g * m mod groups, m odd, coprime to groups and
 * near groups / phi). Same results either way. */
static void set_order(vk_push *push, uint64_t groups) {
    const char *e = getenv("SQUISH_VULKAN_SWIZZLE");
    push->swz = 0;
    push->ngroups = (uint32_t)groups;
    if (!e || strcmp(e, "1") || groups < 3 || groups > 65535) return;
    uint64_t m = (uint64_t)((double)groups * 0.6180339887) | 1;
    while (gcd64(m, groups) != 1) m += 2;
    push->swz = (uint32_t)m;
}

static const vk_buf *lut_of(const sq_vk_tensor *w) { return w->lut.buf ? &w->lut : NULL; }

/* Scratch for xb bytes of activations (host and device) and yb bytes of results. */
static sq_status reserve_io(sq_vk *vk, VkDeviceSize xb, VkDeviceSize yb, sq_err *err) {
    sq_status st = sq_vk_buf_reserve(vk, &vk->x_host, xb, 1, err);
    if (!st) st = sq_vk_buf_reserve(vk, &vk->x_dev, xb, 0, err);
    if (!st) st = sq_vk_buf_reserve(vk, &vk->y_dev, yb, 0, err);
    if (!st) st = sq_vk_buf_reserve(vk, &vk->y_host, yb, 1, err);
    return st;
}

/* Starts a recording that first copies xb bytes of activations to the device. */
static sq_status begin_with_input(sq_vk *vk, VkDeviceSize xb, sq_err *err) {
    sq_status st = sq_vk_begin(vk, err);
    if (st) return st;
    VkBufferCopy cx = {0, 0, xb};
    vk->f.vkCmdCopyBuffer(vk->cmd, vk->x_host.buf, vk->x_dev.buf, 1, &cx);
    sq_vk_barrier(vk);
    return SQ_OK;
}

/* Ends the recording (st: the status of recording it) with the results'
 * copies made visible to the host, runs it and waits. */
static sq_status finish(sq_vk *vk, sq_status st, sq_err *err) {
    if (st) {
        vk->f.vkEndCommandBuffer(vk->cmd);
        return st;
    }
    VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER, .srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT,
                          .dstAccessMask = VK_ACCESS_HOST_READ_BIT};
    vk->f.vkCmdPipelineBarrier(vk->cmd, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &mb, 0, NULL, 0,
                               NULL);
    return sq_vk_submit_wait(vk, err);
}

/* The same after copying yb bytes of results back to the host buffer. */
static sq_status finish_with_output(sq_vk *vk, sq_status st, VkDeviceSize yb, sq_err *err) {
    if (!st) {
        sq_vk_barrier(vk);
        VkBufferCopy cy = {0, 0, yb};
        vk->f.vkCmdCopyBuffer(vk->cmd, vk->y_dev.buf, vk->y_host.buf, 1, &cy);
    }
    return finish(vk, st, err);
}

/* Records one GEMV/matmul dispatch over T activation rows in x_dev into y_dev. */
sq_status sq_vk_record_gemv(sq_vk *vk, const sq_vk_tensor *w, const vk_buf *x, const vk_buf *y, uint32_t T, sq_err *err) {
    if (w->family == SQ_VK_FAMILY_LATTICE) return sq_vk_record_gemv_lattice(vk, w, x, y, T, err);
    if (w->record) return w->record(vk, w, x, y, T, err);
    uint32_t tt = T > 1 ? VK_MATMUL_TOKENS : 1, rpw;
    VkPipeline pipe;
    sq_status st = gemv_pipeline(vk, w, T, &pipe, &rpw, err);
    if (st) return st;
    vk_push push = w->push;
    push.T = T;
    push.xstride = xstride_of(w);
    push.ystride = (uint32_t)w->rows;
    uint32_t gx, gz;
    sq_vk_grid((w->rows + rpw - 1) / rpw, &gx, &gz);
    push.grid_x = gx;
    set_order(&push, (w->rows + rpw - 1) / rpw);
    st = sq_vk_bind(vk, pipe, &w->buf, lut_of(w), x, (VkDeviceSize)T * push.xstride * 4, y,
                    (VkDeviceSize)T * w->rows * 4, &push, err);
    if (st) return st;
    vk->f.vkCmdDispatch(vk->cmd, gx, (T + tt - 1) / tt, gz);
    return SQ_OK;
}

/* nt activation rows of x (original input order) in the float kernels'
 * layout: input transform applied, rows zero padded to whole chunks, and for
 * coded weights interleaved by chunk (see gemv_codes.comp). row: xstride floats. */
static void pack_float_x(const sq_vk_tensor *w, const float *x, uint32_t nt, float *out, float *row) {
    const uint64_t K = w->cols, xs = xstride_of(w), nch = w->push.nchunks;
    memset(row + K, 0, (xs - K) * sizeof(float));
    for (uint32_t t = 0; t < nt; t++) {
        float *o = out + (uint64_t)t * xs;
        sq_xform_input(&w->xform, x + (uint64_t)t * K, 1, row);
        for (uint64_t j = 0; j < xs; j++) {
            uint64_t c = j / 32, i = j % 32; /* chunk c, value i = 4 * (i / 4) + i % 4 */
            o[w->family ? j : ((i / 4) * nch + c) * 4 + i % 4] = row[j];
        }
    }
}

sq_status sq_vk_matmul(sq_vk *vk, const sq_vk_tensor *w, const float *x, uint32_t T, float *y, sq_err *err) {
    if (T == 1) return sq_vk_gemv_many(vk, &w, 1, x, &y, err);
    const uint64_t K = w->cols, N = w->rows, xs = xstride_of(w);
    uint64_t per = SCRATCH_MAX / (4 * (xs > N ? xs : N));
    if (per < 1) per = 1;
    float *row = malloc(xs * sizeof(float));
    if (!row) return sq_err_set(err, SQ_ENOMEM, "out of memory");
    sq_status st = SQ_OK;
    for (uint32_t t0 = 0; !st && t0 < T; t0 += (uint32_t)per) {
        uint32_t nt = T - t0 < per ? T - t0 : (uint32_t)per;
        VkDeviceSize xb = (VkDeviceSize)nt * xs * 4, yb = (VkDeviceSize)nt * N * 4;
        if ((st = reserve_io(vk, xb, yb, err))) break;
        pack_float_x(w, x + (uint64_t)t0 * K, nt, vk->x_host.map, row);
        if ((st = begin_with_input(vk, xb, err))) break;
        st = finish_with_output(vk, sq_vk_record_gemv(vk, w, &vk->x_dev, &vk->y_dev, nt, err), yb, err);
        if (!st) {
            memcpy(y + (uint64_t)t0 * N, vk->y_host.map, yb);
            sq_xform_output(&w->xform, y + (uint64_t)t0 * N, nt);
        }
    }
    free(row);
    return st;
}

sq_status sq_vk_dequant(sq_vk *vk, const sq_vk_tensor *w, uint64_t r0, uint64_t r1, float *out, sq_err *err) {
    if (w->family == SQ_VK_FAMILY_LATTICE) return sq_vk_dequant_lattice(vk, w, r0, r1, out, err);
    const uint64_t K = w->cols;
    uint64_t per = K ? SCRATCH_MAX / (4 * K) : 1;
    if (per < 1) per = 1;
    uint32_t spec[VK_NSPEC];
    memcpy(spec, w->spec, sizeof spec);
    VkPipeline pipe;
    int prog = w->dequant_prog ? w->dequant_prog : w->family ? VK_PROG_DEQUANT_FLOAT : VK_PROG_DEQUANT_CODES;
    sq_status st = sq_vk_pipeline(vk, prog, spec, &pipe, err);
    for (uint64_t a = r0; !st && a < r1; a += per) {
        uint64_t b = r1 - a < per ? r1 : a + per, nr = b - a;
        VkDeviceSize ob = nr * K * 4;
        st = sq_vk_buf_reserve(vk, &vk->y_dev, ob, 0, err);
        if (!st) st = sq_vk_buf_reserve(vk, &vk->y_host, ob, 1, err);
        if (!st) st = sq_vk_begin(vk, err);
        if (st) break;
        /* the slice's rows are row_base + r (see the dequant shaders) */
        vk_push push = w->push;
        push.rows = (uint32_t)nr;
        push.row_base = (uint32_t)a;
        uint64_t items = w->dequant_prog ? nr * w->dequant_items : w->family ? nr * K : nr * w->push.nchunks;
        uint32_t gx, gz;
        sq_vk_grid((items + vk->wg - 1) / vk->wg, &gx, &gz);
        push.grid_x = gx;
        st = sq_vk_bind(vk, pipe, &w->buf, lut_of(w), NULL, 0, &vk->y_dev, ob, &push, err);
        if (!st) vk->f.vkCmdDispatch(vk->cmd, gx, 1, gz);
        st = finish_with_output(vk, st, ob, err);
        if (!st) memcpy(out + (a - r0) * K, vk->y_host.map, ob);
    }
    return st;
}

/* ---------------- integer-dot GEMVs ---------------- */
/* gemv_q8.comp: activations in blocks of 32 with one scale and `limbs` int8
 * limbs per value; 1 limb is the q8 rounding, 4 limbs the exact-activation
 * GEMV that takes the float kernel's place for T = 1 (sq_vk_limbs_used). */
#define LIMBS_EXACT 4

static int idot_codes(const sq_vk *vk, const sq_vk_tensor *w) {
    return vk->has_dot && w->family == 0 && !w->lut_values && (w->spec[1] == 4 || w->spec[1] == 8);
}

int sq_vk_q8_supported(const sq_vk *vk, const sq_vk_tensor *w) { return idot_codes(vk, w); }

/* On by default on GPUs; CPU devices (lavapipe) emulate the packed dot
 * products and run the float kernel faster. SQUISH_VULKAN_LIMBS=0|1 decides. */
int sq_vk_limbs_used(const sq_vk *vk, const sq_vk_tensor *w) {
    const char *e = getenv("SQUISH_VULKAN_LIMBS");
    if (!idot_codes(vk, w) || (e && !strcmp(e, "0"))) return 0;
    return (e && !strcmp(e, "1")) || vk->props.deviceType != VK_PHYSICAL_DEVICE_TYPE_CPU;
}

VkDeviceSize sq_vk_idot_x_bytes(const sq_vk_tensor *w, uint32_t limbs) {
    return (VkDeviceSize)w->push.nchunks * (32 * limbs + 4 + 4 * limbs);
}

static sq_status record_gemv_idot(sq_vk *vk, const sq_vk_tensor *w, const vk_buf *x, const vk_buf *y, uint32_t limbs,
                                  sq_err *err) {
    uint32_t spec[VK_NSPEC];
    memcpy(spec, w->spec, sizeof spec);
    /* two chunks per invocation: the integer kernel does less work per chunk (measured best on an H100) */
    uint32_t rpw = vk->wg / threads_per_row_min_chunks(vk, w, 2);
    spec[5] = rpw;
    spec[6] = prefetch(w);
    VkPipeline pipe;
    /* rows per invocation (gemv_q8.comp's NR): 4, or 8 for the limb kernel where asked */
    const uint32_t nr = limbs == 1 ? 4 : limb_rows();
    sq_status st = sq_vk_pipeline(vk, limbs == 1 ? VK_PROG_GEMV_Q8 : nr == 8 ? VK_PROG_GEMV_LIMBS_NR8 : VK_PROG_GEMV_LIMBS,
                                  spec, &pipe, err);
    if (st) return st;
    vk_push push = w->push;
    push.T = 1;
    push.ystride = (uint32_t)w->rows;
    uint32_t gx, gz;
    sq_vk_grid((w->rows + nr * rpw - 1) / (nr * rpw), &gx, &gz);
    push.grid_x = gx;
    set_order(&push, (w->rows + nr * rpw - 1) / (nr * rpw));
    st = sq_vk_bind(vk, pipe, &w->buf, NULL, x, sq_vk_idot_x_bytes(w, limbs), y, w->rows * 4, &push, err);
    if (!st) vk->f.vkCmdDispatch(vk->cmd, gx, 1, gz);
    return st;
}

sq_status sq_vk_record_gemv_q8(sq_vk *vk, const sq_vk_tensor *w, const vk_buf *x, const vk_buf *y, sq_err *err) {
    return record_gemv_idot(vk, w, x, y, 1, err);
}

sq_status sq_vk_record_gemv_limbs(sq_vk *vk, const sq_vk_tensor *w, const vk_buf *x, const vk_buf *y, sq_err *err) {
    return record_gemv_idot(vk, w, x, y, LIMBS_EXACT, err);
}

/* Writes chunk k's limbs, scale and limb sums into the layout of gemv_q8.comp. */
static void put_chunk(uint32_t *out, uint64_t n, uint64_t k, uint32_t limbs, const int8_t (*l)[32], float d) {
    for (uint32_t j = 0; j < limbs; j++) {
        memcpy(out + 8 * n * j + 4 * k, l[j], 16);
        memcpy(out + 8 * n * j + 4 * n + 4 * k, l[j] + 16, 16);
        int32_t s = 0;
        for (int i = 0; i < 32; i++) s += l[j][i];
        memcpy(out + 8 * n * limbs + n + j * n + k, &s, 4);
    }
    memcpy(out + 8 * n * limbs + k, &d, 4);
}

/* x = d (l1 + l2 2^-7 + l3 2^-14 + l4 2^-21) with d = amax / 127, |l1| <= 127,
 * |l2..l4| <= 64: each value to within 2^-22 d. Returns 0 (use the float
 * kernel) where a block is not finite or so small that d would be subnormal. */
static int split_limbs(const float *x, uint64_t K, uint32_t *out) {
    const uint64_t nch = (K + 31) / 32;
    for (uint64_t k = 0; k < nch; k++) {
        uint64_t i0 = k * 32, i1 = i0 + 32 < K ? i0 + 32 : K;
        float amax = 0;
        for (uint64_t i = i0; i < i1; i++) {
            if (!isfinite(x[i])) return 0;
            amax = fabsf(x[i]) > amax ? fabsf(x[i]) : amax;
        }
        float d = amax / 127.0f;
        if (amax > 0 && !isnormal(d)) return 0;
        int8_t l[LIMBS_EXACT][32] = {{0}};
        for (uint64_t i = i0; d > 0 && i < i1; i++) {
            double t = (double)x[i] / (double)d; /* exact enough: |t| <= 127 (+ rounding of d) */
            for (int j = 0; j < LIMBS_EXACT; j++) {
                double q = nearbyint(t);
                if (j == 0 && fabs(q) > 127) q = q > 0 ? 127 : -127; /* amax / d rounds to 127 +- 1 ulp */
                l[j][i - i0] = (int8_t)q;
                t = (t - q) * 128.0;
            }
        }
        put_chunk(out, nch, k, LIMBS_EXACT, (const int8_t(*)[32])l, d);
    }
    return 1;
}

sq_status sq_vk_pack_idot(const sq_vk_tensor *w, const float *x, uint32_t limbs, uint32_t *out, int *held, sq_err *err) {
    const uint64_t K = w->cols, n = w->push.nchunks;
    float *xs = malloc(K * sizeof(float));
    if (!xs) return sq_err_set(err, SQ_ENOMEM, "out of memory");
    sq_xform_input(&w->xform, x, 1, xs);
    sq_status st = SQ_OK;
    *held = 1;
    if (limbs == LIMBS_EXACT) *held = split_limbs(xs, K, out);
    else { /* one limb: the rounding of the CPU's q8 kernels */
        sq_act_q8 a;
        st = sq_act_q8_init(&a, xs, K, err);
        for (uint64_t k = 0; !st && k < n; k++) put_chunk(out, n, k, 1, (const int8_t(*)[32])(a.q + 32 * k), a.d[k]);
        if (!st) sq_act_q8_free(&a);
    }
    free(xs);
    return st;
}

sq_status sq_vk_gemv_q8(sq_vk *vk, const sq_vk_tensor *w, const float *x, float *y, sq_err *err) {
    if (!sq_vk_q8_supported(vk, w))
        return sq_err_set(err, SQ_EUNSUPPORTED, "vulkan: no integer-activation GEMV for this codec or device");
    VkDeviceSize xb = sq_vk_idot_x_bytes(w, 1), yb = w->rows * 4;
    int held;
    sq_status st = reserve_io(vk, xb, yb, err);
    if (!st) st = sq_vk_pack_idot(w, x, 1, vk->x_host.map, &held, err);
    if (!st) st = begin_with_input(vk, xb, err);
    if (st) return st;
    st = finish_with_output(vk, sq_vk_record_gemv_q8(vk, w, &vk->x_dev, &vk->y_dev, err), yb, err);
    if (!st) {
        memcpy(y, vk->y_host.map, yb);
        sq_xform_output(&w->xform, y, 1);
    }
    return st;
}

/* ---------------- GEMVs of one vector, batched ---------------- */
#define SLOT_ALIGN 256 /* staging offsets of the batch's activations and results */

static VkDeviceSize align_up(VkDeviceSize v) { return (v + SLOT_ALIGN - 1) / SLOT_ALIGN * SLOT_ALIGN; }

/* Bytes of w's activations in either layout it may run with (T = 1). */
static VkDeviceSize gemv_x_bytes(const sq_vk *vk, const sq_vk_tensor *w) {
    VkDeviceSize f = (VkDeviceSize)xstride_of(w) * 4, l = sq_vk_limbs_used(vk, w) ? sq_vk_idot_x_bytes(w, LIMBS_EXACT) : 0;
    return f > l ? f : l;
}

/* One GEMV of the batch: where its activations and results lie in the host
 * staging buffers, and whether it runs the limb kernel. */
typedef struct gemv_slot {
    VkDeviceSize xo, yo;
    int limbs;
} gemv_slot;

sq_status sq_vk_gemv_many(sq_vk *vk, const sq_vk_tensor *const *w, int n, const float *x, float *const *y, sq_err *err) {
    gemv_slot *sl = malloc((size_t)n * sizeof *sl);
    if (!sl) return sq_err_set(err, SQ_ENOMEM, "out of memory");
    VkDeviceSize xsum = 0, ysum = 0, xmax = 0, ymax = 0, row_floats = 0;
    for (int i = 0; i < n; i++) {
        VkDeviceSize xb = gemv_x_bytes(vk, w[i]), yb = w[i]->rows * 4;
        sl[i] = (gemv_slot){xsum, ysum, 0};
        xsum += align_up(xb);
        ysum += align_up(yb);
        xmax = xb > xmax ? xb : xmax;
        ymax = yb > ymax ? yb : ymax;
        row_floats = xstride_of(w[i]) > row_floats ? xstride_of(w[i]) : row_floats;
    }
    float *row = malloc(row_floats * sizeof(float));
    sq_status st = row ? SQ_OK : sq_err_set(err, SQ_ENOMEM, "out of memory");
    if (!st) st = sq_vk_buf_reserve(vk, &vk->x_host, xsum, 1, err);
    if (!st) st = sq_vk_buf_reserve(vk, &vk->x_dev, xmax, 0, err);
    if (!st) st = sq_vk_buf_reserve(vk, &vk->y_dev, ymax, 0, err);
    if (!st) st = sq_vk_buf_reserve(vk, &vk->y_host, ysum, 1, err);
    /* activations: the exact limbs where the limb kernel runs and they hold x, else floats */
    for (int i = 0; !st && i < n; i++) {
        uint8_t *dst = (uint8_t *)vk->x_host.map + sl[i].xo;
        if (sq_vk_limbs_used(vk, w[i])) st = sq_vk_pack_idot(w[i], x, LIMBS_EXACT, (uint32_t *)dst, &sl[i].limbs, err);
        if (!st && !sl[i].limbs) pack_float_x(w[i], x, 1, (float *)dst, row);
    }
    free(row);
    if (!st) st = sq_vk_begin(vk, err);
    if (st) {
        free(sl);
        return st;
    }
    /* one submission: per tensor, activations in, the GEMV, results out */
    for (int i = 0; !st && i < n; i++) {
        VkDeviceSize xb = sl[i].limbs ? sq_vk_idot_x_bytes(w[i], LIMBS_EXACT) : (VkDeviceSize)xstride_of(w[i]) * 4;
        VkBufferCopy cx = {sl[i].xo, 0, xb}, cy = {0, sl[i].yo, w[i]->rows * 4};
        vk->f.vkCmdCopyBuffer(vk->cmd, vk->x_host.buf, vk->x_dev.buf, 1, &cx);
        sq_vk_barrier(vk);
        st = sl[i].limbs ? sq_vk_record_gemv_limbs(vk, w[i], &vk->x_dev, &vk->y_dev, err)
                         : sq_vk_record_gemv(vk, w[i], &vk->x_dev, &vk->y_dev, 1, err);
        sq_vk_barrier(vk);
        vk->f.vkCmdCopyBuffer(vk->cmd, vk->y_dev.buf, vk->y_host.buf, 1, &cy);
        sq_vk_barrier(vk);
    }
    st = finish(vk, st, err);
    for (int i = 0; !st && i < n; i++) {
        memcpy(y[i], (uint8_t *)vk->y_host.map + sl[i].yo, w[i]->rows * 4);
        sq_xform_output(&w[i]->xform, y[i], 1); /* output links, on the host like the input ones */
    }
    free(sl);
    return st;
}
