/* GGUF import of ggml's quantized blocks: the block decoders against
 * vectors computed independently (testdata/ggml/gen_ggml_blocks.py), the
 * reader on GGUF files written here from the tiny model (Q8_0 rows in
 * llama.cpp's rotary order, odd-sized, truncated and damaged tensors), and,
 * when ../shared/peer exists, one tensor of llama.cpp's own Q8_0 file. */
#include <math.h>

#include "readers/ggml_decode.h"
#include "squish/model.h"
#include "testutil.h"

#define TINY "testdata/tiny-llama"

static uint32_t rd32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

/* Every vector decodes to the generator's values bit for bit (a zero may
 * carry either sign: the formula's order decides it, the value does not). */
START_TEST(vectors_decode_exactly) {
    size_t len;
    uint8_t *b = read_all(src_path("testdata/ggml/ggml-blocks.bin"), &len);
    ck_assert_msg(b != NULL, "testdata/ggml/ggml-blocks.bin is missing");
    ck_assert(len > 12 && !memcmp(b, "SQGGMLV1", 8));
    uint32_t n_cases = rd32(b + 8), seen = 0; /* bit i: ggml type i met */
    ck_assert_uint_ge(n_cases, 24);
    size_t pos = 12;
    uint64_t types_seen = 0;
    for (uint32_t c = 0; c < n_cases; c++) {
        ck_assert(pos + 24 <= len);
        char name[9] = {0};
        memcpy(name, b + pos, 8);
        uint32_t id = rd32(b + pos + 8), elems = rd32(b + pos + 12), bytes = rd32(b + pos + 16), nb = rd32(b + pos + 20);
        pos += 24;
        const sq_ggml_qtype *t = sq_ggml_qtype_find(id);
        ck_assert_msg(t != NULL, "%s (type %u) has no decoder", name, id);
        ck_assert_str_eq(t->name, name);
        ck_assert_str_eq(sq_ggml_qtype_name(id), name);
        ck_assert_uint_eq(t->block_elems, elems);
        ck_assert_uint_eq(t->block_bytes, bytes);
        ck_assert(pos + (size_t)nb * (bytes + 4 * elems) <= len);
        float *y = malloc((size_t)nb * elems * sizeof(float));
        sq_ggml_qtype_decode(t, b + pos, nb, y);
        const uint8_t *want = b + pos + (size_t)nb * bytes;
        uint32_t nonzero = 0;
        for (uint32_t i = 0; i < nb * elems; i++) {
            float w;
            memcpy(&w, want + 4 * i, 4);
            nonzero += w != 0;
            if (w == 0 ? y[i] != 0 : memcmp(&w, &y[i], 4) != 0) /* (a ck_assert per value is slow in Check) */
                ck_abort_msg("%s case %u value %u: decoded %.9g, want %.9g", name, c, i, (double)y[i], (double)w);
        }
        ck_assert_msg(nonzero > nb * elems / 2, "%s case %u: vectors mostly zero", name, c);
        free(y);
        pos += (size_t)nb * (bytes + 4 * elems);
        types_seen |= 1ull << id;
        seen++;
    }
    ck_assert_uint_eq(pos, len);
    ck_assert_uint_eq(seen, n_cases);
    static const uint32_t required[] = {2, 3, 6, 7, 8, 10, 11, 12, 13, 14, 20, 23};
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++)
        ck_assert_msg(types_seen >> required[i] & 1, "no vectors for %s", sq_ggml_qtype_name(required[i]));
    /* types without a decoder stay unknown to the table */
    ck_assert_ptr_null(sq_ggml_qtype_find(0));
    ck_assert_ptr_null(sq_ggml_qtype_find(16)); /* IQ2_XXS */
    ck_assert_ptr_null(sq_ggml_qtype_find(30)); /* BF16 is a dtype */
    free(b);
}
END_TEST

/* ---------- GGUF files written here from the tiny model ---------- */
typedef struct gbuf {
    uint8_t *p;
    size_t n, cap;
} gbuf;
static void gput(gbuf *g, const void *d, size_t k) {
    if (!k) return;
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

static void gguf_name(const char *hf, char *out, size_t n) {
    static const char *const top[][2] = {{"model.embed_tokens.weight", "token_embd.weight"},
                                         {"model.norm.weight", "output_norm.weight"}, {"lm_head.weight", "output.weight"}};
    for (size_t i = 0; i < 3; i++)
        if (!strcmp(hf, top[i][0])) { snprintf(out, n, "%s", top[i][1]); return; }
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

/* One Q8_0 block of x[0..32): f16 d = amax/127, codes round(x/d). */
static void q8_0_block(const float *x, uint8_t out[34]) {
    float amax = 0;
    for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[j]));
    uint16_t h = sq_f32_to_f16(amax / 127.0f);
    float d = sq_f16_to_f32(h);
    memcpy(out, &h, 2);
    for (int j = 0; j < 32; j++) {
        long q = d == 0 ? 0 : lrintf(x[j] / d);
        out[2 + j] = (uint8_t)(int8_t)(q > 127 ? 127 : q < -127 ? -127 : q);
    }
}

