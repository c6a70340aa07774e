/* Writes the .squizd conformance vectors of testdata/squizd-vectors/:
 * valid files an independent reader must accept (every codec family, zstd
 * and TCA-TBE parts, a split set, a bundle, perm/in_scale transforms, fields a reader
 * must ignore) and damaged files it must refuse, one per rule of
 * spec/squizd.md §8 and spec/codecs.md §10, with a MANIFEST of the exit
 * status squish-verify and squish-inspect give each. Deterministic: the same
 * squish writes the same bytes (tests/test_vectors.sh regenerates and
 * compares).
 *
 * The model is "micro-llama": 1 layer, hidden 32, 2 heads of 16 (1 KV head),
 * MLP 40, vocabulary 16: the top-left corner of every tensor of
 * testdata/tiny-llama, so the files stay a few KB and still load in the
 * runtime.
 *
 * usage: make-vectors TINY_LLAMA_DIR OUT_DIR */
#include <errno.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zstd.h>

#include "squish/codec.h"
#include "squish/container.h"
#include "squish/fp.h"
#include "squish/hash.h"
#include "squish/model.h"
#include "squish/tca_tbe.h"

#define CONFIG                                                                                                        \
    "{\n  \"architectures\": [\"LlamaForCausalLM\"],\n  \"model_type\": \"llama\",\n  \"hidden_size\": 32,\n"         \
    "  \"intermediate_size\": 40,\n  \"num_hidden_layers\": 1,\n  \"num_attention_heads\": 2,\n"                       \
    "  \"num_key_value_heads\": 1,\n  \"head_dim\": 16,\n  \"vocab_size\": 16,\n  \"max_position_embeddings\": 64,\n" \
    "  \"rms_norm_eps\": 1e-05,\n  \"rope_theta\": 10000.0,\n  \"tie_word_embeddings\": false,\n"                      \
    "  \"torch_dtype\": \"bfloat16\"\n}\n"
#define README "micro-llama: the top-left corner of every tensor of squish's testdata/tiny-llama.\n"

static const char *out_dir;
static FILE *manifest;

static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "make-vectors: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

/* ---------------- the micro model ---------------- */
typedef struct mtensor {
    const char *name;
    uint64_t rows, cols; /* cols == 0: 1-D of rows values */
    const char *scheme;  /* in the mixed file */
    float *w;            /* rows x max(cols, 1) */
} mtensor;

static mtensor tensors[] = {
    {"model.embed_tokens.weight", 16, 32, "bf16", NULL},
    {"model.layers.0.input_layernorm.weight", 32, 0, "f32", NULL},
    {"model.layers.0.mlp.down_proj.weight", 32, 40, "int3:g32:sym", NULL},
    {"model.layers.0.mlp.gate_proj.weight", 40, 32, "int8:pc:sym:sbf16", NULL},
    {"model.layers.0.mlp.up_proj.weight", 40, 32, "fp8_e5m2:g32", NULL},
    {"model.layers.0.post_attention_layernorm.weight", 32, 0, "f16", NULL},
    {"model.layers.0.self_attn.k_proj.weight", 16, 32, "fp8_e4m3", NULL},
    {"model.layers.0.self_attn.o_proj.weight", 32, 32, "nf4:dq:g32", NULL},
    {"model.layers.0.self_attn.q_proj.weight", 32, 32, "int4:g32:asym", NULL},
    {"model.layers.0.self_attn.v_proj.weight", 16, 32, "mxfp4", NULL},
    {"model.norm.weight", 32, 0, "f32", NULL},
    {"lm_head.weight", 16, 32, "fp6_e2m3:g32:s32", NULL},
};
#define NT (sizeof tensors / sizeof tensors[0])

static void load_micro(const char *tiny) {
    sq_err err = {0};
    sq_model *m = sq_model_open(tiny, &err);
    if (!m) die("%s", err.msg);
    for (size_t i = 0; i < NT; i++) {
        mtensor *t = &tensors[i];
        const sq_model_tensor *s = sq_model_find(m, t->name);
        if (!s) die("%s: no tensor %s", tiny, t->name);
        uint64_t scols = s->ndim == 2 ? s->dims[1] : 1, cols = t->cols ? t->cols : 1;
        float *all = malloc((size_t)sq_model_tensor_elems(s) * sizeof(float));
        t->w = malloc((size_t)(t->rows * cols) * sizeof(float));
        if (!all || !t->w || sq_model_tensor_f32(m, s, all, &err)) die("%s: %s", t->name, err.msg);
        for (uint64_t r = 0; r < t->rows; r++)
            for (uint64_t c = 0; c < cols; c++) t->w[r * cols + c] = all[r * scols + c];
        free(all);
    }
    sq_model_close(m);
}

/* ---------------- writing variants ---------------- */
typedef struct variant {
    uint32_t alignment;   /* 0: 64 */
    int zstd;             /* parts and metadata zstd level 3 (as squish-pack recompress --zstd 3) */
    int xform;            /* down_proj +perm, o_proj +in_scale, gate_proj f16+perm+in_scale */
    int bundle;           /* config.json and README.md embedded (as squish-pack bundle) */
    int dup_embedded;     /* README.md embedded twice */
    int unknown_appendix; /* an optional appendix block of unknown type 77 */
    int zero_group;       /* gate_proj row 0 all zero: its scale is 0 */
    int meta_member;      /* an unknown metadata member */
    const char *meta;     /* metadata text instead of the usual */
    const char *zstd_tail;/* with zstd: this tensor's first compressed part gets 3 bytes after its frame */
    int tca_tbe;          /* bf16 parts TCA-TBE-coded (as squish-pack recompress --tca-tbe) */
} variant;

