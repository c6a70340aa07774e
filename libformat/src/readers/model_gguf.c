/* GGUF (v2/v3) files with F32/F16/BF16 tensors and ggml's quantized block
 * types (readers/ggml_decode.h: Q4_0...Q8_0, Q2_K...Q6_K, IQ4_NL, IQ4_XS),
 * which read as f32 tensors decoded on demand. Layout: "GGUF", u32
 * version, u64 tensor count, u64 key/value count, the key/values, the tensor
 * infos (name, n_dims, dims innermost first, ggml type, offset), then data
 * aligned to general.alignment (default 32). llama.cpp's converter stores
 * q/k rows in interleaved rotary order; they are regrouped to HF order. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/bytes.h"
#include "readers/ggml_decode.h"
#include "squish/llama_names.h"
#include "squish/model.h"

#define MAX_COUNT (1u << 20)
#define MAX_STR (1u << 20)

typedef struct rd {
    const uint8_t *p;
    uint64_t pos, size;
    const char *path;
    sq_err *err;
    int bad;
} rd;

static int need(rd *r, uint64_t n, const char *what) {
    if (r->bad) return 0;
    if (n > r->size - r->pos) {
        sq_err_set(r->err, SQ_ECORRUPT, "%s: truncated: %s at byte %llu needs %llu bytes", r->path, what,
                   (unsigned long long)r->pos, (unsigned long long)n);
        r->bad = 1;
        return 0;
    }
    return 1;
}
static uint32_t u32(rd *r, const char *w) { if (!need(r, 4, w)) return 0; r->pos += 4; return get32(r->p + r->pos - 4); }
static uint64_t u64(rd *r, const char *w) { if (!need(r, 8, w)) return 0; r->pos += 8; return get64(r->p + r->pos - 8); }

/* A GGUF string: u64 length + bytes (not terminated). */
static const char *str(rd *r, uint64_t *len, const char *w) {
    uint64_t n = u64(r, w);
    if (r->bad) return NULL;
    if (n > MAX_STR) {
        sq_err_set(r->err, SQ_ECORRUPT, "%s: %s at byte %llu: string length %llu is over the 1 MiB limit", r->path, w,
                   (unsigned long long)(r->pos - 8), (unsigned long long)n);
        r->bad = 1;
        return NULL;
    }
    if (!need(r, n, w)) return NULL;
    *len = n;
    r->pos += n;
    return (const char *)r->p + r->pos - n;
}

static const int type_size[13] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

typedef struct kvs {
    uint32_t block_count, emb, heads, heads_kv, ffn, ctx, alignment, vocab;
    float rope, eps;
} kvs;

/* Numeric GGUF values arrive as double; out-of-range ones become 0 (then
 * rejected by the checks below) rather than undefined conversions. */
static uint32_t to_u32(double v) { return v >= 0 && v <= 4294967295.0 ? (uint32_t)v : 0; }
static float to_f32(double v) { return v >= -3.0e38 && v <= 3.0e38 ? (float)v : 0.0f; }

static int key_is(const char *k, uint64_t n, const char *want) { return strlen(want) == n && !memcmp(k, want, n); }

static double num_value(rd *r, uint32_t t) {
    const uint8_t *p = r->p + r->pos - (uint64_t)type_size[t];
    switch (t) {
    case 0: return p[0];
    case 1: return (int8_t)p[0];
    case 2: return get16(p);
    case 3: return (int16_t)get16(p);
    case 4: return get32(p);
    case 5: return (int32_t)get32(p);
    case 6: return getf32(p);
    case 7: return p[0];
    case 10: return (double)get64(p);
    case 11: return (double)(int64_t)get64(p);
    default: { double d; uint64_t u = get64(p); memcpy(&d, &u, 8); return d; }
    }
}

/* Skips or reads one value of type t; numeric values are returned in *num. */
static void value(rd *r, uint32_t t, double *num, uint64_t *arr_len, int depth) {
    if (t > 12) {
        sq_err_set(r->err, SQ_ECORRUPT, "%s: unknown value type %u at byte %llu", r->path, t, (unsigned long long)r->pos);
        r->bad = 1;
        return;
    }
    if (t == 8) { uint64_t l; str(r, &l, "string value"); return; }
    if (t == 9) {
        uint32_t et = u32(r, "array type");
        uint64_t n = u64(r, "array length");
        if (r->bad) return;
        if (depth > 2 || et == 9 || n > (1ull << 32)) {
            sq_err_set(r->err, SQ_ECORRUPT, "%s: array at byte %llu is nested or too long", r->path, (unsigned long long)r->pos);
            r->bad = 1;
            return;
        }
        if (arr_len) *arr_len = n;
        if (et != 8 && et <= 12) { /* fixed-size elements: skip in one step */
            if (need(r, n * (uint64_t)type_size[et], "array data")) r->pos += n * (uint64_t)type_size[et];
            return;
        }
        for (uint64_t i = 0; i < n && !r->bad; i++) value(r, et, NULL, NULL, depth + 1);
        return;
    }
    if (!need(r, (uint64_t)type_size[t], "value")) return;
    r->pos += (uint64_t)type_size[t];
    if (num) *num = num_value(r, t);
}

