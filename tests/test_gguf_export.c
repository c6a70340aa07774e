/* GGUF export (squish-pack export --to gguf): the ggml block layouts, the
 * exact repacking of integer codes (decoded here from the block layouts
 * and compared bit for bit with squish's decode), refusals, the GGUF
 * writer, vocabularies, and a whole export of the tiny model read back by a
 * GGUF parser written here from the format description. */
#include <check.h>
#include <math.h>
#include <regex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "quantize_model.h"
#include "squish/codec.h"
#include "squish/container.h"
#include "squish/fp.h"
#include "testutil.h"
#include "writers/ggml_blocks.h"
#include "writers/gguf_export.h"
#include "writers/gguf_vocab.h"
#include "writers/gguf_write.h"

/* ---------------- a GGUF reader, from the format description ---------------- */
typedef struct gkv {
    char key[128];
    uint32_t type, arr_type;
    uint64_t arr_n;
    const uint8_t *val; /* the value (arrays: the first element) */
} gkv;
typedef struct gten {
    char name[96];
    uint32_t ndim, type;
    uint64_t ne[4], off;
} gten;
typedef struct gguf {
    uint8_t *b;
    size_t size;
    uint32_t version;
    uint64_t n_kv, n_t, data_start;
    gkv kv[64];
    gten t[64];
} gguf;

