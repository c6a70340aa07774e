/* Generates the committed test data, deterministically (only IEEE basic
 * arithmetic, no libm, so any machine writes the same bytes):
 *   make-testdata toy OUT.squizd      the 2-layer toy container of spec/squizd.md
 *   make-testdata model DIR [DAMAGE]  tiny-llama: a Llama-shaped Hugging Face model
 *                                     (2 shards, bf16) with realistic weight statistics;
 *                                     DAMAGE crafts a broken copy for the model check's
 *                                     tests: missing, transposed, 3d, shared, vocab, layers
 *   make-testdata bigmodel DIR 1b|7b  a synthetic Llama of TinyLlama-1.1B's or Llama-2-7B's
 *                                     shape (sharded bf16, generated while written: big_model.c)
 *   make-testdata tokenizer FILE N    the synthetic SentencePiece tokenizer.model of N pieces that
 *                                     bigmodel writes beside its shards (big_tokenizer.c)
 *   make-testdata patch FILE OFF HEX  overwrite bytes and fix the checksums (for tests)
 *   make-testdata asym-calib IN.h5 OUT.h5 REL
 *                                     a copy of a calibration file whose XᵀX pair
 *                                     [0][6] / [6][0] differs by REL times its bound
 *                                     in every site: REL ~1e-7 is what squish 0.1.0
 *                                     wrote under OpenBLAS's Haswell kernel */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "big_model.h"
#include "big_tokenizer.h"
#include "calib.h"
#include "rtn.h"
#include "squish/codec.h"
#include "squish/container.h"
#include "squish/fp.h"
#include "squish/hash.h"

static uint64_t rng_state;
static uint64_t next_u64(void) { /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1Dull;
}
static double uniform(void) { return (double)(next_u64() >> 11) / 9007199254740992.0; }
/* Irwin-Hall approximation of N(0,1): sum of 12 uniforms minus 6. */
static double gauss(void) {
    double s = 0;
    for (int i = 0; i < 12; i++) s += uniform();
    return s - 6.0;
}

/* ---------------- toy container ---------------- */
static int make_toy(const char *out) {
    sq_err err = {0};
    sq_writer_opts wo = {64, 3, 0};
    sq_writer *w = sq_writer_open(out, &wo, &err);
    if (!w) goto fail;
    sq_model_info info = {SQ_ARCH_LLAMA, 2, 8, 2, 1, 16, 32, 0.0f, {0}};
    sq_writer_set_model(w, &info);
    if (sq_writer_set_metadata(w, "{\"config\":{\"model_type\":\"llama\",\"num_hidden_layers\":2}}", &err)) goto fail;
    /* layer 0 down_proj: [2, 32] int4 g32 sym; the weights are i/8 - 2 so the codes are easy to read */
    float w0[64], w1[64];
    for (int i = 0; i < 64; i++) w0[i] = (float)(i % 32) / 8.0f - 2.0f;
    for (int i = 0; i < 64; i++) w1[i] = (float)((i * 7) % 32) / 16.0f - 0.5f;
    const sq_codec *c;
    uint32_t p[SQ_NPARAMS];
    struct { const char *name, *scheme; float *w; } ts[2] = {
        {"model.layers.0.mlp.down_proj.weight", "int4:g32:sym", w0},
        {"model.layers.1.mlp.down_proj.weight", "int8:pc:asym", w1}};
    for (int k = 0; k < 2; k++) {
        if (sq_scheme_parse(ts[k].scheme, &c, p, &err)) goto fail;
        sq_encoded e;
        if (sq_encode(c, p, ts[k].w, 2, 32, 1, &e, &err)) goto fail;
        uint64_t dims[2] = {2, 32};
        if (sq_writer_begin_tensor(w, ts[k].name, 2, dims, SQ_DT_F32, c->id, p, &err)) goto fail;
        for (int i = 0; i < e.nparts; i++)
            if (sq_writer_add_part(w, e.spec[i].name, e.spec[i].dtype, e.spec[i].ndim, e.spec[i].dims, e.data[i], e.bytes[i],
                                   SQ_COMP_NONE, &err))
                goto fail;
        sq_encoded_free(&e);
        if (sq_writer_end_tensor(w, &err)) goto fail;
    }
    /* final norm: [8] f32 passthrough */
    float norm[8] = {1.0f, 0.5f, 2.0f, 1.0f, 1.0f, 0.25f, 1.0f, 1.5f};
    uint64_t nd[1] = {8}, pd[2] = {1, 8};
    uint32_t zero[SQ_NPARAMS] = {0};
    if (sq_writer_begin_tensor(w, "model.norm.weight", 1, nd, SQ_DT_F32, SQ_CODEC_F32, zero, &err) ||
        sq_writer_add_part(w, "data", SQ_DT_F32, 2, pd, norm, sizeof norm, SQ_COMP_NONE, &err) ||
        sq_writer_end_tensor(w, &err))
        goto fail;
    /* one optional appendix block: sparsity metadata (JSON) */
    const char *sp = "{\"sparsity\":0}";
    if (sq_writer_add_appendix(w, SQ_APPX_SPARSITY, 0, sp, strlen(sp), SQ_COMP_NONE, &err)) goto fail;
    sq_writer *wc = w;
    w = NULL;
    if (sq_writer_commit(wc, &err)) goto fail;
    return 0;
fail:
    if (w) sq_writer_abort(w);
    fprintf(stderr, "make-testdata: %s\n", err.msg);
    return 1;
}

