/* The decode step on the device (vk_decode.h): buffers, the one-time
 * recording of a token's commands, and its replay. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vk_decode.h"
#include "vk_internal.h"
#include "vk_lattice.h"
#include "vk_profile.h"

#define NONE 0xFFFFFFFFu
#define ALIGN_WORDS 64u  /* 256 bytes: every region starts at a storage-buffer offset alignment */
#define HEADER_WORDS 64u /* activations' word 0: the position; the residual x follows */

/* Operations of shaders/decode.comp (specialization constant 1). */
enum { OP_NORM, OP_ATTN = 2, OP_SILU, OP_PACK }; /* 1 was the separate rotary step, now part of OP_ATTN */

/* Mirrors Push in shaders/decode.comp; offsets in words. */
typedef struct dec_push {
    uint32_t n, src, dst, dstp;
    uint32_t lay, nch, add, addb;
    uint32_t wo, q, k, v;
    uint32_t nh, nkv, hd, cbase;
    uint32_t bq, bk, bv, fl;
} dec_push;
_Static_assert(sizeof(dec_push) == sizeof(vk_push), "decode.comp's push constants fill the shared 80-byte range");

struct sq_vk_decode {
    sq_vk *vk;
    const sq_rt_model *m;
    uint32_t max_seq, ndispatch;
    vk_buf act, cst, kc, vc, in_host, out_host;
    VkCommandBuffer cmd;
    VkDescriptorPool pool;
    /* word offsets in act */
    uint32_t o_x, o_xn, o_q, o_k, o_v, o_att, o_tmp, o_g, o_u, o_sc, o_xp, o_logits;
    /* word offsets in cst: norms, rotary table ([max_seq][head_dim/2] cos, sin pairs), biases (NONE: absent) */
    uint32_t c_attn_norm, c_ffn_norm, c_final, c_rope;
    uint32_t *c_bias; /* [layer * SQ_LIN_COUNT + i] */
    /* input links of each product ([layer * SQ_LIN_COUNT + i], the output layer last): perm, in_scale (NONE: absent) */
    uint32_t *c_perm, *c_iscale;
    uint32_t xp_key;  /* recording: the layout the packed GEMV input holds (NONE: none valid) */
    sq_vk_prof *prof; /* $SQUISH_VULKAN_PROFILE=1: timestamps after each dispatch (else NULL) */
};

int sq_vk_decode_wanted(void) {
    const char *e = getenv("SQUISH_VULKAN_DECODE");
    return !(e && !strcmp(e, "0"));
}

uint32_t sq_vk_decode_dispatches(const sq_vk_decode *d) { return d->ndispatch; }

uint32_t sq_vk_decode_profile(const sq_vk_decode *d, const sq_vk_prof_row **rows, uint32_t *steps, const char **note) {
    *rows = NULL;
    *steps = 0;
    *note = NULL;
    return d->prof ? sq_vk_prof_rows(d->prof, rows, steps, note) : 0;
}

void sq_vk_decode_profile_reset(sq_vk_decode *d) {
    if (d->prof) sq_vk_prof_reset(d->prof);
}

static uint32_t take(uint32_t *top, uint64_t words) {
    uint32_t o = *top;
    *top += (uint32_t)((words + ALIGN_WORDS - 1) / ALIGN_WORDS * ALIGN_WORDS);
    return o;
}

static uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

/* GEMV input layout of w (pack_float_x in vk_ops.c): interleaved by chunk for
 * the codes family, plain otherwise; and its chunks. */
static uint32_t layout_key(const sq_vk_tensor *w) { return (w->family == 0 ? 0x80000000u : 0) | w->push.nchunks; }

static void set_pack(dec_push *p, uint32_t dstp, const sq_vk_tensor *w) {
    p->dstp = dstp;
    p->lay = w->family == 0;
    p->nch = w->push.nchunks;
}

static vk_buf view(const sq_vk_decode *d, uint32_t off, uint64_t words) {
    vk_buf v = d->act;
    v.map = NULL;
    v.off = (VkDeviceSize)off * 4;
    v.size = words * 4;
    return v;
}

/* Positions of the cache whose attention scores fit in shared memory next
 * to the reductions' (decode.comp's SMAX), or 1: scores through device memory
 * (also with SQUISH_VULKAN_SCORES=global; the same results either way). */
