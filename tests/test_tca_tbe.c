/* TCA-TBE, the lossless bf16 part compression (spec/squizd.md §13):
 * squish's encoder writes the bytes of the independent Python generator
 * (testdata/gen_tca_tbe.py) and the spec's worked example; every decoder
 * path gives back every bf16 bit pattern; the coded GEMV gives the bits of
 * the bf16 GEMV of the same path; each rule of §13.3 refuses a stream that
 * breaks it; and the container writes, reads and verifies coded parts. */
#include <math.h>

#include "squish/codec.h"
#include "squish/container.h"
#include "squish/hash.h"
#include "squish/tca_tbe.h"
#include "tca_tbe/tbe_internal.h" /* sq_tbe_fill */
#include "testutil.h"

static const sq_isa isas[] = {SQ_ISA_PORTABLE, SQ_ISA_AVX2, SQ_ISA_AVX512};
#define N_ISAS 3

static int hexval(char c) { return c <= '9' ? c - '0' : (c | 32) - 'a' + 10; }
static uint8_t *from_hex(const char *h, size_t *n) {
    size_t len = strcspn(h, " \n");
    *n = len / 2;
    uint8_t *b = malloc(*n + 1);
    for (size_t i = 0; i < *n; i++) b[i] = (uint8_t)(hexval(h[2 * i]) << 4 | hexval(h[2 * i + 1]));
    return b;
}

/* The fewest escapes a block can have, by trying every window (not the encoder's sliding sum). */
static uint64_t min_escapes(const uint16_t *v, uint64_t n) {
    uint64_t total = 0;
    for (uint64_t b = 0; b < n; b += SQ_TBE_BLOCK) {
        uint64_t m = n - b < SQ_TBE_BLOCK ? n - b : SQ_TBE_BLOCK, best = m;
        for (unsigned e0 = 0; e0 <= SQ_TBE_MAX_BASE; e0++) {
            uint64_t out = 0;
            for (uint64_t j = 0; j < m; j++) out += ((v[b + j] >> 7) & 0xff) - e0 >= SQ_TBE_WINDOW;
            if (out < best) best = out;
        }
        total += best;
    }
    return total;
}

/* Encodes v, checks the stream's size, its escape count and that every
 * decoder path (whole stream, block ranges, arbitrary value ranges) gives v
 * back. Returns the stream (caller frees). */
static uint8_t *roundtrip(const uint16_t *v, uint64_t n, uint64_t *size) {
    uint8_t *c;
    sq_err err;
    ck_assert_int_eq(sq_tbe_encode(v, n, &c, size, &err), SQ_OK);
    sq_tbe t;
    char why[300];
    ck_assert_msg(sq_tbe_open(&t, c, *size, n, why, sizeof why) == 0, "n=%llu: %s", (unsigned long long)n, why);
    ck_assert_uint_eq(*size, sq_tbe_coded_size(n, t.n_escapes));
    if (n <= 4096) ck_assert_uint_eq(t.n_escapes, min_escapes(v, n));
    uint16_t *out = malloc((n + SQ_TBE_BLOCK) * sizeof *out);
    for (int k = 0; k < N_ISAS; k++) {
        memset(out, 0xA5, (n + SQ_TBE_BLOCK) * sizeof *out);
        sq_tbe_decode_for(isas[k])(&t, 0, t.n_blocks, out);
        ck_assert_msg(!memcmp(out, v, n * sizeof *v), "n=%llu isa %s: decode differs", (unsigned long long)n,
                      sq_isa_name(isas[k]));
        ck_assert_uint_eq(out[n], 0xA5A5); /* nothing written past the values */
        if (t.n_blocks > 2) { /* a range of blocks in the middle */
            uint64_t b0 = t.n_blocks / 3, b1 = t.n_blocks - 1;
            sq_tbe_decode_for(isas[k])(&t, b0, b1, out);
            ck_assert(!memcmp(out, v + b0 * SQ_TBE_BLOCK, (b1 - b0) * SQ_TBE_BLOCK * sizeof *v));
        }
        for (int r = 0; r < 8 && n; r++) { /* arbitrary value ranges */
            uint64_t i0 = (uint64_t)(urand() * (double)n), len = (uint64_t)(urand() * (double)(n - i0));
            sq_tbe_fill(&t, sq_tbe_decode_for(isas[k]), i0, len, out);
            ck_assert(!memcmp(out, v + i0, len * sizeof *v));
        }
    }
    free(out);
    return c;
}

