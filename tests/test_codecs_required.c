/* What every registered codec must come with (docs/adding-a-codec.md),
 * checked from the registry so that a codec added without it fails the
 * suite, with a message that says what to add:
 *   - a descriptor the generated tests can run: unique id and name, a
 *     layout, an encoder (its own, or quant/encoders.c's), portable decode
 *     and GEMV, a default scheme that
 *     parses, and a check() hook when a part's size depends on the data;
 *   - golden vectors in testdata/vectors/codec-vectors.txt (made by
 *     testdata/gen_vectors.py from the spec, not from the C code);
 *   - a section of spec/codecs.md whose heading names it, and its row in
 *     the id table of §2;
 *   - a Vulkan path (sq_vk_supported) for the families the backend has
 *     shaders for: float, int, LUT, MX, codebook, lattice and sparse + dense.
 * The round trip, kernel, fuzz and Vulkan-vs-CPU tests themselves run every
 * registered codec without a list (test_codecs.c, fuzz_codecs.c,
 * test_vulkan.c). */
#include <ctype.h>
#include <stdarg.h>
#include <strings.h>

#include "encoders.h"
#include "squish/codec.h"
#include "testutil.h"
#include "vk.h"

#define MAX_PROBLEMS 8192

static char problems[MAX_PROBLEMS];
static int nproblems;

static void problem(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void problem(const char *fmt, ...) {
    size_t k = strlen(problems);
    va_list ap;
    va_start(ap, fmt);
    if (k + 2 < sizeof problems) {
        problems[k++] = '\n';
        vsnprintf(problems + k, sizeof problems - k, fmt, ap);
    }
    va_end(ap);
    nproblems++;
}

/* Whether line holds name as a whole word (letters, digits and '_' around
 * it do not count), ignoring case: "NF4" names nf4, "mxfp4" does not name fp4. */
static int names(const char *line, const char *name) {
    size_t n = strlen(name);
    for (const char *s = line; *s; s++) {
        if (strncasecmp(s, name, n)) continue;
        int before = s > line && (isalnum((unsigned char)s[-1]) || s[-1] == '_');
        int after = isalnum((unsigned char)s[n]) || s[n] == '_';
        if (!before && !after) return 1;
    }
    return 0;
}

/* The codecs that have at least one golden vector (flags indexed like sq_codec_list). */
static void codecs_with_vectors(int *has, int ncodecs) {
    size_t len;
    char *text = (char *)read_all(src_path("testdata/vectors/codec-vectors.txt"), &len);
    ck_assert_msg(text, "cannot read testdata/vectors/codec-vectors.txt");
    text[len] = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char scheme[64];
        const sq_codec *c;
        uint32_t p[SQ_NPARAMS];
        if (strncmp(line, "vector ", 7) || sscanf(line + 7, "%63s", scheme) != 1 || sq_scheme_parse(scheme, &c, p, NULL))
            continue;
        for (int i = 0; i < ncodecs; i++)
            if (sq_codec_list()[i] == c) has[i] = 1;
    }
    free(text);
}

/* A section of spec/codecs.md whose heading names the codec, and a row
 * "| id | name |" of the id table. */
static void check_spec(const sq_codec *c, const char *spec) {
    int heading = 0, row = 0;
    char want[96];
    snprintf(want, sizeof want, "| %u | %s |", c->id, c->name);
    for (const char *l = spec; *l;) {
        const char *e = strchr(l, '\n');
        size_t n = e ? (size_t)(e - l) : strlen(l);
        char line[512];
        snprintf(line, sizeof line, "%.*s", (int)(n < sizeof line ? n : sizeof line - 1), l);
        if (line[0] == '#' && names(line, c->name)) heading = 1;
        if (!strncmp(line, want, strlen(want))) row = 1;
        l += n + (e != NULL);
    }
    if (!heading)
        problem("codec %s: no section of spec/codecs.md names it in its heading: add one ('## N. ... (%s)') with its "
                "parts, bit layout, decode and encode rules, as the other codecs have",
                c->name, c->name);
    if (!row)
        problem("codec %s: spec/codecs.md §2 has no row '%s ...' for it: add its id, name, technique flag and params",
                c->name, want);
}

