/* .squizd -> GGUF for llama.cpp (gguf_export.h). */
#include "gguf_export.h"

#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ggml_blocks.h"
#include "gguf_vocab.h"
#include "gguf_write.h"
#include "squish/bundle.h"
#include "squish/codec.h"
#include "squish/container.h"
#include "squish/fileio.h"
#include "squish/llama_names.h"
#include "squish/model.h"

/* ---- names ---- */

/* A block's tensors in the order convert_hf_to_gguf.py writes them, with llama.cpp's names. */
static const struct {
    const char *hf, *gguf;
} block_names[] = {{"input_layernorm.weight", "attn_norm.weight"},
                   {"self_attn.q_proj.weight", "attn_q.weight"},
                   {"self_attn.q_proj.bias", "attn_q.bias"},
                   {"self_attn.k_proj.weight", "attn_k.weight"},
                   {"self_attn.k_proj.bias", "attn_k.bias"},
                   {"self_attn.v_proj.weight", "attn_v.weight"},
                   {"self_attn.v_proj.bias", "attn_v.bias"},
                   {"self_attn.o_proj.weight", "attn_output.weight"},
                   {"self_attn.o_proj.bias", "attn_output.bias"},
                   {"post_attention_layernorm.weight", "ffn_norm.weight"},
                   {"mlp.gate_proj.weight", "ffn_gate.weight"},
                   {"mlp.up_proj.weight", "ffn_up.weight"},
                   {"mlp.down_proj.weight", "ffn_down.weight"}};
#define N_BLOCK_NAMES (sizeof block_names / sizeof block_names[0])

/* llama.cpp's name of a canonical tensor name and its place in the file
 * (token_embd, blocks in order, output_norm, output); -1 when it has none. */
static int gguf_name(const char *name, char *out, size_t cap, uint64_t *order) {
    if (!strcmp(name, "model.embed_tokens.weight")) return snprintf(out, cap, "token_embd.weight"), *order = 0, 0;
    if (!strcmp(name, "model.norm.weight")) return snprintf(out, cap, "output_norm.weight"), *order = UINT64_MAX - 1, 0;
    if (!strcmp(name, "lm_head.weight")) return snprintf(out, cap, "output.weight"), *order = UINT64_MAX, 0;
    uint32_t l;
    if (!sq_llama_layer_of(name, &l)) return -1;
    const char *rest = strchr(name + strlen("model.layers."), '.');
    for (size_t i = 0; rest && i < N_BLOCK_NAMES; i++)
        if (!strcmp(rest + 1, block_names[i].hf)) {
            snprintf(out, cap, "blk.%u.%s", l, block_names[i].gguf);
            *order = 1 + (uint64_t)l * N_BLOCK_NAMES + i;
            return 0;
        }
    return -1;
}

/* ---- one tensor ---- */

typedef struct plan {
    const sq_tensor *t;
    char gguf[96];
    uint64_t order, rows, cols;
    uint32_t type;
    sq_gguf_how how;
    int rope_heads; /* q/k: heads whose rows (a bias: elements) are permuted to llama.cpp's rotary layout; 0 otherwise */
} plan;

/* What the rotary permutation moves: rows of a matrix, elements of a bias. */
static uint64_t rope_units(const plan *p) { return p->t->ndim == 1 ? p->cols : p->rows; }

static int is_float_codec(const sq_tensor *t) { return t->codec >= 1 && t->codec <= 3; }
static uint32_t float_type(uint32_t codec) {
    return codec == 1 ? SQ_GGML_F32 : codec == 2 ? SQ_GGML_F16 : SQ_GGML_BF16;
}