START_TEST(golden_vectors) {
    size_t len;
    char *text = (char *)read_all(src_path("testdata/vectors/tca-tbe-vectors.txt"), &len);
    ck_assert_ptr_nonnull(text);
    text[len] = 0;
    int nv = 0, ns = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char name[64];
        unsigned long long n;
        int at;
        if (sscanf(line, "vector %63s %llu %n", name, &n, &at) == 2) {
            size_t nb, nc;
            uint8_t *vb = line[at] == '-' ? calloc(1, 1) : from_hex(line + at, &nb);
            const char *ch = strchr(line + at, ' ');
            ck_assert_ptr_nonnull(ch);
            uint8_t *want = from_hex(ch + 1, &nc);
            uint16_t *v = malloc((n ? n : 1) * 2);
            for (uint64_t i = 0; i < n; i++) v[i] = (uint16_t)(vb[2 * i] | vb[2 * i + 1] << 8);
            uint64_t size;
            uint8_t *c = roundtrip(v, n, &size);
            ck_assert_msg(size == nc && !memcmp(c, want, nc), "vector %s: squish's coding differs from the generator's", name);
            free(c), free(want), free(v), free(vb);
            nv++;
        } else if (sscanf(line, "sha256 %63s %llu %n", name, &n, &at) == 2) {
            uint16_t *v = malloc(n * 2);
            for (uint64_t i = 0; i < n; i++)
                v[i] = (uint16_t)(!strcmp(name, "counting") ? i : (i * 40503) % 65536);
            uint64_t size;
            uint8_t *c = roundtrip(v, n, &size);
            uint8_t d[32];
            char hex[65];
            sq_sha256 s;
            sq_sha256_init(&s);
            sq_sha256_update(&s, c, size);
            sq_sha256_final(&s, d);
            sq_hex32(d, hex);
            ck_assert_msg(!strncmp(hex, line + at, 64), "%s: sha256 %s, generator %.64s", name, hex, line + at);
            free(c), free(v);
            ns++;
        }
    }
    ck_assert_int_ge(nv, 10);
    ck_assert_int_eq(ns, 2);
    free(text);
}
END_TEST

/* spec/squizd.md §13.4 lists every byte of the coded example: they are what the encoder writes. */
START_TEST(spec_example) {
    static const uint16_t v[10] = {0x3F80, 0xC000, 0x3F00, 0x4040, 0x3E20, 0x3FC0, 0x8000, 0x7F80, 0x0001, 0x42C8};
    size_t len;
    char *spec = (char *)read_all(src_path("spec/squizd.md"), &len);
    ck_assert_ptr_nonnull(spec);
    spec[len] = 0;
    char *b = strstr(spec, "<!-- tca-tbe-example:begin -->"), *e = strstr(spec, "<!-- tca-tbe-example:end -->");
    ck_assert(b && e && b < e);
    uint8_t listed[512];
    size_t n = 0;
    for (char *line = strchr(b, '\n') + 1; line < e; line = strchr(line, '\n') + 1) {
        char *bar = strchr(line, '|'), *colon = strchr(line, ':');
        if (!bar || !colon || colon > bar || strncmp(line, "```", 3) == 0) continue;
        for (char *p = colon + 1; p < bar; p++)
            if (p[0] != ' ' && p[1] != ' ' && p + 1 < bar) {
                ck_assert_uint_lt(n, sizeof listed);
                listed[n++] = (uint8_t)(hexval(p[0]) << 4 | hexval(p[1]));
                p++;
            }
    }
    uint8_t *c;
    uint64_t size;
    sq_err err;
    ck_assert_int_eq(sq_tbe_encode(v, 10, &c, &size, &err), SQ_OK);
    ck_assert_uint_eq(n, size);
    ck_assert_msg(!memcmp(listed, c, size), "the spec's example bytes differ from the encoder's");
    free(c);
    free(spec);
}
END_TEST

