/* make-testdata bigmodel DIR 1b|7b: a synthetic Llama of real-model shape
 * (TinyLlama-1.1B's or Llama-2-7B's) as sharded bf16 safetensors, for
 * measuring quantization memory and time and DRAM-bound decode at the scale
 * users run (issue 21). Tensors are generated while they are written, one
 * at a time, so the generator needs a few MB whatever the model's size; each
 * tensor's values depend only on its name, so the bytes are the same on
 * every machine and in any order. A synthetic tokenizer.model of the
 * model's vocabulary (big_tokenizer.c) lets squish-calibrate read real text
 * and squish-pack export the model to GGUF. The weights are not trained: only
 * sizes, speeds and round trips mean anything on this model. */
#include "big_model.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "big_tokenizer.h"
#include "squish/fp.h"

typedef struct big_shape {
    const char *name;
    int hid, inter, layers, heads, kv, vocab;
} big_shape;

static const big_shape shapes[] = {
    {"1b", 2048, 5632, 22, 32, 4, 32000},  /* TinyLlama-1.1B */
    {"7b", 4096, 11008, 32, 32, 32, 32000}, /* Llama-2-7B */
};

typedef struct big_tensor {
    char name[96];
    uint64_t rows, cols; /* cols == 0: a norm vector of rows */
} big_tensor;

/* FNV-1a of the name: each tensor's own random stream */
static uint64_t name_seed(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h | 1;
}

/* Approximately N(0,1) from one 64-bit draw: the sum of four 16-bit
 * uniforms, centred and scaled to unit variance (Irwin-Hall, n = 4). */
static double fast_gauss(uint64_t *s) {
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    const uint64_t r = *s * 0x2545F4914F6CDD1Dull;
    const double sum = (double)(r & 0xFFFF) + (double)((r >> 16) & 0xFFFF) + (double)((r >> 32) & 0xFFFF) + (double)(r >> 48);
    return (sum / 65536.0 - 2.0) * 1.7320508075688772; /* var of U(0,1) sum of 4 = 1/3 */
}

/* Weights with the shape of trained ones: Gaussian bulk, a heavy tail and a
 * few outlier input channels (as the tiny model's generator makes them). */
static int write_tensor_data(FILE *f, const big_tensor *t, double std, uint16_t *buf, size_t cap) {
    uint64_t s = name_seed(t->name);
    const uint64_t n = t->rows * (t->cols ? t->cols : 1);
    for (uint64_t i0 = 0; i0 < n; i0 += cap) {
        const size_t m = (size_t)(n - i0 < cap ? n - i0 : cap);
        for (size_t k = 0; k < m; k++) {
            const uint64_t i = i0 + k;
            double v;
            if (!t->cols) v = 1.0 + 0.1 * fast_gauss(&s);
            else {
                v = fast_gauss(&s) * std;
                if ((s & 1023) < 2) v *= 8.0;               /* heavy tail, about 0.2% */
                if ((i % t->cols) % 61 == 7) v *= 4.0;       /* outlier channels */
            }
            buf[k] = sq_f32_to_bf16((float)v);
        }
        if (fwrite(buf, 2, m, f) != m) return -1;
    }
    return 0;
}

/* 0.02, Llama's initialization, is also about the spread of trained 7B
 * weights; down_proj (the wide input) a little narrower. */
static double weight_std(const big_shape *sh, const big_tensor *t) {
    return t->cols > (uint64_t)sh->hid && strcmp(t->name, "lm_head.weight") ? 0.014 : 0.02;
}

static int write_shard(const char *path, const big_tensor *ts, int n, const big_shape *sh, uint16_t *buf, size_t cap) {
    size_t hcap = 4096 + (size_t)n * 200, k;
    char *hdr = malloc(hcap);
    if (!hdr) return -1;
    k = (size_t)snprintf(hdr, hcap, "{\"__metadata__\":{\"format\":\"pt\"}");
    uint64_t off = 0;
    for (int i = 0; i < n; i++) {
        const uint64_t bytes = ts[i].rows * (ts[i].cols ? ts[i].cols : 1) * 2;
        if (ts[i].cols)
            k += (size_t)snprintf(hdr + k, hcap - k, ",\"%s\":{\"dtype\":\"BF16\",\"shape\":[%" PRIu64 ",%" PRIu64 "],\"data_offsets\":[%" PRIu64 ",%" PRIu64 "]}",
                                  ts[i].name, ts[i].rows, ts[i].cols, off, off + bytes);
        else
            k += (size_t)snprintf(hdr + k, hcap - k, ",\"%s\":{\"dtype\":\"BF16\",\"shape\":[%" PRIu64 "],\"data_offsets\":[%" PRIu64 ",%" PRIu64 "]}",
                                  ts[i].name, ts[i].rows, off, off + bytes);
        off += bytes;
    }
    hdr[k++] = '}';
    while (k % 8) hdr[k++] = ' ';
    FILE *f = fopen(path, "wb");
    if (!f) { free(hdr); return -1; }
    uint8_t len[8];
    for (int i = 0; i < 8; i++) len[i] = (uint8_t)((uint64_t)k >> (8 * i));
    int rc = fwrite(len, 1, 8, f) != 8 || fwrite(hdr, 1, k, f) != k;
    free(hdr);
    for (int i = 0; !rc && i < n; i++) rc = write_tensor_data(f, &ts[i], weight_std(sh, &ts[i]), buf, cap);
    return fclose(f) || rc ? -1 : 0;
}