static uint32_t shared_scores(const sq_vk *vk, uint32_t max_seq) {
    const char *e = getenv("SQUISH_VULKAN_SCORES");
    if (e && !strcmp(e, "global")) return 1;
    const uint64_t room = vk->props.limits.maxComputeSharedMemorySize;
    const uint64_t red = (uint64_t)vk->wg * 20; /* red[] and red4[] */
    return room >= 1024 + red && (uint64_t)max_seq * 4 <= room - 1024 - red ? max_seq : 1;
}

/* Profiling: a timestamp closing the segment just recorded. */
static void mark(sq_vk_decode *d, const char *kind) {
    if (d->prof) sq_vk_prof_mark(d->prof, d->vk->cmd, kind);
}

static const char *op_name(int opc) {
    return opc == OP_NORM ? "norm" : opc == OP_ATTN ? "attention" : opc == OP_SILU ? "silu" : "pack";
}

/* Invocations of the norm's one workgroup: enough for one or two values each
 * (its sums are a chain of dependent loads otherwise: the whole vector
 * through vk->wg invocations), up to 1024 and the device's limits (its
 * shared arrays take 20 bytes an invocation); a power of two, at least
 * vk->wg. SQUISH_VULKAN_NORM_WG sets it (within those bounds). */
static uint32_t norm_wg(const sq_vk_decode *d) {
    const VkPhysicalDeviceLimits *lim = &d->vk->props.limits;
    uint32_t top = lim->maxComputeWorkGroupInvocations < lim->maxComputeWorkGroupSize[0] ? lim->maxComputeWorkGroupInvocations
                                                                                           : lim->maxComputeWorkGroupSize[0];
    if (top > 1024) top = 1024;
    const char *e = getenv("SQUISH_VULKAN_NORM_WG");
    uint32_t want = e && *e ? (uint32_t)atoi(e) : d->m->cfg.hidden, w = d->vk->wg;
    while (w < want && w * 2 <= top && (uint64_t)w * 2 * 20 + 1024 <= lim->maxComputeSharedMemorySize) w *= 2;
    return w;
}

static sq_status op(sq_vk_decode *d, int opc, const dec_push *pp, uint32_t groups, sq_err *err) {
    sq_vk *vk = d->vk;
    uint32_t spec[VK_NSPEC] = {0};
    spec[1] = (uint32_t)opc;
    spec[2] = opc == OP_ATTN ? shared_scores(vk, d->max_seq) : 1;
    VkPipeline pipe;
    sq_status st = sq_vk_pipeline_wg(vk, VK_PROG_DECODE, spec, opc == OP_NORM ? norm_wg(d) : vk->wg, &pipe, err);
    vk_push raw;
    memcpy(&raw, pp, sizeof raw);
    if (!st) st = sq_vk_bind(vk, pipe, &d->act, &d->cst, &d->kc, d->kc.size, &d->vc, d->vc.size, &raw, err);
    if (st) return st;
    vk->f.vkCmdDispatch(vk->cmd, groups ? groups : 1, 1, 1);
    mark(d, op_name(opc));
    return SQ_OK;
}

static uint32_t groups_for(const sq_vk_decode *d, uint64_t items) { return (uint32_t)((items + d->vk->wg - 1) / d->vk->wg); }

/* y (at out) = w x for the vector x at src (plain, w->cols values): packed
 * into the GEMV's layout first unless the packed input already holds it. */
static sq_status gemv(sq_vk_decode *d, uint32_t id, const sq_vk_tensor *w, uint32_t src, uint32_t out, sq_err *err) {
    sq_vk *vk = d->vk;
    const uint32_t lattice_in = w->family == SQ_VK_FAMILY_LATTICE && w->rht[0];
    const int links = d->c_perm[id] != NONE || d->c_iscale[id] != NONE;
    const uint32_t key = links ? NONE : layout_key(w); /* an input mapped through links is this product's alone */
    sq_status st = SQ_OK;
    if (links || key != d->xp_key) {
        sq_vk_barrier(vk); /* GEMVs before may still read the packed input */
        dec_push p = {.n = (uint32_t)w->cols, .src = src, .dst = NONE, .wo = d->c_perm[id], .addb = d->c_iscale[id]};
        set_pack(&p, d->o_xp, w);
        if ((st = op(d, OP_PACK, &p, groups_for(d, (uint64_t)p.nch * 32), err))) return st;
        sq_vk_barrier(vk);
        d->xp_key = key;
    } else if (lattice_in)
        sq_vk_barrier(vk); /* its Hadamard transform rewrites the input in place */
    vk_buf x = view(d, d->o_xp, (uint64_t)w->push.nchunks * 32), y = view(d, out, w->rows);
    st = sq_vk_record_gemv(vk, w, &x, &y, 1, err);
    if (lattice_in) d->xp_key = NONE;
    if (d->prof) {
        char kind[48];
        snprintf(kind, sizeof kind, "gemv %llux%llu %s", (unsigned long long)w->rows, (unsigned long long)w->cols,
                 w->codec ? w->codec->name : "?");
        mark(d, kind);
    }
    return st;
}