/* Every bf16 pattern in blocks that force each kind of window; weight-like
 * tensors of awkward lengths; random bits (mostly escapes). */
START_TEST(roundtrip_every_pattern) {
    uint64_t size;
    uint16_t *v = malloc(131072 * sizeof *v);
    /* each block: 64 copies of exponent e's patterns and 64 random patterns */
    for (unsigned k = 0; k < 65536 / 64; k++)
        for (int j = 0; j < 128; j++) v[128 * k + j] = j < 64 ? (uint16_t)(64 * k + j) : (uint16_t)(urand() * 65536);
    free(roundtrip(v, 131072, &size));
    /* windows at the very top: exponents 249..255 (NaN and infinity inside the window) */
    for (int j = 0; j < 128; j++) v[j] = (uint16_t)((j & 1) << 15 | (249 + j % 7) << 7 | (j * 13 & 0x7f));
    v[5] = 0x0001;
    uint8_t *c = roundtrip(v, 128, &size);
    ck_assert_uint_eq(c[32], 249);
    free(c);
    static const uint64_t lens[] = {0, 1, 5, 127, 128, 129, 255, 256, 1000, 4099, 65536 + 77};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        float *w = random_matrix(lens[i] + 1, 1);
        for (uint64_t j = 0; j < lens[i]; j++) v[j] = sq_f32_to_bf16(w[j]);
        if (lens[i] > 10) v[7] = 0x8000, v[9] = 0x0000, v[10] = 0x7FC0; /* -0, +0, NaN among weights */
        free(roundtrip(v, lens[i], &size));
        if (lens[i] >= 4096) /* weight-like data: well under 16 bits a value */
            ck_assert_msg(8.0 * (double)size / (double)lens[i] < 12.5, "%.2f bits a value", 8.0 * (double)size / lens[i]);
        for (uint64_t j = 0; j < lens[i]; j++) v[j] = (uint16_t)(urand() * 65536);
        free(roundtrip(v, lens[i], &size));
        free(w);
    }
    free(v);
}
END_TEST

/* The coded GEMV gives the bits of the bf16 GEMV of the same path, for rows
 * of whole blocks (decoded in registers) and for any other length (in
 * segments), and both agree with a double-precision dot product. */
START_TEST(gemv_matches_bf16) {
    static const uint64_t shapes[][2] = {{3, 128}, {5, 512}, {4, 384}, {7, 520}, {3, 1000}, {2, 2100},
                                         {9, 7},   {2, 1088}, {1, 3000}, {3, 2048}, {2, 1024}};
    const sq_codec *bf16 = sq_codec_by_name("bf16");
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        uint64_t rows = shapes[s][0], cols = shapes[s][1], n = rows * cols;
        float *w = random_matrix(n, 1), *x = malloc(cols * sizeof(float));
        uint16_t *v = malloc(n * sizeof *v);
        for (uint64_t i = 0; i < n; i++) v[i] = sq_f32_to_bf16(w[i]);
        for (uint64_t i = 0; i < n; i += 37) v[i] = i % 2 ? 0x8000 : 0x0001; /* escapes: -0 and a subnormal */
        for (uint64_t i = 0; i < cols; i++) x[i] = (float)(urand() - 0.5);
        uint8_t *c;
        uint64_t size;
        sq_err err;
        ck_assert_int_eq(sq_tbe_encode(v, n, &c, &size, &err), SQ_OK);
        sq_tbe t;
        ck_assert_int_eq(sq_tbe_open(&t, c, size, n, NULL, 0), 0);
        sq_tview tv = {.codec = bf16, .rows = rows, .cols = cols, .nparts = 1};
        tv.part[0] = v;
        float *ya = malloc(rows * sizeof(float)), *yb = malloc(rows * sizeof(float));
        for (int k = 0; k < N_ISAS; k++) {
            sq_isa isa = sq_tbe_isa(isas[k]);
            for (int i = 0; i < (int)rows; i++) ya[i] = yb[i] = NAN;
            sq_tbe_gemv_for(isas[k])(&t, cols, x, ya, 0, rows);
            sq_gemv_for(bf16, isa)(&tv, x, yb, 0, rows);
            ck_assert_msg(!memcmp(ya, yb, rows * sizeof(float)), "%llux%llu isa %s: coded GEMV %.9g, bf16 GEMV %.9g",
                          (unsigned long long)rows, (unsigned long long)cols, sq_isa_name(isa), (double)ya[0], (double)yb[0]);
            for (uint64_t r = 0; r < rows; r++) { /* against float64 */
                double ref = 0, mag = 0;
                for (uint64_t i = 0; i < cols; i++) {
                    double p = (double)sq_bf16_to_f32(v[r * cols + i]) * x[i];
                    ref += p, mag += fabs(p);
                }
                ck_assert_msg(fabs(ya[r] - ref) <= 1e-5 * mag + 1e-30, "row %llu: %.9g vs %.9g", (unsigned long long)r,
                              (double)ya[r], ref);
            }
            if (rows > 2) { /* a row range leaves the other rows alone */
                ya[0] = 42.0f;
                sq_tbe_gemv_for(isas[k])(&t, cols, x, ya, 1, 2);
                ck_assert(ya[0] == 42.0f && !memcmp(ya + 1, yb + 1, sizeof(float)));
            }
        }
        free(c), free(w), free(x), free(v), free(ya), free(yb);
    }
}
END_TEST