static char *metadata(const variant *v) {
    json_object *root = json_object_new_object(), *prov = json_object_new_object(), *q = json_object_new_object();
    json_object_object_add(prov, "tool", json_object_new_string("make-vectors"));
    json_object_object_add(prov, "source", json_object_new_string("testdata/tiny-llama, the top-left corner of each tensor"));
    json_object_object_add(root, "provenance", prov);
    json_object_object_add(root, "config", json_tokener_parse(CONFIG));
    json_object_object_add(q, "scheme", json_object_new_string("mixed: one codec family per tensor"));
    json_object_object_add(q, "method", json_object_new_string("rtn"));
    if (v->zstd) json_object_object_add(q, "zstd_level", json_object_new_int(3));
    json_object_object_add(root, "quantization", q);
    if (v->meta_member) json_object_object_add(root, "x-unknown-member", json_object_new_string("readers ignore this"));
    char *s = strdup(json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(root);
    return s;
}

/* Columns by decreasing sum of squares (ties: lower index first), as GPTQ's
 * act-order sorts by the Hessian diagonal. */
static uint32_t *act_order(const mtensor *t) {
    uint32_t *p = malloc(t->cols * sizeof *p);
    double *key = calloc(t->cols, sizeof *key);
    for (uint64_t c = 0; c < t->cols; c++) {
        p[c] = (uint32_t)c;
        for (uint64_t r = 0; r < t->rows; r++) key[c] += (double)t->w[r * t->cols + c] * t->w[r * t->cols + c];
    }
    for (uint64_t i = 1; i < t->cols; i++) /* insertion sort: stable */
        for (uint64_t j = i; j > 0 && key[p[j]] > key[p[j - 1]]; j--) {
            uint32_t x = p[j];
            p[j] = p[j - 1];
            p[j - 1] = x;
        }
    free(key);
    return p;
}

static void add_embedded(sq_writer *w, const char *name, const char *text) {
    sq_err err;
    size_t nl = strlen(name), n = strlen(text);
    uint8_t *b = malloc(2 + nl + n);
    b[0] = (uint8_t)nl;
    b[1] = (uint8_t)(nl >> 8);
    memcpy(b + 2, name, nl);
    memcpy(b + 2 + nl, text, n);
    if (sq_writer_add_appendix(w, SQ_APPX_FILE, 0, b, 2 + nl + n, SQ_COMP_NONE, &err)) die("%s", err.msg);
    free(b);
}

static void write_tensor(sq_writer *w, const mtensor *t, const variant *v) {
    sq_err err = {0};
    const char *scheme = t->scheme;
    int perm = 0, in_scale = 0;
    if (v->xform && strstr(t->name, "down_proj")) scheme = "int4:g32:asym", perm = 1;
    if (v->xform && strstr(t->name, "o_proj")) scheme = "int4:g32:asym", in_scale = 1;
    if (v->xform && strstr(t->name, "gate_proj")) scheme = "f16", perm = in_scale = 1;
    const sq_codec *c;
    uint32_t p[SQ_NPARAMS];
    if (sq_scheme_parse(scheme, &c, p, &err)) die("%s", err.msg);
    uint64_t rows = t->cols ? t->rows : 1, cols = t->cols ? t->cols : t->rows;
    /* stored matrix: columns permuted and scaled (spec/codecs.md §2.1) */
    float *d = malloc((size_t)(rows * cols) * sizeof(float)), *s = malloc(cols * sizeof(float));
    uint32_t *order = perm ? act_order(t) : NULL;
    for (uint64_t j = 0; j < cols; j++) s[j] = 1.0f + (float)(j % 5) * 0.25f; /* exact in binary */
    for (uint64_t r = 0; r < rows; r++)
        for (uint64_t j = 0; j < cols; j++) {
            float x = t->w[r * cols + (order ? order[j] : j)];
            d[r * cols + j] = in_scale ? x * s[j] : x;
        }
    if (v->zero_group && strstr(t->name, "gate_proj"))
        for (uint64_t j = 0; j < cols; j++) d[j] = 0.0f;
    sq_encoded e;
    if (sq_encode(c, p, d, rows, cols, 1, &e, &err)) die("%s: %s", t->name, err.msg);
    if ((perm || in_scale) && sq_encoded_set_xform(&e, order, in_scale ? s : NULL, &err)) die("%s", err.msg);
    uint64_t dims[2] = {t->rows, t->cols};
    if (sq_writer_begin_tensor(w, t->name, t->cols ? 2 : 1, dims, SQ_DT_BF16, c->id, e.params, &err)) die("%s", err.msg);
    int tail = v->zstd_tail && !strcmp(v->zstd_tail, t->name);
    for (int i = 0; i < e.nparts; i++) {
        const sq_part_spec *ps = &e.spec[i];
        size_t bound = ZSTD_compressBound((size_t)e.bytes[i]), n;
        uint8_t *z = tail ? malloc(bound + 3) : NULL;
        if (tail && !ZSTD_isError(n = ZSTD_compress(z, bound, e.data[i], (size_t)e.bytes[i], 3)) && n < e.bytes[i]) {
            memset(z + n, 0, 3); /* bytes after the frame: invalid (spec §8, R17) */
            if (sq_writer_add_part_stored(w, ps->name, ps->dtype, ps->ndim, ps->dims, z, n + 3, e.bytes[i], SQ_COMP_ZSTD, &err))
                die("%s", err.msg);
            tail = 0;
        } else if (sq_writer_add_part(w, ps->name, ps->dtype, ps->ndim, ps->dims, e.data[i], e.bytes[i],
                                      v->tca_tbe && ps->dtype == SQ_DT_BF16 ? SQ_COMP_TCA_TBE
                                      : v->zstd                             ? SQ_COMP_ZSTD
                                                                            : SQ_COMP_NONE,
                                      &err)) {
            die("%s", err.msg);
        }
        free(z);
    }
    if (sq_writer_end_tensor(w, &err)) die("%s", err.msg);
    sq_encoded_free(&e);
    free(d);
    free(s);
    free(order);
}

static void write_micro(const char *path, const variant *v) {
    sq_err err = {0};
    sq_writer_opts o = {v->alignment ? v->alignment : 64, 3, v->zstd};
    sq_writer *w = sq_writer_open(path, &o, &err);
    if (!w) die("%s", err.msg);
    sq_model_info info = {SQ_ARCH_LLAMA, 1, 32, 2, 1, 16, 40, 0.0f, {0}};
    sq_writer_set_model(w, &info);
    char *meta = v->meta ? strdup(v->meta) : metadata(v);
    if (sq_writer_set_metadata(w, meta, &err)) die("%s", err.msg);
    free(meta);
    for (size_t i = 0; i < NT; i++) write_tensor(w, &tensors[i], v);
    if (v->unknown_appendix && sq_writer_add_appendix(w, 77, 0, "opaque", 6, SQ_COMP_NONE, &err)) die("%s", err.msg);
    if (v->bundle) { /* sorted by name, as squish-pack bundle writes them */
        add_embedded(w, "README.md", README);
        if (v->dup_embedded) add_embedded(w, "README.md", README);
        add_embedded(w, "config.json", CONFIG);
    }
    if (sq_writer_commit(w, &err)) die("%s", err.msg);
}

/* ---------------- damaging a file ---------------- */
typedef struct buf {
    uint8_t *b;
    size_t len;
    sq_file *f; /* the undamaged file, parsed: where things are */
} buf;

static uint64_t rd64(const uint8_t *p) { uint64_t v = 0; for (int i = 7; i >= 0; i--) v = v << 8 | p[i]; return v; }
static void wr64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static void wr32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }

