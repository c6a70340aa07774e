/* Benchmark kernels: a plain copy (the bandwidth baseline) and back-to-back
 * GEMVs, timed with the queue's timestamps. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vk_internal.h"

#define BATCH 256 /* dispatches per submission */

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct timer {
    VkQueryPool pool;
    double host0;
} timer;

static sq_status timer_init(sq_vk *vk, timer *t, sq_err *err) {
    t->pool = VK_NULL_HANDLE;
    if (!vk->timestamp_bits) return SQ_OK;
    VkQueryPoolCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO, .queryType = VK_QUERY_TYPE_TIMESTAMP,
                                .queryCount = 2};
    VkResult r = vk->f.vkCreateQueryPool(vk->dev, &ci, NULL, &t->pool);
    return r ? sq_vk_fail(err, r, "vkCreateQueryPool") : SQ_OK;
}

static void timer_start(sq_vk *vk, timer *t) {
    t->host0 = now();
    if (!t->pool) return;
    vk->f.vkCmdResetQueryPool(vk->cmd, t->pool, 0, 2);
    vk->f.vkCmdWriteTimestamp(vk->cmd, VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, t->pool, 0);
}

static void timer_stop(sq_vk *vk, timer *t) {
    if (t->pool) vk->f.vkCmdWriteTimestamp(vk->cmd, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, t->pool, 1);
}

/* Seconds between start and stop (after the submission has completed). */
static sq_status timer_read(sq_vk *vk, timer *t, double *sec, sq_err *err) {
    if (!t->pool) {
        *sec = now() - t->host0;
        return SQ_OK;
    }
    uint64_t ts[2];
    VkResult r = vk->f.vkGetQueryPoolResults(vk->dev, t->pool, 0, 2, sizeof ts, ts, sizeof ts[0],
                                             VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT);
    if (r) return sq_vk_fail(err, r, "vkGetQueryPoolResults");
    uint64_t mask = vk->timestamp_bits >= 64 ? ~0ull : (1ull << vk->timestamp_bits) - 1;
    *sec = (double)((ts[1] - ts[0]) & mask) * vk->props.limits.timestampPeriod * 1e-9;
    return SQ_OK;
}

/* Stops the timer, ends the recording (also after a failed one), runs it and
 * reads the seconds. */
static sq_status timer_finish(sq_vk *vk, timer *t, sq_status st, double *sec, sq_err *err) {
    timer_stop(vk, t);
    if (st) {
        vk->f.vkEndCommandBuffer(vk->cmd);
        return st;
    }
    st = sq_vk_submit_wait(vk, err);
    vk->bench_done = now();
    return st ? st : timer_read(vk, t, sec, err);
}

/* Seconds of back-to-back untimed calls before a timing. GPUs lower their
 * clocks when idle (an H100 went from 1980 to 345 MHz after about 1.5 s
 * without work, e.g. while the host encoded the next scheme) and raise them
 * only after a few hundred ms of steady load: timings taken sooner ran up
 * to 5x slow, erratically (issue 22). So 0.5 s of warm-up where the device
 * may have been idle (more than 0.1 s since the last benchmark submission),
 * none otherwise; SQUISH_BENCH_VK_WARM=S sets the 0.5. */
static double warm_seconds(const sq_vk *vk) {
    const char *e = getenv("SQUISH_BENCH_VK_WARM");
    double w = e && *e ? atof(e) : 0.5;
    return vk->bench_done > 0 && now() - vk->bench_done < 0.1 ? 0 : w;
}

static void timer_free(sq_vk *vk, timer *t) {
    if (t->pool) vk->f.vkDestroyQueryPool(vk->dev, t->pool, NULL);
}

sq_status sq_vk_bench_copy(sq_vk *vk, uint64_t bytes, int reps, double *gbs, sq_err *err) {
    bytes = bytes / 16 * 16;
    vk_buf src = {0}, dst = {0};
    timer tm;
    sq_status st = timer_init(vk, &tm, err);
    if (!st) st = sq_vk_buf_create(vk, bytes, 0, &src, err);
    if (!st) st = sq_vk_buf_create(vk, bytes, 0, &dst, err);
    uint32_t spec[VK_NSPEC] = {0};
    VkPipeline pipe;
    if (!st) st = sq_vk_pipeline(vk, VK_PROG_COPY, spec, &pipe, err);
    double total = 0, warm = warm_seconds(vk), t0 = now();
    /* untimed warm-up rounds (one, or of one call each for warm_seconds), then the timed one */
    int warming = 1;
    for (int round = 0; !st && warming; round++) {
        warming = round == 0 || now() - t0 < warm;
        st = sq_vk_begin(vk, err);
        if (st) break;
        int n = warming ? 1 : reps;
        uint64_t words = bytes / 16, groups = (words + vk->wg - 1) / vk->wg;
        vk_push push = {.T = (uint32_t)words, .grid_x = (uint32_t)(groups < 65535 ? groups : 65535)};
        timer_start(vk, &tm);
        for (int i = 0; !st && i < n; i++) {
            st = sq_vk_bind(vk, pipe, NULL, NULL, &src, bytes, &dst, bytes, &push, err);
            if (!st) vk->f.vkCmdDispatch(vk->cmd, push.grid_x, 1, 1);
            sq_vk_barrier(vk);
        }
        double s = 0;
        st = timer_finish(vk, &tm, st, &s, err);
        if (!warming) total = s;
    }
    if (!st) *gbs = 2.0 * (double)bytes * reps / total / 1e9;
    sq_vk_buf_free(vk, &src);
    sq_vk_buf_free(vk, &dst);
    timer_free(vk, &tm);
    return st;
}