/* A 300-value stream (3 blocks, escapes in each) damaged one rule at a
 * time: each refusal names its rule. */
static uint8_t *sample(uint64_t *size, uint16_t **vals) {
    uint16_t *v = malloc(300 * sizeof *v);
    float *w = random_matrix(300, 1);
    for (int i = 0; i < 300; i++) v[i] = sq_f32_to_bf16(w[i]);
    for (int i = 0; i < 300; i += 20) v[i] = 0x0000;
    free(w);
    uint8_t *c;
    sq_err err;
    ck_assert_int_eq(sq_tbe_encode(v, 300, &c, size, &err), SQ_OK);
    *vals = v;
    return c;
}

static void expect_refused(const uint8_t *c, uint64_t size, uint64_t n, const char *rule, const char *what) {
    sq_tbe t;
    char why[300] = "";
    ck_assert_msg(sq_tbe_open(&t, c, size, n, why, sizeof why) != 0, "%s: accepted", what);
    ck_assert_msg(strstr(why, rule) != NULL, "%s: message '%s' lacks %s", what, why, rule);
    sq_err err;
    uint16_t *out = malloc(n * 2 + 2);
    ck_assert_int_eq(sq_tbe_decode(c, size, n, out, &err), SQ_ECORRUPT);
    free(out);
}