static char *path_of(const char *name) {
    static char p[4096];
    snprintf(p, sizeof p, "%s/%s", out_dir, name);
    return p;
}

static buf load(const char *name) {
    buf x;
    sq_err err;
    FILE *fp = fopen(path_of(name), "rb");
    if (!fp) die("%s: %s", name, strerror(errno));
    fseek(fp, 0, SEEK_END);
    x.len = (size_t)ftell(fp);
    fseek(fp, 0, SEEK_SET);
    x.b = malloc(x.len + 4096);
    if (fread(x.b, 1, x.len, fp) != x.len) die("%s: short read", name);
    fclose(fp);
    if (!(x.f = sq_open(path_of(name), &err))) die("%s", err.msg);
    return x;
}

/* Header, index and appendix table checksums recomputed (so only the intended damage remains). */
static void fix_sums(buf *x) {
    uint8_t *b = x->b;
    wr64(b + 120, sq_xxh64(b + rd64(b + 104), (size_t)rd64(b + 112), 0));
    wr64(b + 208, sq_xxh64(b + rd64(b + 168), (size_t)rd64(b + 176), 0));
    wr64(b + 248, sq_xxh64(b, 248, 0));
}

static const sq_tensor *tensor(buf *x, const char *suffix) {
    for (uint32_t i = 0; i < sq_file_ntensors(x->f); i++) {
        const sq_tensor *t = sq_file_tensor(x->f, i);
        size_t n = strlen(t->name), k = strlen(suffix);
        if (n >= k && !strcmp(t->name + n - k, suffix)) return t;
    }
    die("no tensor *%s", suffix);
    return NULL;
}

static const sq_part *part(buf *x, const char *tsuffix, const char *name) {
    const sq_part *p = sq_tensor_part(tensor(x, tsuffix), name);
    if (!p) die("no part %s of *%s", name, tsuffix);
    return p;
}

/* Overwrites bytes of a part and records its new checksum in the index. */
static void patch_part(buf *x, const sq_part *p, uint64_t at, const void *bytes, size_t n) {
    memcpy(x->b + p->offset + at, bytes, n);
    wr64(x->b + p->rec_offset + 32, sq_xxh64(x->b + p->offset, (size_t)p->stored_size, 0));
}

static void patch_appendix(buf *x, uint32_t i, uint64_t at, const void *bytes, size_t n) {
    const sq_appendix *a = sq_file_appendix(x->f, i);
    memcpy(x->b + a->offset + at, bytes, n);
    wr64(x->b + rd64(x->b + 168) + 48ull * i + 40, sq_xxh64(x->b + a->offset, (size_t)a->stored_size, 0));
}

/* Inserts n bytes at pos (between the data region and the index), moving the sections after it. */
static void insert(buf *x, uint64_t pos, const uint8_t *bytes, size_t n) {
    memmove(x->b + pos + n, x->b + pos, x->len - pos);
    memcpy(x->b + pos, bytes, n);
    x->len += n;
    wr64(x->b + 104, rd64(x->b + 104) + n); /* index, metadata, appendix table */
    wr64(x->b + 128, rd64(x->b + 128) + n);
    wr64(x->b + 168, rd64(x->b + 168) + n);
    wr64(x->b + 200, rd64(x->b + 200) + n);
}

static void save(buf *x, const char *name) {
    FILE *fp = fopen(path_of(name), "wb");
    if (!fp || fwrite(x->b, 1, x->len, fp) != x->len || fclose(fp)) die("%s: write failed", name);
    sq_close(x->f);
    free(x->b);
}

/* One MANIFEST line: file, exit of squish-verify, exit of squish-inspect,
 * the rule (spec/squizd.md §8: R, A; spec/codecs.md §10: V), a fragment of
 * squish-verify's message, and what is wrong. */
static void entry(const char *file, int verify, int inspect, const char *rule, const char *match, const char *what) {
    fprintf(manifest, "%s\t%d\t%d\t%s\t%s\t%s\n", file, verify, inspect, rule, match, what);
}