/* The decoded weights (transforms undone), rows x cols floats, malloc'd. */
static float *decode(const sq_file *f, const sq_tensor *t, uint64_t n, int threads, sq_err *err) {
    sq_tview v;
    void *owned[SQ_CODEC_MAX_PARTS];
    float *w = malloc((size_t)n * sizeof(float));
    if (!w) {
        sq_err_set(err, SQ_ENOMEM, "out of memory for tensor %s", t->name);
        return NULL;
    }
    sq_status st = sq_tview_open(f, t, 0, &v, owned, err);
    if (!st && (st = sq_decode_mt(&v, w, threads))) sq_err_set(err, st, "tensor %s: cannot decode it", t->name);
    if (!st) sq_tview_close(&v, owned);
    if (st) {
        free(w);
        return NULL;
    }
    return w;
}

/* Produces the tensor's ggml bytes (rows in squish's order) into out (size
 * bytes); for re-encoded tensors fills the error figures of r. */
static sq_status produce(const sq_file *f, const plan *p, int threads, uint8_t *out, sq_gguf_tensor_report *r, sq_err *err) {
    const sq_tensor *t = p->t;
    const uint64_t n = p->rows * p->cols;
    if (p->how == SQ_GGUF_COPIED) {
        const void *ptr;
        void *owned;
        sq_status st = sq_part_read(f, &t->parts[0], 0, &ptr, &owned, err);
        if (!st) memcpy(out, ptr, (size_t)t->parts[0].raw_size);
        free(owned);
        return st;
    }
    if (p->how == SQ_GGUF_REPACKED) {
        sq_tview v;
        void *owned[SQ_CODEC_MAX_PARTS];
        char why[256];
        sq_status st = sq_tview_open(f, t, 0, &v, owned, err);
        if (st) return st;
        sq_ggml_map m = sq_ggml_from_int(&v, p->type, 0, out, why, sizeof why);
        sq_tview_close(&v, owned);
        return m == SQ_GGML_EXACT ? SQ_OK : sq_err_set(err, SQ_EINTERNAL, "tensor %s: repacking failed: %s", t->name, why);
    }
    float *w = decode(f, t, n, threads, err);
    if (!w) return err->status;
    sq_status st = SQ_OK;
    const uint64_t rb = sq_ggml_row_bytes(p->type, p->cols);
    if (p->how == SQ_GGUF_WIDENED) memcpy(out, w, (size_t)n * sizeof(float));
    else { /* re-encoded: keep the codes where they fit (Q4_1's rounded minimum), else quantize the weights */
        sq_tview v;
        void *owned[SQ_CODEC_MAX_PARTS];
        char why[256];
        int kept = 0;
        if (sq_int_bits(sq_codec_by_id(t->codec)) && !(st = sq_tview_open(f, t, 0, &v, owned, err))) {
            kept = sq_ggml_from_int(&v, p->type, 1, out, why, sizeof why) != SQ_GGML_NO;
            sq_tview_close(&v, owned);
        }
        for (uint64_t row = 0; !st && !kept && row < p->rows; row++)
            sq_ggml_quantize_row(p->type, w + row * p->cols, p->cols, out + row * rb);
        float *back = st ? NULL : malloc((size_t)p->cols * sizeof(float));
        if (!st && !back) st = sq_err_set(err, SQ_ENOMEM, "out of memory");
        double se = 0, ss = 0, mx = 0;
        for (uint64_t row = 0; !st && row < p->rows; row++) {
            sq_ggml_dequantize_row(p->type, out + row * rb, p->cols, back);
            for (uint64_t j = 0; j < p->cols; j++) {
                double d = (double)back[j] - (double)w[row * p->cols + j];
                se += d * d;
                ss += (double)w[row * p->cols + j] * (double)w[row * p->cols + j];
                if (fabs(d) > mx) mx = fabs(d);
            }
        }
        free(back);
        if (r) {
            r->rmse = sqrt(se / (double)n);
            r->max_abs = mx;
            r->rel_rmse = ss > 0 ? sqrt(se / ss) : 0;
        }
    }
    free(w);
    return st;
}