static uint32_t rd32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t rd64(const uint8_t *p) { return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32; }
static size_t scalar_size(uint32_t t) {
    static const size_t s[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    return t < 13 ? s[t] : 0;
}
/* Bytes a value of type t takes at p. */
static size_t value_size(uint32_t t, const uint8_t *p) {
    if (t == 8) return 8 + (size_t)rd64(p);
    if (t == 9) {
        uint32_t et = rd32(p);
        uint64_t n = rd64(p + 4);
        size_t k = 12;
        for (uint64_t i = 0; i < n; i++) k += value_size(et, p + k);
        return k;
    }
    return scalar_size(t);
}

static void gguf_read(gguf *g, const char *path) {
    memset(g, 0, sizeof *g);
    g->b = read_all(path, &g->size);
    ck_assert_ptr_nonnull(g->b);
    ck_assert(g->size >= 24 && !memcmp(g->b, "GGUF", 4));
    g->version = rd32(g->b + 4);
    g->n_t = rd64(g->b + 8);
    g->n_kv = rd64(g->b + 16);
    ck_assert(g->n_kv <= 64 && g->n_t <= 64);
    size_t p = 24;
    for (uint64_t i = 0; i < g->n_kv; i++) {
        uint64_t kl = rd64(g->b + p);
        ck_assert(kl < sizeof g->kv[i].key);
        memcpy(g->kv[i].key, g->b + p + 8, kl);
        p += 8 + kl;
        g->kv[i].type = rd32(g->b + p);
        p += 4;
        if (g->kv[i].type == 9) {
            g->kv[i].arr_type = rd32(g->b + p);
            g->kv[i].arr_n = rd64(g->b + p + 4);
            g->kv[i].val = g->b + p + 12;
        } else g->kv[i].val = g->b + p;
        p += value_size(g->kv[i].type, g->b + p);
        ck_assert(p <= g->size);
    }
    for (uint64_t i = 0; i < g->n_t; i++) {
        uint64_t nl = rd64(g->b + p);
        ck_assert(nl < sizeof g->t[i].name);
        memcpy(g->t[i].name, g->b + p + 8, nl);
        p += 8 + nl;
        g->t[i].ndim = rd32(g->b + p);
        ck_assert(g->t[i].ndim >= 1 && g->t[i].ndim <= 4);
        p += 4;
        for (uint32_t d = 0; d < g->t[i].ndim; d++, p += 8) g->t[i].ne[d] = rd64(g->b + p);
        g->t[i].type = rd32(g->b + p);
        g->t[i].off = rd64(g->b + p + 4);
        p += 12;
    }
    g->data_start = (p + 31) / 32 * 32; /* general.alignment defaults to 32 */
    for (size_t k = p; k < g->data_start; k++) ck_assert_int_eq(g->b[k], 0);
}

static const gkv *kv(const gguf *g, const char *key) {
    for (uint64_t i = 0; i < g->n_kv; i++)
        if (!strcmp(g->kv[i].key, key)) return &g->kv[i];
    ck_abort_msg("GGUF key %s is missing", key);
    return NULL;
}
static int has_kv(const gguf *g, const char *key) {
    for (uint64_t i = 0; i < g->n_kv; i++)
        if (!strcmp(g->kv[i].key, key)) return 1;
    return 0;
}
static uint32_t kv_u32(const gguf *g, const char *key) {
    const gkv *k = kv(g, key);
    ck_assert_int_eq(k->type, 4);
    return rd32(k->val);
}
static float kv_f32(const gguf *g, const char *key) {
    const gkv *k = kv(g, key);
    ck_assert_int_eq(k->type, 6);
    return sq_bits_f32(rd32(k->val));
}
static int kv_str_is(const gguf *g, const char *key, const char *s) {
    const gkv *k = kv(g, key);
    return k->type == 8 && rd64(k->val) == strlen(s) && !memcmp(k->val + 8, s, strlen(s));
}
/* Element i of a string array, as (pointer, length). */
static const uint8_t *arr_str(const gkv *k, uint64_t i, uint64_t *len) {
    ck_assert(k->type == 9 && k->arr_type == 8 && i < k->arr_n);
    const uint8_t *p = k->val;
    for (uint64_t j = 0; j < i; j++) p += 8 + rd64(p);
    *len = rd64(p);
    return p + 8;
}
static const gten *tensor(const gguf *g, const char *name) {
    for (uint64_t i = 0; i < g->n_t; i++)
        if (!strcmp(g->t[i].name, name)) return &g->t[i];
    ck_abort_msg("GGUF tensor %s is missing", name);
    return NULL;
}

/* ---------------- the block layouts, decoded from their description ---------------- */
static float half(const uint8_t *p) { return sq_f16_to_f32((uint16_t)(p[0] | p[1] << 8)); }

/* Row of n values of ggml type `type` at p (ggml-common.h: block_q8_0 {d; qs[32]},
 * block_q4_0 {d; qs[16]} low nibbles first, block_q4_1 {d; m; qs[16]}). */
static void ref_dequant(uint32_t type, const uint8_t *p, uint64_t n, float *y) {
    for (uint64_t i = 0; i < n; i++) {
        uint64_t b = i / 32, j = i % 32;
        switch (type) {
        case 0: y[i] = sq_bits_f32(rd32(p + 4 * i)); break;
        case 1: y[i] = half(p + 2 * i); break;
        case 30: y[i] = sq_bf16_to_f32((uint16_t)(p[2 * i] | p[2 * i + 1] << 8)); break;
        case 8: y[i] = half(p + 34 * b) * (float)(int8_t)p[34 * b + 2 + j]; break;
        case 2: {
            const uint8_t *q = p + 18 * b;
            int v = j < 16 ? q[2 + j] & 15 : q[2 + j - 16] >> 4;
            y[i] = (float)(v - 8) * half(q);
            break;
        }
        case 3: {
            const uint8_t *q = p + 20 * b;
            int v = j < 16 ? q[4 + j] & 15 : q[4 + j - 16] >> 4;
            y[i] = (float)v * half(q) + half(q + 2);
            break;
        }
        default: ck_abort_msg("type %u", type);
        }
    }
}

START_TEST(block_sizes_and_layouts) {
    ck_assert_uint_eq(sq_ggml_row_bytes(SQ_GGML_Q8_0, 64), 68);
    ck_assert_uint_eq(sq_ggml_row_bytes(SQ_GGML_Q4_0, 64), 36);
    ck_assert_uint_eq(sq_ggml_row_bytes(SQ_GGML_Q4_1, 96), 60);
    ck_assert_uint_eq(sq_ggml_row_bytes(SQ_GGML_F16, 10), 20);
    ck_assert_uint_eq(sq_ggml_row_bytes(SQ_GGML_Q8_0, 48), 0); /* not whole blocks */
    uint32_t t;
    ck_assert_int_eq(sq_ggml_type_parse("q4_1", &t), 0);
    ck_assert_uint_eq(t, 3);
    ck_assert_int_eq(sq_ggml_type_parse("Q5_0", &t), -1);
    /* Q4_0 block: d = 0.5 (half 0x3800), nibbles j -> value (j - 8) * 0.5 */
    uint8_t q40[18] = {0x00, 0x38};
    for (int j = 0; j < 16; j++) q40[2 + j] = (uint8_t)(j | (15 - j) << 4);
    float y[32], r[32];
    sq_ggml_dequantize_row(SQ_GGML_Q4_0, q40, 32, y);
    for (int j = 0; j < 16; j++) {
        ck_assert_float_eq(y[j], (float)(j - 8) * 0.5f);
        ck_assert_float_eq(y[j + 16], (float)(7 - j) * 0.5f);
    }
    /* Q4_1: d = 2, m = -3 */
    uint8_t q41[20] = {0x00, 0x40, 0x00, 0xc2};
    for (int j = 0; j < 16; j++) q41[4 + j] = (uint8_t)(j << 4 | 3);
    sq_ggml_dequantize_row(SQ_GGML_Q4_1, q41, 32, y);
    for (int j = 0; j < 16; j++) {
        ck_assert_float_eq(y[j], 3.0f);
        ck_assert_float_eq(y[j + 16], (float)j * 2 - 3);
    }
    /* the quantizers land within half a step, and our decoder agrees with the layout's */
    float x[64];
    for (int i = 0; i < 64; i++) x[i] = (float)sin(i * 0.7) * (i % 5 == 0 ? 3.0f : 1.0f);
    const uint32_t types[] = {SQ_GGML_Q8_0, SQ_GGML_Q4_0, SQ_GGML_Q4_1, SQ_GGML_F16, SQ_GGML_BF16, SQ_GGML_F32};
    for (int k = 0; k < 6; k++) {
        uint8_t out[256];
        sq_ggml_quantize_row(types[k], x, 64, out);
        float a[64], b[64];
        sq_ggml_dequantize_row(types[k], out, 64, a);
        ref_dequant(types[k], out, 64, b);
        for (int i = 0; i < 64; i++) {
            ck_assert_msg(a[i] == b[i], "%s value %d: %g vs layout %g", sq_ggml_type_name(types[k]), i, a[i], b[i]);
            float amax = 0, mn = 1e9f, mx = -1e9f;
            for (int j = i / 32 * 32; j < i / 32 * 32 + 32; j++)
                amax = fmaxf(amax, fabsf(x[j])), mn = fminf(mn, x[j]), mx = fmaxf(mx, x[j]);
            /* half a step; Q4_0's range ends 7 steps from 0 opposite the largest value: a whole step there */
            float step = types[k] == SQ_GGML_Q8_0 ? amax / 127 : types[k] == SQ_GGML_Q4_0 ? amax / 4
                       : types[k] == SQ_GGML_Q4_1 ? (mx - mn) / 15 : fabsf(x[i]) / 128;
            ck_assert_msg(fabsf(a[i] - x[i]) <= step * 0.5f * 1.01f + 1e-7f, "%s value %d: %g for %g (step %g)",
                          sq_ggml_type_name(types[k]), i, a[i], x[i], step);
        }
    }
    (void)r;
}
END_TEST

/* ---------------- integer codes repacked ---------------- */
static void encode(const char *scheme, const float *w, uint64_t rows, uint64_t cols, sq_encoded *e) {
    const sq_codec *c;
    uint32_t p[SQ_NPARAMS];
    sq_err err;
    ck_assert_msg(sq_scheme_parse(scheme, &c, p, &err) == SQ_OK, "%s", scheme);
    ck_assert_msg(sq_encode(c, p, w, rows, cols, 1, e, &err) == SQ_OK, "%s: %s", scheme, err.msg);
}

/* Repacks e as type; when exact, every value decodes (by the layout) to squish's decoded float, bit for bit. */
static sq_ggml_map repack_check(const sq_encoded *e, uint32_t type, int allow_rounded, double *max_err) {
    sq_tview v;
    sq_tview_from_encoded(e, &v);
    uint64_t n = e->rows * e->cols, rb = sq_ggml_row_bytes(type, e->cols);
    uint8_t *out = calloc(rb * e->rows + 1, 1);
    float *dec = malloc(n * sizeof(float)), *g = malloc(n * sizeof(float));
    char why[256];
    sq_ggml_map m = sq_ggml_from_int(&v, type, allow_rounded, out, why, sizeof why);
    *max_err = 0;
    if (m != SQ_GGML_NO) {
        ck_assert_int_eq(sq_decode_mt(&v, dec, 1), SQ_OK);
        for (uint64_t r = 0; r < e->rows; r++) ref_dequant(type, out + r * rb, e->cols, g + r * e->cols);
        for (uint64_t i = 0; i < n; i++) {
            if (m == SQ_GGML_EXACT)
                ck_assert_msg(sq_f32_bits(g[i]) == sq_f32_bits(dec[i]) || (g[i] == 0 && dec[i] == 0),
                              "%s as %s: value %llu is %.9g, squish decodes %.9g", e->codec->name, sq_ggml_type_name(type),
                              (unsigned long long)i, g[i], dec[i]);
            if (fabs((double)g[i] - dec[i]) > *max_err) *max_err = fabs((double)g[i] - dec[i]);
        }
    }
    free(out);
    free(dec);
    free(g);
    return m;
}

START_TEST(int_codes_repack_exactly) {
    const uint64_t rows = 6, cols = 256;
    float *w = random_matrix(rows * cols, 1);
    static const struct {
        const char *scheme;
        uint32_t type;
        sq_ggml_map want;
    } cases[] = {
        {"int8:g32:sym", SQ_GGML_Q8_0, SQ_GGML_EXACT},  {"int8:g128:sym", SQ_GGML_Q8_0, SQ_GGML_EXACT},
        {"int8:pc:sym", SQ_GGML_Q8_0, SQ_GGML_EXACT},   {"int8:g32:sym:sbf16", SQ_GGML_Q8_0, SQ_GGML_EXACT},
        {"int4:g32:sym", SQ_GGML_Q4_0, SQ_GGML_EXACT},  {"int4:g256:sym", SQ_GGML_Q4_0, SQ_GGML_EXACT},
        {"int4:g32:sym", SQ_GGML_Q4_1, SQ_GGML_EXACT},  /* m = -8s: a power-of-two multiple */
        {"int4:g32:sym", SQ_GGML_Q8_0, SQ_GGML_EXACT},  {"int3:g32:sym", SQ_GGML_Q4_0, SQ_GGML_EXACT},
        {"int2:g64:sym", SQ_GGML_Q4_0, SQ_GGML_EXACT},  {"int3:g64:asym", SQ_GGML_Q4_0, SQ_GGML_EXACT}, /* q - z in -7..7 */
        {"int2:g32:asym", SQ_GGML_Q4_0, SQ_GGML_EXACT}, {"int4:g32:asym", SQ_GGML_Q8_0, SQ_GGML_EXACT},
        {"int8:g32:sym", SQ_GGML_Q4_0, SQ_GGML_NO},     {"int8:g32:sym", SQ_GGML_Q4_1, SQ_GGML_NO},
        {"int8:g32:sym:s32", SQ_GGML_Q8_0, SQ_GGML_NO}, /* f32 scales of full-precision weights are not halves */
        {"int8:g32:asym", SQ_GGML_Q8_0, SQ_GGML_NO},    /* q - z spans more than 256 values */
    };
    float *wf = malloc(rows * cols * sizeof(float)); /* not bf16-rounded: scales of its groups need all 24 bits */
    for (uint64_t i = 0; i < rows * cols; i++) wf[i] = (float)(urand() - 0.5) * 0.1f;
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        sq_encoded e = {0};
        encode(cases[k].scheme, strstr(cases[k].scheme, "s32") ? wf : w, rows, cols, &e);
        double mx;
        sq_ggml_map m = repack_check(&e, cases[k].type, 0, &mx);
        ck_assert_msg(m == cases[k].want, "%s as %s: %d, expected %d", cases[k].scheme, sq_ggml_type_name(cases[k].type), m,
                      cases[k].want);
        sq_encoded_free(&e);
    }
    free(w);
    free(wf);
}
END_TEST