START_TEST(corrupt_streams_refused) {
    uint64_t size;
    uint16_t *v;
    uint8_t *c = sample(&size, &v), *d = malloc(size + 8);
    sq_tbe t;
    ck_assert_int_eq(sq_tbe_open(&t, c, size, 300, NULL, 0), 0);
    ck_assert_uint_gt(t.n_escapes, 3);
    const uint64_t rec1 = SQ_TBE_HEADER + SQ_TBE_RECORD, rec2 = rec1 + SQ_TBE_RECORD;
#define DAMAGE(RULE, WHAT, STMT)                          \
    do {                                                  \
        memcpy(d, c, size);                               \
        uint64_t dsize = size, dn = 300;                  \
        STMT;                                             \
        expect_refused(d, dsize, dn, RULE, WHAT);         \
    } while (0)
    DAMAGE("(T1)", "short", dsize = 31);
    DAMAGE("(T1)", "magic", d[0] = 'X');
    DAMAGE("(T1)", "reserved", d[5] = 1);
    DAMAGE("(T1)", "reserved tail", d[31] = 1);
    DAMAGE("(T1)", "n_values", dn = 299);
    DAMAGE("(T2)", "n_escapes above n", d[16] = 0xff; d[17] = 0xff);
    DAMAGE("(T2)", "truncated", dsize = size - 1);
    DAMAGE("(T2)", "trailing byte", d[size] = 0; dsize = size + 1);
    DAMAGE("(T3)", "base 250", d[rec1] = 250);
    DAMAGE("(T3)", "escape start", d[rec2 + 1] ^= 1);
    DAMAGE("(T3)", "n_escapes one more and a byte more", d[16]++; d[size] = 0; dsize = size + 1);
    /* the last block holds 44 values: position 44 is padding */
    DAMAGE("(T4)", "padding plane bit", d[rec2 + 8 + 5] |= 0x10);
    DAMAGE("(T4)", "padding byte", d[rec2 + 56 + 100] = 3);
    /* an escape byte inside its block's window: the first escape of block 0 set to the base */
    DAMAGE("(T5)", "escape inside the window", d[size - t.n_escapes] = c[SQ_TBE_HEADER]);
    /* a value of block 0 that is not an escape turned into one: the escape counts no longer add up */
    int j = 0;
    while ((c[SQ_TBE_HEADER + 8 + j / 8] & c[SQ_TBE_HEADER + 24 + j / 8] & c[SQ_TBE_HEADER + 40 + j / 8]) >> (j % 8) & 1) j++;
    DAMAGE("(T3)", "an extra escape", for (int p = 0; p < 3; p++) d[SQ_TBE_HEADER + 8 + 16 * p + j / 8] |= (uint8_t)(1u << (j % 8)));
    /* any one byte changed: refused, or decoded to other values with no fault (ASan) */
    uint16_t *out = malloc(300 * sizeof *out);
    for (uint64_t i = 0; i < size; i++)
        for (int bit = 0; bit < 8; bit += 3) {
            memcpy(d, c, size);
            d[i] ^= (uint8_t)(1u << bit);
            sq_tbe dt;
            if (sq_tbe_open(&dt, d, size, 300, NULL, 0)) continue;
            for (int k = 0; k < N_ISAS; k++) sq_tbe_decode_for(isas[k])(&dt, 0, dt.n_blocks, out);
        }
    free(out), free(c), free(d), free(v);
}
END_TEST

/* Through the container: bf16 parts coded, an incompressible one stored
 * raw, technique flag 18, verify, the tensor view, and the errors. */