/* Chooses how tensor t is stored (p->type, p->how); a tensor without an
 * exact form and no requantize option is refused, naming why. */
static sq_status choose(const sq_file *f, const sq_gguf_export_opts *o, plan *p, sq_err *err) {
    const sq_tensor *t = p->t;
    char scheme[64], why[512] = "";
    const sq_codec *c = sq_codec_by_id(t->codec);
    if (!c) return sq_err_set(err, SQ_EUNSUPPORTED, "tensor %s: codec id %u is unknown", t->name, t->codec);
    sq_scheme_format(c, t->params, scheme, sizeof scheme);
    if (t->ndim == 1) { /* norms and biases: llama.cpp wants them in F32; decoding is exact */
        p->type = SQ_GGML_F32;
        p->how = t->codec == 1 && !t->params[SQ_P_XFORM] ? SQ_GGUF_COPIED : SQ_GGUF_WIDENED;
        return SQ_OK;
    }
    if (is_float_codec(t) && !t->params[SQ_P_XFORM]) {
        p->type = float_type(t->codec);
        p->how = SQ_GGUF_COPIED;
        return SQ_OK;
    }
    int bits = sq_int_bits(c);
    if (bits) { /* the natural block type first, then the wider one */
        static const uint32_t small[] = {SQ_GGML_Q4_0, SQ_GGML_Q4_1}, eight[] = {SQ_GGML_Q8_0};
        const uint32_t *cand = bits == 8 ? eight : small;
        int nc = bits == 8 ? 1 : 2;
        sq_tview v;
        void *owned[SQ_CODEC_MAX_PARTS];
        sq_status st = sq_tview_open(f, t, 0, &v, owned, err);
        if (st) return st;
        char w2[256];
        for (int i = 0; i < nc; i++)
            if (sq_ggml_from_int(&v, cand[i], 0, NULL, i ? w2 : why, i ? sizeof w2 : sizeof why) == SQ_GGML_EXACT) {
                p->type = cand[i];
                p->how = SQ_GGUF_REPACKED;
                sq_tview_close(&v, owned);
                return SQ_OK;
            }
        if (nc == 2 && strcmp(why, w2)) { /* both reasons, when they differ */
            size_t l = strlen(why);
            snprintf(why + l, sizeof why - l, "; as Q4_1: %.200s", w2);
        }
        if (o->requantize && sq_ggml_row_bytes(o->requant_type, p->cols) &&
            sq_ggml_from_int(&v, o->requant_type, 0, NULL, w2, sizeof w2) == SQ_GGML_EXACT) {
            p->type = o->requant_type; /* an exact widening the user asked for (e.g. 4-bit asym codes as Q8_0) */
            p->how = SQ_GGUF_REPACKED;
            sq_tview_close(&v, owned);
            return SQ_OK;
        }
        sq_tview_close(&v, owned);
    } else snprintf(why, sizeof why, "codec %s has no GGUF counterpart%s", c->name,
                    t->params[SQ_P_XFORM] ? " (and transformed columns)" : "");
    if (!o->requantize)
        return sq_err_set(err, SQ_EUNSUPPORTED,
                          "tensor %s (%s) has no exact GGUF form: %s; --requantize TYPE re-encodes such tensors "
                          "(Q8_0, Q4_0, Q4_1, F16, BF16; F32 is exact) and prints the error",
                          t->name, scheme, why);
    if (!sq_ggml_row_bytes(o->requant_type, p->cols))
        return sq_err_set(err, SQ_EUNSUPPORTED,
                          "tensor %s (%s): its %llu columns are not whole blocks of %u for %s; use --requantize F32 "
                          "(exact) or F16",
                          t->name, scheme, (unsigned long long)p->cols, sq_ggml_block_len(o->requant_type),
                          sq_ggml_type_name(o->requant_type));
    p->type = o->requant_type;
    p->how = o->requant_type == SQ_GGML_F32 ? SQ_GGUF_WIDENED : SQ_GGUF_REQUANTIZED;
    return SQ_OK;
}