/* ---------------- the vectors ---------------- */
static void f16(uint8_t *o, uint16_t v) { o[0] = (uint8_t)v; o[1] = (uint8_t)(v >> 8); }

static void valid_files(void) {
    variant v = {0};
    write_micro(path_of("valid-mixed.squizd"), &v);
    entry("valid-mixed.squizd", 0, 0, "-", "-",
          "micro-llama with one codec family per tensor: bf16, f32, f16, int3 g32 sym, int8 pc sym (bf16 scales), "
          "int4 g32 asym, fp8_e5m2 g32, fp8_e4m3 pc, nf4 dq g32, mxfp4, fp6_e2m3 g32 (f32 scales)");
    v.zstd = 1;
    write_micro(path_of("valid-zstd.squizd"), &v);
    entry("valid-zstd.squizd", 0, 0, "-", "-", "valid-mixed with zstd parts and metadata (= squish-pack recompress --zstd 3)");
    v = (variant){.tca_tbe = 1};
    write_micro(path_of("valid-tca-tbe.squizd"), &v);
    entry("valid-tca-tbe.squizd", 0, 0, "-", "-",
          "valid-mixed with the embeddings' bf16 data TCA-TBE-coded (spec §13; the bf16 scales of gate_proj stay raw: "
          "too few to gain) (= squish-pack recompress --tca-tbe)");
    v = (variant){.xform = 1};
    write_micro(path_of("valid-xform.squizd"), &v);
    entry("valid-xform.squizd", 0, 0, "-", "-",
          "input transforms: down_proj int4+perm (act-order), o_proj int4+in_scale (AWQ-like), gate_proj f16+perm+in_scale");
    v = (variant){.bundle = 1};
    write_micro(path_of("valid-bundle.squizd"), &v);
    entry("valid-bundle.squizd", 0, 0, "-", "-", "valid-mixed with config.json and README.md embedded (= squish-pack bundle)");
    /* a split set: the mixed file with 4 KiB alignment (two pieces of 64 KiB at most) */
    v = (variant){.alignment = 4096};
    char *whole = strdup(path_of("split-whole.tmp"));
    write_micro(whole, &v);
    buf x = load("split-whole.tmp");
    for (size_t at = 0, k = 1; at < x.len; at += 65536, k++) {
        char name[64];
        snprintf(name, sizeof name, "valid-split-%05zu-of-%05zu.squizd", k, (x.len + 65535) / 65536);
        FILE *fp = fopen(path_of(name), "wb");
        size_t n = x.len - at < 65536 ? x.len - at : 65536;
        if (!fp || fwrite(x.b + at, 1, n, fp) != n || fclose(fp)) die("%s: write failed", name);
    }
    if ((x.len + 65535) / 65536 != 2) die("the split example has %zu bytes, not two pieces", x.len);
    sq_close(x.f);
    free(x.b);
    remove(whole);
    free(whole);
    entry("valid-split-00001-of-00002.squizd", 0, 0, "-", "-",
          "a split set of two pieces (valid-mixed with 4096-byte alignment, = squish-pack split --max-size 64K)");
    v = (variant){0};
    write_micro(path_of("valid-single-00001-of-00001.squizd"), &v);
    entry("valid-single-00001-of-00001.squizd", 0, 0, "-", "-", "a split set of one piece (spec §10: N >= 1)");
}

static void accept_files(void) {
    variant v = {0};
    buf x;
    x = load("valid-mixed.squizd");
    wr32(x.b + 28, 200);
    fix_sums(&x);
    save(&x, "accept-arch-unknown.squizd");
    entry("accept-arch-unknown.squizd", 0, 0, "A4", "-", "arch = 200, a value this reader does not know");
    x = load("valid-mixed.squizd");
    x.b[6] = 7;
    fix_sums(&x);
    save(&x, "accept-minor-version.squizd");
    entry("accept-minor-version.squizd", 0, 0, "A1", "-", "version 1.7");
    x = load("valid-mixed.squizd");
    memset(x.b + 164, 0x5a, 4);
    memset(x.b + 216, 0xa5, 32);
    fix_sums(&x);
    save(&x, "accept-reserved-header.squizd");
    entry("accept-reserved-header.squizd", 0, 0, "A2", "-", "reserved header bytes 164..167 and 216..247 not zero");
    x = load("valid-mixed.squizd");
    x.b[16 + 5] |= 0x01; /* bit 40 */
    x.b[16 + 1] |= 0x10; /* bit 12, GPTQ (informational) */
    fix_sums(&x);
    save(&x, "accept-flag-bits.squizd");
    entry("accept-flag-bits.squizd", 0, 0, "A3", "-", "technique flag bits 12 (GPTQ) and 40 (undefined) set");
    v.unknown_appendix = 1;
    write_micro(path_of("accept-appendix-unknown.squizd"), &v);
    entry("accept-appendix-unknown.squizd", 0, 0, "A6", "-", "an optional appendix block of unknown type 77");
    v = (variant){.meta_member = 1};
    write_micro(path_of("accept-metadata-member.squizd"), &v);
    entry("accept-metadata-member.squizd", 0, 0, "A5", "-", "an unknown metadata member");
    v = (variant){.zero_group = 1};
    write_micro(path_of("accept-zero-scale.squizd"), &v);
    entry("accept-zero-scale.squizd", 0, 0, "V1", "-", "gate_proj row 0 all zero: scale 0 (valid, decodes to zeros)");
}