/* Records a read of every 16-byte word of w's buffer (shaders/read.comp),
 * four words per invocation. */
static sq_status record_read(sq_vk *vk, const sq_vk_tensor *w, const vk_buf *y, sq_err *err) {
    uint32_t spec[VK_NSPEC] = {0};
    VkPipeline pipe;
    sq_status st = sq_vk_pipeline(vk, VK_PROG_READ, spec, &pipe, err);
    if (st) return st;
    uint64_t words = w->buf.size / 16, groups = (words + 4 * vk->wg - 1) / (4 * vk->wg);
    vk_push push = {.T = (uint32_t)words, .grid_x = (uint32_t)(groups < 65535 ? groups : 65535), .pad0 = 0x9E3779B9u};
    st = sq_vk_bind(vk, pipe, &w->buf, NULL, NULL, 0, y, 4, &push, err);
    if (!st) vk->f.vkCmdDispatch(vk->cmd, push.grid_x, 1, 1);
    return st;
}

sq_status sq_vk_bench_gemv(sq_vk *vk, sq_vk_tensor *const *w, int n, int reps, int kernel, double *seconds, sq_err *err) {
    uint64_t xs = 16, ys = 16;
    const int q8 = kernel == SQ_VK_BENCH_Q8;
    /* the kernel sq_vk_matmul runs for T = 1: limbs (4) where it would, else float (0); or q8 (1) */
    const uint32_t limbs = q8 ? 1 : kernel == SQ_VK_BENCH_GEMV && sq_vk_limbs_used(vk, w[0]) ? 4 : 0;
    for (int i = 0; kernel != SQ_VK_BENCH_READ && i < n; i++) {
        if (q8 && !sq_vk_q8_supported(vk, w[i])) return sq_err_set(err, SQ_EUNSUPPORTED, "vulkan: no q8 GEMV here");
        if ((limbs == 4) != (!q8 && sq_vk_limbs_used(vk, w[i])))
            return sq_err_set(err, SQ_EUSAGE, "vulkan: benchmark tensors of different kernels");
        uint64_t a = limbs ? sq_vk_idot_x_bytes(w[i], limbs) : (uint64_t)w[i]->push.nchunks * 32 * 4, b = w[i]->rows * 4;
        xs = a > xs ? a : xs;
        ys = b > ys ? b : ys;
    }
    timer tm;
    sq_status st = timer_init(vk, &tm, err);
    if (!st) st = sq_vk_buf_reserve(vk, &vk->x_host, xs, 1, err);
    if (!st) st = sq_vk_buf_reserve(vk, &vk->x_dev, xs, 0, err);
    if (!st) st = sq_vk_buf_reserve(vk, &vk->y_dev, ys, 0, err);
    if (st) {
        timer_free(vk, &tm);
        return st;
    }
    /* activations: floats, or the integer layouts packed from such floats */
    const uint64_t nx = limbs ? w[0]->cols : xs / 4;
    float *xv = limbs ? malloc(nx * sizeof(float)) : vk->x_host.map;
    if (!xv) st = sq_err_set(err, SQ_ENOMEM, "out of memory");
    for (uint64_t i = 0; !st && i < nx; i++) xv[i] = (float)((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
    if (limbs) {
        int held;
        if (!st) st = sq_vk_pack_idot(w[0], xv, limbs, vk->x_host.map, &held, err);
        free(xv);
    }
    if (!st) st = sq_vk_begin(vk, err);
    if (!st) {
        VkBufferCopy c = {0, 0, xs};
        vk->f.vkCmdCopyBuffer(vk->cmd, vk->x_host.buf, vk->x_dev.buf, 1, &c);
        sq_vk_barrier(vk);
        st = sq_vk_submit_wait(vk, err);
    }
    double total = 0, warm = warm_seconds(vk), t0 = now();
    long done = 0, want = (long)reps * n;
    /* the first rounds warm up (pipelines, clocks): one of n calls, then batches of
     * calls for warm_seconds; the calls of later rounds are timed */
    int warming = 1;
    for (int round = 0; !st && (warming || done < want); round++) {
        warming = round == 0 || now() - t0 < warm;
        long k = warming ? (round == 0 ? n : BATCH) : (want - done < BATCH ? want - done : BATCH);
        st = sq_vk_begin(vk, err);
        if (st) break;
        timer_start(vk, &tm);
        for (long i = 0; !st && i < k; i++) {
            const sq_vk_tensor *t = w[(done + i) % n];
            st = kernel == SQ_VK_BENCH_READ ? record_read(vk, t, &vk->y_dev, err)
                 : q8                       ? sq_vk_record_gemv_q8(vk, t, &vk->x_dev, &vk->y_dev, err)
                 : limbs == 4               ? sq_vk_record_gemv_limbs(vk, t, &vk->x_dev, &vk->y_dev, err)
                                            : sq_vk_record_gemv(vk, t, &vk->x_dev, &vk->y_dev, 1, err);
            sq_vk_barrier(vk); /* one call after another, as in a decode step */
        }
        double s = 0;
        st = timer_finish(vk, &tm, st, &s, err);
        if (!warming && !st) {
            total += s;
            done += k;
        }
    }
    if (!st) *seconds = total / (double)want;
    timer_free(vk, &tm);
    return st;
}