/* Rows of q/k from the Hugging Face rotary layout (per head: first halves,
 * then second halves of the pairs) to llama.cpp's interleaved pairs:
 * GGUF row h·hd + 2i + j = squish row h·hd + j·hd/2 + i. */
static uint64_t src_row(const plan *p, uint64_t r) {
    if (!p->rope_heads) return r;
    const uint64_t hd = rope_units(p) / (uint64_t)p->rope_heads, h = r / hd, k = r % hd;
    return h * hd + (k % 2) * (hd / 2) + k / 2;
}

/* ---- metadata ---- */

static json_object *get(json_object *o, const char *k) {
    json_object *v;
    return o && json_object_object_get_ex(o, k, &v) ? v : NULL;
}

/* The model's name: the source directory recorded in the provenance (its name, no path), else the file's base name. */
static void model_name(json_object *meta, const char *in, char *out, size_t cap) {
    json_object *cl = get(get(meta, "provenance"), "command_line");
    if (cl && json_object_is_type(cl, json_type_array) && json_object_array_length(cl) > 1) {
        snprintf(out, cap, "%s", json_object_get_string(json_object_array_get_idx(cl, 1)));
        char *dot = strrchr(out, '.');
        if (dot && (!strcmp(dot, ".bin") || !strcmp(dot, ".gguf") || !strcmp(dot, ".squizd"))) *dot = 0;
        return;
    }
    const char *b = strrchr(in, '/');
    snprintf(out, cap, "%s", b ? b + 1 : in);
    char *dot = strrchr(out, '.');
    if (dot && !strcmp(dot, ".squizd")) *dot = 0;
}

/* general.file_type (llama_ftype) of the type most 2-D weights have. */
static uint32_t file_type(const plan *ps, uint32_t n) {
    uint64_t count[31] = {0};
    for (uint32_t i = 0; i < n; i++)
        if (ps[i].t->ndim == 2 && ps[i].type < 31) count[ps[i].type] += ps[i].rows * ps[i].cols;
    uint32_t best = SQ_GGML_F32;
    for (uint32_t k = 0; k < 31; k++)
        if (count[k] > count[best]) best = k;
    switch (best) {
    case SQ_GGML_F16: return 1;
    case SQ_GGML_Q4_0: return 2;
    case SQ_GGML_Q4_1: return 3;
    case SQ_GGML_Q8_0: return 7;
    case SQ_GGML_BF16: return 32;
    default: return 0;
    }
}

/* The tokenizer and tokenizer_config.json: from model_dir when given, else the bundle. */
typedef struct side_files {
    sq_bundle own; /* files read from model_dir */
    const struct sq_vfile *tok, *tcfg;
    int kind;
    char label[128];
} side_files;