static void reject_structure(void) {
    buf x;
    const sq_part *p;
    uint8_t z[16] = {0};
    /* header */
    x = load("valid-mixed.squizd");
    x.b[0] = 'X';
    save(&x, "reject-magic.squizd");
    entry("reject-magic.squizd", 4, 4, "R1", "magic", "magic is XQZD");
    x = load("valid-mixed.squizd");
    x.b[4] = 2;
    fix_sums(&x);
    save(&x, "reject-major-version.squizd");
    entry("reject-major-version.squizd", 5, 5, "R2", "format version 2.0", "version 2.0 (a newer major: unsupported)");
    x = load("valid-mixed.squizd");
    x.b[249] ^= 1;
    save(&x, "reject-header-checksum.squizd");
    entry("reject-header-checksum.squizd", 4, 4, "R3", "header checksum mismatch", "header checksum wrong");
    x = load("valid-mixed.squizd");
    x.b[24] = 1;
    fix_sums(&x);
    save(&x, "reject-incompat-flag.squizd");
    entry("reject-incompat-flag.squizd", 5, 5, "R4", "incompatible feature bits", "incompat_flags bit 0 (unknown: unsupported)");
    x = load("valid-mixed.squizd");
    wr32(x.b + 12, 48);
    fix_sums(&x);
    save(&x, "reject-alignment.squizd");
    entry("reject-alignment.squizd", 4, 4, "R4", "alignment (offset 12) is 48", "alignment 48 (not a power of two)");
    x = load("valid-mixed.squizd");
    x.len--;
    save(&x, "reject-truncated.squizd");
    entry("reject-truncated.squizd", 4, 4, "R4", "truncated", "the last byte is missing (file_size says one more)");
    /* sections */
    x = load("valid-mixed.squizd");
    uint8_t junk[16] = {0x5a};
    memcpy(x.b + x.len, junk, sizeof junk);
    x.len += sizeof junk;
    wr64(x.b + 200, x.len);
    fix_sums(&x);
    save(&x, "reject-trailing-bytes.squizd");
    entry("reject-trailing-bytes.squizd", 4, 4, "R6", "bytes after the last section",
          "16 bytes after the appendix table (file_size counts them)");
    x = load("valid-mixed.squizd");
    uint64_t data_end = rd64(x.b + 184) + rd64(x.b + 192);
    uint8_t gap[8] = {0, 0, 0, 0x01, 0, 0, 0, 0};
    insert(&x, data_end, gap, sizeof gap);
    fix_sums(&x);
    save(&x, "reject-gap-nonzero.squizd");
    entry("reject-gap-nonzero.squizd", 4, 4, "R7", "padding between the data and the index section",
          "8 bytes between the data region and the index, one of them 0x01");
    x = load("valid-mixed.squizd");
    insert(&x, data_end, z, 8);
    wr64(x.b + 192, rd64(x.b + 192) + 8);
    fix_sums(&x);
    save(&x, "reject-data-size.squizd");
    entry("reject-data-size.squizd", 4, 4, "R12", "data_size (offset 192)", "data_size runs 8 zero bytes past the last blob");
    x = load("valid-mixed.squizd");
    wr64(x.b + 120, rd64(x.b + 120) ^ 1);
    fix_sums(&x);
    wr64(x.b + 120, rd64(x.b + 120) ^ 1);
    wr64(x.b + 248, sq_xxh64(x.b, 248, 0));
    save(&x, "reject-index-checksum.squizd");
    entry("reject-index-checksum.squizd", 4, 4, "R8", "index checksum mismatch", "index checksum wrong");
    /* records */
    x = load("valid-mixed.squizd");
    const sq_tensor *t = tensor(&x, "embed_tokens.weight");
    x.b[t->rec_offset + 48 + 8 * t->ndim + strlen(t->name)] = 0x20;
    fix_sums(&x);
    save(&x, "reject-name-padding.squizd");
    entry("reject-name-padding.squizd", 4, 4, "R9", "padding after the name",
          "a non-zero byte in the padding after the name model.embed_tokens.weight");
    x = load("valid-mixed.squizd");
    p = part(&x, "q_proj.weight", "scales");
    wr64(x.b + p->rec_offset + 8, p->offset + 8);
    fix_sums(&x);
    save(&x, "reject-misaligned.squizd");
    entry("reject-misaligned.squizd", 4, 4, "R10", "is not aligned to 64", "q_proj part scales at an offset that is not a multiple of 64");
    x = load("valid-mixed.squizd");
    x.b[tensor(&x, "v_proj.weight")->rec_offset + 8] = 0xee;
    x.b[17] &= (uint8_t)~(SQ_FLAG_MXFP4 >> 8); /* no other tensor is mxfp4 */
    fix_sums(&x);
    save(&x, "reject-codec-unknown.squizd");
    entry("reject-codec-unknown.squizd", 5, 0, "R19", "codec id 238 is not known",
          "v_proj has codec id 238 (unknown: unsupported; inspect lists it)");
    x = load("accept-appendix-unknown.squizd");
    wr32(x.b + rd64(x.b + 168) + 4, SQ_APPX_F_REQUIRED);
    fix_sums(&x);
    save(&x, "reject-appendix-required.squizd");
    entry("reject-appendix-required.squizd", 5, 5, "R11", "unknown type 77 marked required",
          "an appendix block of unknown type 77 with REQUIRED set");
    /* full checks */
    x = load("valid-mixed.squizd");
    p = part(&x, "embed_tokens.weight", "data");
    x.b[p->offset + 100] ^= 0x40;
    save(&x, "reject-part-checksum.squizd");
    entry("reject-part-checksum.squizd", 4, 4, "R14", "tensor model.embed_tokens.weight part data: checksum mismatch",
          "one bit of the embeddings flipped (inspect shows MISMATCH and exits 4)");
    x = load("valid-mixed.squizd");
    p = part(&x, "input_layernorm.weight", "data");
    const sq_part *q = part(&x, "model.norm.weight", "data");
    memset(x.b + p->offset, 0, (size_t)p->stored_size); /* its old place is zero padding now */
    wr64(x.b + p->rec_offset + 8, q->offset);
    wr64(x.b + p->rec_offset + 32, sq_xxh64(x.b + q->offset, (size_t)q->stored_size, 0));
    fix_sums(&x);
    save(&x, "reject-overlap.squizd");
    entry("reject-overlap.squizd", 4, 0, "R15", "overlaps", "input_layernorm's data points at model.norm.weight's data");
    x = load("valid-mixed.squizd");
    p = part(&x, "q_proj.weight", "zeros"); /* 32 bytes, then 32 bytes of padding */
    x.b[p->offset + p->stored_size + 5] = 0x01;
    save(&x, "reject-blob-padding.squizd");
    entry("reject-blob-padding.squizd", 4, 0, "R16", "padding after tensor model.layers.0.self_attn.q_proj.weight part zeros",
          "a non-zero byte in the alignment padding after q_proj's zero points");
    x = load("valid-mixed.squizd");
    t = tensor(&x, "k_proj.weight");
    x.b[t->rec_offset + 48 + 16 + strlen("model.layers.0.self_attn.")] = 'q';
    fix_sums(&x);
    save(&x, "reject-duplicate-name.squizd");
    entry("reject-duplicate-name.squizd", 4, 0, "R18", "appears twice", "k_proj renamed q_proj: two tensors of one name");
    x = load("valid-mixed.squizd");
    x.b[16] ^= 0x08; /* INT2, which no tensor uses */
    fix_sums(&x);
    save(&x, "reject-flags.squizd");
    entry("reject-flags.squizd", 4, 0, "R20", "header flags (offset 16)", "the INT2 technique flag set without an int2 tensor");
    x = load("valid-mixed.squizd");
    x.b[56] ^= 1;
    fix_sums(&x);
    save(&x, "reject-avg-bpw.squizd");
    entry("reject-avg-bpw.squizd", 4, 0, "R20", "avg_bpw (offset 56)", "avg_bpw one unit in the last place off");
    variant v = {.meta = "[1]"};
    write_micro(path_of("reject-metadata-array.squizd"), &v);
    entry("reject-metadata-array.squizd", 4, 0, "R21", "is not a JSON object", "the metadata is a JSON array");
}