/* The nine tensors of block l, in the order a Hugging Face export writes them. */
static int layer_tensors(const big_shape *sh, int l, big_tensor ts[9]) {
    const int hd = sh->hid / sh->heads;
    static const char *const suffix[9] = {"input_layernorm.weight",  "self_attn.q_proj.weight",
                                          "self_attn.k_proj.weight", "self_attn.v_proj.weight",
                                          "self_attn.o_proj.weight", "post_attention_layernorm.weight",
                                          "mlp.gate_proj.weight",    "mlp.up_proj.weight",
                                          "mlp.down_proj.weight"};
    const int rows[9] = {sh->hid, sh->hid, sh->kv * hd, sh->kv * hd, sh->hid, sh->hid, sh->inter, sh->inter, sh->hid};
    const int cols[9] = {0, sh->hid, sh->hid, sh->hid, sh->hid, 0, sh->hid, sh->hid, sh->inter};
    for (int k = 0; k < 9; k++) {
        snprintf(ts[k].name, sizeof ts[k].name, "model.layers.%d.%s", l, suffix[k]);
        ts[k].rows = (uint64_t)rows[k];
        ts[k].cols = (uint64_t)cols[k];
    }
    return 9;
}

int make_big_model(const char *dir, const char *shape_name) {
    const big_shape *sh = NULL;
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        if (!strcmp(shapes[i].name, shape_name)) sh = &shapes[i];
    if (!sh) {
        fprintf(stderr, "make-testdata: unknown shape '%s' (1b or 7b)\n", shape_name);
        return 2;
    }
    if (mkdir(dir, 0755) && errno != EEXIST) { perror(dir); return 1; }
    const int hd = sh->hid / sh->heads, nshards = sh->layers + 2; /* embeddings, one per layer, norm + lm_head */
    const size_t cap = 1u << 20;
    uint16_t *buf = malloc(cap * 2);
    char path[4096];
    FILE *idx = NULL;
    int rc = buf ? 0 : 1;
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    if (!rc && !(idx = fopen(path, "w"))) { perror(path); rc = 1; }
    if (!rc) fprintf(idx, "{\n  \"metadata\": {},\n  \"weight_map\": {\n");
    for (int s = 0; !rc && s < nshards; s++) {
        big_tensor ts[9];
        memset(ts, 0, sizeof ts);
        int n = 0;
        if (s == 0) ts[n++] = (big_tensor){"model.embed_tokens.weight", (uint64_t)sh->vocab, (uint64_t)sh->hid};
        else if (s == nshards - 1) {
            ts[n++] = (big_tensor){"model.norm.weight", (uint64_t)sh->hid, 0};
            ts[n++] = (big_tensor){"lm_head.weight", (uint64_t)sh->vocab, (uint64_t)sh->hid};
        } else n = layer_tensors(sh, s - 1, ts);
        char shard[64];
        snprintf(shard, sizeof shard, "model-%05d-of-%05d.safetensors", s + 1, nshards);
        snprintf(path, sizeof path, "%s/%s", dir, shard);
        if (write_shard(path, ts, n, sh, buf, cap)) { perror(path); rc = 1; }
        for (int i = 0; !rc && i < n; i++)
            fprintf(idx, "    \"%s\": \"%s\"%s\n", ts[i].name, shard, s == nshards - 1 && i == n - 1 ? "" : ",");
    }
    if (idx) {
        fprintf(idx, "  }\n}\n");
        if (fclose(idx)) rc = 1;
    }
    free(buf);
    if (rc) return rc;
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "w");
    if (!f) { perror(path); return 1; }
    fprintf(f,
            "{\n  \"architectures\": [\"LlamaForCausalLM\"],\n  \"model_type\": \"llama\",\n  \"hidden_size\": %d,\n"
            "  \"intermediate_size\": %d,\n  \"num_hidden_layers\": %d,\n  \"num_attention_heads\": %d,\n"
            "  \"num_key_value_heads\": %d,\n  \"head_dim\": %d,\n  \"vocab_size\": %d,\n  \"max_position_embeddings\": 4096,\n"
            "  \"rms_norm_eps\": 1e-05,\n  \"rope_theta\": 10000.0,\n  \"tie_word_embeddings\": false,\n"
            "  \"torch_dtype\": \"bfloat16\"\n}\n",
            sh->hid, sh->inter, sh->layers, sh->heads, sh->kv, hd, sh->vocab);
    if (fclose(f)) { perror(path); return 1; }
    snprintf(path, sizeof path, "%s/tokenizer.model", dir);
    if (write_big_tokenizer(path, (uint32_t)sh->vocab)) { perror(path); return 1; }
    return 0;
}
