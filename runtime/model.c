/* Loading a runtime model from a .squizd file or from a source model. */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime.h"
#include "squish/llama_names.h"

/* The runtime's linear-layer order is the canonical names' (q, k, v, o, gate, up, down). */
_Static_assert(SQ_LIN_COUNT == SQ_LLAMA_LINEAR_COUNT && SQ_LLAMA_Q + SQ_LIN_DOWN == SQ_LLAMA_DOWN &&
                   SQ_LLAMA_Q + SQ_LIN_O == SQ_LLAMA_O && SQ_LLAMA_Q + SQ_LIN_GATE == SQ_LLAMA_GATE,
               "SQ_LIN_* and the linear sq_llama_role values disagree");

static int keep(sq_rt_model *m, void *p) {
    if (!p) return 0;
    if (m->n_owned == m->cap_owned) {
        uint32_t cap = m->cap_owned ? m->cap_owned * 2 : 64;
        void **n = realloc(m->owned, cap * sizeof *n);
        if (!n) return -1;
        m->owned = n;
        m->cap_owned = cap;
    }
    m->owned[m->n_owned++] = p;
    return 0;
}

void sq_rt_free(sq_rt_model *m) {
    if (m->vk) {
        for (uint32_t l = 0; m->layers && l < m->cfg.n_layers; l++)
            for (int i = 0; i < SQ_LIN_COUNT; i++) sq_vk_tensor_free(m->vk, m->layers[l].gpu[i]);
        sq_vk_tensor_free(m->vk, m->gpu_lm_head);
    }
    for (uint32_t i = 0; i < m->n_owned; i++) free(m->owned[i]);
    free(m->owned);
    for (uint32_t i = 0; i < m->n_encoded; i++) sq_encoded_free(&m->encoded[i]);
    free(m->encoded);
    free(m->layers);
    memset(m, 0, sizeof *m);
}

/* A source of tensor views by canonical name. */
typedef struct source {
    sq_file *file;
    const sq_model *model;
    int n_threads;
    int in_place; /* sq_rt_load_model_mapped: bf16/f32 tensors viewed where they are mapped */
} source;

/* A source tensor the runtime can read where it lies: bf16 or f32 values in
 * row order, aligned for their type (not regrouped, not ggml blocks). */
static int viewable_in_place(const sq_model_tensor *t) {
    const uint64_t n = sq_model_tensor_elems(t), size = t->dtype == SQ_DT_F32 ? 4 : 2;
    return t->data && !t->ggml_type && !t->rope_heads && (t->dtype == SQ_DT_BF16 || t->dtype == SQ_DT_F32) &&
           t->nbytes == n * size && (uintptr_t)t->data % size == 0 && n;
}

static sq_status get_view(sq_rt_model *m, source *s, const char *name, sq_tview *v, int optional, sq_err *err) {
    if (s->file) {
        const sq_tensor *t = sq_file_find(s->file, name);
        if (!t) return optional ? SQ_ECHECK : sq_err_set(err, SQ_ECORRUPT, "%s: tensor %s is missing", sq_file_path(s->file), name);
        void *owned[SQ_CODEC_MAX_PARTS];
        sq_status st = sq_tview_open(s->file, t, 0, v, owned, err);
        if (st) return st;
        for (int i = 0; i < SQ_CODEC_MAX_PARTS; i++)
            if (keep(m, owned[i])) return sq_err_set(err, SQ_ENOMEM, "out of memory");
        return SQ_OK;
    }
    const sq_model_tensor *t = sq_model_find(s->model, name);
    if (!t) return optional ? SQ_ECHECK : sq_err_set(err, SQ_ECORRUPT, "%s: tensor %s is missing", s->model->path, name);
    uint64_t n = sq_model_tensor_elems(t), cols = t->dims[t->ndim - 1];
    if (s->in_place && viewable_in_place(t)) {
        const sq_codec *c = sq_codec_by_id(t->dtype == SQ_DT_F32 ? SQ_CODEC_F32 : SQ_CODEC_BF16);
        sq_part_spec sp[SQ_CODEC_MAX_PARTS];
        memset(v, 0, sizeof *v);
        v->codec = c;
        v->rows = n / cols;
        v->cols = cols;
        v->nparts = c->layout(c, v->params, v->rows, v->cols, sp); /* one part, "data" [rows, cols] */
        v->part[0] = t->data;
        v->dim0[0] = v->rows;
        return SQ_OK;
    }
    float *w = malloc((size_t)n * sizeof(float));
    if (!w) return sq_err_set(err, SQ_ENOMEM, "out of memory for %s", name);
    sq_status st = sq_model_tensor_f32(s->model, t, w, err);
    sq_encoded *ne = realloc(m->encoded, (m->n_encoded + 1) * sizeof *ne);
    if (!st && !ne) st = sq_err_set(err, SQ_ENOMEM, "out of memory");
    if (!st) {
        m->encoded = ne;
        st = sq_encode(sq_codec_by_id(SQ_CODEC_F32), (uint32_t[SQ_NPARAMS]){0}, w, n / cols, cols, s->n_threads,
                       &m->encoded[m->n_encoded], err);
        if (!st) sq_tview_from_encoded(&m->encoded[m->n_encoded++], v);
    }
    free(w);
    return st;
}