static void reject_zstd(void) {
    /* the first compressed part of valid-zstd (names copied: each load parses the file anew) */
    buf x = load("valid-zstd.squizd");
    char tname[SQ_MAX_NAME + 1] = "", pname[SQ_MAX_PART_NAME + 1] = "";
    uint64_t off = 0;
    for (uint32_t i = 0; !*tname && i < sq_file_ntensors(x.f); i++)
        for (uint32_t k = 0; !*tname && k < sq_file_tensor(x.f, i)->n_parts; k++)
            if (sq_file_tensor(x.f, i)->parts[k].compression == SQ_COMP_ZSTD) {
                snprintf(tname, sizeof tname, "%s", sq_file_tensor(x.f, i)->name);
                snprintf(pname, sizeof pname, "%s", sq_file_tensor(x.f, i)->parts[k].name);
                off = sq_file_tensor(x.f, i)->parts[k].offset;
            }
    if (!*tname) die("valid-zstd.squizd has no compressed part");
    const sq_part *p = part(&x, tname, pname);
    char match[SQ_MAX_NAME + 128], what[SQ_MAX_NAME + 128];
    snprintf(match, sizeof match, "part %s: data at %llu is not a zstd frame", pname, (unsigned long long)off);
    snprintf(what, sizeof what, "%s part %s: its first byte is not zstd's magic number", tname, pname);
    uint8_t b = (uint8_t)(x.b[off] ^ 0xff);
    patch_part(&x, p, 0, &b, 1);
    fix_sums(&x);
    save(&x, "reject-zstd-magic.squizd");
    entry("reject-zstd-magic.squizd", 4, 0, "R17", match, what);
    x = load("valid-zstd.squizd");
    p = part(&x, tname, pname);
    b = (uint8_t)(x.b[off + 4] | 0x08); /* frame header descriptor: its reserved bit */
    patch_part(&x, p, 4, &b, 1);
    fix_sums(&x);
    save(&x, "reject-zstd-frame.squizd");
    snprintf(what, sizeof what, "%s part %s: the zstd frame header's reserved bit is set (the zstd error is printed, "
             "not a size)", tname, pname);
    entry("reject-zstd-frame.squizd", 4, 0, "R17", "is damaged: ", what);
    variant v = {.zstd = 1, .zstd_tail = "model.embed_tokens.weight"};
    write_micro(path_of("reject-zstd-trailing.squizd"), &v);
    entry("reject-zstd-trailing.squizd", 4, 0, "R17", "3 bytes follow the zstd frame",
          "3 bytes after the zstd frame of the embeddings' data");
}