/* ---------------- tiny Llama model ---------------- */
typedef struct tspec {
    char name[96];
    uint64_t rows, cols; /* cols == 0: 1-D of rows */
    uint16_t *data;
    const char *shape;   /* header "shape" when it lies about rows/cols (damaged models), else NULL */
    int share;           /* 1 + index of an earlier tensor whose data_offsets the header names instead */
} tspec;

enum { HID = 192, INTER = 520, LAYERS = 2, HEADS = 6, KV = 2, VOCAB = 512, HD = HID / HEADS };

static void fill(tspec *t, double std, int norm) {
    uint64_t n = t->rows * (t->cols ? t->cols : 1);
    t->data = malloc(n * 2);
    /* a few input channels carry outliers, as in trained LLMs */
    for (uint64_t i = 0; i < n; i++) {
        double v;
        if (norm) v = 1.0 + 0.1 * gauss();
        else {
            v = gauss() * std;
            if (uniform() < 0.002) v *= 8.0;                        /* heavy tail */
            if (t->cols && (i % t->cols) % 61 == 7) v *= 4.0;       /* outlier channels */
        }
        t->data[i] = sq_f32_to_bf16((float)v);
    }
}

static int write_shard(const char *path, tspec *ts, int n) {
    /* header JSON (keys in the given order), padded with spaces to 8 bytes */
    char *hdr = malloc(65536);
    size_t k = (size_t)sprintf(hdr, "{\"__metadata__\":{\"format\":\"pt\"}");
    uint64_t off = 0, offs[64];
    for (int i = 0; i < n; i++) {
        uint64_t bytes = ts[i].rows * (ts[i].cols ? ts[i].cols : 1) * 2, at = ts[i].share ? offs[ts[i].share - 1] : off;
        offs[i] = off;
        if (ts[i].shape)
            k += (size_t)sprintf(hdr + k, ",\"%s\":{\"dtype\":\"BF16\",\"shape\":%s,\"data_offsets\":[%llu,%llu]}", ts[i].name,
                                 ts[i].shape, (unsigned long long)at,
                                 (unsigned long long)(at + bytes));
        else if (ts[i].cols)
            k += (size_t)sprintf(hdr + k, ",\"%s\":{\"dtype\":\"BF16\",\"shape\":[%llu,%llu],\"data_offsets\":[%llu,%llu]}",
                                 ts[i].name, (unsigned long long)ts[i].rows, (unsigned long long)ts[i].cols,
                                 (unsigned long long)off, (unsigned long long)(off + bytes));
        else
            k += (size_t)sprintf(hdr + k, ",\"%s\":{\"dtype\":\"BF16\",\"shape\":[%llu],\"data_offsets\":[%llu,%llu]}",
                                 ts[i].name, (unsigned long long)ts[i].rows, (unsigned long long)off,
                                 (unsigned long long)(off + bytes));
        off += bytes;
    }
    hdr[k++] = '}';
    while (k % 8) hdr[k++] = ' ';
    FILE *f = fopen(path, "wb");
    if (!f) { free(hdr); return -1; }
    uint8_t len[8];
    for (int i = 0; i < 8; i++) len[i] = (uint8_t)((uint64_t)k >> (8 * i));
    fwrite(len, 1, 8, f);
    fwrite(hdr, 1, k, f);
    for (int i = 0; i < n; i++) fwrite(ts[i].data, 2, ts[i].rows * (ts[i].cols ? ts[i].cols : 1), f);
    free(hdr);
    return fclose(f);
}