/* A 1-D weight (norm) decoded to f32. */
static sq_status get_vector(sq_rt_model *m, source *s, const char *name, uint32_t n, float **out, sq_err *err) {
    sq_tview v;
    sq_status st = get_view(m, s, name, &v, 0, err);
    if (st) return st;
    if (v.rows * v.cols != n) return sq_err_set(err, SQ_ECORRUPT, "tensor %s has %llu values, expected %u", name,
                                                (unsigned long long)(v.rows * v.cols), n);
    float *o = malloc(n * sizeof(float));
    if (!o || keep(m, o)) { free(o); return sq_err_set(err, SQ_ENOMEM, "out of memory"); }
    sq_decode_rows(&v, 0, v.rows, o);
    *out = o;
    return SQ_OK;
}

static sq_status check_shape(const sq_tview *v, const char *name, uint64_t rows, uint64_t cols, sq_err *err) {
    if (v->rows != rows || v->cols != cols)
        return sq_err_set(err, SQ_ECORRUPT, "tensor %s is %llux%llu, the configuration needs %llux%llu", name,
                          (unsigned long long)v->rows, (unsigned long long)v->cols, (unsigned long long)rows,
                          (unsigned long long)cols);
    return SQ_OK;
}

static sq_status load(sq_rt_model *m, source *s, const sq_model *cfgsrc, sq_err *err) {
    sq_rt_config *c = &m->cfg;
    c->n_layers = cfgsrc->info.n_layers;
    c->hidden = cfgsrc->info.hidden_size;
    c->n_heads = cfgsrc->info.n_heads;
    c->n_kv_heads = cfgsrc->info.n_kv_heads;
    c->head_dim = cfgsrc->head_dim;
    c->inter = cfgsrc->info.intermediate_size;
    c->vocab = cfgsrc->info.vocab_size;
    c->max_seq = cfgsrc->max_seq;
    c->rope_theta = cfgsrc->rope_theta;
    c->eps = cfgsrc->norm_eps;
    if (!c->n_layers || c->n_layers > 4096 || !c->head_dim || c->head_dim % 2 || !c->n_kv_heads ||
        c->n_heads % c->n_kv_heads)
        return sq_err_set(err, SQ_ECORRUPT, "model configuration is inconsistent (layers %u, heads %u/%u, head_dim %u)",
                          c->n_layers, c->n_heads, c->n_kv_heads, c->head_dim);
    m->layers = calloc(c->n_layers, sizeof *m->layers);
    if (!m->layers) return sq_err_set(err, SQ_ENOMEM, "out of memory");
    sq_status st;
    if ((st = get_view(m, s, SQ_LLAMA_EMBED_NAME, &m->embed, 0, err))) return st;
    if ((st = check_shape(&m->embed, SQ_LLAMA_EMBED_NAME, c->vocab, c->hidden, err))) return st;
    st = get_view(m, s, SQ_LLAMA_LM_HEAD_NAME, &m->lm_head, 1, err);
    if (st == SQ_ECHECK) m->lm_head = m->embed; /* tied */
    else if (st) return st;
    if ((st = check_shape(&m->lm_head, SQ_LLAMA_LM_HEAD_NAME, c->vocab, c->hidden, err))) return st;
    if ((st = get_vector(m, s, SQ_LLAMA_FINAL_NORM_NAME, c->hidden, &m->final_norm, err))) return st;
    uint32_t qd = c->n_heads * c->head_dim, kvd = c->n_kv_heads * c->head_dim;
    for (uint32_t l = 0; l < c->n_layers; l++) {
        sq_rt_layer *L = &m->layers[l];
        char name[SQ_LLAMA_NAME_MAX];
        /* in SQ_LIN_* order, which is the linear roles' order */
        struct { sq_tview *v; uint64_t rows, cols; } mats[SQ_LIN_COUNT] = {
            {&L->q, qd, c->hidden},       {&L->k, kvd, c->hidden},     {&L->v, kvd, c->hidden},
            {&L->o, c->hidden, qd},       {&L->gate, c->inter, c->hidden}, {&L->up, c->inter, c->hidden},
            {&L->down, c->hidden, c->inter}};
        for (int i = 0; i < SQ_LIN_COUNT; i++) {
            sq_llama_name(name, sizeof name, sq_llama_linear_role(i), l);
            if ((st = get_view(m, s, name, mats[i].v, 0, err))) return st;
            if ((st = check_shape(mats[i].v, name, mats[i].rows, mats[i].cols, err))) return st;
        }
        for (int i = 0; i < SQ_LIN_COUNT; i++) { /* optional biases */
            char bname[SQ_LLAMA_NAME_MAX];
            sq_llama_bias_name(bname, sizeof bname, sq_llama_linear_role(i), l);
            sq_tview bv;
            st = get_view(m, s, bname, &bv, 1, err);
            if (st == SQ_ECHECK) continue;
            if (st) return st;
            if (bv.rows * bv.cols != mats[i].rows)
                return sq_err_set(err, SQ_ECORRUPT, "tensor %s has %llu values, expected %llu", bname,
                                  (unsigned long long)(bv.rows * bv.cols), (unsigned long long)mats[i].rows);
            float *b = malloc(mats[i].rows * sizeof(float));
            if (!b || keep(m, b)) { free(b); return sq_err_set(err, SQ_ENOMEM, "out of memory"); }
            sq_decode_rows(&bv, 0, bv.rows, b);
            L->bias[i] = b;
        }
        sq_llama_name(name, sizeof name, SQ_LLAMA_ATTN_NORM, l);
        if ((st = get_vector(m, s, name, c->hidden, &L->attn_norm, err))) return st;
        sq_llama_name(name, sizeof name, SQ_LLAMA_FFN_NORM, l);
        if ((st = get_vector(m, s, name, c->hidden, &L->ffn_norm, err))) return st;
    }
    return SQ_OK;
}

