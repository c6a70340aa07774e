/* The structural check of a model against its configuration, one place for
 * squish-quantize (its source model) and squish-verify (a .squizd, against
 * the "config" in its metadata): the tensors the Llama runtime loads
 * (runtime/model.c), with the shapes the configuration implies. A model
 * that fails it cannot run, so it is refused before any work is done. */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "squish/llama_names.h"
#include "squish/model.h"

/* What the configuration asks of one tensor. */
typedef struct want {
    char name[160];
    uint32_t ndim;
    uint64_t dims[2];
    int optional;
    char why[160]; /* the configuration fields the shape comes from */
} want;

static void shape_text(uint32_t ndim, const uint64_t *dims, char *out, size_t n) {
    size_t k = (size_t)snprintf(out, n, "[");
    for (uint32_t i = 0; i < ndim && k < n; i++) k += (size_t)snprintf(out + k, n - k, "%s%llu", i ? ", " : "", (unsigned long long)dims[i]);
    if (k < n) snprintf(out + k, n - k, "]");
}

static sq_status check_one(const sq_model *m, const want *w, sq_err *err) {
    char need[64], got[200];
    shape_text(w->ndim, w->dims, need, sizeof need);
    const sq_model_tensor *t = sq_model_find(m, w->name);
    if (!t) {
        if (w->optional || m->partial) return SQ_OK;
        return sq_err_set(err, SQ_ECORRUPT, "%s: tensor %s is missing; the configuration (%s) needs it as %s", m->path, w->name,
                          w->why, need);
    }
    int same = t->ndim == w->ndim;
    for (uint32_t d = 0; same && d < w->ndim; d++) same = t->dims[d] == w->dims[d];
    if (same) return SQ_OK;
    shape_text(t->ndim, t->dims, got, sizeof got);
    int transposed = t->ndim == 2 && w->ndim == 2 && t->dims[0] == w->dims[1] && t->dims[1] == w->dims[0];
    return sq_err_set(err, SQ_ECORRUPT, "%s: tensor %s is %s but the configuration (%s) needs %s%s", m->path, w->name, got, w->why,
                      need, transposed ? " (transposed?)" : "");
}

static want mat(const char *name, uint64_t rows, uint64_t cols, int optional, const char *why) {
    want w = {{0}, 2, {rows, cols}, optional, {0}};
    snprintf(w.name, sizeof w.name, "%s", name);
    snprintf(w.why, sizeof w.why, "%s", why);
    return w;
}

static want vec(const char *name, uint64_t n, int optional, const char *why) {
    want w = mat(name, n, 0, optional, why);
    w.ndim = 1;
    return w;
}

/* The architectures built of the Llama block the runtime runs. Others
 * (mixture-of-experts, Phi, model types squish does not know) are checked
 * only for the tensors they have. */
static int llama_blocks(uint32_t arch) {
    return arch == SQ_ARCH_LLAMA || arch == SQ_ARCH_MISTRAL || arch == SQ_ARCH_QWEN2 || arch == SQ_ARCH_QWEN3 ||
           arch == SQ_ARCH_GEMMA;
}

static sq_status check_block(const sq_model *m, uint32_t l, sq_err *err) {
    const sq_model_info *c = &m->info;
    uint64_t H = c->hidden_size, I = c->intermediate_size, q = (uint64_t)c->n_heads * m->head_dim,
             kv = (uint64_t)c->n_kv_heads * m->head_dim;
    char hq[128], hkv[128], hi[96], hh[64];
    snprintf(hh, sizeof hh, "hidden_size %llu", (unsigned long long)H);
    snprintf(hq, sizeof hq, "num_attention_heads %u x head_dim %u, hidden_size %llu", c->n_heads, m->head_dim, (unsigned long long)H);
    snprintf(hkv, sizeof hkv, "num_key_value_heads %u x head_dim %u, hidden_size %llu", c->n_kv_heads, m->head_dim,
             (unsigned long long)H);
    snprintf(hi, sizeof hi, "intermediate_size %llu, hidden_size %llu", (unsigned long long)I, (unsigned long long)H);
    int opt = !llama_blocks(c->arch);
    struct { sq_llama_role role; uint64_t rows, cols; const char *why; } lin[] = {
        {SQ_LLAMA_Q, q, H, hq},  {SQ_LLAMA_K, kv, H, hkv}, {SQ_LLAMA_V, kv, H, hkv}, {SQ_LLAMA_O, H, q, hq},
        {SQ_LLAMA_GATE, I, H, hi}, {SQ_LLAMA_UP, I, H, hi}, {SQ_LLAMA_DOWN, H, I, hi}};
    char name[SQ_LLAMA_NAME_MAX];
    sq_status st = SQ_OK;
    for (size_t i = 0; !st && i < sizeof lin / sizeof lin[0]; i++) {
        sq_llama_name(name, sizeof name, lin[i].role, l);
        want w = mat(name, lin[i].rows, lin[i].cols, opt, lin[i].why);
        st = check_one(m, &w, err);
        sq_llama_bias_name(name, sizeof name, lin[i].role, l);
        w = vec(name, lin[i].rows, 1, lin[i].why);
        if (!st) st = check_one(m, &w, err);
    }
    static const sq_llama_role norms[] = {SQ_LLAMA_ATTN_NORM, SQ_LLAMA_FFN_NORM};
    for (int i = 0; !st && i < 2; i++) {
        sq_llama_name(name, sizeof name, norms[i], l);
        want w = vec(name, H, opt, hh);
        st = check_one(m, &w, err);
    }
    return st;
}