static int make_model(const char *dir, const char *damage) {
    if (mkdir(dir, 0755) && errno != EEXIST) { perror(dir); return 1; }
    rng_state = 0x5EED5EED12345678ull;
    tspec ts[64];
    memset(ts, 0, sizeof ts); /* no header shape overrides or shared offsets unless a damage sets them */
    int n = 0;
    ts[n] = (tspec){"model.embed_tokens.weight", VOCAB, HID, NULL, NULL, 0}; fill(&ts[n++], 0.05, 0);
    for (int l = 0; l < LAYERS; l++) {
        struct { const char *suffix; uint64_t r, c; int norm; } lay[] = {
            {"input_layernorm.weight", HID, 0, 1}, {"self_attn.q_proj.weight", HID, HID, 0},
            {"self_attn.k_proj.weight", KV * HD, HID, 0}, {"self_attn.v_proj.weight", KV * HD, HID, 0},
            {"self_attn.o_proj.weight", HID, HID, 0}, {"post_attention_layernorm.weight", HID, 0, 1},
            {"mlp.gate_proj.weight", INTER, HID, 0}, {"mlp.up_proj.weight", INTER, HID, 0},
            {"mlp.down_proj.weight", HID, INTER, 0}};
        for (size_t k = 0; k < sizeof lay / sizeof lay[0]; k++) {
            snprintf(ts[n].name, sizeof ts[n].name, "model.layers.%d.%s", l, lay[k].suffix);
            ts[n].rows = lay[k].r;
            ts[n].cols = lay[k].c;
            fill(&ts[n++], 1.0 / 14.0 / (lay[k].c > HID ? 1.6 : 1.0), lay[k].norm);
        }
    }
    ts[n] = (tspec){"model.norm.weight", HID, 0, NULL, NULL, 0}; fill(&ts[n++], 0, 1);
    ts[n] = (tspec){"lm_head.weight", VOCAB, HID, NULL, NULL, 0}; fill(&ts[n++], 0.05, 0);
    int vocab = VOCAB, layers = LAYERS;
    /* damaged copies: one fault each, found by the model check (tensor indices: 1 + 9 * layer + position) */
    if (!strcmp(damage, "missing")) { /* layer 1's up_proj left out */
        free(ts[1 + 9 + 7].data);
        memmove(&ts[1 + 9 + 7], &ts[1 + 9 + 8], (size_t)(n - (1 + 9 + 8)) * sizeof *ts);
        n--;
    } else if (!strcmp(damage, "transposed")) ts[1 + 8].shape = "[520,192]"; /* layer 0 down_proj, bytes unchanged */
    else if (!strcmp(damage, "3d")) ts[1 + 1].shape = "[6,32,192]";        /* layer 0 q_proj */
    else if (!strcmp(damage, "shared")) { /* layer 0 v_proj's header names k_proj's bytes */
        ts[1 + 3].shape = "[64,192]";
        ts[1 + 3].share = 1 + (1 + 2);
    } else if (!strcmp(damage, "vocab")) vocab = 500;
    else if (!strcmp(damage, "layers")) layers = 1;
    else if (*damage) { fprintf(stderr, "make-testdata: unknown damage '%s'\n", damage); return 2; }
    /* shard 1: embeddings and layer 0; shard 2: the rest */
    int split = 1 + 9;
    char path[4096];
    snprintf(path, sizeof path, "%s/model-00001-of-00002.safetensors", dir);
    if (write_shard(path, ts, split)) { perror(path); return 1; }
    snprintf(path, sizeof path, "%s/model-00002-of-00002.safetensors", dir);
    if (write_shard(path, ts + split, n - split)) { perror(path); return 1; }
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    FILE *f = fopen(path, "w");
    if (!f) { perror(path); return 1; }
    uint64_t total = 0;
    for (int i = 0; i < n; i++) total += ts[i].rows * (ts[i].cols ? ts[i].cols : 1) * 2;
    fprintf(f, "{\n  \"metadata\": {\"total_size\": %llu},\n  \"weight_map\": {\n", (unsigned long long)total);
    for (int i = 0; i < n; i++)
        fprintf(f, "    \"%s\": \"model-0000%d-of-00002.safetensors\"%s\n", ts[i].name, i < split ? 1 : 2, i + 1 < n ? "," : "");
    fprintf(f, "  }\n}\n");
    fclose(f);
    snprintf(path, sizeof path, "%s/config.json", dir);
    f = fopen(path, "w");
    if (!f) { perror(path); return 1; }
    fprintf(f,
            "{\n  \"architectures\": [\"LlamaForCausalLM\"],\n  \"model_type\": \"llama\",\n  \"hidden_size\": %d,\n"
            "  \"intermediate_size\": %d,\n  \"num_hidden_layers\": %d,\n  \"num_attention_heads\": %d,\n"
            "  \"num_key_value_heads\": %d,\n  \"head_dim\": %d,\n  \"vocab_size\": %d,\n  \"max_position_embeddings\": 256,\n"
            "  \"rms_norm_eps\": 1e-05,\n  \"rope_theta\": 10000.0,\n  \"tie_word_embeddings\": false,\n"
            "  \"torch_dtype\": \"bfloat16\"\n}\n",
            HID, INTER, layers, HEADS, KV, HD, vocab);
    fclose(f);
    for (int i = 0; i < n; i++) free(ts[i].data);
    return 0;
}