sq_status sq_rt_load_file(sq_file *f, sq_rt_model *m, sq_err *err) {
    memset(m, 0, sizeof *m);
    const char *meta = sq_file_metadata(f, err);
    if (!meta) return err ? err->status : SQ_ECORRUPT;
    json_object *root = json_tokener_parse(meta), *cfg;
    if (!root || !json_object_object_get_ex(root, "config", &cfg) || !json_object_is_type(cfg, json_type_object)) {
        json_object_put(root);
        return sq_err_set(err, SQ_ECORRUPT, "%s: the metadata has no \"config\" object to configure the runtime", sq_file_path(f));
    }
    const char *text = json_object_to_json_string(cfg);
    sq_model *cm = sq_model_new(sq_file_path(f), err);
    sq_status st = cm ? sq_model_parse_config(cm, sq_file_path(f), text, strlen(text), err) : SQ_ENOMEM;
    json_object_put(root);
    if (!st) {
        source s = {f, NULL, 1, 0};
        st = load(m, &s, cm, err);
    }
    m->fast_kernels = SQ_RT_PATH_FAST; /* a file runs on its codecs' fastest kernels; sq_rt_load_model's reference stays exact */
    sq_model_close(cm);
    if (st) sq_rt_free(m);
    return st;
}

static sq_status load_model(const sq_model *src, sq_rt_model *m, int n_threads, int in_place, sq_err *err) {
    memset(m, 0, sizeof *m);
    source s = {NULL, src, n_threads, in_place};
    m->mapped = in_place;
    sq_status st = load(m, &s, src, err);
    if (st) sq_rt_free(m);
    return st;
}

sq_status sq_rt_load_model(const sq_model *src, sq_rt_model *m, int n_threads, sq_err *err) {
    return load_model(src, m, n_threads, 0, err);
}

sq_status sq_rt_load_model_mapped(const sq_model *src, sq_rt_model *m, int n_threads, sq_err *err) {
    return load_model(src, m, n_threads, 1, err);
}

const sq_tview *sq_rt_linear_view(const sq_rt_layer *L, int i) {
    const sq_tview *v[SQ_LIN_COUNT] = {&L->q, &L->k, &L->v, &L->o, &L->gate, &L->up, &L->down};
    return v[i];
}

sq_status sq_rt_use_vulkan(sq_rt_model *m, sq_vk *vk, sq_err *err) {
    m->vk = vk;
    sq_status st = sq_vk_upload(vk, &m->lm_head, &m->gpu_lm_head, err);
    for (uint32_t l = 0; !st && l < m->cfg.n_layers; l++)
        for (int i = 0; !st && i < SQ_LIN_COUNT; i++) st = sq_vk_upload(vk, sq_rt_linear_view(&m->layers[l], i), &m->layers[l].gpu[i], err);
    return st;
}