/* int4 asym as Q4_1: exact when every -z*s is a half; else refused, or with
 * the minimum rounded (codes and scales kept) within half an ulp of it. */
START_TEST(int4_asym_as_q4_1) {
    const uint64_t rows = 4, cols = 64;
    float *w = malloc(rows * cols * sizeof(float));
    /* values k/4 + 0.25 for k = -3..12: range 3.75 -> s = 0.25 exactly, z = 3: m = -0.75 is a half */
    for (uint64_t i = 0; i < rows * cols; i++) w[i] = (float)((int)(i % 16) - 3) * 0.25f;
    sq_encoded e = {0};
    encode("int4:g32:asym", w, rows, cols, &e);
    double mx;
    ck_assert_int_eq(repack_check(&e, SQ_GGML_Q4_1, 0, &mx), SQ_GGML_EXACT);
    sq_encoded_free(&e);
    free(w);
    w = random_matrix(rows * cols, 0);
    encode("int4:g32:asym", w, rows, cols, &e);
    sq_tview v;
    sq_tview_from_encoded(&e, &v);
    char why[256];
    ck_assert_int_eq(sq_ggml_from_int(&v, SQ_GGML_Q4_1, 0, NULL, why, sizeof why), SQ_GGML_NO);
    ck_assert_msg(strstr(why, "minimum") && strstr(why, "half"), "%s", why);
    ck_assert_int_eq(repack_check(&e, SQ_GGML_Q4_1, 1, &mx), SQ_GGML_ROUNDED);
    float amax = 0;
    for (uint64_t i = 0; i < rows * cols; i++) amax = fmaxf(amax, fabsf(w[i]));
    ck_assert_msg(mx > 0 && mx <= amax * 0x1p-11, "rounded minimum moved a weight by %g (range %g)", mx, amax);
    sq_encoded_free(&e);
    free(w);
}
END_TEST