/* Overwrites bytes of a .squizd file and recomputes its checksums (header,
 * index, and the part the bytes land in when it is stored uncompressed), so
 * tests can hand crafted (but checksum-valid) files to the tools. */
static int patch(const char *path, const char *off_s, const char *hex) {
    long off = strtol(off_s, NULL, 0);
    uint64_t part_off = 0, part_len = 0, part_rec = 0; /* the uncompressed part holding off, if any */
    sq_err err;
    sq_file *sf = sq_open(path, &err);
    for (uint32_t i = 0; sf && i < sq_file_ntensors(sf); i++) {
        const sq_tensor *t = sq_file_tensor(sf, i);
        for (uint32_t j = 0; j < t->n_parts; j++) {
            const sq_part *p = &t->parts[j];
            if (p->compression == SQ_COMP_NONE && (uint64_t)off >= p->offset && (uint64_t)off < p->offset + p->stored_size)
                part_off = p->offset, part_len = p->stored_size, part_rec = p->rec_offset;
        }
    }
    if (sf) sq_close(sf);
    FILE *f = fopen(path, "r+b");
    if (!f) { perror(path); return 1; }
    uint8_t b[256];
    for (size_t i = 0; hex[2 * i] && hex[2 * i + 1]; i++) {
        unsigned v;
        sscanf(hex + 2 * i, "%2x", &v);
        fseek(f, off + (long)i, SEEK_SET);
        fputc((int)v, f);
    }
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    uint8_t *all = malloc((size_t)len);
    fseek(f, 0, SEEK_SET);
    if (fread(all, 1, (size_t)len, f) != (size_t)len) { fclose(f); free(all); return 1; }
    if (part_len) { /* the part's checksum sits at byte 32 of its record, in the index */
        uint64_t h = sq_xxh64(all + part_off, (size_t)part_len, 0);
        for (int i = 0; i < 8; i++) all[part_rec + 32 + (uint64_t)i] = (uint8_t)(h >> (8 * i));
        fseek(f, (long)(part_rec + 32), SEEK_SET);
        fwrite(all + part_rec + 32, 1, 8, f);
    }
    memcpy(b, all, 256);
    uint64_t io = 0, is = 0;
    for (int i = 7; i >= 0; i--) { io = io << 8 | b[104 + i]; is = is << 8 | b[112 + i]; }
    if (io + is <= (uint64_t)len) {
        uint64_t h = sq_xxh64(all + io, (size_t)is, 0);
        for (int i = 0; i < 8; i++) b[120 + i] = (uint8_t)(h >> (8 * i));
    }
    uint64_t h = sq_xxh64(b, 248, 0);
    for (int i = 0; i < 8; i++) b[248 + i] = (uint8_t)(h >> (8 * i));
    fseek(f, 0, SEEK_SET);
    fwrite(b, 1, 256, f);
    free(all);
    return fclose(f) ? 1 : 0;
}