static uint32_t bias_at(const sq_vk_decode *d, uint32_t l, int i) { return d->c_bias[(size_t)l * SQ_LIN_COUNT + i]; }

/* RMSNorm of x (after adding the vector at add and its bias, when given)
 * into xn and the packed input of w. */
static sq_status norm(sq_vk_decode *d, uint32_t add, uint32_t addb, uint32_t wo, const sq_vk_tensor *w, sq_err *err) {
    dec_push p = {.n = d->m->cfg.hidden, .src = d->o_x, .dst = d->o_xn, .add = add, .addb = addb, .wo = wo,
                  .fl = f32_bits(d->m->cfg.eps)};
    set_pack(&p, d->o_xp, w);
    d->xp_key = layout_key(w); /* (a product with input links repacks anyway) */
    sq_status st = op(d, OP_NORM, &p, 1, err);
    sq_vk_barrier(d->vk);
    return st;
}

static sq_status record_layer(sq_vk_decode *d, uint32_t l, sq_err *err) {
    const sq_rt_config *c = &d->m->cfg;
    const sq_rt_layer *L = &d->m->layers[l];
    sq_vk_tensor *const *g = L->gpu;
    const uint32_t H = c->hidden, hd = c->head_dim, kvd = c->n_kv_heads * hd;
    const uint32_t cbase = l * d->max_seq * kvd;
    sq_status st = norm(d, l ? d->o_tmp : NONE, l ? bias_at(d, l - 1, SQ_LIN_DOWN) : NONE, d->c_attn_norm + l * H,
                        g[SQ_LIN_Q], err);
    if (!st) st = gemv(d, l * SQ_LIN_COUNT + SQ_LIN_Q, g[SQ_LIN_Q], d->o_xn, d->o_q, err);
    if (!st) st = gemv(d, l * SQ_LIN_COUNT + SQ_LIN_K, g[SQ_LIN_K], d->o_xn, d->o_k, err);
    if (!st) st = gemv(d, l * SQ_LIN_COUNT + SQ_LIN_V, g[SQ_LIN_V], d->o_xn, d->o_v, err);
    if (st) return st;
    sq_vk_barrier(d->vk);
    /* rotary embeddings, the cache append and attention in one dispatch (decode.comp op_attn) */
    dec_push a = {.n = d->max_seq, .q = d->o_q, .src = d->o_k, .v = d->o_v, .k = d->o_sc, .dst = d->o_att, .nh = c->n_heads,
                  .nkv = c->n_kv_heads, .hd = hd, .cbase = cbase, .wo = d->c_rope, .bq = bias_at(d, l, SQ_LIN_Q),
                  .bk = bias_at(d, l, SQ_LIN_K), .bv = bias_at(d, l, SQ_LIN_V), .fl = f32_bits(1.0f / sqrtf((float)hd))};
    set_pack(&a, d->o_xp, g[SQ_LIN_O]);
    d->xp_key = layout_key(g[SQ_LIN_O]);
    if ((st = op(d, OP_ATTN, &a, c->n_heads, err))) return st;
    sq_vk_barrier(d->vk);
    if ((st = gemv(d, l * SQ_LIN_COUNT + SQ_LIN_O, g[SQ_LIN_O], d->o_att, d->o_tmp, err))) return st;
    sq_vk_barrier(d->vk);
    st = norm(d, d->o_tmp, bias_at(d, l, SQ_LIN_O), d->c_ffn_norm + l * H, g[SQ_LIN_GATE], err);
    if (!st) st = gemv(d, l * SQ_LIN_COUNT + SQ_LIN_GATE, g[SQ_LIN_GATE], d->o_xn, d->o_g, err);
    if (!st) st = gemv(d, l * SQ_LIN_COUNT + SQ_LIN_UP, g[SQ_LIN_UP], d->o_xn, d->o_u, err);
    if (st) return st;
    sq_vk_barrier(d->vk);
    dec_push s = {.n = c->inter, .src = d->o_g, .add = d->o_u, .dst = d->o_g, .bq = bias_at(d, l, SQ_LIN_GATE),
                  .bk = bias_at(d, l, SQ_LIN_UP)};
    set_pack(&s, d->o_xp, g[SQ_LIN_DOWN]);
    d->xp_key = layout_key(g[SQ_LIN_DOWN]);
    uint64_t items = (uint64_t)s.nch * 32 > c->inter ? (uint64_t)s.nch * 32 : c->inter;
    if ((st = op(d, OP_SILU, &s, groups_for(d, items), err))) return st;
    sq_vk_barrier(d->vk);
    if ((st = gemv(d, l * SQ_LIN_COUNT + SQ_LIN_DOWN, g[SQ_LIN_DOWN], d->o_g, d->o_tmp, err))) return st;
    sq_vk_barrier(d->vk);
    return SQ_OK;
}

