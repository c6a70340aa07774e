/* Model readers: the tiny Hugging Face model in testdata, hostile
 * safetensors directories, llama2.c against its Hugging Face conversion,
 * and GGUF files written here from the tiny model. */
#include <sys/stat.h>

#include "squish/fp.h"
#include "squish/hash.h"
#include "squish/model.h"
#include "testutil.h"

static const char *TINY = "testdata/tiny-llama";

START_TEST(tiny_llama_reads) {
    sq_err err = {0};
    sq_model *m = sq_model_open(src_path(TINY), &err);
    ck_assert_msg(m != NULL, "%s", err.msg);
    ck_assert_int_eq(m->format, SQ_MODEL_HF);
    ck_assert_uint_eq(m->info.arch, SQ_ARCH_LLAMA);
    ck_assert_uint_eq(m->info.n_layers, 2);
    ck_assert_uint_eq(m->info.hidden_size, 192);
    ck_assert_uint_eq(m->info.n_heads, 6);
    ck_assert_uint_eq(m->info.n_kv_heads, 2);
    ck_assert_uint_eq(m->info.vocab_size, 512);
    ck_assert_uint_eq(m->info.intermediate_size, 520);
    ck_assert_uint_eq(m->n_tensors, 21);
    ck_assert_uint_eq(m->n_files, 2);
    const sq_model_tensor *t = sq_model_find(m, "model.layers.1.mlp.down_proj.weight");
    ck_assert_ptr_nonnull(t);
    ck_assert_uint_eq(t->dtype, SQ_DT_BF16);
    ck_assert_uint_eq(t->dims[0], 192);
    ck_assert_uint_eq(t->dims[1], 520);
    float *w = malloc(192 * 520 * sizeof(float));
    ck_assert_int_eq(sq_model_tensor_f32(m, t, w, &err), 0);
    for (int i = 0; i < 192 * 520; i += 97) {
        uint16_t h;
        memcpy(&h, t->data + 2 * i, 2);
        ck_assert(w[i] == sq_bf16_to_f32(h));
    }
    free(w);
    sq_model_close(m);
}
END_TEST

/* ---------- hostile Hugging Face directories ---------- */
static void write_text(const char *dir, const char *name, const char *text) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    ck_assert_int_eq(write_all_file(p, text, strlen(text)), 0);
}

static const char *CONFIG = "{\"model_type\":\"llama\",\"num_hidden_layers\":1,\"hidden_size\":4,"
                            "\"num_attention_heads\":2,\"vocab_size\":8,\"intermediate_size\":8}";

/* model.safetensors with the given header JSON and n data bytes */
static void write_st(const char *dir, const char *name, const char *hdr, size_t data_bytes) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    ck_assert_ptr_nonnull(f);
    uint64_t n = strlen(hdr);
    fwrite(&n, 8, 1, f);
    fwrite(hdr, 1, n, f);
    for (size_t i = 0; i < data_bytes; i++) fputc((int)(i & 0x3f), f);
    fclose(f);
}

static sq_status open_status(const char *dir, char *msg, size_t n) {
    sq_err err = {0};
    sq_model *m = sq_model_open(dir, &err);
    if (m) {
        sq_model_close(m);
        return SQ_OK;
    }
    snprintf(msg, n, "%s", err.msg);
    return err.status;
}

#define GOOD_HDR "{\"w\":{\"dtype\":\"BF16\",\"shape\":[2,4],\"data_offsets\":[0,16]}}"