/* What the reader must return for a Q8_0 row written from x: d * q per value. */
static void q8_0_expected(const float *x, uint64_t cols, float *y) {
    for (uint64_t b = 0; b < cols / 32; b++) {
        uint8_t blk[34];
        q8_0_block(x + 32 * b, blk);
        uint16_t h;
        memcpy(&h, blk, 2);
        for (int j = 0; j < 32; j++) y[32 * b + j] = sq_f16_to_f32(h) * (float)(int8_t)blk[2 + j];
    }
}

/* The tiny model as GGUF: norms F32; matrices whose rows are a whole number
 * of 32-value blocks Q8_0, the rest (down_proj's rows of 520) BF16; q/k rows
 * in llama.cpp's interleaved rotary order. The tensor named `odd` (GGUF
 * name) is declared as ggml type odd_type instead, its data unchanged. */
static gbuf make_gguf(const sq_model *m, const char *odd, uint32_t odd_type) {
    static const uint8_t zeros[32];
    gbuf g = {0}, data = {0};
    gput(&g, "GGUF", 4);
    gu32(&g, 3);
    gu64(&g, m->n_tensors);
    gu64(&g, 6);
    gstr(&g, "general.architecture"); gu32(&g, 8); gstr(&g, "llama");
    gkv_u32(&g, "llama.block_count", m->info.n_layers);
    gkv_u32(&g, "llama.embedding_length", m->info.hidden_size);
    gkv_u32(&g, "llama.attention.head_count", m->info.n_heads);
    gkv_u32(&g, "llama.attention.head_count_kv", m->info.n_kv_heads);
    gkv_u32(&g, "llama.feed_forward_length", m->info.intermediate_size);
    for (uint32_t i = 0; i < m->n_tensors; i++) {
        const sq_model_tensor *t = &m->tensors[i];
        char name[128];
        gguf_name(t->name, name, sizeof name);
        uint64_t n = sq_model_tensor_elems(t), cols = t->dims[t->ndim - 1], rows = n / cols;
        float *w = malloc(n * 4);
        ck_assert_int_eq(sq_model_tensor_f32(m, t, w, NULL), SQ_OK);
        uint32_t heads = strstr(name, "attn_q") ? m->info.n_heads : strstr(name, "attn_k") ? m->info.n_kv_heads : 0;
        uint32_t type = t->ndim == 1 ? 0 : cols % 32 ? 30 : 8;
        gstr(&g, name);
        gu32(&g, t->ndim);
        for (uint32_t d = t->ndim; d-- > 0;) gu64(&g, t->dims[d]);
        gu32(&g, odd && !strcmp(name, odd) ? odd_type : type);
        gput(&data, zeros, (32 - data.n % 32) % 32);
        gu64(&g, data.n);
        for (uint64_t r = 0; r < rows; r++) {
            uint64_t src = r; /* gguf[h*hd + 2j + t] = hf[h*hd + t*hd/2 + j] */
            if (heads) {
                uint64_t hd = rows / heads, h = r / hd, within = r % hd;
                src = h * hd + (within % 2) * (hd / 2) + within / 2;
            }
            const float *x = w + src * cols;
            uint8_t *row = malloc(cols * 4), *o = row; /* one append per row: fast under the sanitizers */
            for (uint64_t c = 0; c < cols; c += type == 8 ? 32 : 1) {
                if (type == 8) {
                    q8_0_block(x + c, o);
                    o += 34;
                } else if (type == 0) {
                    memcpy(o, &x[c], 4);
                    o += 4;
                } else {
                    uint16_t h16 = sq_f32_to_bf16(x[c]);
                    memcpy(o, &h16, 2);
                    o += 2;
                }
            }
            gput(&data, row, (size_t)(o - row));
            free(row);
        }
        free(w);
    }
    gput(&g, zeros, (32 - g.n % 32) % 32);
    gput(&g, data.p, data.n);
    free(data.p);
    return g;
}

static sq_model *open_bytes(const char *path, const gbuf *g, sq_err *err) {
    ck_assert_int_eq(write_all_file(path, g->p, g->n), 0);
    return sq_model_open(path, err);
}