static int asym_calib(const char *in, const char *out, double rel) {
    sq_err err = {0};
    sq_calib_file *f = sq_calib_open(in, &err);
    if (!f) {
        fprintf(stderr, "make-testdata: %s\n", err.msg);
        return 1;
    }
    const sq_calib_info *fi = sq_calib_file_info(f);
    sq_calib_acc a = {.info = *fi, .layer0 = 0, .layer1 = fi->n_layers, .n_threads = 1};
    a.info.provenance = strdup(fi->provenance ? fi->provenance : "{}");
    a.sites = calloc((size_t)fi->n_layers * SQ_SITE_COUNT, sizeof *a.sites);
    int rc = !a.sites || !a.info.provenance;
    for (uint32_t i = 0; !rc && i < fi->n_layers * SQ_SITE_COUNT; i++) {
        sq_calib_site *s = &a.sites[i];
        if (sq_calib_read_site(f, i / SQ_SITE_COUNT, (sq_site)(i % SQ_SITE_COUNT), s, &err)) {
            fprintf(stderr, "make-testdata: %s\n", err.msg);
            rc = 1;
            break;
        }
        for (uint32_t j = 0; j < s->n; j++) s->abs_mean[j] *= (double)s->tokens; /* the accumulator holds sums */
        const uint32_t n = s->n, c = n > 6 ? 6 : n - 1;
        s->xtx[c] += rel * sqrt(s->xtx[0] * s->xtx[(size_t)c * n + c]);
    }
    sq_calib_close(f);
    if (!rc && sq_calib_write(out, &a, &err)) {
        fprintf(stderr, "make-testdata: %s\n", err.msg);
        rc = 1;
    }
    sq_calib_acc_free(&a);
    return rc;
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "toy")) return make_toy(argv[2]);
    if (argc == 5 && !strcmp(argv[1], "patch")) return patch(argv[2], argv[3], argv[4]);
    if ((argc == 3 || argc == 4) && !strcmp(argv[1], "model")) return make_model(argv[2], argc == 4 ? argv[3] : "");
    if (argc == 4 && !strcmp(argv[1], "bigmodel")) return make_big_model(argv[2], argv[3]);
    if (argc == 4 && !strcmp(argv[1], "tokenizer")) {
        const long n = strtol(argv[3], NULL, 10);
        if (n < 354 || n > 1000000) {
            fprintf(stderr, "make-testdata: tokenizer needs 354..1000000 tokens, got '%s'\n", argv[3]);
            return 2;
        }
        if (write_big_tokenizer(argv[2], (uint32_t)n)) { perror(argv[2]); return 1; }
        return 0;
    }
    if (argc == 5 && !strcmp(argv[1], "asym-calib")) return asym_calib(argv[2], argv[3], strtod(argv[4], NULL));
    fprintf(stderr, "usage: make-testdata toy OUT.squizd | model DIR [DAMAGE] | bigmodel DIR 1b|7b | tokenizer FILE N | "
                    "patch FILE OFF HEX | asym-calib IN.h5 OUT.h5 REL\n(asym-calib with REL 0: IN's layer statistics alone, as an "
                    "older squish-calibrate wrote them, without /output and /vocab)\n");
    return 2;
}