/* GGUF llama tensor names (llama.cpp's spellings, a fact of the format) ->
 * canonical names (squish/llama_names.h). */
static int canon(const char *g, char *out, size_t n, int *rope) {
    static const struct { const char *g; sq_llama_role role; int bias, rope; } map[] = {
        {"attn_norm.weight", SQ_LLAMA_ATTN_NORM, 0, 0}, {"attn_q.weight", SQ_LLAMA_Q, 0, 1},
        {"attn_k.weight", SQ_LLAMA_K, 0, 2},            {"attn_v.weight", SQ_LLAMA_V, 0, 0},
        {"attn_output.weight", SQ_LLAMA_O, 0, 0},       {"ffn_norm.weight", SQ_LLAMA_FFN_NORM, 0, 0},
        {"ffn_gate.weight", SQ_LLAMA_GATE, 0, 0},       {"ffn_up.weight", SQ_LLAMA_UP, 0, 0},
        {"ffn_down.weight", SQ_LLAMA_DOWN, 0, 0},       {"attn_q.bias", SQ_LLAMA_Q, 1, 0},
        {"attn_k.bias", SQ_LLAMA_K, 1, 0},              {"attn_v.bias", SQ_LLAMA_V, 1, 0}};
    static const struct { const char *g; sq_llama_role role; } top[] = {
        {"token_embd.weight", SQ_LLAMA_EMBED}, {"output_norm.weight", SQ_LLAMA_FINAL_NORM}, {"output.weight", SQ_LLAMA_LM_HEAD}};
    *rope = 0;
    for (size_t i = 0; i < sizeof top / sizeof top[0]; i++)
        if (!strcmp(g, top[i].g)) return sq_llama_name(out, n, top[i].role, 0), 1;
    unsigned layer;
    int used = 0;
    if (sscanf(g, "blk.%u.%n", &layer, &used) == 1 && used > 0)
        for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
            if (!strcmp(g + used, map[i].g)) {
                if (map[i].bias) sq_llama_bias_name(out, n, map[i].role, layer);
                else sq_llama_name(out, n, map[i].role, layer);
                *rope = map[i].rope;
                return 1;
            }
    snprintf(out, n, "%s", g); /* unknown: keep the GGUF name */
    return 0;
}

sq_status sq_model_open_gguf(sq_model *m, const char *path, sq_err *err) {
    int fi = sq_model_map_file(m, path, err);
    if (fi < 0) return err ? err->status : SQ_EIO;
    return sq_model_parse_gguf(m, fi, err);
}