/* One token's commands: the header and embedding row in, every layer, the
 * final norm and output layer, the logits out. */
static sq_status record(sq_vk_decode *d, sq_err *err) {
    sq_vk *vk = d->vk;
    const sq_rt_config *c = &d->m->cfg;
    VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
    VkResult r = vk->f.vkBeginCommandBuffer(d->cmd, &bi);
    if (r) return sq_vk_fail(err, r, "recording the decode step");
    /* the GEMV and barrier helpers record into vk->cmd with sets from vk->dpool */
    VkCommandBuffer saved_cmd = vk->cmd;
    VkDescriptorPool saved_pool = vk->dpool;
    vk->cmd = d->cmd;
    vk->dpool = d->pool;
    if (d->prof) sq_vk_prof_begin(d->prof, vk->cmd);
    VkBufferCopy cin = {0, 0, (VkDeviceSize)(HEADER_WORDS + c->hidden) * 4};
    vk->f.vkCmdCopyBuffer(vk->cmd, d->in_host.buf, d->act.buf, 1, &cin);
    sq_vk_barrier(vk);
    mark(d, "copy in");
    d->xp_key = NONE;
    const uint64_t binds0 = vk->binds;
    sq_status st = SQ_OK;
    for (uint32_t l = 0; !st && l < c->n_layers; l++) st = record_layer(d, l, err);
    const uint32_t last = c->n_layers ? c->n_layers - 1 : 0;
    if (!st)
        st = norm(d, c->n_layers ? d->o_tmp : NONE, c->n_layers ? bias_at(d, last, SQ_LIN_DOWN) : NONE, d->c_final,
                  d->m->gpu_lm_head, err);
    if (!st) st = gemv(d, c->n_layers * SQ_LIN_COUNT, d->m->gpu_lm_head, d->o_xn, d->o_logits, err);
    if (!st) {
        sq_vk_barrier(vk);
        VkBufferCopy cout = {(VkDeviceSize)d->o_logits * 4, 0, (VkDeviceSize)c->vocab * 4};
        vk->f.vkCmdCopyBuffer(vk->cmd, d->act.buf, d->out_host.buf, 1, &cout);
        VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER, .srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT,
                              .dstAccessMask = VK_ACCESS_HOST_READ_BIT};
        vk->f.vkCmdPipelineBarrier(vk->cmd, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &mb, 0, NULL, 0,
                                   NULL);
        mark(d, "copy out");
    }
    d->ndispatch = (uint32_t)(vk->binds - binds0);
    vk->cmd = saved_cmd;
    vk->dpool = saved_pool;
    r = vk->f.vkEndCommandBuffer(d->cmd);
    if (!st && r) st = sq_vk_fail(err, r, "recording the decode step");
    return st;
}

/* Whether w keeps transform links the device step does not run: the
 * Hadamard links outside the lattice family (its own run on the device;
 * permutations and input scales run in the PACK operation). */