/* The descriptor is complete enough for the generated tests to run it. */
static void check_descriptor(const sq_codec *c) {
    if (sq_codec_by_id(c->id) != c)
        problem("codec %s: id %u is also registered for %s: ids are unique (squish/codec.h lists the reserved ranges)",
                c->name, c->id, sq_codec_by_id(c->id)->name);
    if (sq_codec_by_name(c->name) != c) problem("codec %s: the name is registered twice", c->name);
    if (!strcmp(sq_codec_family_name(c->family), "?")) problem("codec %s: family %d is not a sq_codec_family", c->name, c->family);
    if (!c->bits) problem("codec %s: .bits is 0 (bits per code)", c->name);
    if (!c->layout) problem("codec %s: no .layout", c->name);
    const sq_codec_encoder *enc = sq_quant_encoder(c);
    if (!enc || !(enc->encode_rows || enc->encode))
        problem("codec %s: no encoder: set .enc (encode_rows for a fixed layout, encode for one that depends on the "
                "data), or, for an encoder that needs the quantization library, add its line to quant/encoders.c",
                c->name);
    if (!c->cpu || !c->cpu->decode[SQ_ISA_PORTABLE] || !c->cpu->gemv[SQ_ISA_PORTABLE])
        problem("codec %s: its CPU traits (.cpu) must set decode[SQ_ISA_PORTABLE] and gemv[SQ_ISA_PORTABLE]", c->name);
    uint32_t p[SQ_NPARAMS];
    const sq_codec *back;
    sq_err err;
    if (sq_scheme_parse(c->name, &back, p, &err)) {
        problem("codec %s: its default scheme does not parse: %s", c->name, err.msg);
        return;
    }
    if (!c->layout) return;
    sq_part_spec sp[SQ_CODEC_MAX_PARTS];
    int n = c->layout(c, p, 4, 256, sp);
    for (int i = 0; i < n; i++)
        if ((sp[i].flags & SQ_PART_DATA_DIM0) && !c->check)
            problem("codec %s: part %s has a data-dependent size (SQ_PART_DATA_DIM0) but the codec has no .check hook to "
                    "validate it before a kernel reads it",
                    c->name, sp[i].name);
}

/* Families with Vulkan shaders (runtime/vulkan/shaders: codes.glsl, floats.glsl, codebook.glsl,
 * lattice.glsl, sparse.glsl). */
static int vulkan_family(sq_codec_family f) {
    return f == SQ_FAMILY_FLOAT || f == SQ_FAMILY_INT || f == SQ_FAMILY_LUT || f == SQ_FAMILY_MX ||
           f == SQ_FAMILY_CODEBOOK || f == SQ_FAMILY_LATTICE || f == SQ_FAMILY_SPARSE_DENSE || f == SQ_FAMILY_MIXED;
}

static void check_vulkan(const sq_codec *c) {
#ifdef SQUISH_HAVE_VULKAN
    if (!vulkan_family(c->family)) return;
    sq_tview v = {0};
    v.codec = c;
    sq_scheme_parse(c->name, &v.codec, v.params, NULL);
    v.rows = 4;
    v.cols = 256;
    if (!sq_vk_supported(&v))
        problem("codec %s (family %s): the Vulkan backend has no kernel for it (sq_vk_supported() is 0 for scheme %s, "
                "4 x 256): add its decode to runtime/vulkan/shaders/ (codes.glsl for codes times a scale) and its "
                "parameters to describe() in runtime/vulkan/vk_tensor.c; tests/test_vulkan.c then compares it with the CPU",
                c->name, sq_codec_family_name(c->family), c->name);
#else
    (void)c;
    (void)vulkan_family;
#endif
}

START_TEST(every_codec_is_complete) {
    int n = 0;
    while (sq_codec_list()[n]) n++;
    int *vec = calloc((size_t)n, sizeof *vec);
    codecs_with_vectors(vec, n);
    size_t len;
    char *spec = (char *)read_all(src_path("spec/codecs.md"), &len);
    ck_assert_msg(spec, "cannot read spec/codecs.md");
    spec[len] = 0;
    problems[0] = 0;
    nproblems = 0;
    for (int i = 0; i < n; i++) {
        const sq_codec *c = sq_codec_list()[i];
        check_descriptor(c);
        if (!vec[i])
            problem("codec %s: no golden vector in testdata/vectors/codec-vectors.txt: add a case ('%s', rows, cols, "
                    "kind, seed) to CASES in testdata/gen_vectors.py with its encoder and decoder written from "
                    "spec/codecs.md (not from the C code), run `python3 testdata/gen_vectors.py` and commit the vectors "
                    "(an encoder that cannot be reproduced outside C: parts and output only, checked by decoding)",
                    c->name, c->name);
        check_spec(c, spec);
        check_vulkan(c);
    }
#ifndef SQUISH_HAVE_VULKAN
    fprintf(stderr, "codecs_required: built without SQUISH_VULKAN: the Vulkan paths were not checked\n");
#endif
    free(spec);
    free(vec);
    ck_assert_msg(nproblems == 0, "%d thing(s) missing for registered codecs (docs/adding-a-codec.md):%s", nproblems,
                  problems);
}
END_TEST

/* The checker itself: a heading names a codec only as a whole word. */
START_TEST(names_whole_words) {
    ck_assert(names("## 5. NF4", "nf4"));
    ck_assert(names("## 6. Mini-float codecs (fp8_e4m3, fp4_e2m1)", "fp4_e2m1"));
    ck_assert(!names("## 7. OCP Microscaling (mxfp8_e4m3, mxfp4)", "fp8_e4m3"));
    ck_assert(!names("## 4. Integer codecs (int8, int4)", "int"));
    ck_assert(!names("## 8. Float passthrough (f32, f16, bf16)", "f1"));
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("codecs_required");
    TCase *tc = tcase_create("registry");
    tcase_add_test(tc, every_codec_is_complete);
    tcase_add_test(tc, names_whole_words);
    suite_add_tcase(s, tc);
    return s;
}
RUN_SUITE(suite())