sq_status sq_model_parse_gguf(sq_model *m, int fi, sq_err *err) {
    const sq_model_file *f = &m->files[fi];
    const char *path = f->path;
    rd r = {f->map, 0, f->size, path, err, 0};
    if (f->size < 4 || memcmp(f->map, "GGUF", 4))
        return sq_err_set(err, SQ_ECORRUPT, "%s: not a GGUF file (magic at byte 0 is not \"GGUF\")", path);
    r.pos = 4;
    uint32_t ver = u32(&r, "version");
    uint64_t nt = u64(&r, "tensor count"), nkv = u64(&r, "key/value count");
    if (r.bad) return err ? err->status : SQ_ECORRUPT;
    if (ver < 2 || ver > 3) return sq_err_set(err, SQ_EUNSUPPORTED, "%s: GGUF version %u (byte 4) is not supported (2 or 3)", path, ver);
    if (nt > MAX_COUNT || nkv > MAX_COUNT || nt * 24 > f->size || nkv * 12 > f->size)
        return sq_err_set(err, SQ_ECORRUPT, "%s: tensor count %llu or key/value count %llu (bytes 8..23) cannot fit in the file",
                          path, (unsigned long long)nt, (unsigned long long)nkv);
    kvs kv = {0};
    kv.alignment = 32;
    kv.rope = 10000.0f;
    kv.eps = 1e-5f;
    char arch[64] = "llama";
    for (uint64_t i = 0; i < nkv && !r.bad; i++) {
        uint64_t kl;
        const char *k = str(&r, &kl, "key");
        uint32_t t = u32(&r, "value type");
        if (r.bad) break;
        double num = 0;
        uint64_t alen = 0;
        uint64_t vpos = r.pos;
        value(&r, t, &num, &alen, 0);
        if (r.bad) break;
        if (key_is(k, kl, "general.architecture") && t == 8) {
            uint64_t sl = get64(f->map + vpos);
            snprintf(arch, sizeof arch, "%.*s", (int)(sl < 63 ? sl : 63), (const char *)f->map + vpos + 8);
        }
        if (key_is(k, kl, "general.alignment")) kv.alignment = to_u32(num);
        if (key_is(k, kl, "tokenizer.ggml.tokens")) kv.vocab = (uint32_t)alen;
        /* "<arch>.<field>" keys */
        size_t al = strlen(arch);
        if (kl > al + 1 && !memcmp(k, arch, al) && k[al] == '.') {
            const char *sub = k + al + 1;
            uint64_t sl = kl - al - 1;
            if (key_is(sub, sl, "block_count")) kv.block_count = to_u32(num);
            if (key_is(sub, sl, "embedding_length")) kv.emb = to_u32(num);
            if (key_is(sub, sl, "attention.head_count")) kv.heads = to_u32(num);
            if (key_is(sub, sl, "attention.head_count_kv")) kv.heads_kv = to_u32(num);
            if (key_is(sub, sl, "feed_forward_length")) kv.ffn = to_u32(num);
            if (key_is(sub, sl, "context_length")) kv.ctx = to_u32(num);
            if (key_is(sub, sl, "rope.freq_base")) kv.rope = to_f32(num);
            if (key_is(sub, sl, "attention.layer_norm_rms_epsilon")) kv.eps = to_f32(num);
        }
    }
    if (r.bad) return err ? err->status : SQ_ECORRUPT;
    if (!kv.block_count || !kv.emb || !kv.heads)
        return sq_err_set(err, SQ_ECORRUPT, "%s: %s.block_count, embedding_length or attention.head_count is missing", path, arch);
    if (!kv.heads_kv) kv.heads_kv = kv.heads;
    if (kv.alignment < 1 || kv.alignment > (1u << 20) || (kv.alignment & (kv.alignment - 1)))
        return sq_err_set(err, SQ_ECORRUPT, "%s: general.alignment %u is not a power of two", path, kv.alignment);
    struct tinfo { char name[256]; uint32_t nd, type; uint64_t dims[SQ_MAX_NDIM], off; } *ti = calloc(nt ? nt : 1, sizeof *ti);
    if (!ti) return sq_err_set(err, SQ_ENOMEM, "out of memory");
    sq_status s = SQ_OK;
    for (uint64_t i = 0; i < nt && !r.bad; i++) {
        uint64_t nl;
        const char *nm = str(&r, &nl, "tensor name");
        uint32_t nd = u32(&r, "n_dims");
        if (r.bad) break;
        if (nl == 0 || nl >= sizeof ti[i].name || nd < 1 || nd > SQ_MAX_NDIM) {
            s = sq_err_set(err, SQ_ECORRUPT, "%s: tensor info %llu at byte %llu: bad name length or n_dims %u", path,
                           (unsigned long long)i, (unsigned long long)r.pos, nd);
            break;
        }
        memcpy(ti[i].name, nm, nl);
        ti[i].nd = nd;
        for (uint32_t d = 0; d < nd; d++) ti[i].dims[nd - 1 - d] = u64(&r, "tensor dim"); /* innermost first on disk */
        ti[i].type = u32(&r, "tensor type");
        ti[i].off = u64(&r, "tensor offset");
    }
    if (!s && r.bad) s = err ? err->status : SQ_ECORRUPT;
    uint64_t data0 = align_up(r.pos, kv.alignment);
    for (uint64_t i = 0; !s && i < nt; i++) {
        uint32_t dt = ti[i].type == 0 ? SQ_DT_F32 : ti[i].type == 1 ? SQ_DT_F16 : ti[i].type == 30 ? SQ_DT_BF16 : 0;
        const sq_ggml_qtype *qt = dt ? NULL : sq_ggml_qtype_find(ti[i].type);
        if (!dt && !qt) {
            s = sq_err_set(err, SQ_EUNSUPPORTED,
                           "%s: tensor %s is %s (ggml type %u); squish reads F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, "
                           "Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL and IQ4_XS GGUF tensors",
                           path, ti[i].name, sq_ggml_qtype_name(ti[i].type), ti[i].type);
            break;
        }
        uint64_t bytes = dt ? sq_dtype_size(dt) : 1, start, end;
        int ok = 1;
        if (qt) { /* blocks run along the innermost dimension (a row) */
            uint64_t row = ti[i].dims[ti[i].nd - 1];
            if (row % qt->block_elems) {
                s = sq_err_set(err, SQ_ECORRUPT, "%s: tensor %s: rows of %llu values do not split into %s blocks of %u",
                               path, ti[i].name, (unsigned long long)row, qt->name, qt->block_elems);
                break;
            }
            bytes = row / qt->block_elems * qt->block_bytes;
            for (uint32_t d = 0; d + 1 < ti[i].nd && ok; d++) ok = mul_ok(bytes, ti[i].dims[d], &bytes);
        } else {
            for (uint32_t d = 0; d < ti[i].nd && ok; d++) ok = mul_ok(bytes, ti[i].dims[d], &bytes);
        }
        if (!ok || !add_ok(data0, ti[i].off, &start) || !add_ok(start, bytes, &end) || end > f->size) {
            s = sq_err_set(err, SQ_ECORRUPT, "%s: tensor %s: data at offset %llu (+%llu bytes) runs past the end of the file", path,
                           ti[i].name, (unsigned long long)ti[i].off, (unsigned long long)bytes);
            break;
        }
        char cn[300];
        int rope;
        canon(ti[i].name, cn, sizeof cn, &rope);
        s = sq_model_add_tensor(m, cn, ti[i].name, dt ? dt : SQ_DT_F32, ti[i].nd, ti[i].dims, f->map + start, bytes, fi, err);
        if (!s && qt) m->tensors[m->n_tensors - 1].ggml_type = qt->id; /* decoded to f32 by sq_model_tensor_f32 */
        if (!s && rope) {
            uint32_t h = rope == 1 ? kv.heads : kv.heads_kv;
            uint64_t rows = ti[i].dims[0];
            if (ti[i].nd != 2 || rows % h || (rows / h) < 2 || (rows / h) % 2)
                s = sq_err_set(err, SQ_ECORRUPT, "%s: tensor %s: %llu rows do not split into %u rotary heads of an even size",
                               path, ti[i].name, (unsigned long long)rows, h);
            else
                m->tensors[m->n_tensors - 1].rope_heads = h;
        }
    }
    free(ti);
    if (s) return s;
    const sq_model_tensor *emb = sq_model_find(m, SQ_LLAMA_EMBED_NAME);
    if (!emb) return sq_err_set(err, SQ_ECORRUPT, "%s: no token_embd.weight tensor", path);
    sq_model_info *in = &m->info;
    in->arch = sq_arch_from_name(arch);
    in->n_layers = kv.block_count;
    in->hidden_size = kv.emb;
    in->n_heads = kv.heads;
    in->n_kv_heads = kv.heads_kv;
    in->intermediate_size = kv.ffn;
    in->vocab_size = (uint32_t)emb->dims[0];
    m->head_dim = kv.emb / kv.heads;
    m->rope_theta = kv.rope;
    m->norm_eps = kv.eps;
    m->max_seq = kv.ctx ? kv.ctx : 2048;
    m->tied_embeddings = sq_model_find(m, SQ_LLAMA_LM_HEAD_NAME) == NULL;
    char cfg[1024];
    snprintf(cfg, sizeof cfg,
             "{\"architectures\": [\"LlamaForCausalLM\"], \"model_type\": \"%s\", \"hidden_size\": %u, "
             "\"intermediate_size\": %u, \"num_hidden_layers\": %u, \"num_attention_heads\": %u, "
             "\"num_key_value_heads\": %u, \"vocab_size\": %u, \"max_position_embeddings\": %u, "
             "\"rms_norm_eps\": %g, \"rope_theta\": %g, \"tie_word_embeddings\": %s, \"head_dim\": %u}",
             sq_arch_name(in->arch), in->hidden_size, in->intermediate_size, in->n_layers, in->n_heads, in->n_kv_heads,
             in->vocab_size, m->max_seq, (double)m->norm_eps, (double)m->rope_theta,
             m->tied_embeddings ? "true" : "false", m->head_dim);
    m->config_json = strdup(cfg);
    return m->config_json ? SQ_OK : sq_err_set(err, SQ_ENOMEM, "out of memory");
}