static int host_links(const sq_vk_tensor *w) {
    return w->xform.xf[SQ_XFORM_RHT_IN] || w->xform.xf[SQ_XFORM_RHT_OUT];
}

/* Why the model cannot decode on the device, or NULL. */
static const char *unsupported(const sq_rt_model *m) {
    const sq_rt_config *c = &m->cfg;
    if (!m->vk || !m->gpu_lm_head) return "the model's layers are not on the device";
    if (c->head_dim % 2 || !c->n_kv_heads || c->n_heads % c->n_kv_heads) return "an unsupported head layout";
    for (uint32_t l = 0; l < c->n_layers; l++)
        for (int i = 0; i < SQ_LIN_COUNT; i++)
            if (!m->layers[l].gpu[i] || host_links(m->layers[l].gpu[i]))
                return "a linear layer has Hadamard transforms that run on the host";
    if (host_links(m->gpu_lm_head)) return "the output layer has Hadamard transforms that run on the host";
    return NULL;
}

/* Product k: linear layer k % SQ_LIN_COUNT of block k / SQ_LIN_COUNT, the output layer last. */
static const sq_vk_tensor *tensor_at(const sq_rt_model *m, size_t k) {
    return k == (size_t)m->cfg.n_layers * SQ_LIN_COUNT ? m->gpu_lm_head : m->layers[k / SQ_LIN_COUNT].gpu[k % SQ_LIN_COUNT];
}

/* Norm weights, biases, the input links and the rotary table, as decode.comp reads them. */
static sq_status upload_constants(sq_vk_decode *d, sq_err *err) {
    const sq_rt_model *m = d->m;
    const sq_rt_config *c = &m->cfg;
    const uint32_t H = c->hidden, half = c->head_dim / 2, nl = c->n_layers;
    uint32_t top = 0;
    d->c_attn_norm = take(&top, (uint64_t)nl * H);
    d->c_ffn_norm = take(&top, (uint64_t)nl * H);
    d->c_final = take(&top, H);
    d->c_rope = take(&top, (uint64_t)d->max_seq * half * 2);
    d->c_bias = malloc(((size_t)nl * SQ_LIN_COUNT + 1) * sizeof *d->c_bias);
    if (!d->c_bias) return sq_err_set(err, SQ_ENOMEM, "out of memory");
    for (uint32_t l = 0; l < nl; l++)
        for (int i = 0; i < SQ_LIN_COUNT; i++)
            d->c_bias[(size_t)l * SQ_LIN_COUNT + i] =
                m->layers[l].bias[i] ? take(&top, sq_rt_linear_view(&m->layers[l], i)->rows) : NONE;
    const size_t nt = (size_t)nl * SQ_LIN_COUNT + 1;
    d->c_perm = malloc(nt * sizeof *d->c_perm);
    d->c_iscale = malloc(nt * sizeof *d->c_iscale);
    if (!d->c_perm || !d->c_iscale) return sq_err_set(err, SQ_ENOMEM, "out of memory");
    for (size_t k = 0; k < nt; k++) {
        const sq_tview *x = &tensor_at(m, k)->xform;
        d->c_perm[k] = sq_tview_perm(x) ? take(&top, x->cols) : NONE;
        d->c_iscale[k] = sq_tview_in_scale(x) ? take(&top, x->cols) : NONE;
    }
    float *h = calloc(top ? top : 1, sizeof(float));
    if (!h) return sq_err_set(err, SQ_ENOMEM, "out of memory for the decode step's constants");
    for (uint32_t l = 0; l < nl; l++) {
        memcpy(h + d->c_attn_norm + (size_t)l * H, m->layers[l].attn_norm, H * sizeof(float));
        memcpy(h + d->c_ffn_norm + (size_t)l * H, m->layers[l].ffn_norm, H * sizeof(float));
        for (int i = 0; i < SQ_LIN_COUNT; i++)
            if (m->layers[l].bias[i])
                memcpy(h + bias_at(d, l, i), m->layers[l].bias[i], sq_rt_linear_view(&m->layers[l], i)->rows * sizeof(float));
    }
    for (size_t k = 0; k < nt; k++) {
        const sq_tview *x = &tensor_at(m, k)->xform;
        if (d->c_perm[k] != NONE) memcpy(h + d->c_perm[k], sq_tview_perm(x), x->cols * sizeof(uint32_t));
        if (d->c_iscale[k] != NONE) memcpy(h + d->c_iscale[k], sq_tview_in_scale(x), x->cols * sizeof(float));
    }
    memcpy(h + d->c_final, m->final_norm, H * sizeof(float));
    for (uint32_t i = 0; i < half; i++) { /* sq_rt_step's float32 recipe */
        const float inv = 1.0f / powf(c->rope_theta, (float)(2 * i) / (float)c->head_dim);
        for (uint32_t pos = 0; pos < d->max_seq; pos++) {
            float ang = (float)pos * inv;
            h[d->c_rope + ((size_t)pos * half + i) * 2] = cosf(ang);
            h[d->c_rope + ((size_t)pos * half + i) * 2 + 1] = sinf(ang);
        }
    }
    sq_status st = sq_vk_buf_create(d->vk, (VkDeviceSize)top * 4, 0, &d->cst, err);
    if (!st) st = sq_vk_copy_in(d->vk, &d->cst, 0, h, (uint64_t)top * 4, err);
    free(h);
    return st;
}