START_TEST(container_parts) {
    char path[] = "/tmp/squish-tbe-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    const uint64_t rows = 8, cols = 256, n = rows * cols;
    float *w = random_matrix(n, 1);
    uint16_t *v = malloc(n * 2), *noise = malloc(n * 2);
    for (uint64_t i = 0; i < n; i++) {
        v[i] = sq_f32_to_bf16(w[i]);
        noise[i] = (uint16_t)(urand() * 65536);
        if ((noise[i] & 0x7f80) == 0x7f80) noise[i] ^= 0x0080; /* finite (spec/codecs.md V5): exponent 254 */
    }
    sq_err err;
    sq_writer *wr = sq_writer_open(path, &(sq_writer_opts){0, 3, 0}, &err);
    ck_assert_ptr_nonnull(wr);
    uint64_t dims[2] = {rows, cols};
    uint32_t p[SQ_NPARAMS] = {0};
    ck_assert_int_eq(sq_writer_begin_tensor(wr, "a.weight", 2, dims, SQ_DT_BF16, SQ_CODEC_BF16, p, &err), SQ_OK);
    ck_assert_int_eq(sq_writer_add_part(wr, "data", SQ_DT_BF16, 2, dims, v, n * 2, SQ_COMP_TCA_TBE, &err), SQ_OK);
    ck_assert_int_eq(sq_writer_end_tensor(wr, &err), SQ_OK);
    ck_assert_int_eq(sq_writer_begin_tensor(wr, "b.weight", 2, dims, SQ_DT_BF16, SQ_CODEC_BF16, p, &err), SQ_OK);
    ck_assert_int_eq(sq_writer_add_part(wr, "data", SQ_DT_BF16, 2, dims, noise, n * 2, SQ_COMP_TCA_TBE, &err), SQ_OK);
    ck_assert_int_eq(sq_writer_end_tensor(wr, &err), SQ_OK);
    ck_assert_int_eq(sq_writer_commit(wr, &err), SQ_OK);
    sq_file *f = sq_open(path, &err);
    ck_assert_msg(f != NULL, "%s", err.msg);
    ck_assert(sq_file_header(f)->flags & SQ_FLAG_TCA_TBE);
    ck_assert(!(sq_file_header(f)->flags & SQ_FLAG_ZSTD));
    const sq_part *pa = &sq_file_find(f, "a.weight")->parts[0], *pb = &sq_file_find(f, "b.weight")->parts[0];
    ck_assert_uint_eq(pa->compression, SQ_COMP_TCA_TBE);
    ck_assert_uint_lt(pa->stored_size, n * 2 * 80 / 100);
    ck_assert_uint_eq(pb->compression, SQ_COMP_NONE); /* coding would make it larger */
    ck_assert_msg(sq_verify(f, NULL, NULL, &err) == SQ_OK, "%s", err.msg);
    const void *ptr;
    void *owned;
    ck_assert_int_eq(sq_part_read(f, pa, 0, &ptr, &owned, &err), SQ_OK);
    ck_assert(owned && !memcmp(ptr, v, n * 2));
    free(owned);
    sq_tview tv;
    void *own[SQ_CODEC_MAX_PARTS];
    ck_assert_int_eq(sq_tview_open(f, sq_file_find(f, "a.weight"), 0, &tv, own, &err), SQ_OK);
    float *dec = malloc(n * sizeof(float));
    ck_assert_int_eq(sq_decode_rows(&tv, 0, rows, dec), SQ_OK);
    for (uint64_t i = 0; i < n; i++) ck_assert(dec[i] == sq_bf16_to_f32(v[i]));
    sq_tview_close(&tv, own);
    /* a damaged window base: the part read names the tensor, the part and the rule */
    uint64_t fsize;
    const uint8_t *bytes = sq_file_bytes(f, &fsize);
    uint8_t *copy = malloc(fsize);
    memcpy(copy, bytes, fsize);
    copy[pa->offset + SQ_TBE_HEADER] = 251;
    sq_file *g = sq_open_mem("damaged.squizd", copy, fsize, &err);
    ck_assert_ptr_nonnull(g);
    const sq_part *ga = &sq_file_find(g, "a.weight")->parts[0];
    ck_assert_int_eq(sq_part_read(g, ga, 0, &ptr, &owned, &err), SQ_ECORRUPT); /* the checksum first */
    ck_assert_int_eq(sq_part_read(g, ga, 1, &ptr, &owned, &err), SQ_ECORRUPT);
    ck_assert_msg(strstr(err.msg, "tensor a.weight part data") && strstr(err.msg, "window base 251") &&
                  strstr(err.msg, "(T3)"), "%s", err.msg);
    sq_close(g);
    sq_close(f);
    free(copy);
    /* TCA-TBE is for bf16 parts only */
    wr = sq_writer_open(path, NULL, &err);
    ck_assert_ptr_nonnull(wr);
    ck_assert_int_eq(sq_writer_begin_tensor(wr, "c.weight", 2, dims, SQ_DT_F32, SQ_CODEC_F32, p, &err), SQ_OK);
    ck_assert_int_eq(sq_writer_add_part(wr, "data", SQ_DT_F32, 2, dims, w, n * 4, SQ_COMP_TCA_TBE, &err), SQ_EUSAGE);
    sq_writer_abort(wr);
    unlink(path);
    free(w), free(v), free(noise), free(dec);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("tca_tbe");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, golden_vectors);
    tcase_add_test(tc, spec_example);
    tcase_add_test(tc, roundtrip_every_pattern);
    tcase_add_test(tc, gemv_matches_bf16);
    tcase_add_test(tc, corrupt_streams_refused);
    tcase_add_test(tc, container_parts);
    suite_add_tcase(s, tc);
    return s;
}
RUN_SUITE(suite())