static sq_status find_side_files(const sq_file *f, const sq_bundle *b, const char *dir, uint32_t vocab, side_files *s,
                                 sq_err *err) {
    memset(s, 0, sizeof *s);
    if (dir) {
        char tokbin[32];
        snprintf(tokbin, sizeof tokbin, "tok%u.bin", vocab);
        const char *names[] = {"tokenizer.json", "tokenizer.model", "tokenizer.bin", tokbin, "tokenizer_config.json"};
        for (int i = 0; i < 5; i++) {
            char *path = malloc(strlen(dir) + strlen(names[i]) + 2), *data;
            size_t len;
            if (!path) return sq_err_set(err, SQ_ENOMEM, "out of memory");
            sprintf(path, "%s/%s", dir, names[i]);
            sq_status st = SQ_OK;
            FILE *probe = fopen(path, "rb");
            if (probe) {
                fclose(probe);
                if (!(st = sq_read_file(path, (size_t)SQ_BUNDLE_MAX_BYTES, &data, &len, err))) {
                    st = sq_bundle_add(&s->own, names[i], data, len, err);
                    free(data);
                }
            }
            free(path);
            if (st) return st;
        }
        s->tok = sq_bundle_tokenizer(&s->own, &s->kind);
        s->tcfg = sq_bundle_find(&s->own, "tokenizer_config.json");
        if (!s->tok)
            return sq_err_set(err, SQ_EUSAGE, "%s has no tokenizer.json, tokenizer.model, tokenizer.bin or %s", dir, tokbin);
        snprintf(s->label, sizeof s->label, "%.80s/%.40s", dir, s->tok->name);
        return SQ_OK;
    }
    s->tok = sq_bundle_tokenizer(b, &s->kind);
    s->tcfg = sq_bundle_find(b, "tokenizer_config.json");
    if (!s->tok)
        return sq_err_set(err, SQ_EUSAGE, "%s embeds no tokenizer, which GGUF needs: give the model directory with "
                          "--from DIR, or embed it (squish-pack bundle --from DIR)", sq_file_path(f));
    snprintf(s->label, sizeof s->label, "%.100s (embedded)", s->tok->name);
    return SQ_OK;
}

static sq_status add_hparams(sq_gguf_writer *w, const sq_model *cfg, const char *name, uint32_t ftype, sq_err *err) {
    const sq_model_info *in = &cfg->info;
    sq_status st = sq_gguf_kv_str(w, "general.architecture", "llama", err);
    if (!st) st = sq_gguf_kv_str(w, "general.name", name, err);
    if (!st) st = sq_gguf_kv_u32(w, "llama.block_count", in->n_layers, err);
    if (!st) st = sq_gguf_kv_u32(w, "llama.context_length", cfg->max_seq, err);
    if (!st) st = sq_gguf_kv_u32(w, "llama.embedding_length", in->hidden_size, err);
    if (!st) st = sq_gguf_kv_u32(w, "llama.feed_forward_length", in->intermediate_size, err);
    if (!st) st = sq_gguf_kv_u32(w, "llama.attention.head_count", in->n_heads, err);
    if (!st) st = sq_gguf_kv_u32(w, "llama.attention.head_count_kv", in->n_kv_heads, err);
    if (!st) st = sq_gguf_kv_f32(w, "llama.rope.freq_base", cfg->rope_theta, err);
    if (!st) st = sq_gguf_kv_f32(w, "llama.attention.layer_norm_rms_epsilon", cfg->norm_eps, err);
    if (!st) st = sq_gguf_kv_u32(w, "llama.attention.key_length", cfg->head_dim, err);
    if (!st) st = sq_gguf_kv_u32(w, "llama.attention.value_length", cfg->head_dim, err);
    if (!st) st = sq_gguf_kv_u32(w, "general.file_type", ftype, err);
    if (!st) st = sq_gguf_kv_u32(w, "llama.vocab_size", in->vocab_size, err);
    if (!st) st = sq_gguf_kv_u32(w, "llama.rope.dimension_count", cfg->head_dim, err);
    return st;
}

static int cmp_plan(const void *a, const void *b) {
    const plan *x = a, *y = b;
    return x->order < y->order ? -1 : x->order > y->order;
}