START_TEST(refusals_name_the_reason) {
    float *w = random_matrix(4 * 256, 0);
    char why[256];
    sq_tview v;
    sq_encoded e = {0};
    encode("int8:g32:sym", w, 4, 48, &e); /* a partial last group */
    sq_tview_from_encoded(&e, &v);
    ck_assert_int_eq(sq_ggml_from_int(&v, SQ_GGML_Q8_0, 0, NULL, why, sizeof why), SQ_GGML_NO);
    ck_assert_msg(strstr(why, "48 columns"), "%s", why);
    sq_encoded_free(&e);
    encode("int4:g32:sym", w, 4, 256, &e);
    uint32_t perm[256];
    for (int i = 0; i < 256; i++) perm[i] = (uint32_t)(255 - i);
    sq_err err;
    ck_assert_int_eq(sq_encoded_set_xform(&e, perm, NULL, &err), SQ_OK);
    sq_tview_from_encoded(&e, &v);
    ck_assert_int_eq(sq_ggml_from_int(&v, SQ_GGML_Q4_0, 0, NULL, why, sizeof why), SQ_GGML_NO);
    ck_assert_msg(strstr(why, "transformed"), "%s", why);
    sq_encoded_free(&e);
    encode("nf4", w, 4, 256, &e);
    sq_tview_from_encoded(&e, &v);
    ck_assert_int_eq(sq_ggml_from_int(&v, SQ_GGML_Q4_0, 0, NULL, why, sizeof why), SQ_GGML_NO);
    sq_encoded_free(&e);
    free(w);
}
END_TEST