/* No block past num_hidden_layers (the runtime would ignore it). */
static sq_status check_layer_range(const sq_model *m, sq_err *err) {
    for (uint32_t i = 0; i < m->n_tensors; i++) {
        uint32_t l;
        if (sq_llama_layer_of(m->tensors[i].name, &l) && l >= m->info.n_layers)
            return sq_err_set(err, SQ_ECORRUPT, "%s: tensor %s belongs to layer %u but the configuration has num_hidden_layers %u",
                              m->path, m->tensors[i].name, l, m->info.n_layers);
    }
    return SQ_OK;
}

static int by_place(const void *a, const void *b) {
    const sq_model_tensor *x = *(const sq_model_tensor *const *)a, *y = *(const sq_model_tensor *const *)b;
    if (x->file != y->file) return x->file < y->file ? -1 : 1;
    return x->data < y->data ? -1 : x->data > y->data;
}

/* Two tensors whose source bytes overlap (a hand-edited safetensors header,
 * a hostile GGUF) would each be quantized from the other's weights. */
static sq_status check_overlaps(const sq_model *m, sq_err *err) {
    const sq_model_tensor **ts = malloc((m->n_tensors ? m->n_tensors : 1) * sizeof *ts);
    uint32_t n = 0;
    if (!ts) return sq_err_set(err, SQ_ENOMEM, "out of memory");
    for (uint32_t i = 0; i < m->n_tensors; i++)
        if (m->tensors[i].data && m->tensors[i].nbytes) ts[n++] = &m->tensors[i];
    qsort(ts, n, sizeof *ts, by_place);
    sq_status st = SQ_OK;
    uint32_t reach = 0; /* the tensor that reaches furthest so far in this file */
    for (uint32_t k = 1; k < n && !st; k++) {
        const sq_model_tensor *a = ts[reach], *b = ts[k];
        if (a->file == b->file && b->data < a->data + a->nbytes) {
            const uint8_t *base = m->files[a->file].map;
            char sa[200], sb[200];
            shape_text(a->ndim, a->dims, sa, sizeof sa);
            shape_text(b->ndim, b->dims, sb, sizeof sb);
            st = sq_err_set(err, SQ_ECORRUPT, "%s: tensors %s %s and %s %s share bytes: their data [%llu, %llu) and [%llu, %llu) overlap",
                            m->files[a->file].path, a->name, sa, b->name, sb, (unsigned long long)(a->data - base),
                            (unsigned long long)(a->data - base + a->nbytes), (unsigned long long)(b->data - base),
                            (unsigned long long)(b->data - base + b->nbytes));
        }
        if (a->file != b->file || b->data + b->nbytes > a->data + a->nbytes) reach = k;
    }
    free(ts);
    return st;
}

sq_status sq_model_check(const sq_model *m, sq_err *err) {
    const sq_model_info *c = &m->info;
    int opt = !llama_blocks(c->arch);
    if (!opt && m->head_dim % 2)
        return sq_err_set(err, SQ_ECORRUPT, "%s: head_dim %u is odd; rotary position embeddings need an even head_dim", m->path,
                          m->head_dim);
    char why[96];
    snprintf(why, sizeof why, "vocab_size %u, hidden_size %u", c->vocab_size, c->hidden_size);
    char name[SQ_LLAMA_NAME_MAX];
    sq_llama_name(name, sizeof name, SQ_LLAMA_EMBED, 0);
    want w = mat(name, c->vocab_size, c->hidden_size, opt, why);
    sq_status st = check_one(m, &w, err);
    sq_llama_name(name, sizeof name, SQ_LLAMA_LM_HEAD, 0);
    w = mat(name, c->vocab_size, c->hidden_size, 1, why);
    if (!st) st = check_one(m, &w, err);
    snprintf(why, sizeof why, "hidden_size %u", c->hidden_size);
    sq_llama_name(name, sizeof name, SQ_LLAMA_FINAL_NORM, 0);
    w = vec(name, c->hidden_size, opt, why);
    if (!st) st = check_one(m, &w, err);
    for (uint32_t l = 0; !st && l < c->n_layers; l++) st = check_block(m, l, err);
    if (!st) st = check_layer_range(m, err);
    if (!st) st = check_overlaps(m, err);
    return st;
}

sq_status sq_file_check_model(sq_file *f, sq_err *err) {
    const char *meta = sq_file_metadata(f, err);
    if (!meta) return err ? err->status : SQ_ECORRUPT;
    json_object *root = json_tokener_parse(meta);
    int has_config = root && json_object_object_get_ex(root, "config", NULL);
    json_object_put(root);
    if (!has_config) return SQ_OK;
    sq_model *m = sq_model_new(sq_file_path(f), err);
    if (!m) return SQ_ENOMEM;
    sq_status st = sq_model_from_squizd(m, f, err);
    if (!st) st = sq_model_check(m, err);
    sq_model_close(m);
    return st;
}