START_TEST(hostile_safetensors) {
    char msg[600];
    struct { const char *hdr; size_t data; sq_status want; const char *says; } cases[] = {
        {GOOD_HDR, 16, SQ_OK, ""},
        {GOOD_HDR, 15, SQ_ECORRUPT, "outside"},                                          /* truncated data */
        {"{\"w\":{\"dtype\":\"BF16\",\"shape\":[2,4],\"data_offsets\":[0,16]}", 16, SQ_ECORRUPT, "JSON"},
        {"{\"w\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[0,16]}}", 16, SQ_EUNSUPPORTED, "I64"},
        {"{\"w\":{\"dtype\":\"BF16\",\"shape\":[3,4],\"data_offsets\":[0,16]}}", 16, SQ_ECORRUPT, "need"},
        {"{\"w\":{\"dtype\":\"BF16\",\"shape\":[2,-4],\"data_offsets\":[0,16]}}", 16, SQ_ECORRUPT, "non-negative"},
        {"{\"w\":{\"dtype\":\"BF16\",\"shape\":[2,4],\"data_offsets\":[16,0]}}", 16, SQ_ECORRUPT, "outside"},
        {"{\"w\":{\"dtype\":\"BF16\",\"shape\":[4611686018427387904,4],\"data_offsets\":[0,16]}}", 16, SQ_ECORRUPT, ""},
        {"{\"w\":{\"dtype\":\"BF16\",\"shape\":[2,4]}}", 16, SQ_ECORRUPT, "data_offsets"},
        {"[1,2]", 0, SQ_ECORRUPT, "object"},
        {"{}", 0, SQ_ECORRUPT, "no tensors"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *d = tmpdir();
        write_text(d, "config.json", CONFIG);
        write_st(d, "model.safetensors", cases[i].hdr, cases[i].data);
        sq_status st = open_status(d, msg, sizeof msg);
        ck_assert_msg(st == cases[i].want, "case %zu: status %d (%s)", i, st, msg);
        if (st) ck_assert_msg(strstr(msg, cases[i].says), "case %zu: message '%s' lacks '%s'", i, msg, cases[i].says);
    }
    /* header length larger than the file */
    const char *d = tmpdir();
    write_text(d, "config.json", CONFIG);
    char p[1024];
    snprintf(p, sizeof p, "%s/model.safetensors", d);
    uint8_t junk[16] = {0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0};
    write_all_file(p, junk, sizeof junk);
    ck_assert_int_eq(open_status(d, msg, sizeof msg), SQ_ECORRUPT);
    ck_assert_ptr_nonnull(strstr(msg, "header length"));
    write_all_file(p, junk, 5);
    ck_assert_int_eq(open_status(d, msg, sizeof msg), SQ_ECORRUPT);
    /* config problems */
    write_st(d, "model.safetensors", GOOD_HDR, 16);
    write_text(d, "config.json", "{\"model_type\":\"llama\"}");
    ck_assert_int_eq(open_status(d, msg, sizeof msg), SQ_ECORRUPT);
    ck_assert_ptr_nonnull(strstr(msg, "num_hidden_layers"));
    write_text(d, "config.json", "{\"model_type\": ");
    ck_assert_int_eq(open_status(d, msg, sizeof msg), SQ_ECORRUPT);
    unlink(strcat(strcpy(p, d), "/config.json"));
    ck_assert_int_eq(open_status(d, msg, sizeof msg), SQ_EIO);
    ck_assert_ptr_nonnull(strstr(msg, "config.json"));
}
END_TEST

START_TEST(hostile_shard_index) {
    char msg[600];
    const char *d = tmpdir();
    write_text(d, "config.json", CONFIG);
    write_st(d, "a.safetensors", GOOD_HDR, 16);
    write_text(d, "model.safetensors.index.json", "{\"weight_map\":{\"w\":\"a.safetensors\"}}");
    ck_assert_int_eq(open_status(d, msg, sizeof msg), SQ_OK);
    write_text(d, "model.safetensors.index.json", "{\"weight_map\":{\"w\":\"a.safetensors\",\"v\":\"b.safetensors\"}}");
    ck_assert_int_eq(open_status(d, msg, sizeof msg), SQ_EIO); /* missing shard, named */
    ck_assert_ptr_nonnull(strstr(msg, "b.safetensors"));
    write_text(d, "model.safetensors.index.json", "{\"weight_map\":{\"w\":\"../a.safetensors\"}}");
    ck_assert_int_eq(open_status(d, msg, sizeof msg), SQ_ECORRUPT);
    write_text(d, "model.safetensors.index.json", "{\"weight_map\":{\"x\":\"a.safetensors\"}}");
    ck_assert_int_eq(open_status(d, msg, sizeof msg), SQ_ECORRUPT); /* listed tensor not in its shard */
    write_st(d, "b.safetensors", GOOD_HDR, 16); /* a copy of shard a: one shard given twice */
    write_text(d, "model.safetensors.index.json", "{\"weight_map\":{\"w\":\"a.safetensors\",\"v\":\"b.safetensors\"}}");
    ck_assert_int_eq(open_status(d, msg, sizeof msg), SQ_ECORRUPT);
    ck_assert_msg(strstr(msg, "a.safetensors and ") && strstr(msg, "b.safetensors have the same bytes: one shard given twice"),
                  "%s", msg);
    write_st(d, "b.safetensors", "{\"w\":{\"dtype\":\"BF16\",\"shape\":[4],\"data_offsets\":[0,8]}}", 8);
    ck_assert_int_eq(open_status(d, msg, sizeof msg), SQ_ECORRUPT); /* two different shards hold tensor w */
    ck_assert_msg(strstr(msg, "tensor w is in two shards") && strstr(msg, "a.safetensors and ") && strstr(msg, "b.safetensors"),
                  "%s", msg);
    write_text(d, "model.safetensors.index.json", "{\"nothing\":1}");
    ck_assert_int_eq(open_status(d, msg, sizeof msg), SQ_ECORRUPT);
}
END_TEST

/* ---------- llama2.c ---------- */
START_TEST(llama2c_matches_hf_conversion) {
    if (!have_shared()) {
        fprintf(stderr, "skipped: ../shared is absent\n");
        return;
    }
    sq_err err = {0};
    sq_model *a = sq_model_open(shared_path("models/stories260K/stories260K.bin"), &err);
    ck_assert_msg(a != NULL, "%s", err.msg);
    sq_model *b = sq_model_open(shared_path("models/stories260K/hf"), &err);
    ck_assert_msg(b != NULL, "%s", err.msg);
    ck_assert_int_eq(a->format, SQ_MODEL_LLAMA2C);
    ck_assert_uint_eq(a->info.hidden_size, 64);
    ck_assert_uint_eq(a->info.intermediate_size, 172);
    ck_assert_uint_eq(a->info.n_kv_heads, 4);
    ck_assert(a->tied_embeddings);
    ck_assert_ptr_nonnull(a->tokenizer_path);
    ck_assert_uint_eq(a->n_tensors, b->n_tensors);
    for (uint32_t i = 0; i < a->n_tensors; i++) {
        const sq_model_tensor *ta = &a->tensors[i], *tb = sq_model_find(b, ta->name);
        ck_assert_msg(tb != NULL, "%s not in the HF model", ta->name);
        uint64_t n = sq_model_tensor_elems(ta);
        ck_assert_uint_eq(n, sq_model_tensor_elems(tb));
        float *x = malloc(n * 4), *y = malloc(n * 4);
        sq_model_tensor_f32(a, ta, x, &err);
        sq_model_tensor_f32(b, tb, y, &err);
        ck_assert_msg(!memcmp(x, y, n * 4), "%s differs", ta->name); /* q/k regrouped to HF order */
        free(x);
        free(y);
    }
    sq_model_close(a);
    sq_model_close(b);
}
END_TEST

START_TEST(llama2c_hostile) {
    const char *d = tmpdir();
    char p[1024];
    snprintf(p, sizeof p, "%s/m.bin", d);
    int32_t h[7] = {8, 16, 1, 2, 2, 10, 4};
    size_t floats = 10 * 8 + 8 + 4 * 8 * 8 + 8 + 3 * 16 * 8 + 8 + 4 * 4; /* shared classifier */
    uint8_t *buf = calloc(1, 28 + floats * 4 + 4); /* + 4 for the trailing-bytes case */
    memcpy(buf, h, 28);
    ck_assert_int_eq(write_all_file(p, buf, 28 + floats * 4), 0);
    sq_err err = {0};
    sq_model *m = sq_model_open(p, &err);
    ck_assert_msg(m != NULL, "%s", err.msg);
    ck_assert_uint_eq(m->n_tensors, 1 + 9 + 1);
    sq_model_close(m);
    for (size_t cut = 0; cut < 28 + floats * 4; cut += 37) {
        write_all_file(p, buf, cut);
        m = sq_model_open(p, &err);
        ck_assert_ptr_null(m);
        ck_assert_int_eq(err.status, SQ_ECORRUPT);
    }
    write_all_file(p, buf, 28 + floats * 4 + 4); /* trailing bytes */
    ck_assert_ptr_null(sq_model_open(p, &err));
    h[3] = 3; /* heads do not divide dim */
    memcpy(buf, h, 28);
    write_all_file(p, buf, 28 + floats * 4);
    ck_assert_ptr_null(sq_model_open(p, &err));
    h[3] = -5;
    memcpy(buf, h, 28);
    write_all_file(p, buf, 28 + floats * 4);
    ck_assert_ptr_null(sq_model_open(p, &err));
    ck_assert_ptr_nonnull(strstr(err.msg, "n_heads"));
    free(buf);
}
END_TEST

/* ---------- the content hash (spec/squizd.md §4, provenance.model_content_sha256) ---------- */
static void h_u64(sq_sha256 *s, uint64_t v) {
    uint8_t b[8];
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(v >> (8 * i));
    sq_sha256_update(s, b, 8);
}
static void h_u32(sq_sha256 *s, uint32_t v) {
    uint8_t b[4];
    for (int i = 0; i < 4; i++) b[i] = (uint8_t)(v >> (8 * i));
    sq_sha256_update(s, b, 4);
}

/* The spec's definition written out here, the streamed and the one-shot
 * hash agree with it, and the same tensors cut into one file instead of two
 * shards hash the same. */
START_TEST(content_hash_follows_spec) {
    sq_err err = {0};
    sq_model *m = sq_model_open(src_path(TINY), &err);
    ck_assert_ptr_nonnull(m);
    static const char *const order[] = {"model.embed_tokens.weight", "model.layers.0.input_layernorm.weight",
        "model.layers.0.mlp.down_proj.weight", "model.layers.0.mlp.gate_proj.weight", "model.layers.0.mlp.up_proj.weight",
        "model.layers.0.post_attention_layernorm.weight", "model.layers.0.self_attn.k_proj.weight",
        "model.layers.0.self_attn.o_proj.weight", "model.layers.0.self_attn.q_proj.weight",
        "model.layers.0.self_attn.v_proj.weight", "model.layers.1.input_layernorm.weight",
        "model.layers.1.mlp.down_proj.weight", "model.layers.1.mlp.gate_proj.weight", "model.layers.1.mlp.up_proj.weight",
        "model.layers.1.post_attention_layernorm.weight", "model.layers.1.self_attn.k_proj.weight",
        "model.layers.1.self_attn.o_proj.weight", "model.layers.1.self_attn.q_proj.weight",
        "model.layers.1.self_attn.v_proj.weight", "model.norm.weight", "lm_head.weight"};
    sq_sha256 s;
    sq_sha256_init(&s);
    sq_sha256_update(&s, "squish-model-sha256/1", 22); /* with the NUL */
    h_u64(&s, strlen(m->config_json));
    sq_sha256_update(&s, m->config_json, strlen(m->config_json));
    for (size_t i = 0; i < 21; i++) {
        const sq_model_tensor *t = sq_model_find(m, order[i]);
        ck_assert_ptr_nonnull(t);
        h_u64(&s, strlen(t->name));
        sq_sha256_update(&s, t->name, strlen(t->name));
        h_u32(&s, t->dtype);
        h_u32(&s, t->ndim);
        for (uint32_t d = 0; d < t->ndim; d++) h_u64(&s, t->dims[d]);
        h_u64(&s, t->nbytes);
        sq_sha256_update(&s, t->data, (size_t)t->nbytes);
    }
    uint8_t dg[32];
    char want[65], got[65];
    sq_sha256_final(&s, dg);
    sq_hex32(dg, want);
    ck_assert_int_eq(sq_model_content_sha256(m, got, &err), 0);
    ck_assert_str_eq(got, want);
    uint32_t *ord = sq_model_order(m);
    sq_model_hash h;
    sq_model_hash_init(&h, m);
    for (uint32_t i = 0; i < m->n_tensors; i++) sq_model_hash_tensor(&h, m, &m->tensors[ord[i]]);
    sq_model_hash_final(&h, got);
    ck_assert_str_eq(got, want);
    /* the same tensors and config.json in one model.safetensors */
    const char *d = tmpdir();
    char p[1024], *hdr = malloc(1 << 16);
    size_t k = (size_t)sprintf(hdr, "{");
    uint64_t off = 0;
    for (uint32_t i = 0; i < m->n_tensors; i++) { /* reversed: the file order must not matter */
        const sq_model_tensor *t = &m->tensors[m->n_tensors - 1 - i];
        k += (size_t)sprintf(hdr + k, "%s\"%s\":{\"dtype\":\"BF16\",\"shape\":[%llu", i ? "," : "", t->name,
                             (unsigned long long)t->dims[0]);
        if (t->ndim == 2) k += (size_t)sprintf(hdr + k, ",%llu", (unsigned long long)t->dims[1]);
        k += (size_t)sprintf(hdr + k, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
                             (unsigned long long)(off + t->nbytes));
        off += t->nbytes;
    }
    k += (size_t)sprintf(hdr + k, "}");
    snprintf(p, sizeof p, "%s/model.safetensors", d);
    FILE *f = fopen(p, "wb");
    uint64_t hl = k;
    fwrite(&hl, 8, 1, f);
    fwrite(hdr, 1, k, f);
    for (uint32_t i = 0; i < m->n_tensors; i++) fwrite(m->tensors[m->n_tensors - 1 - i].data, 1, m->tensors[m->n_tensors - 1 - i].nbytes, f);
    fclose(f);
    free(hdr);
    write_text(d, "config.json", m->config_json);
    sq_model *one = sq_model_open(d, &err);
    ck_assert_msg(one != NULL, "%s", err.msg);
    ck_assert_uint_eq(one->n_files, 1);
    ck_assert_int_eq(sq_model_content_sha256(one, got, &err), 0);
    ck_assert_str_eq(got, want);
    sq_model_close(one);
    free(ord);
    sq_model_close(m);
}
END_TEST

/* ---------- GGUF, written here from the tiny model ---------- */
typedef struct gbuf {
    uint8_t *p;
    size_t n, cap;
} gbuf;
static void gput(gbuf *g, const void *d, size_t k) {
    if (g->n + k > g->cap) {
        g->cap = (g->n + k) * 2;
        g->p = realloc(g->p, g->cap);
    }
    memcpy(g->p + g->n, d, k);
    g->n += k;
}
static void gu32(gbuf *g, uint32_t v) { gput(g, &v, 4); }
static void gu64(gbuf *g, uint64_t v) { gput(g, &v, 8); }
static void gstr(gbuf *g, const char *s) { gu64(g, strlen(s)); gput(g, s, strlen(s)); }
static void gkv_u32(gbuf *g, const char *k, uint32_t v) { gstr(g, k); gu32(g, 4); gu32(g, v); }

static const struct { const char *hf, *gg; } NAMES[] = {
    {"model.embed_tokens.weight", "token_embd.weight"}, {"model.norm.weight", "output_norm.weight"},
    {"lm_head.weight", "output.weight"}};

static void gguf_name(const char *hf, char *out, size_t n) {
    for (size_t i = 0; i < 3; i++)
        if (!strcmp(hf, NAMES[i].hf)) { snprintf(out, n, "%s", NAMES[i].gg); return; }
    static const char *const map[][2] = {{"input_layernorm.weight", "attn_norm.weight"}, {"self_attn.q_proj.weight", "attn_q.weight"},
        {"self_attn.k_proj.weight", "attn_k.weight"}, {"self_attn.v_proj.weight", "attn_v.weight"},
        {"self_attn.o_proj.weight", "attn_output.weight"}, {"post_attention_layernorm.weight", "ffn_norm.weight"},
        {"mlp.gate_proj.weight", "ffn_gate.weight"}, {"mlp.up_proj.weight", "ffn_up.weight"},
        {"mlp.down_proj.weight", "ffn_down.weight"}};
    unsigned l;
    int used;
    ck_assert_int_eq(sscanf(hf, "model.layers.%u.%n", &l, &used), 1);
    for (size_t i = 0; i < 9; i++)
        if (!strcmp(hf + used, map[i][0])) { snprintf(out, n, "blk.%u.%s", l, map[i][1]); return; }
    ck_abort_msg("no GGUF name for %s", hf);
}

/* Writes tiny-llama as GGUF: norms F32, lm_head F16, the rest BF16; q/k rows
 * in llama.cpp's interleaved rotary order. first_type, when not UINT32_MAX,
 * replaces the first tensor's ggml type (its data stays BF16). */
static gbuf make_gguf(const sq_model *m, uint32_t first_type) {
    gbuf g = {0}, data = {0};
    gput(&g, "GGUF", 4);
    gu32(&g, 3);
    gu64(&g, m->n_tensors);
    gu64(&g, 7);
    gstr(&g, "general.architecture"); gu32(&g, 8); gstr(&g, "llama");
    gkv_u32(&g, "llama.block_count", m->info.n_layers);
    gkv_u32(&g, "llama.embedding_length", m->info.hidden_size);
    gkv_u32(&g, "llama.attention.head_count", m->info.n_heads);
    gkv_u32(&g, "llama.attention.head_count_kv", m->info.n_kv_heads);
    gkv_u32(&g, "llama.feed_forward_length", m->info.intermediate_size);
    gkv_u32(&g, "general.alignment", 32);
    for (uint32_t i = 0; i < m->n_tensors; i++) {
        const sq_model_tensor *t = &m->tensors[i];
        char name[128];
        gguf_name(t->name, name, sizeof name);
        uint64_t n = sq_model_tensor_elems(t), rows = t->dims[0], cols = n / rows;
        float *w = malloc(n * 4);
        sq_model_tensor_f32(m, t, w, NULL);
        uint32_t heads = strstr(name, "attn_q") ? m->info.n_heads : strstr(name, "attn_k") ? m->info.n_kv_heads : 0;
        uint32_t type = t->ndim == 1 ? 0 : !strcmp(name, "output.weight") ? 1 : 30;
        gstr(&g, name);
        gu32(&g, t->ndim);
        for (uint32_t d = t->ndim; d-- > 0;) gu64(&g, t->dims[d]);
        gu32(&g, i == 0 && first_type != UINT32_MAX ? first_type : type);
        while (data.n % 32) gput(&data, "", 1);
        gu64(&g, data.n);
        for (uint64_t r = 0; r < rows; r++) {
            uint64_t src = r; /* meta[h*hd + 2j + t] = hf[h*hd + t*hd/2 + j] */
            if (heads) {
                uint64_t hd = rows / heads, h = r / hd, within = r % hd;
                src = h * hd + (within % 2) * (hd / 2) + within / 2;
            }
            for (uint64_t c = 0; c < cols; c++) {
                float v = w[src * cols + c];
                if (type == 0) gput(&data, &v, 4);
                else {
                    uint16_t h16 = type == 1 ? sq_f32_to_f16(v) : sq_f32_to_bf16(v);
                    gput(&data, &h16, 2);
                }
            }
        }
        free(w);
    }
    while (g.n % 32) gput(&g, "", 1);
    gput(&g, data.p, data.n);
    free(data.p);
    return g;
}

START_TEST(gguf_matches_hf) {
    sq_err err = {0};
    sq_model *hf = sq_model_open(src_path(TINY), &err);
    ck_assert_ptr_nonnull(hf);
    gbuf g = make_gguf(hf, UINT32_MAX);
    const char *d = tmpdir();
    char p[1024];
    snprintf(p, sizeof p, "%s/tiny.gguf", d);
    ck_assert_int_eq(write_all_file(p, g.p, g.n), 0);
    sq_model *m = sq_model_open(p, &err);
    ck_assert_msg(m != NULL, "%s", err.msg);
    ck_assert_int_eq(m->format, SQ_MODEL_GGUF);
    ck_assert_uint_eq(m->info.n_layers, 2);
    ck_assert_uint_eq(m->info.n_kv_heads, 2);
    ck_assert_uint_eq(m->info.vocab_size, 512);
    ck_assert_uint_eq(m->n_tensors, hf->n_tensors);
    for (uint32_t i = 0; i < m->n_tensors; i++) {
        const sq_model_tensor *a = &m->tensors[i], *b = sq_model_find(hf, a->name);
        ck_assert_msg(b != NULL, "%s", a->name);
        ck_assert_uint_eq(a->ndim, b->ndim);
        for (uint32_t k = 0; k < a->ndim; k++) ck_assert_uint_eq(a->dims[k], b->dims[k]);
        uint64_t n = sq_model_tensor_elems(a);
        float *x = malloc(n * 4), *y = malloc(n * 4);
        sq_model_tensor_f32(m, a, x, &err);
        sq_model_tensor_f32(hf, b, y, &err);
        for (uint64_t k = 0; k < n; k++) {
            float want = a->dtype == SQ_DT_F16 ? sq_f16_to_f32(sq_f32_to_f16(y[k])) : y[k];
            ck_assert_msg(x[k] == want, "%s[%llu]: %g != %g", a->name, (unsigned long long)k, x[k], want);
        }
        free(x);
        free(y);
    }
    sq_model_close(m);
    /* every truncation point in the header area, and a sample of the data, is an error */
    for (size_t cut = 0; cut < g.n; cut += cut < 4096 ? 1 : 4099) {
        write_all_file(p, g.p, cut);
        m = sq_model_open(p, &err);
        ck_assert_msg(m == NULL, "truncation at %zu accepted", cut);
        ck_assert(err.status == SQ_ECORRUPT || err.status == SQ_EUNSUPPORTED);
    }
    /* hostile counts */
    uint8_t *h = malloc(g.n);
    memcpy(h, g.p, g.n);
    memset(h + 8, 0xff, 8);
    write_all_file(p, h, g.n);
    ck_assert_ptr_null(sq_model_open(p, &err));
    ck_assert_int_eq(err.status, SQ_ECORRUPT);
    memcpy(h, g.p, g.n);
    h[4] = 9; /* version */
    write_all_file(p, h, g.n);
    ck_assert_ptr_null(sq_model_open(p, &err));
    ck_assert_int_eq(err.status, SQ_EUNSUPPORTED);
    free(h);
    free(g.p);
    sq_model_close(hf);
}
END_TEST

/* A GGUF tensor of a type squish does not decode is refused with ggml's
 * name for it (the types it decodes: tests/test_gguf_quant.c). */
START_TEST(gguf_type_named) {
    sq_err err = {0};
    sq_model *hf = sq_model_open(src_path(TINY), &err);
    ck_assert_ptr_nonnull(hf);
    const char *d = tmpdir();
    char p[1024];
    snprintf(p, sizeof p, "%s/q.gguf", d);
    static const struct { uint32_t type; const char *name; } cases[] = {{16, "IQ2_XXS"}, {19, "IQ1_S"}, {15, "Q8_K"}, {31, "Q4_0_4_4"},
                                                                       {35, "TQ2_0"}, {39, "MXFP4"}, {1000, "unknown"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        gbuf g = make_gguf(hf, cases[i].type);
        ck_assert_int_eq(write_all_file(p, g.p, g.n), 0);
        free(g.p);
        ck_assert_ptr_null(sq_model_open(p, &err));
        ck_assert_int_eq(err.status, SQ_EUNSUPPORTED);
        char want[64];
        snprintf(want, sizeof want, " is %s (ggml type %u)", cases[i].name, cases[i].type);
        ck_assert_msg(strstr(err.msg, want), "message '%s' lacks '%s'", err.msg, want);
    }
    sq_model_close(hf);
}
END_TEST

START_TEST(real_34m_model_reads) {
    if (!have_shared()) {
        fprintf(stderr, "skipped: ../shared is absent\n");
        return;
    }
    sq_err err = {0};
    sq_model *m = sq_model_open(shared_path("models/squish-lm-34m"), &err);
    ck_assert_msg(m != NULL, "%s", err.msg);
    ck_assert_uint_eq(m->n_files, 5);
    ck_assert_uint_eq(m->info.n_layers, 8);
    ck_assert_uint_eq(m->info.vocab_size, 8192);
    uint64_t params = 0;
    for (uint32_t i = 0; i < m->n_tensors; i++) params += sq_model_tensor_elems(&m->tensors[i]);
    ck_assert_uint_eq(params, 33563136); /* as ../shared/README.md states */
    ck_assert(!m->tied_embeddings);
    sq_model_close(m);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("models");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, tiny_llama_reads);
    tcase_add_test(tc, hostile_safetensors);
    tcase_add_test(tc, hostile_shard_index);
    tcase_add_test(tc, llama2c_matches_hf_conversion);
    tcase_add_test(tc, llama2c_hostile);
    tcase_add_test(tc, content_hash_follows_spec);
    tcase_add_test(tc, gguf_matches_hf);
    tcase_add_test(tc, gguf_type_named);
    tcase_add_test(tc, real_34m_model_reads);
    suite_add_tcase(s, tc);
    return s;
}
RUN_SUITE(suite())