START_TEST(q8_0_gguf_reads_in_hf_order) {
    sq_err err = {0};
    sq_model *hf = sq_model_open(src_path(TINY), &err);
    ck_assert_msg(hf != NULL, "%s", err.msg);
    gbuf g = make_gguf(hf, NULL, 0);
    char p[1024];
    snprintf(p, sizeof p, "%s/q8.gguf", tmpdir());
    sq_model *m = open_bytes(p, &g, &err);
    ck_assert_msg(m != NULL, "%s", err.msg);
    ck_assert_int_eq(sq_model_check(m, &err), SQ_OK);
    uint32_t n_q8 = 0;
    for (uint32_t i = 0; i < m->n_tensors; i++) {
        const sq_model_tensor *a = &m->tensors[i], *b = sq_model_find(hf, a->name);
        ck_assert_msg(b != NULL, "%s", a->name);
        uint64_t n = sq_model_tensor_elems(a), cols = a->dims[a->ndim - 1];
        float *x = malloc(n * 4), *y = malloc(n * 4), *want = malloc(n * 4);
        ck_assert_int_eq(sq_model_tensor_f32(m, a, x, &err), SQ_OK);
        ck_assert_int_eq(sq_model_tensor_f32(hf, b, y, &err), SQ_OK);
        if (a->ggml_type) {
            ck_assert_uint_eq(a->ggml_type, 8);
            ck_assert_uint_eq(a->dtype, SQ_DT_F32);
            ck_assert_uint_eq(a->nbytes, n / 32 * 34);
            for (uint64_t r = 0; r < n / cols; r++) q8_0_expected(y + r * cols, cols, want + r * cols);
            n_q8++;
        } else {
            memcpy(want, y, n * 4); /* F32 norms, BF16 down_proj: the source's own values */
        }
        for (uint64_t k = 0; k < n; k++)
            if (x[k] != want[k]) ck_abort_msg("%s[%llu]: %g != %g", a->name, (unsigned long long)k, (double)x[k], (double)want[k]);
        free(x);
        free(y);
        free(want);
    }
    ck_assert_uint_eq(n_q8, 2 + 2 * 6); /* embed, lm_head; q k v o gate up per layer */
    sq_model_close(m);
    free(g.p);
    sq_model_close(hf);
}
END_TEST

/* The same bytes read as Q4_0 or as IQ4_NL (both 18-byte blocks of 32) are
 * different models: the content hash tells them apart. */
START_TEST(content_hash_names_the_block_type) {
    sq_err err = {0};
    sq_model *hf = sq_model_open(src_path(TINY), &err);
    ck_assert_ptr_nonnull(hf);
    char p[1024], h[2][65];
    snprintf(p, sizeof p, "%s/h.gguf", tmpdir());
    static const uint32_t types[2] = {2, 20};
    for (int k = 0; k < 2; k++) {
        gbuf g = make_gguf(hf, "blk.0.ffn_gate.weight", types[k]);
        sq_model *m = open_bytes(p, &g, &err);
        free(g.p);
        ck_assert_msg(m != NULL, "%s", err.msg);
        ck_assert_uint_eq(sq_model_find(m, "model.layers.0.mlp.gate_proj.weight")->ggml_type, types[k]);
        ck_assert_int_eq(sq_model_content_sha256(m, h[k], &err), SQ_OK);
        sq_model_close(m);
    }
    ck_assert_str_ne(h[0], h[1]);
    sq_model_close(hf);
}
END_TEST