sq_status sq_vk_decode_init(const sq_rt_model *m, uint32_t max_seq, sq_vk_decode **out, sq_err *err) {
    *out = NULL;
    const char *why = unsupported(m);
    if (why) return sq_err_set(err, SQ_EUNSUPPORTED, "vulkan: the decode step stays on the host: %s", why);
    if (!max_seq) return sq_err_set(err, SQ_EUSAGE, "vulkan: a KV cache of 0 positions");
    const sq_rt_config *c = &m->cfg;
    sq_vk_decode *d = calloc(1, sizeof *d);
    if (!d) return sq_err_set(err, SQ_ENOMEM, "out of memory");
    sq_vk *vk = m->vk;
    d->vk = vk;
    d->m = m;
    d->max_seq = max_seq;
    const uint64_t H = c->hidden, qd = (uint64_t)c->n_heads * c->head_dim, kvd = (uint64_t)c->n_kv_heads * c->head_dim;
    uint64_t xp = 0;
    for (uint32_t l = 0; l < c->n_layers; l++)
        for (int i = 0; i < SQ_LIN_COUNT; i++) {
            uint64_t n = (uint64_t)m->layers[l].gpu[i]->push.nchunks * 32;
            xp = n > xp ? n : xp;
        }
    xp = (uint64_t)m->gpu_lm_head->push.nchunks * 32 > xp ? (uint64_t)m->gpu_lm_head->push.nchunks * 32 : xp;
    uint32_t top = 0;
    take(&top, HEADER_WORDS);
    d->o_x = take(&top, H);
    d->o_xn = take(&top, H);
    d->o_q = take(&top, qd);
    d->o_k = take(&top, kvd);
    d->o_v = take(&top, kvd);
    d->o_att = take(&top, qd);
    d->o_tmp = take(&top, H);
    d->o_g = take(&top, c->inter);
    d->o_u = take(&top, c->inter);
    d->o_sc = take(&top, (uint64_t)c->n_heads * max_seq);
    d->o_xp = take(&top, xp);
    d->o_logits = take(&top, c->vocab);
    const VkDeviceSize cache = (VkDeviceSize)c->n_layers * max_seq * kvd * 4;
    sq_status st = upload_constants(d, err);
    if (!st) st = sq_vk_buf_create(vk, (VkDeviceSize)top * 4, 0, &d->act, err);
    if (!st) st = sq_vk_buf_create(vk, cache, 0, &d->kc, err);
    if (!st) st = sq_vk_buf_create(vk, cache, 0, &d->vc, err);
    if (!st) st = sq_vk_buf_create(vk, (VkDeviceSize)(HEADER_WORDS + H) * 4, 1, &d->in_host, err);
    if (!st) st = sq_vk_buf_create(vk, (VkDeviceSize)c->vocab * 4, 1, &d->out_host, err);
    if (!st) {
        VkCommandBufferAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO, .commandPool = vk->cmd_pool,
                                          .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY, .commandBufferCount = 1};
        VkResult r = vk->f.vkAllocateCommandBuffers(vk->dev, &ai, &d->cmd);
        if (r) st = sq_vk_fail(err, r, "vkAllocateCommandBuffers");
    }
    if (!st) { /* sets for every dispatch of a token: ~15 per layer, up to 3 per product on the lattice family */
        const uint32_t sets = 64 * (c->n_layers + 1);
        VkDescriptorPoolSize ps = {.type = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, .descriptorCount = sets * 4};
        VkDescriptorPoolCreateInfo dci = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO, .maxSets = sets,
                                          .poolSizeCount = 1, .pPoolSizes = &ps};
        VkResult r = vk->f.vkCreateDescriptorPool(vk->dev, &dci, NULL, &d->pool);
        if (r) st = sq_vk_fail(err, r, "vkCreateDescriptorPool");
    }
    if (!st && sq_vk_prof_wanted()) /* a mark per dispatch: at most ~15 per layer (norm, pack, GEMVs' own) */
        st = sq_vk_prof_create(vk, 32 * (c->n_layers + 1), &d->prof, err);
    if (!st) st = record(d, err);
    if (st) {
        sq_vk_decode_free(d);
        return st;
    }
    *out = d;
    return SQ_OK;
}

