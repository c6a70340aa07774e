/* Per-segment GPU timestamps of a replayed command buffer (vk_profile.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vk_profile.h"

#define MAX_KINDS 64

struct sq_vk_prof {
    sq_vk *vk;
    VkQueryPool pool;
    uint32_t max_marks, nmarks; /* queries: nmarks + 1 (the start) */
    uint32_t *seg_kind;         /* [max_marks]: the kind of segment i */
    uint64_t *ts;               /* [max_marks + 1]: the last read */
    sq_vk_prof_row rows[MAX_KINDS];
    uint32_t nrows, subs;
    const char *note;
};

int sq_vk_prof_wanted(void) {
    const char *e = getenv("SQUISH_VULKAN_PROFILE");
    return e && !strcmp(e, "1");
}

sq_status sq_vk_prof_create(sq_vk *vk, uint32_t max_marks, sq_vk_prof **out, sq_err *err) {
    sq_vk_prof *p = calloc(1, sizeof *p);
    if (p) {
        p->seg_kind = calloc(max_marks ? max_marks : 1, sizeof *p->seg_kind);
        p->ts = calloc((size_t)max_marks + 1, sizeof *p->ts);
    }
    if (!p || !p->seg_kind || !p->ts) {
        sq_vk_prof_free(p);
        return sq_err_set(err, SQ_ENOMEM, "out of memory");
    }
    p->vk = vk;
    p->max_marks = max_marks;
    if (!vk->timestamp_bits || vk->props.limits.timestampPeriod <= 0) {
        p->note = "no timestamps on this device's compute queue (timestampValidBits 0)";
    } else {
        VkQueryPoolCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO,
                                    .queryType = VK_QUERY_TYPE_TIMESTAMP, .queryCount = max_marks + 1};
        VkResult r = vk->f.vkCreateQueryPool(vk->dev, &ci, NULL, &p->pool);
        if (r) {
            sq_vk_prof_free(p);
            return sq_vk_fail(err, r, "vkCreateQueryPool");
        }
    }
    *out = p;
    return SQ_OK;
}

void sq_vk_prof_free(sq_vk_prof *p) {
    if (!p) return;
    if (p->pool) p->vk->f.vkDestroyQueryPool(p->vk->dev, p->pool, NULL);
    free(p->seg_kind);
    free(p->ts);
    free(p);
}

void sq_vk_prof_begin(sq_vk_prof *p, VkCommandBuffer cmd) {
    p->nmarks = 0;
    if (!p->pool) return;
    p->vk->f.vkCmdResetQueryPool(cmd, p->pool, 0, p->max_marks + 1);
    p->vk->f.vkCmdWriteTimestamp(cmd, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, p->pool, 0);
}

static uint32_t kind_index(sq_vk_prof *p, const char *kind) {
    for (uint32_t i = 0; i < p->nrows; i++)
        if (!strcmp(p->rows[i].kind, kind)) return i;
    if (p->nrows == MAX_KINDS) return MAX_KINDS - 1; /* the last row takes the rest */
    snprintf(p->rows[p->nrows].kind, sizeof p->rows[0].kind, "%s", p->nrows == MAX_KINDS - 1 ? "other" : kind);
    return p->nrows++;
}

void sq_vk_prof_mark(sq_vk_prof *p, VkCommandBuffer cmd, const char *kind) {
    if (p->nmarks == p->max_marks) return;
    uint32_t k = kind_index(p, kind);
    p->seg_kind[p->nmarks++] = k;
    p->rows[k].count++; /* per recording: dispatches of this kind per submission */
    /* bottom of pipe: written once every command before has completed */
    if (p->pool) p->vk->f.vkCmdWriteTimestamp(cmd, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, p->pool, p->nmarks);
}

sq_status sq_vk_prof_collect(sq_vk_prof *p, sq_err *err) {
    if (!p->pool || !p->nmarks) return SQ_OK;
    sq_vk *vk = p->vk;
    VkResult r = vk->f.vkGetQueryPoolResults(vk->dev, p->pool, 0, p->nmarks + 1, (size_t)(p->nmarks + 1) * 8, p->ts, 8,
                                             VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT);
    if (r) return sq_vk_fail(err, r, "vkGetQueryPoolResults");
    const uint64_t mask = vk->timestamp_bits >= 64 ? ~0ull : (1ull << vk->timestamp_bits) - 1;
    const double ms = vk->props.limits.timestampPeriod * 1e-6;
    for (uint32_t i = 0; i < p->nmarks; i++) p->rows[p->seg_kind[i]].ms += (double)((p->ts[i + 1] - p->ts[i]) & mask) * ms;
    p->subs++;
    return SQ_OK;
}

void sq_vk_prof_reset(sq_vk_prof *p) {
    for (uint32_t i = 0; i < p->nrows; i++) p->rows[i].ms = 0;
    p->subs = 0;
}

uint32_t sq_vk_prof_rows(const sq_vk_prof *p, const sq_vk_prof_row **rows, uint32_t *subs, const char **note) {
    *rows = p->rows;
    *subs = p->subs;
    *note = p->note;
    return p->nrows;
}