/* ---------------- the writer and vocabularies ---------------- */
static char test_dir[64];
static const char *tmp(const char *name) {
    static char ring[8][256];
    static int next;
    char *b = ring[next++ % 8];
    if (!test_dir[0]) {
        snprintf(test_dir, sizeof test_dir, "/tmp/squish-gguf-XXXXXX");
        ck_assert_ptr_nonnull(mkdtemp(test_dir));
    }
    snprintf(b, sizeof ring[0], "%s/%s", test_dir, name);
    return b;
}
static void remove_tmp(void) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", test_dir);
    ck_assert_int_eq(system(cmd), 0);
    test_dir[0] = 0;
}
static void write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, n, f), n);
    fclose(f);
}

START_TEST(writer_layout) {
    sq_err err;
    sq_gguf_writer *w = sq_gguf_writer_new();
    const char *s[] = {"a", "bc"};
    size_t l[] = {1, 2};
    int32_t iv[] = {-1, 7};
    ck_assert_int_eq(sq_gguf_kv_str(w, "k.s", "hello", &err), 0);
    ck_assert_int_eq(sq_gguf_kv_u32(w, "k.u", 42, &err), 0);
    ck_assert_int_eq(sq_gguf_kv_f32(w, "k.f", 0.5f, &err), 0);
    ck_assert_int_eq(sq_gguf_kv_bool(w, "k.b", 1, &err), 0);
    ck_assert_int_eq(sq_gguf_kv_strs(w, "k.as", s, l, 2, &err), 0);
    ck_assert_int_eq(sq_gguf_kv_i32s(w, "k.ai", iv, 2, &err), 0);
    uint64_t ne1[1] = {5}, ne2[2] = {32, 3};
    ck_assert_int_eq(sq_gguf_plan_tensor(w, "t.a", 1, ne1, SQ_GGML_F32, 20, &err), 0);
    ck_assert_int_eq(sq_gguf_plan_tensor(w, "t.b", 2, ne2, SQ_GGML_Q8_0, 102, &err), 0);
    ck_assert_int_eq(sq_gguf_begin(w, tmp("w.gguf"), &err), 0);
    float a[5] = {1, 2, 3, 4, 5};
    uint8_t b[102];
    for (int i = 0; i < 102; i++) b[i] = (uint8_t)i;
    ck_assert_int_ne(sq_gguf_write_tensor(w, a, 16, &err), 0); /* not the planned size */
    sq_gguf_writer_free(w);
    struct stat st;
    ck_assert_int_ne(stat(tmp("w.gguf"), &st), 0); /* nothing left behind */
    w = sq_gguf_writer_new();
    ck_assert_int_eq(sq_gguf_kv_str(w, "k.s", "hello", &err), 0);
    ck_assert_int_eq(sq_gguf_plan_tensor(w, "t.a", 1, ne1, SQ_GGML_F32, 20, &err), 0);
    ck_assert_int_eq(sq_gguf_plan_tensor(w, "t.b", 2, ne2, SQ_GGML_Q8_0, 102, &err), 0);
    ck_assert_int_eq(sq_gguf_begin(w, tmp("w.gguf"), &err), 0);
    ck_assert_int_eq(sq_gguf_write_tensor(w, a, 20, &err), 0);
    ck_assert_int_eq(sq_gguf_write_tensor(w, b, 102, &err), 0);
    uint64_t want = sq_gguf_file_size(w);
    ck_assert_int_eq(sq_gguf_commit(w, &err), 0);
    sq_gguf_writer_free(w);
    gguf g;
    gguf_read(&g, tmp("w.gguf"));
    ck_assert_uint_eq(g.version, 3);
    ck_assert_uint_eq(g.size, want);
    ck_assert(kv_str_is(&g, "k.s", "hello"));
    ck_assert_uint_eq(g.n_t, 2);
    ck_assert_uint_eq(g.t[0].off, 0);
    ck_assert_uint_eq(g.t[1].off, 32); /* 20 bytes padded to the alignment */
    ck_assert_uint_eq(g.t[1].ne[0], 32);
    ck_assert_uint_eq(g.t[1].ne[1], 3);
    ck_assert_uint_eq(g.t[1].type, 8);
    ck_assert(!memcmp(g.b + g.data_start, a, 20));
    ck_assert(!memcmp(g.b + g.data_start + 32, b, 102));
    ck_assert_uint_eq(g.size, g.data_start + 32 + 128); /* each tensor padded, the last too */
    free(g.b);
    remove_tmp();
}
END_TEST

/* A llama2.c tokenizer.bin: <unk>, "\n<s>\n", "\n</s>\n", 256 byte pieces, then " t<i>" pieces. */
static uint8_t *llama2c_tok(uint32_t n, size_t *len) {
    uint8_t *b = malloc(64 * n + 4), *p = b + 4;
    memset(b, 0, 4);
    for (uint32_t i = 0; i < n; i++) {
        char s[32];
        if (i == 0) strcpy(s, "<unk>");
        else if (i == 1) strcpy(s, "\n<s>\n");
        else if (i == 2) strcpy(s, "\n</s>\n");
        else if (i < 259) sprintf(s, "<0x%02X>", i - 3);
        else sprintf(s, " t%u", i);
        float score = -(float)i;
        int32_t l = (int32_t)strlen(s);
        memcpy(p, &score, 4);
        memcpy(p + 4, &l, 4);
        memcpy(p + 8, s, (size_t)l);
        p += 8 + l;
    }
    *len = (size_t)(p - b);
    return b;
}