/* Damaged TCA-TBE parts (spec §13.3, R24) and part compression values (R10). */
static void reject_tca_tbe(void) {
    const char *emb = "model.embed_tokens.weight";
    buf x = load("valid-tca-tbe.squizd");
    const sq_part *p = part(&x, emb, "data");
    if (p->compression != SQ_COMP_TCA_TBE) die("valid-tca-tbe.squizd: the embeddings are not TCA-TBE-coded");
    sq_tbe t;
    char why[300];
    if (sq_tbe_open(&t, x.b + p->offset, p->stored_size, p->raw_size / 2, why, sizeof why)) die("%s", why);
    uint8_t b = 250;
    patch_part(&x, p, SQ_TBE_HEADER + SQ_TBE_RECORD, &b, 1); /* block 1's window base */
    fix_sums(&x);
    save(&x, "reject-tca-tbe-base.squizd");
    entry("reject-tca-tbe-base.squizd", 4, 0, "R24", "window base 250 is above 249 (T3)",
          "model.embed_tokens.weight part data (TCA-TBE): block 1's window base is 250");
    x = load("valid-tca-tbe.squizd");
    p = part(&x, emb, "data");
    uint64_t w2 = rd64(x.b + p->offset + SQ_TBE_HEADER + 2 * SQ_TBE_RECORD);
    uint8_t word[8];
    wr64(word, w2 + 256); /* escape start + 1 */
    patch_part(&x, p, SQ_TBE_HEADER + 2 * SQ_TBE_RECORD, word, 8);
    fix_sums(&x);
    save(&x, "reject-tca-tbe-escapes.squizd");
    entry("reject-tca-tbe-escapes.squizd", 4, 0, "R24", "but the blocks before it have",
          "model.embed_tokens.weight part data (TCA-TBE): block 2's escape start is one too many");
    /* the first escape byte set to its block's window base: a value in the window coded as an escape */
    x = load("valid-tca-tbe.squizd");
    p = part(&x, emb, "data");
    uint64_t k = 0;
    while (k + 1 < t.n_blocks && rd64(x.b + p->offset + SQ_TBE_HEADER + (k + 1) * SQ_TBE_RECORD) >> 8 == 0) k++;
    if (!t.n_escapes) die("valid-tca-tbe.squizd: the embeddings have no escapes");
    b = x.b[p->offset + SQ_TBE_HEADER + k * SQ_TBE_RECORD];
    patch_part(&x, p, p->stored_size - t.n_escapes, &b, 1);
    fix_sums(&x);
    save(&x, "reject-tca-tbe-window.squizd");
    char match[128];
    snprintf(match, sizeof match, "is exponent %u, inside the block's window", b);
    entry("reject-tca-tbe-window.squizd", 4, 0, "R24", match,
          "model.embed_tokens.weight part data (TCA-TBE): the first escape byte is its block's window base");
    /* compression 2 on an f32 part; a coded part too short to hold its blocks; compression 3 */
    x = load("valid-tca-tbe.squizd");
    p = part(&x, "model.norm.weight", "data");
    x.b[p->rec_offset + 3] = SQ_COMP_TCA_TBE;
    fix_sums(&x);
    save(&x, "reject-tca-tbe-dtype.squizd");
    entry("reject-tca-tbe-dtype.squizd", 4, 4, "R10", "codes bf16 parts only, this part is f32",
          "model.norm.weight (f32) part data says compression 2 (TCA-TBE)");
    x = load("valid-tca-tbe.squizd");
    p = part(&x, emb, "data");
    wr64(x.b + p->rec_offset + 16, SQ_TBE_HEADER + 3 * SQ_TBE_RECORD);
    fix_sums(&x);
    save(&x, "reject-tca-tbe-size.squizd");
    entry("reject-tca-tbe-size.squizd", 4, 4, "R10", "cannot hold 512 TCA-TBE-coded values",
          "model.embed_tokens.weight part data (TCA-TBE): stored_size 584, three blocks' worth for four");
    x = load("valid-mixed.squizd");
    p = part(&x, "model.norm.weight", "data");
    x.b[p->rec_offset + 3] = 3;
    fix_sums(&x);
    save(&x, "reject-compression-unknown.squizd");
    entry("reject-compression-unknown.squizd", 5, 5, "R10", "compression (byte",
          "model.norm.weight part data: compression 3 (unknown: unsupported)");
}

static void reject_embedded(void) {
    buf x = load("valid-bundle.squizd");
    uint32_t i = 0;
    while (sq_file_appendix(x.f, i)->type != SQ_APPX_FILE) i++;
    const sq_appendix *a = sq_file_appendix(x.f, i);
    uint8_t nl[2] = {(uint8_t)(a->raw_size - 1), (uint8_t)((a->raw_size - 1) >> 8)};
    patch_appendix(&x, i, 0, nl, 2);
    fix_sums(&x);
    save(&x, "reject-embedded-name-length.squizd");
    entry("reject-embedded-name-length.squizd", 4, 0, "R22", "has a name length larger than the block",
          "an embedded file whose name length is larger than its block");
    x = load("valid-bundle.squizd");
    patch_appendix(&x, i, 2 + 2, "/", 1); /* "README.md" -> "RE/DME.md" */
    fix_sums(&x);
    save(&x, "reject-embedded-name-slash.squizd");
    entry("reject-embedded-name-slash.squizd", 4, 0, "R22", "is not a plain file name", "an embedded file named RE/DME.md");
    variant v = {.bundle = 1, .dup_embedded = 1};
    write_micro(path_of("reject-embedded-duplicate.squizd"), &v);
    entry("reject-embedded-duplicate.squizd", 4, 0, "R22", "embeds a file named README.md, as appendix",
          "README.md embedded twice");
}