sq_status sq_gguf_export(const char *in, const char *out, const sq_gguf_export_opts *o, sq_gguf_export_result *res,
                         sq_err *err) {
    sq_gguf_export_result rs;
    memset(&rs, 0, sizeof rs);
    const int threads = o->n_threads > 0 ? o->n_threads : sq_default_threads();
    sq_file *f = sq_open(in, err);
    if (!f) return err->status;
    sq_model *cfg = NULL;
    json_object *meta = NULL;
    sq_bundle bundle = {0};
    side_files side = {0};
    plan *ps = NULL;
    sq_gguf_writer *w = NULL;
    uint8_t *buf = NULL;
    uint32_t n = 0;
    sq_status st = SQ_OK;
    const char *mt = sq_file_metadata(f, err);
    if (!mt) { st = err->status; goto out; }
    json_object *config = get(meta = json_tokener_parse(mt), "config");
    if (!config || !json_object_is_type(config, json_type_object)) {
        st = sq_err_set(err, SQ_EUNSUPPORTED, "%s has no model configuration (\"config\" in its metadata): it holds tensors, "
                        "not a model llama.cpp can run", in);
        goto out;
    }
    const char *ctext = json_object_to_json_string_ext(config, JSON_C_TO_STRING_PLAIN);
    if (!(cfg = sq_model_new(in, err))) { st = err->status; goto out; }
    if ((st = sq_model_parse_config(cfg, in, ctext, strlen(ctext), err))) goto out;
    if (cfg->info.arch != 1 && cfg->info.arch != 2) {
        json_object *mtp = get(config, "model_type");
        st = sq_err_set(err, SQ_EUNSUPPORTED, "%s: model_type \"%s\": the GGUF export writes Llama-architecture models "
                        "(llama, mistral)", in, mtp ? json_object_get_string(mtp) : "(none)");
        goto out;
    }
    json_object *rsc = get(config, "rope_scaling");
    if (rsc && !json_object_is_type(rsc, json_type_null)) {
        json_object *rt = get(rsc, "rope_type");
        if (!rt) rt = get(rsc, "type");
        if (!rt || strcmp(json_object_get_string(rt), "default")) {
            st = sq_err_set(err, SQ_EUNSUPPORTED, "%s: rope_scaling %s is not written by the GGUF export", in,
                            json_object_to_json_string_ext(rsc, JSON_C_TO_STRING_PLAIN));
            goto out;
        }
    }
    if (sq_file_header(f)->n_tensors == 0 || get(meta, "shard")) {
        st = sq_err_set(err, SQ_EUSAGE, "%s is a partial file (squish-quantize --shard): merge the shards first", in);
        goto out;
    }
    if ((st = sq_bundle_from_file(f, &bundle, err))) goto out;
    if ((st = find_side_files(f, &bundle, o->model_dir, cfg->info.vocab_size, &side, err))) goto out;
    snprintf(rs.tokenizer, sizeof rs.tokenizer, "%s", side.label);

    /* plan every tensor */
    n = sq_file_ntensors(f);
    if (!(ps = calloc(n, sizeof *ps))) { st = sq_err_set(err, SQ_ENOMEM, "out of memory"); goto out; }
    uint64_t max_bytes = 0;
    for (uint32_t i = 0; i < n; i++) {
        plan *p = &ps[i];
        p->t = sq_file_tensor(f, i);
        if (gguf_name(p->t->name, p->gguf, sizeof p->gguf, &p->order)) {
            st = sq_err_set(err, SQ_EUNSUPPORTED, "tensor %s has no llama.cpp name (a Llama model's tensors only)", p->t->name);
            goto out;
        }
        if (p->t->ndim > 2) {
            st = sq_err_set(err, SQ_EUNSUPPORTED, "tensor %s has %u dimensions", p->t->name, p->t->ndim);
            goto out;
        }
        sq_tensor_matrix(p->t, &p->rows, &p->cols);
        if (strstr(p->gguf, "attn_q.") || strstr(p->gguf, "attn_k.")) {
            p->rope_heads = (int)(strstr(p->gguf, "attn_q.") ? cfg->info.n_heads : cfg->info.n_kv_heads);
            if (rope_units(p) != (uint64_t)p->rope_heads * cfg->head_dim || cfg->head_dim % 2) {
                st = sq_err_set(err, SQ_ECORRUPT, "tensor %s: %llu rows are not %d heads of %u", p->t->name,
                                (unsigned long long)rope_units(p), p->rope_heads, cfg->head_dim);
                goto out;
            }
        }
        if ((st = choose(f, o, p, err))) goto out;
        uint64_t rb = sq_ggml_row_bytes(p->type, p->cols);
        if (rb * p->rows > max_bytes) max_bytes = rb * p->rows;
    }
    qsort(ps, n, sizeof *ps, cmp_plan);
    if (!(buf = malloc(max_bytes ? (size_t)max_bytes : 1))) {
        st = sq_err_set(err, SQ_ENOMEM, "out of memory for a tensor of %llu bytes", (unsigned long long)max_bytes);
        goto out;
    }
    /* metadata, then the tensor infos */
    char name[256];
    model_name(meta, in, name, sizeof name);
    if (!(w = sq_gguf_writer_new())) { st = sq_err_set(err, SQ_ENOMEM, "out of memory"); goto out; }
    rs.file_type = file_type(ps, n);
    st = add_hparams(w, cfg, name, rs.file_type, err);
    sq_gguf_vocab_src vs = {side.tok ? side.tok->name : "", side.tok ? side.tok->data : NULL, side.tok ? (size_t)side.tok->size : 0,
                            side.kind, config, side.tcfg ? side.tcfg->data : NULL, side.tcfg ? (size_t)side.tcfg->size : 0,
                            cfg->info.vocab_size};
    if (!st) st = sq_gguf_add_vocab(w, &vs, &rs.vocab, err);
    if (!st) st = sq_gguf_kv_u32(w, "general.quantization_version", 2, err);
    for (uint32_t i = 0; !st && i < n; i++) {
        uint64_t ne[2] = {ps[i].cols, ps[i].rows};
        st = sq_gguf_plan_tensor(w, ps[i].gguf, ps[i].t->ndim, ne, ps[i].type,
                                 sq_ggml_row_bytes(ps[i].type, ps[i].cols) * ps[i].rows, err);
    }
    if (!st) st = sq_gguf_begin(w, out, err);
    /* the data, one tensor at a time */
    for (uint32_t i = 0; !st && i < n; i++) {
        plan *p = &ps[i];
        sq_gguf_tensor_report r;
        memset(&r, 0, sizeof r);
        r.name = p->t->name;
        r.gguf_name = p->gguf;
        sq_scheme_format(sq_codec_by_id(p->t->codec), p->t->params, r.scheme, sizeof r.scheme);
        r.type = p->type;
        r.how = p->how;
        r.elements = p->rows * p->cols;
        const uint64_t rb = sq_ggml_row_bytes(p->type, p->cols);
        r.bytes = rb * p->rows;
        if ((st = produce(f, p, threads, buf, &r, err))) break;
        if (p->rope_heads) { /* permute rows (a bias: its F32 elements) through a copy */
            const uint64_t units = rope_units(p), ub = r.bytes / units;
            uint8_t *perm = malloc((size_t)r.bytes ? (size_t)r.bytes : 1);
            if (!perm) { st = sq_err_set(err, SQ_ENOMEM, "out of memory"); break; }
            for (uint64_t k = 0; k < units; k++) memcpy(perm + k * ub, buf + src_row(p, k) * ub, (size_t)ub);
            memcpy(buf, perm, (size_t)r.bytes);
            free(perm);
        }
        if ((st = sq_gguf_write_tensor(w, buf, r.bytes, err))) break;
        rs.tensors++;
        rs.requantized += p->how == SQ_GGUF_REQUANTIZED;
        if (o->tensor) o->tensor(o->ctx, &r);
    }
    if (!st) {
        rs.file_size = sq_gguf_file_size(w);
        st = sq_gguf_commit(w, err);
    }
out:
    sq_gguf_writer_free(w);
    free(buf);
    free(ps);
    sq_bundle_free(&side.own);
    sq_bundle_free(&bundle);
    if (cfg) sq_model_close(cfg);
    json_object_put(meta);
    sq_close(f);
    if (res) *res = rs;
    return st;
}