START_TEST(llama2c_vocabulary) {
    size_t len;
    uint8_t *tok = llama2c_tok(300, &len);
    sq_err err;
    sq_gguf_writer *w = sq_gguf_writer_new();
    sq_gguf_vocab_src src = {"tok300.bin", tok, len, 2, NULL, NULL, 0, 300};
    const char *model;
    ck_assert_msg(sq_gguf_add_vocab(w, &src, &model, &err) == SQ_OK, "%s", err.msg);
    ck_assert_str_eq(model, "llama");
    ck_assert_int_eq(sq_gguf_begin(w, tmp("v.gguf"), &err), 0);
    ck_assert_int_eq(sq_gguf_commit(w, &err), 0);
    sq_gguf_writer_free(w);
    gguf g;
    gguf_read(&g, tmp("v.gguf"));
    ck_assert(kv_str_is(&g, "tokenizer.ggml.model", "llama"));
    const gkv *toks = kv(&g, "tokenizer.ggml.tokens"), *types = kv(&g, "tokenizer.ggml.token_type"),
              *scores = kv(&g, "tokenizer.ggml.scores");
    ck_assert_uint_eq(toks->arr_n, 300);
    uint64_t l;
    const uint8_t *s = arr_str(toks, 1, &l);
    ck_assert(l == 3 && !memcmp(s, "<s>", 3));
    s = arr_str(toks, 299, &l);
    ck_assert(l == 7 && !memcmp(s, "\xe2\x96\x81t299", 7)); /* ' ' back to U+2581 */
    s = arr_str(toks, 3 + 0x41, &l);
    ck_assert(l == 6 && !memcmp(s, "<0x41>", 6));
    const int32_t want_type[] = {2, 3, 3, 6};
    for (int i = 0; i < 4; i++) ck_assert_int_eq((int32_t)rd32(types->val + 4 * i), want_type[i]);
    ck_assert_int_eq((int32_t)rd32(types->val + 4 * 299), 1);
    ck_assert_float_eq(sq_bits_f32(rd32(scores->val + 4 * 299)), -299.0f);
    ck_assert_uint_eq(kv_u32(&g, "tokenizer.ggml.bos_token_id"), 1);
    ck_assert_uint_eq(kv_u32(&g, "tokenizer.ggml.eos_token_id"), 2);
    ck_assert_uint_eq(kv_u32(&g, "tokenizer.ggml.unknown_token_id"), 0);
    ck_assert_int_eq(kv(&g, "tokenizer.ggml.add_bos_token")->val[0], 1);
    free(g.b);
    /* a tokenizer of another vocabulary size is refused */
    w = sq_gguf_writer_new();
    src.n_vocab = 512;
    ck_assert_int_ne(sq_gguf_add_vocab(w, &src, &model, &err), SQ_OK);
    ck_assert_msg(strstr(err.msg, "tok300.bin"), "%s", err.msg);
    sq_gguf_writer_free(w);
    free(tok);
    remove_tmp();
}
END_TEST

/* ---------------- a whole model: the tiny model as int8:g32 ---------------- */
static const char *tiny_tokenizer_json =
    "{\"version\":\"1.0\",\"added_tokens\":[{\"id\":0,\"content\":\"<|endoftext|>\",\"special\":true},"
    "{\"id\":301,\"content\":\"<x>\",\"special\":false}],\"normalizer\":null,"
    "\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"trim_offsets\":true,\"use_regex\":true},"
    "\"model\":{\"type\":\"BPE\",\"vocab\":{\"<|endoftext|>\":0,\"t\":1,\"h\":2,\"th\":3,\"e\":4,\"the\":5},"
    "\"merges\":[\"t h\",[\"th\",\"e\"]]}}";

static void quantize_tiny(const char *out) {
    sq_quantize_opts o;
    sq_quantize_opts_init(&o);
    o.model = src_path("testdata/tiny-llama");
    o.out = out;
    o.threads = 2;
    sq_scheme_rule r = {0};
    r.text = "embed_tokens=int8:g32:sym";
    ck_assert_int_eq(regcomp(&r.re, "embed_tokens", REG_EXTENDED | REG_NOSUB), 0);
    ck_assert_int_eq(sq_scheme_parse("int8:g32:sym", &r.codec, r.params, NULL), 0);
    ck_assert_int_eq(sq_scheme_parse("int8:g32:sym", &o.scheme.codec, o.scheme.params, NULL), 0);
    ck_assert_int_eq(sq_scheme_parse("int8:g32:sym", &o.scheme.out_codec, o.scheme.out_params, NULL), 0);
    o.scheme.rules = &r;
    o.scheme.n_rules = 1;
    sq_err err;
    ck_assert_msg(sq_quantize_model(&o, NULL, &err) == SQ_OK, "%s", err.msg);
    regfree(&r.re);
}