/* Values (spec/codecs.md §10): squish-inspect does not decode, so it exits 0. */
static void reject_values(void) {
    buf x;
    const sq_part *p;
    uint8_t b[4];
    float fv;
#define VALUE(FILE, TSUFFIX, PART, AT, BYTES, N, RULE, MATCH, WHAT)           \
    x = load("valid-mixed.squizd");                                         \
    p = part(&x, TSUFFIX, PART);                                            \
    patch_part(&x, p, AT, BYTES, N);                                        \
    fix_sums(&x);                                                           \
    save(&x, FILE);                                                         \
    entry(FILE, 4, 0, RULE, MATCH, WHAT)
    b[0] = 0x7f;
    VALUE("reject-fp8-nan.squizd", "k_proj.weight", "codes", 5, b, 1, "V2", "part codes, byte 5 of the part",
          "k_proj (fp8_e4m3): code 0x7f, a NaN");
    b[0] = 0xfc;
    VALUE("reject-fp8-inf.squizd", "up_proj.weight", "codes", 9, b, 1, "V2", "code 0xfc is an infinity",
          "up_proj (fp8_e5m2): code 0xfc, minus infinity");
    b[0] = 255;
    VALUE("reject-e8m0-255.squizd", "v_proj.weight", "scales", 3, b, 1, "V3", "E8M0 scale 255 is NaN",
          "v_proj (mxfp4): E8M0 scale 255");
    b[0] = 253;
    VALUE("reject-e8m0-overflow.squizd", "v_proj.weight", "scales", 2, b, 1, "V3", "overflows float32",
          "v_proj (mxfp4): E8M0 scale 253, 2^126 x 6 overflows float32");
    f16(b, 0x7e00);
    VALUE("reject-scale-nan.squizd", "q_proj.weight", "scales", 6, b, 2, "V1", "is not finite",
          "q_proj (int4 asym, f16 scales): scale 3 is NaN");
    f16(b, 0x7c00);
    VALUE("reject-scale-inf.squizd", "k_proj.weight", "scales", 0, b, 2, "V2", "is not finite",
          "k_proj (fp8_e4m3, f16 scales): scale 0 is +infinity");
    f16(b, 0x7f7f);
    VALUE("reject-scale-overflow.squizd", "gate_proj.weight", "scales", 2, b, 2, "V1", "overflows float32",
          "gate_proj (int8 sym, bf16 scales): scale 3.39e38, x 128 overflows float32");
    fv = 1e38f;
    memcpy(b, &fv, 4);
    VALUE("reject-scale-overflow-f32.squizd", "lm_head.weight", "scales", 0, b, 4, "V2", "overflows float32",
          "lm_head (fp6_e2m3, f32 scales): scale 1e38, x 7.5 overflows float32");
    b[0] = 16;
    VALUE("reject-zero-point.squizd", "q_proj.weight", "zeros", 1, b, 1, "V1", "zero point 16 is outside",
          "q_proj (int4 asym): zero point 16");
    b[0] = 0x04; /* int3 chunk layout: byte 0 bits 2..3 are code 8's low bits */
    VALUE("reject-pad-code.squizd", "down_proj.weight", "codes", 12, b, 1, "V6", "padding code 8 of its last chunk is 1",
          "down_proj (int3, 40 columns): row 0's padding code 8 is 1, not 0");
    b[0] = 0x80;
    VALUE("reject-nf4-absmax-q.squizd", "o_proj.weight", "absmax_q", 7, b, 1, "V4", "code -128 is outside",
          "o_proj (nf4 dq): absmax_q -128");
    fv = 1e38f;
    memcpy(b, &fv, 4);
    VALUE("reject-nf4-dq-overflow.squizd", "o_proj.weight", "absmax_scale", 0, b, 4, "V4", "overflows float32",
          "o_proj (nf4 dq): absmax_scale 1e38, absmax_q x scale overflows float32");
    fv = __builtin_nanf("");
    memcpy(b, &fv, 4);
    VALUE("reject-f32-nan.squizd", "input_layernorm.weight", "data", 8, b, 4, "V5", "is not finite",
          "input_layernorm (f32): value 2 is NaN");
    f16(b, 0xff80);
    VALUE("reject-bf16-inf.squizd", "embed_tokens.weight", "data", 10, b, 2, "V5", "is not finite",
          "model.embed_tokens (bf16): value 5 is minus infinity");
#undef VALUE
    uint32_t u;
#define XFORM(FILE, TSUFFIX, PART, AT, VALUE32, RULE, MATCH, WHAT)           \
    x = load("valid-xform.squizd");                                         \
    p = part(&x, TSUFFIX, PART);                                            \
    u = VALUE32;                                                            \
    patch_part(&x, p, AT, &u, 4);                                           \
    fix_sums(&x);                                                           \
    save(&x, FILE);                                                         \
    entry(FILE, 4, 0, RULE, MATCH, WHAT)
    XFORM("reject-perm.squizd", "down_proj.weight", "perm", 4, ((const uint32_t *)(x.b + p->offset))[0], "V7",
          "not a permutation", "down_proj: perm[1] = perm[0]");
    XFORM("reject-in-scale-zero.squizd", "o_proj.weight", "in_scale", 12, 0, "V7", "must be finite and non-zero",
          "o_proj: in_scale[3] = 0");
    XFORM("reject-in-scale-overflow.squizd", "o_proj.weight", "in_scale", 8, 1, "V7", "divided by it overflows",
          "o_proj: in_scale[2] = 1.4e-45 (its column divided by it overflows float32)");
#undef XFORM
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: make-vectors TINY_LLAMA_DIR OUT_DIR\n");
        return 2;
    }
    out_dir = argv[2];
    if (mkdir(out_dir, 0755) && errno != EEXIST) die("%s: %s", out_dir, strerror(errno));
    load_micro(argv[1]);
    manifest = fopen(path_of("MANIFEST"), "w");
    if (!manifest) die("%s: %s", path_of("MANIFEST"), strerror(errno));
    fprintf(manifest,
            "# .squizd conformance vectors, written by testdata/make-vectors.c from testdata/tiny-llama.\n"
            "# One line per file, tab-separated: FILE, exit status of squish-verify FILE, exit status of\n"
            "# squish-inspect FILE (0 ok, 4 corrupt, 5 unsupported), the rule it tests (spec/squizd.md §8:\n"
            "# R = must refuse, A = must ignore; spec/codecs.md §10: V = values), a fragment of\n"
            "# squish-verify's message (- for valid files), and what the file is. A split set is named\n"
            "# by its first piece. Every valid file loads in the runtime (squish-verify --eval-ids).\n");
    valid_files();
    accept_files();
    reject_structure();
    reject_zstd();
    reject_tca_tbe();
    reject_embedded();
    reject_values();
    if (fclose(manifest)) die("MANIFEST: write failed");
    for (size_t i = 0; i < NT; i++) free(tensors[i].w);
    return 0;
}