sq_status sq_vk_decode_step(sq_vk_decode *d, uint32_t pos, int32_t token, float *logits, sq_err *err) {
    sq_vk *vk = d->vk;
    const sq_rt_model *m = d->m;
    if (pos >= d->max_seq) return sq_err_set(err, SQ_EUSAGE, "the KV cache is full (%u positions)", d->max_seq);
    if (token < 0 || (uint32_t)token >= m->cfg.vocab)
        return sq_err_set(err, SQ_EUSAGE, "token id %d is outside the vocabulary", token);
    uint32_t *hdr = d->in_host.map;
    hdr[0] = pos;
    if (sq_decode_rows(&m->embed, (uint64_t)token, (uint64_t)token + 1, (float *)hdr + HEADER_WORDS))
        return sq_err_set(err, SQ_ENOMEM, "out of memory decoding an embedding row");
    sq_status st;
    VkSubmitInfo si = {.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO, .commandBufferCount = 1, .pCommandBuffers = &d->cmd};
    VkResult r = vk->f.vkQueueSubmit(vk->queue, 1, &si, vk->fence);
    if (!r) r = vk->f.vkWaitForFences(vk->dev, 1, &vk->fence, VK_TRUE, UINT64_MAX);
    if (!r) r = vk->f.vkResetFences(vk->dev, 1, &vk->fence);
    if (r) return sq_vk_fail(err, r, "running the decode step");
    if (d->prof && (st = sq_vk_prof_collect(d->prof, err))) return st;
    memcpy(logits, d->out_host.map, (size_t)m->cfg.vocab * sizeof(float));
    return SQ_OK;
}

void sq_vk_decode_free(sq_vk_decode *d) {
    if (!d) return;
    sq_vk *vk = d->vk;
    if (d->cmd) vk->f.vkFreeCommandBuffers(vk->dev, vk->cmd_pool, 1, &d->cmd);
    if (d->pool) vk->f.vkDestroyDescriptorPool(vk->dev, d->pool, NULL);
    sq_vk_buf_free(vk, &d->act);
    sq_vk_buf_free(vk, &d->cst);
    sq_vk_buf_free(vk, &d->kc);
    sq_vk_buf_free(vk, &d->vc);
    sq_vk_buf_free(vk, &d->in_host);
    sq_vk_buf_free(vk, &d->out_host);
    sq_vk_prof_free(d->prof);
    free(d->c_bias);
    free(d->c_perm);
    free(d->c_iscale);
    free(d);
}

sq_status sq_vk_decode_attach(const sq_rt_model *m, sq_rt_cache *c, sq_err *err) {
    c->gpu = NULL;
    if (!m->vk || !sq_vk_decode_wanted()) return SQ_OK;
    sq_err e = {0};
    sq_status st = sq_vk_decode_init(m, c->max_seq, &c->gpu, &e);
    if (st == SQ_EUNSUPPORTED) return SQ_OK; /* the host step, its products on the device */
    if (st) {
        if (err) *err = e;
        sq_rt_cache_free(c);
    }
    return st;
}

sq_status sq_vk_decode_cache_step(sq_rt_cache *c, int32_t token, float *logits, sq_err *err) {
    sq_status st = sq_vk_decode_step(c->gpu, c->pos, token, logits, err);
    if (!st) c->pos++;
    return st;
}