START_TEST(export_tiny_model) {
    quantize_tiny(tmp("t.squizd"));
    char dir[300];
    snprintf(dir, sizeof dir, "%s", tmp("model"));
    ck_assert_int_eq(mkdir(dir, 0755), 0);
    char p[400];
    snprintf(p, sizeof p, "%s/tokenizer.json", dir);
    write_file(p, tiny_tokenizer_json, strlen(tiny_tokenizer_json));
    const char *tc = "{\"bos_token\":\"<|endoftext|>\",\"eos_token\":{\"content\":\"<|endoftext|>\"},\"add_bos_token\":true}";
    snprintf(p, sizeof p, "%s/tokenizer_config.json", dir);
    write_file(p, tc, strlen(tc));
    sq_gguf_export_opts o = {0};
    sq_err err;
    /* the tiny model embeds no tokenizer */
    ck_assert_int_eq(sq_gguf_export(tmp("t.squizd"), tmp("t.gguf"), &o, NULL, &err), SQ_EUSAGE);
    ck_assert_msg(strstr(err.msg, "tokenizer"), "%s", err.msg);
    /* down_proj has 520 columns: no Q8_0 rows; refused, naming it, nothing written */
    o.model_dir = dir;
    ck_assert_int_eq(sq_gguf_export(tmp("t.squizd"), tmp("t.gguf"), &o, NULL, &err), SQ_EUNSUPPORTED);
    ck_assert_msg(strstr(err.msg, "model.layers.0.mlp.down_proj.weight") && strstr(err.msg, "int8:g32:sym") &&
                      strstr(err.msg, "520 columns"), "%s", err.msg);
    struct stat st;
    ck_assert_int_ne(stat(tmp("t.gguf"), &st), 0);
    o.requantize = 1;
    o.requant_type = SQ_GGML_Q8_0; /* 520 is not whole blocks either */
    ck_assert_int_eq(sq_gguf_export(tmp("t.squizd"), tmp("t.gguf"), &o, NULL, &err), SQ_EUNSUPPORTED);
    ck_assert_msg(strstr(err.msg, "F32"), "%s", err.msg);
    o.requant_type = SQ_GGML_F32; /* exact */
    sq_gguf_export_result res;
    ck_assert_msg(sq_gguf_export(tmp("t.squizd"), tmp("t.gguf"), &o, &res, &err) == SQ_OK, "%s", err.msg);
    ck_assert_uint_eq(res.tensors, 21);
    ck_assert_uint_eq(res.requantized, 0); /* F32 holds the decoded weights exactly */
    ck_assert_str_eq(res.vocab, "gpt2");
    /* the same bytes again */
    ck_assert_int_eq(sq_gguf_export(tmp("t.squizd"), tmp("t2.gguf"), &o, NULL, &err), SQ_OK);
    size_t n1, n2;
    unsigned char *a = read_all(tmp("t.gguf"), &n1), *b = read_all(tmp("t2.gguf"), &n2);
    ck_assert(n1 == n2 && !memcmp(a, b, n1));
    free(a);
    free(b);

    gguf g;
    gguf_read(&g, tmp("t.gguf"));
    ck_assert(kv_str_is(&g, "general.architecture", "llama"));
    ck_assert(kv_str_is(&g, "general.name", "tiny-llama"));
    ck_assert_uint_eq(kv_u32(&g, "llama.block_count"), 2);
    ck_assert_uint_eq(kv_u32(&g, "llama.embedding_length"), 192);
    ck_assert_uint_eq(kv_u32(&g, "llama.feed_forward_length"), 520);
    ck_assert_uint_eq(kv_u32(&g, "llama.attention.head_count"), 6);
    ck_assert_uint_eq(kv_u32(&g, "llama.attention.head_count_kv"), 2);
    ck_assert_uint_eq(kv_u32(&g, "llama.context_length"), 256);
    ck_assert_uint_eq(kv_u32(&g, "llama.rope.dimension_count"), 32);
    ck_assert_uint_eq(kv_u32(&g, "llama.attention.key_length"), 32);
    ck_assert_uint_eq(kv_u32(&g, "llama.vocab_size"), 512);
    ck_assert_uint_eq(kv_u32(&g, "general.file_type"), 7);
    ck_assert_float_eq(kv_f32(&g, "llama.rope.freq_base"), 10000.0f);
    ck_assert_float_eq(kv_f32(&g, "llama.attention.layer_norm_rms_epsilon"), 1e-5f);
    /* vocabulary: every id, padding unused, the added tokens' types, merges as "a b" */
    ck_assert(kv_str_is(&g, "tokenizer.ggml.model", "gpt2") && kv_str_is(&g, "tokenizer.ggml.pre", "gpt-2"));
    const gkv *toks = kv(&g, "tokenizer.ggml.tokens"), *types = kv(&g, "tokenizer.ggml.token_type"),
              *merges = kv(&g, "tokenizer.ggml.merges");
    ck_assert_uint_eq(toks->arr_n, 512);
    uint64_t l;
    const uint8_t *s = arr_str(toks, 5, &l);
    ck_assert(l == 3 && !memcmp(s, "the", 3));
    s = arr_str(toks, 400, &l);
    ck_assert(l == 8 && !memcmp(s, "[PAD400]", 8));
    ck_assert_int_eq((int32_t)rd32(types->val), 3);
    ck_assert_int_eq((int32_t)rd32(types->val + 4 * 5), 1);
    ck_assert_int_eq((int32_t)rd32(types->val + 4 * 301), 4);
    ck_assert_int_eq((int32_t)rd32(types->val + 4 * 400), 5);
    ck_assert_uint_eq(merges->arr_n, 2);
    s = arr_str(merges, 1, &l);
    ck_assert(l == 4 && !memcmp(s, "th e", 4));
    ck_assert_uint_eq(kv_u32(&g, "tokenizer.ggml.bos_token_id"), 0);
    ck_assert_uint_eq(kv_u32(&g, "tokenizer.ggml.eos_token_id"), 0);
    ck_assert(!has_kv(&g, "tokenizer.ggml.unknown_token_id"));
    ck_assert_int_eq(kv(&g, "tokenizer.ggml.add_bos_token")->val[0], 1);
    /* tensors: llama.cpp's names and order, types, aligned offsets, and the
     * weights squish decodes, q/k rows in llama.cpp's rotary order */
    ck_assert_str_eq(g.t[0].name, "token_embd.weight");
    ck_assert_str_eq(g.t[1].name, "blk.0.attn_norm.weight");
    ck_assert_str_eq(g.t[19].name, "output_norm.weight");
    ck_assert_str_eq(g.t[20].name, "output.weight");
    sq_file *f = sq_open(tmp("t.squizd"), &err);
    ck_assert_ptr_nonnull(f);
    static const struct {
        const char *hf, *gg;
        uint32_t type;
        int heads;
    } map[] = {{"model.embed_tokens.weight", "token_embd.weight", 8, 0},
               {"model.layers.1.self_attn.q_proj.weight", "blk.1.attn_q.weight", 8, 6},
               {"model.layers.0.self_attn.k_proj.weight", "blk.0.attn_k.weight", 8, 2},
               {"model.layers.0.self_attn.v_proj.weight", "blk.0.attn_v.weight", 8, 0},
               {"model.layers.1.mlp.down_proj.weight", "blk.1.ffn_down.weight", 0, 0},
               {"model.layers.1.post_attention_layernorm.weight", "blk.1.ffn_norm.weight", 0, 0},
               {"lm_head.weight", "output.weight", 8, 0}};
    for (size_t k = 0; k < sizeof map / sizeof map[0]; k++) {
        const sq_tensor *t = sq_file_find(f, map[k].hf);
        const gten *gt = tensor(&g, map[k].gg);
        uint64_t rows, cols;
        sq_tensor_matrix(t, &rows, &cols);
        ck_assert_uint_eq(gt->type, map[k].type);
        ck_assert_uint_eq(gt->ne[0], cols);
        if (t->ndim == 2) ck_assert_uint_eq(gt->ne[1], rows);
        ck_assert_uint_eq(gt->off % 32, 0);
        float *want = malloc(rows * cols * sizeof(float)), *got = malloc(rows * cols * sizeof(float));
        sq_tview v;
        void *owned[SQ_CODEC_MAX_PARTS];
        ck_assert_int_eq(sq_tview_open(f, t, 0, &v, owned, &err), SQ_OK);
        ck_assert_int_eq(sq_decode_mt(&v, want, 1), SQ_OK);
        sq_tview_close(&v, owned);
        uint64_t rb = sq_ggml_row_bytes(gt->type, cols);
        for (uint64_t r = 0; r < rows; r++) ref_dequant(gt->type, g.b + g.data_start + gt->off + r * rb, cols, got + r * cols);
        /* convert_hf_to_gguf's permute: w.reshape(heads, 2, hd/2, cols).swapaxes(1, 2) */
        uint64_t hd = map[k].heads ? rows / (uint64_t)map[k].heads : 0;
        for (uint64_t h = 0; h < (uint64_t)(map[k].heads ? map[k].heads : 1); h++)
            for (uint64_t i = 0; i < (hd ? hd / 2 : rows); i++)
                for (uint64_t j = 0; j < (hd ? 2 : 1); j++) {
                    uint64_t dst = hd ? h * hd + i * 2 + j : i, src = hd ? h * hd + j * (hd / 2) + i : i;
                    ck_assert_msg(!memcmp(got + dst * cols, want + src * cols, cols * sizeof(float)),
                                  "%s: GGUF row %llu is not squish's row %llu", map[k].gg, (unsigned long long)dst,
                                  (unsigned long long)src);
                }
        free(want);
        free(got);
    }
    sq_close(f);
    free(g.b);
    remove_tmp();
}
END_TEST

int main(void) {
    Suite *s = suite_create("gguf_export");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, block_sizes_and_layouts);
    tcase_add_test(tc, int_codes_repack_exactly);
    tcase_add_test(tc, int4_asym_as_q4_1);
    tcase_add_test(tc, refusals_name_the_reason);
    tcase_add_test(tc, writer_layout);
    tcase_add_test(tc, llama2c_vocabulary);
    tcase_add_test(tc, export_tiny_model);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