/* Bad tensors: the error names the file, the tensor and what is wrong. */
START_TEST(bad_quantized_tensors) {
    sq_err err = {0};
    sq_model *hf = sq_model_open(src_path(TINY), &err);
    ck_assert_ptr_nonnull(hf);
    char p[1024];
    snprintf(p, sizeof p, "%s/bad.gguf", tmpdir());
    static const struct { const char *tensor; uint32_t type; sq_status st; const char *say; } cases[] = {
        {"blk.0.attn_q.weight", 12, SQ_ECORRUPT, "rows of 192 values do not split into Q4_K blocks of 256"},
        {"blk.1.ffn_down.weight", 8, SQ_ECORRUPT, "rows of 520 values do not split into Q8_0 blocks of 32"},
        {"blk.0.ffn_gate.weight", 16, SQ_EUNSUPPORTED, "is IQ2_XXS (ggml type 16)"},
        {"output.weight", 39, SQ_EUNSUPPORTED, "is MXFP4 (ggml type 39)"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        gbuf g = make_gguf(hf, cases[i].tensor, cases[i].type);
        ck_assert_ptr_null(open_bytes(p, &g, &err));
        free(g.p);
        ck_assert_int_eq(err.status, cases[i].st);
        ck_assert_msg(strstr(err.msg, p) && strstr(err.msg, cases[i].tensor) && strstr(err.msg, cases[i].say),
                      "message '%s' lacks the file, %s or '%s'", err.msg, cases[i].tensor, cases[i].say);
    }
    /* truncation anywhere in the data of the last tensor (lm_head, Q8_0) */
    gbuf g = make_gguf(hf, NULL, 0);
    uint64_t lm_bytes = 512ull * 192 / 32 * 34;
    for (uint64_t cut = 1; cut < lm_bytes; cut += 9973) {
        gbuf t = g;
        t.n = g.n - cut;
        ck_assert_ptr_null(open_bytes(p, &t, &err));
        ck_assert_int_eq(err.status, SQ_ECORRUPT);
        ck_assert_msg(strstr(err.msg, p) && strstr(err.msg, "tensor output.weight") && strstr(err.msg, "runs past the end"), "cut %llu: %s", (unsigned long long)cut, err.msg);
    }
    /* an infinite scale opens (the bytes are not read then) but fails to decode, named */
    sq_model *m = open_bytes(p, &g, &err);
    ck_assert_ptr_nonnull(m);
    const sq_model_tensor *t = sq_model_find(m, "model.layers.1.mlp.up_proj.weight");
    ck_assert(t && t->ggml_type == 8);
    size_t at = (size_t)(t->data - m->files[0].map) + 5 * 34; /* block 5 of row 0 */
    sq_model_close(m);
    g.p[at] = 0x00;
    g.p[at + 1] = 0x7c; /* f16 +inf */
    m = open_bytes(p, &g, &err);
    ck_assert_ptr_nonnull(m);
    t = sq_model_find(m, "model.layers.1.mlp.up_proj.weight");
    float *w = malloc(sq_model_tensor_elems(t) * 4);
    ck_assert_int_eq(sq_model_tensor_f32(m, t, w, &err), SQ_ECORRUPT);
    ck_assert_msg(strstr(err.msg, p) && strstr(err.msg, "blk.1.ffn_up.weight") && strstr(err.msg, "Q8_0 block 5 of row 0"), "%s",
                  err.msg);
    free(w);
    sq_model_close(m);
    free(g.p);
    sq_model_close(hf);
}
END_TEST

/* llama.cpp's own Q8_0 file (when ../shared/peer exists): one real tensor
 * lies within the Q8_0 bound of the bf16 model's values. Per block, with
 * d = amax/127 stored as f16, |x - f16(d) q| <= d/2 + 127 |f16(d) - d|,
 * under 0.5 d + 127 d 2^-11 < 0.563 d. */
START_TEST(peer_q8_0_tensor_within_bound) {
    const char *gg = shared_path("peer/llama.cpp-c392e509/gguf/squish-lm-34m-Q8_0.gguf");
    if (access(gg, R_OK) != 0) {
        fprintf(stderr, "skipped: %s is absent\n", gg);
        return;
    }
    sq_err err = {0};
    sq_model *q = sq_model_open(gg, &err), *hf = sq_model_open(shared_path("models/squish-lm-34m"), &err);
    ck_assert_msg(q && hf, "%s", err.msg);
    static const char *const names[] = {"model.layers.3.self_attn.k_proj.weight", "model.layers.3.self_attn.v_proj.weight"};
    for (int k = 0; k < 2; k++) { /* k_proj has rotary rows: the regrouping is checked too */
        const sq_model_tensor *a = sq_model_find(q, names[k]), *b = sq_model_find(hf, names[k]);
        ck_assert(a && b);
        ck_assert_uint_eq(a->ggml_type, 8);
        uint64_t n = sq_model_tensor_elems(a);
        ck_assert_uint_eq(n, sq_model_tensor_elems(b));
        float *x = malloc(n * 4), *y = malloc(n * 4);
        ck_assert_int_eq(sq_model_tensor_f32(q, a, x, &err), SQ_OK);
        ck_assert_int_eq(sq_model_tensor_f32(hf, b, y, &err), SQ_OK);
        double worst = 0;
        for (uint64_t blk = 0; blk < n / 32; blk++) {
            float amax = 0;
            for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(y[32 * blk + j]));
            double bound = 0.563 * amax / 127.0 + 1e-12;
            for (int j = 0; j < 32; j++) {
                double e = fabs((double)x[32 * blk + j] - y[32 * blk + j]);
                if (!(e <= bound)) ck_abort_msg("%s block %llu: error %g over the Q8_0 bound %g", names[k], (unsigned long long)blk, e, bound);
                if (e / bound > worst) worst = e / bound;
            }
        }
        ck_assert_msg(worst > 0.3, "%s: errors far below the Q8_0 bound (%.3f of it): not a Q8_0 decode?", names[k], worst);
        free(x);
        free(y);
    }
    sq_model_close(q);
    sq_model_close(hf);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("gguf_quant");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, vectors_decode_exactly);
    tcase_add_test(tc, q8_0_gguf_reads_in_hf_order);
    tcase_add_test(tc, content_hash_names_the_block_type);
    tcase_add_test(tc, bad_quantized_tensors);
    tcase_add_test(tc, peer_q8_0_tensor_within_bound);
    suite_add_tcase(s, tc);
    return s;
}
RUN_SUITE(suite())
