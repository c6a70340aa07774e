/* The Vulkan backend against the CPU reference, on whatever device
 * SQUISH_VULKAN_DEVICE / automatic selection finds (Mesa lavapipe in CI):
 * dequantization is bit-exact, GEMV and matmul agree within the stated
 * tolerance, for every registered codec in every variant its descriptor
 * admits (no list to extend: tests/codec_variants.h) and the input
 * transforms. A machine without a Vulkan device fails this test: CI
 * installs one. */
#include <math.h>

#include "runtime.h"
#include "squish/codec.h"
#include "squish/fp.h"
#include "testutil.h"
#include "codec_encode.h"
#include "codec_variants.h"
#include "vk.h"
#include "codecs/quip/quip_codec.h"
#include "vk_lattice.h"
#include "xform/hadamard.h"

/* GEMV tolerance: |y_gpu - y_cpu| <= TOL * sum_i |w_i x_i| (f32 sums in a
 * different order; the CPU SIMD paths meet 1e-5 among themselves). */
#define TOL 1e-5

static sq_vk *vk;
static int q8_checked;    /* schemes whose q8 GEMV was compared */
static int limbs_checked; /* GEMVs (T = 1) that ran the exact-activation integer-dot kernel */

static void open_device(void) {
    sq_err err;
    sq_status st = sq_vk_open(NULL, &vk, &err);
    ck_assert_msg(st == SQ_OK, "no Vulkan device: %s", err.msg);
    fprintf(stderr, "vulkan device: %s\n", sq_vk_describe(vk));
}
static void close_device(void) { sq_vk_close(vk); vk = NULL; }

/* The codecs and variants come from the registry (tests/codec_variants.h):
 * a codec of a family the backend has shaders for (float, int, LUT, MX)
 * must be supported in every variant its descriptor admits; a codec of
 * another family runs where sq_vk_supported says it can. */
#define MAX_ALL_VARIANTS 1024
static codec_variant variants[MAX_ALL_VARIANTS];
static int load_variants(void) {
    char bad[96] = "";
    int n = all_codec_variants(variants, MAX_ALL_VARIANTS, bad, sizeof bad);
    ck_assert_msg(n > 0, "scheme '%s', which a codec's descriptor allows, does not parse", bad);
    ck_assert_int_lt(n, MAX_ALL_VARIANTS);
    return n;
}
static int vulkan_family(const sq_codec *c) {
    return c->family == SQ_FAMILY_FLOAT || c->family == SQ_FAMILY_INT || c->family == SQ_FAMILY_LUT ||
           c->family == SQ_FAMILY_MX || c->family == SQ_FAMILY_CODEBOOK || c->family == SQ_FAMILY_LATTICE ||
           c->family == SQ_FAMILY_SPARSE_DENSE || c->family == SQ_FAMILY_MIXED;
}
/* Whether the variant runs here: required for the shader families (a
 * failure names the scheme), else as sq_vk_supported says. */
static int runs_here(const codec_variant *cv) {
    sq_tview v = {0};
    v.codec = cv->codec;
    memcpy(v.params, cv->params, sizeof v.params);
    v.rows = 4;
    v.cols = 256;
    int ok = sq_vk_supported(&v);
    ck_assert_msg(ok || !vulkan_family(cv->codec), "%s: the Vulkan backend has no kernel for this %s codec", cv->scheme,
                  sq_codec_family_name(cv->codec->family));
    if (!ok) fprintf(stderr, "vulkan: %s not supported by the backend (family %s): not compared\n", cv->scheme,
                     sq_codec_family_name(cv->codec->family));
    return ok;
}
/* vk.h's contract: the integer-activation GEMV covers the 4- and 8-bit integer codecs. */
static int q8_expected(const sq_codec *c) { return c->family == SQ_FAMILY_INT && (c->bits == 4 || c->bits == 8); }

/* sum |w x| per row, from the CPU decode (stored column order) and xs (transformed input) */
static double row_mag(const float *dec, const float *xs, uint64_t cols, uint64_t r) {
    double m = 0;
    for (uint64_t i = 0; i < cols; i++) m += fabs((double)dec[r * cols + i] * xs[i]);
    return m;
}

enum { XFORM = 1, OUTLIERS = 2, RHT = 4 };

/* Drops the transform links an encoder added (quip's rht_in / rht_out), so
 * that the test can attach its own chain. */
static void drop_links(sq_encoded *e) {
    while (e->nparts > 0 && e->params[SQ_P_XFORM]) {
        const sq_xform_desc *xf = sq_xform_list();
        int link = 0;
        for (int k = 0; k < SQ_XFORM_KINDS; k++)
            if (!strcmp(xf[k].part, e->spec[e->nparts - 1].name)) {
                e->params[SQ_P_XFORM] &= ~xf[k].flag;
                link = 1;
            }
        if (!link) break;
        e->nparts--;
        free(e->data[e->nparts]);
        e->data[e->nparts] = NULL;
        e->bytes[e->nparts] = 0;
    }
}

/* Appends random links to e: XFORM perm and in_scale, RHT the randomized Hadamard links on both sides. */
static void add_links(sq_encoded *e, int xform) {
    const uint64_t rows = e->rows, cols = e->cols;
    sq_err err;
    if (xform & XFORM) {
        uint32_t *perm = malloc(cols * sizeof *perm);
        float *sc = malloc(cols * sizeof *sc);
        for (uint64_t j = 0; j < cols; j++) perm[j] = (uint32_t)j;
        for (uint64_t j = cols - 1; j > 0; j--) { /* Fisher-Yates */
            uint64_t k = (uint64_t)(urand() * (double)(j + 1));
            uint32_t t = perm[j]; perm[j] = perm[k]; perm[k] = t;
        }
        for (uint64_t j = 0; j < cols; j++) sc[j] = (float)(0.5 + urand());
        ck_assert_int_eq(sq_encoded_set_xform(e, perm, sc, &err), 0);
        free(perm);
        free(sc);
    }
    if (xform & RHT) {
        const sq_xform_kind ks[2] = {SQ_XFORM_RHT_IN, SQ_XFORM_RHT_OUT};
        for (int i = 0; i < 2; i++) {
            uint64_t n = i ? rows : cols;
            uint8_t *sg = calloc((n + 7) / 8, 1);
            for (uint64_t j = 0; j < n; j++) sg[j / 8] |= (uint8_t)((urand() < 0.5) << (j % 8));
            ck_assert_int_eq(sq_encoded_add_xform(e, ks[i], sg, &err), 0);
            free(sg);
        }
    }
}

/* Uploads e; v describes it on the host. */
static sq_vk_tensor *upload_encoded(const char *scheme, const sq_encoded *e, sq_tview *v) {
    sq_err err;
    sq_tview_from_encoded(e, v);
    ck_assert_msg(sq_vk_supported(v), "%s: no Vulkan kernel", scheme);
    sq_vk_tensor *t;
    ck_assert_msg(sq_vk_upload(vk, v, &t, &err) == SQ_OK, "%s: %s", scheme, err.msg);
    return t;
}

/* Encodes w (rows x cols) in scheme, with xform random transform links
 * (XFORM: perm, in_scale; RHT: the randomized Hadamard links on both sides
 * too), and uploads it; e and v describe it on the host. */
static sq_vk_tensor *encode_upload(const char *scheme, const float *w, uint64_t rows, uint64_t cols, int xform,
                                   sq_encoded *e, sq_tview *v) {
    const sq_codec *c;
    uint32_t p[SQ_NPARAMS];
    sq_err err;
    ck_assert_int_eq(sq_scheme_parse(scheme, &c, p, &err), 0);
    ck_assert_msg(codec_encode(c, p, w, rows, cols, 2, e, &err) == 0, "%s: %s", scheme, err.msg);
    if (xform) drop_links(e); /* quip's own rht links make way for the test's chain */
    /* a codec may take fewer links (spqr: only perm, which its encoder adds): it is then
     * tested with the links its encoder wrote */
    uint32_t q[SQ_NPARAMS];
    char why[160];
    memcpy(q, e->params, sizeof q);
    q[SQ_P_XFORM] |= (xform & XFORM ? SQ_XF_PERM | SQ_XF_IN_SCALE : 0) | (xform & RHT ? SQ_XF_RHT_IN | SQ_XF_RHT_OUT : 0);
    if (c->check_params && c->check_params(c, q, why, sizeof why)) xform = 0;
    add_links(e, xform);
    return upload_encoded(scheme, e, v);
}

/* Checks an uploaded tensor's dequant, GEMV (T = 1) and matmul (T tokens)
 * against the CPU (vp describes it on the host; t is freed here). mode
 * XFORM: it has input transforms (perm, in_scale); RHT: the Hadamard links
 * on both sides too (an output mixes every stored row's error, so the bound
 * adds the root sum of squares of the rows' sums |w x'|); OUTLIERS: every
 * 32nd activation is 10^4 times larger (check_scheme makes its weight
 * column 10^4 times smaller: the worst case for block-scaled activations,
 * whose largest value then contributes little). */
static void check_tensor(const char *scheme, sq_vk_tensor *t, const sq_tview *vp, int mode, uint32_t T) {
    sq_err err;
    const sq_tview v = *vp;
    const uint64_t rows = v.rows, cols = v.cols;
    const sq_codec *c = v.codec;
    const int mixes = v.xf[SQ_XFORM_RHT_OUT] != NULL; /* an output link mixes every stored row */
    float *x = random_matrix(T * cols, 0);
    if (mode & OUTLIERS)
        for (uint64_t i = 0; i < T * cols; i += 32) x[i] *= 1e4f;

    /* dequantize: bit-exact with the CPU decoder, in stored column order */
    float *ref = malloc(rows * cols * sizeof(float)), *dec = malloc(rows * cols * sizeof(float));
    sq_decode_for(c, SQ_ISA_PORTABLE)(&v, 0, rows, ref);
    ck_assert_msg(sq_vk_dequant(vk, t, 0, rows, dec, &err) == SQ_OK, "%s: %s", scheme, err.msg);
    for (uint64_t i = 0; i < rows * cols; i++)
        ck_assert_msg(sq_f32_bits(dec[i]) == sq_f32_bits(ref[i]), "%s %llux%llu: dequant value %llu: %a vs CPU %a", scheme,
                      (unsigned long long)rows, (unsigned long long)cols, (unsigned long long)i, dec[i], ref[i]);
    /* a slice of rows */
    if (rows > 3) {
        ck_assert_int_eq(sq_vk_dequant(vk, t, 2, rows - 1, dec, &err), SQ_OK);
        ck_assert(!memcmp(dec, ref + 2 * cols, (rows - 3) * cols * sizeof(float)));
    }

    /* matmul of T rows (and GEMV, T = 1) against the CPU GEMV of each row */
    float *y = malloc(T * rows * sizeof(float)), *y0 = malloc(rows * sizeof(float)), *xs = malloc(cols * sizeof(float));
    for (uint32_t nt = 1; nt <= T; nt = nt == 1 && T > 1 ? T : T + 1) {
        ck_assert_msg(sq_vk_matmul(vk, t, x, nt, y, &err) == SQ_OK, "%s: %s", scheme, err.msg);
        if (nt == 1 && sq_vk_limbs_used(vk, t)) limbs_checked++;
        for (uint32_t k = 0; k < nt; k++) {
            sq_gemv(&v, x + k * cols, y0, 0, rows);
            sq_xform_input(&v, x + k * cols, 1, xs);
            double spread = 0;
            for (uint64_t r = 0; mixes && r < rows; r++) spread += row_mag(ref, xs, cols, r) * row_mag(ref, xs, cols, r);
            spread = sqrt(spread);
            for (uint64_t r = 0; r < rows; r++) {
                double mag = row_mag(ref, xs, cols, r) + spread;
                ck_assert_msg(fabs((double)y[k * rows + r] - y0[r]) <= TOL * mag + 1e-30,
                              "%s %llux%llu T=%u token %u row %llu: vulkan %g vs CPU %g (|w.x| %g)", scheme,
                              (unsigned long long)rows, (unsigned long long)cols, nt, k, (unsigned long long)r,
                              y[k * rows + r], y0[r], mag);
                /* and against the portable decode times x (in double), where no output link mixes rows */
                double exact = 0;
                for (uint64_t i = 0; !mixes && i < cols; i++) exact += (double)ref[r * cols + i] * xs[i];
                ck_assert_msg(mixes || fabs((double)y[k * rows + r] - exact) <= TOL * mag + 1e-30,
                              "%s %llux%llu T=%u token %u row %llu: vulkan %g vs decode-then-dot %g (|w.x| %g)", scheme,
                              (unsigned long long)rows, (unsigned long long)cols, nt, k, (unsigned long long)r,
                              y[k * rows + r], exact, mag);
            }
        }
    }
    /* the integer-activation GEMV: the CPU's q8 kernel of the same rounded activations */
    if (sq_vk_q8_supported(vk, t)) {
        sq_act_q8 a;
        sq_xform_input(&v, x, 1, xs);
        ck_assert_int_eq(sq_act_q8_init(&a, xs, cols, &err), SQ_OK);
        sq_gemv_q8_for(c, SQ_ISA_PORTABLE)(&v, &a, y0, 0, rows);
        sq_xform_output(&v, y0, 1);
        ck_assert_msg(sq_vk_gemv_q8(vk, t, x, y, &err) == SQ_OK, "%s: %s", scheme, err.msg);
        double spread = 0;
        for (uint64_t r = 0; mixes && r < rows; r++) {
            double m = 0;
            for (uint64_t i = 0; i < cols; i++) m += fabs((double)ref[r * cols + i] * a.d[i / 32] * a.q[i]);
            spread += m * m;
        }
        spread = sqrt(spread);
        for (uint64_t r = 0; r < rows; r++) {
            double mag = spread;
            for (uint64_t i = 0; i < cols; i++) mag += fabs((double)ref[r * cols + i] * a.d[i / 32] * a.q[i]);
            ck_assert_msg(fabs((double)y[r] - y0[r]) <= TOL * mag + 1e-30, "%s %llux%llu q8 row %llu: vulkan %g vs CPU %g",
                          scheme, (unsigned long long)rows, (unsigned long long)cols, (unsigned long long)r, y[r], y0[r]);
        }
        sq_act_q8_free(&a);
        q8_checked++;
    }
    sq_vk_tensor_free(vk, t);
    free(ref); free(dec); free(y); free(y0); free(xs); free(x);
}

/* Encodes a random matrix in scheme, uploads it and checks it (check_tensor). */
static void check_scheme(const char *scheme, uint64_t rows, uint64_t cols, int mode, uint32_t T) {
    sq_err err;
    const sq_codec *sc;
    ck_assert_int_eq(sq_scheme_parse(scheme, &sc, (uint32_t[SQ_NPARAMS]){0}, &err), 0);
    if (sc->family == SQ_FAMILY_LATTICE) cols = (cols + 7) / 8 * 8; /* whole groups of 8 */
    float *w = random_matrix(rows * cols, 1);
    for (uint64_t i = 0; i < rows * cols; i++)
        if ((mode & OUTLIERS) && i % cols % 32 == 0) w[i] *= 1e-4f;
    sq_encoded e;
    sq_tview v;
    sq_vk_tensor *t = encode_upload(scheme, w, rows, cols, mode & (XFORM | RHT), &e, &v);
    check_tensor(scheme, t, &v, mode, T);
    free(w);
    sq_encoded_free(&e);
}

/* An AQLM tensor of random codes, codebooks (f16 in (-1, 1)) and row scales
 * (f16 in (0.5, 1.5)) for any MxB: the encoder is slow, and a 1x16 codebook
 * needs far more rows than a test has. */
static sq_vk_tensor *synthetic_aqlm(uint32_t M, uint32_t B, uint64_t rows, uint64_t cols, int xform, char *scheme,
                                    sq_encoded *e, sq_tview *v) {
    const sq_codec *c;
    uint32_t p[SQ_NPARAMS];
    sq_err err;
    snprintf(scheme, 32, "aqlm:%ux%u", M, B);
    ck_assert_int_eq(sq_scheme_parse(scheme, &c, p, &err), 0);
    ck_assert_int_eq(sq_encoded_alloc(c, p, rows, cols, e, &err), 0);
    uint8_t *codes = e->data[0];
    uint16_t *cb = e->data[1], *sc = e->data[2];
    for (uint64_t i = 0; i < e->bytes[0]; i++) codes[i] = (uint8_t)(urand() * 256);
    const uint64_t nbits = rows * ((cols + 7) / 8) * M * B;
    if (nbits % 8) codes[e->bytes[0] - 1] &= (uint8_t)((1u << (nbits % 8)) - 1); /* the stream's padding is zero */
    for (uint64_t i = 0; i < e->bytes[1] / 2; i++) cb[i] = sq_f32_to_f16((float)(2 * urand() - 1));
    for (uint64_t r = 0; r < rows; r++) sc[r] = sq_f32_to_f16((float)(0.5 + urand()));
    char why[200];
    sq_tview_from_encoded(e, v);
    ck_assert_msg(c->check(v, why, sizeof why) == 0, "%s: %s", scheme, why);
    add_links(e, xform);
    return upload_encoded(scheme, e, v);
}

START_TEST(every_codec_matches_cpu) {
    /* ragged rows (cols not a multiple of 32 or of the group), a single row, wide rows; variants
     * other than a codec's default on the first (ragged in rows, chunks and groups) */
    const uint64_t shapes[][2] = {{37, 200}, {3, 33}, {8, 256}, {1, 7}, {64, 1056}};
    int nv = load_variants(), want_q8 = 0, ran = 0;
    for (int k = 0; k < nv; k++) {
        if (!runs_here(&variants[k])) continue;
        /* calibrated codecs leave out the widest shape: their encoders' XᵀX and search cost seconds
         * there, and codebook_kernels / sparse_kernels run wide rows on their own */
        int nshapes = variants[k].is_default ? (sq_quant_needs_xtx(variants[k].codec) ? 4 : 5) : 1;
        if (test_quick() && nshapes > 2) nshapes = 2; /* the sanitizer run: the two ragged shapes */
        for (int j = 0; j < nshapes; j++) check_scheme(variants[k].scheme, shapes[j][0], shapes[j][1], 0, 11);
        want_q8 += q8_expected(variants[k].codec) * nshapes;
        ran++;
    }
    ck_assert_int_gt(ran, 0);
    fprintf(stderr, "vulkan: %d of %d codec variants compared with the CPU\n", ran, nv);
    /* lavapipe (Vulkan 1.3) and every 1.3 device have integer dot products */
    if (sq_vk_has_integer_dot(vk)) ck_assert_int_eq(q8_checked, want_q8);
}
END_TEST

/* The exact-activation integer-dot GEMV (4 int8 limbs per activation) in
 * place of the float kernel: the same tolerance, also with outliers and
 * input transforms; non-finite activations take the float kernel. */
START_TEST(limb_gemv_matches_cpu) {
    if (!sq_vk_has_integer_dot(vk)) return;
    setenv("SQUISH_VULKAN_LIMBS", "1", 1); /* lavapipe, a CPU device, has it off by default */
    /* every variant of the codecs vk.h says have the integer-dot kernels (more shapes and the
     * transforms for their defaults) */
    const uint64_t shapes[][2] = {{37, 200}, {3, 33}, {1, 7}, {64, 1056}};
    int nv = load_variants(), want = 0;
    for (int k = 0; k < nv; k++) {
        if (!q8_expected(variants[k].codec) || !runs_here(&variants[k])) continue;
        const char *sc = variants[k].scheme;
        const int nshapes = variants[k].is_default ? 4 : 1;
        for (int j = 0; j < nshapes; j++) check_scheme(sc, shapes[j][0], shapes[j][1], 0, 1);
        check_scheme(sc, 40, 520, OUTLIERS, 1);
        if (variants[k].is_default) check_scheme(sc, 19, 300, XFORM | OUTLIERS, 1);
        want += nshapes + 1 + variants[k].is_default;
    }
    ck_assert_int_gt(want, 0);
    ck_assert_int_eq(limbs_checked, want);
    /* work splits: invocations per row vary, rows per invocation 4 and 8 (the NR8 program) */
    const char *tpr[] = {"16", "128"};
    for (int j = 0; j < 2; j++) {
        setenv("SQUISH_VULKAN_TPR", tpr[j], 1);
        setenv("SQUISH_VULKAN_NR", j ? "8" : "4", 1);
        check_scheme("int4:g128:asym", 21, 1000, 0, 1);
        check_scheme("int8:pc:sym", 13, 300, 0, 1);
    }
    unsetenv("SQUISH_VULKAN_TPR");
    unsetenv("SQUISH_VULKAN_NR");

    /* an infinite activation: the float kernel runs, non-finite rows as on the CPU */
    const uint64_t rows = 16, cols = 96;
    float *w = random_matrix(rows * cols, 1), *x = random_matrix(cols, 0), y[16], y0[16];
    x[40] = INFINITY;
    sq_encoded e;
    sq_tview v;
    sq_err err;
    sq_vk_tensor *t = encode_upload("int4:g32:sym", w, rows, cols, 0, &e, &v);
    ck_assert_int_eq(sq_vk_matmul(vk, t, x, 1, y, &err), SQ_OK);
    sq_gemv(&v, x, y0, 0, rows);
    for (uint64_t r = 0; r < rows; r++) {
        ck_assert_msg(!isfinite(y0[r]), "row %llu: the CPU gives %g", (unsigned long long)r, y0[r]);
        ck_assert_msg(isnan(y[r]) == isnan(y0[r]) && isinf(y[r]) == isinf(y0[r]) && signbit(y[r]) == signbit(y0[r]),
                      "row %llu: vulkan %g vs CPU %g", (unsigned long long)r, y[r], y0[r]);
    }
    sq_vk_tensor_free(vk, t);
    free(w);
    free(x);
    sq_encoded_free(&e);
    unsetenv("SQUISH_VULKAN_LIMBS");
}
END_TEST

/* Every codec's default variant, with perm and in_scale, and with the
 * Hadamard links on both sides too (19 rows: the blocked fallback). */
START_TEST(input_transforms) {
    int nv = load_variants();
    for (int k = 0; k < nv; k++)
        if (variants[k].is_default && runs_here(&variants[k])) {
            check_scheme(variants[k].scheme, 19, 300, XFORM, 9);
            check_scheme(variants[k].scheme, 19, 300, XFORM | RHT, 9);
        }
}
END_TEST

/* More workgroups than one grid dimension holds (65535): rows wrap into z
 * (also in aqlm's direct GEMV). */
START_TEST(large_grids) {
    setenv("SQUISH_VULKAN_TPR", "128", 1); /* one row per workgroup (of 128), as many workgroups as rows */
    setenv("SQUISH_VULKAN_NR", "1", 1);
    check_scheme("int4:g32:sym", 70000, 64, 0, 2);
    if (!test_quick()) { /* 70000 workgroups each: a minute on lavapipe; the sanitizer run keeps int4's */
        check_scheme("f16", 70000, 33, 0, 1);
        setenv("SQUISH_VULKAN_AQLM", "direct", 1); /* vk_sparse.c records its GEMV the same way */
        char scheme[32];
        sq_encoded e;
        sq_tview v;
        sq_vk_tensor *t = synthetic_aqlm(2, 8, 70000, 16, 0, scheme, &e, &v);
        check_tensor(scheme, t, &v, 0, 1);
        sq_encoded_free(&e);
        unsetenv("SQUISH_VULKAN_AQLM");
    }
    unsetenv("SQUISH_VULKAN_TPR");
    unsetenv("SQUISH_VULKAN_NR");
}
END_TEST

/* The GEMV's work split (rows per invocation, invocations per row) changes
 * the summation order only (NR 1 runs in large_grids, 4 by default). */
START_TEST(work_splits) {
    const char *nr[] = {"2", "8", "16"}, *tpr[] = {"16", "64"};
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 2; j++) {
            setenv("SQUISH_VULKAN_NR", nr[i], 1);
            setenv("SQUISH_VULKAN_TPR", tpr[j], 1);
            check_scheme("int4:g128:asym", 21, 1000, 0, 1);
            check_scheme("int8:pc:sym", 13, 300, 0, 1);
            check_scheme("nf4:dq:g128", 9, 520, 0, 1);
        }
    unsetenv("SQUISH_VULKAN_NR");
    unsetenv("SQUISH_VULKAN_TPR");
}
END_TEST

/* Results do not change from run to run (fixed summation order). */
START_TEST(reproducible) {
    uint64_t rows = 300, cols = 2048;
    float *w = random_matrix(rows * cols, 1), *x = random_matrix(4 * cols, 0);
    sq_encoded e;
    sq_tview v;
    sq_err err;
    sq_vk_tensor *t = encode_upload("int4:g128:asym", w, rows, cols, 0, &e, &v);
    float *a = malloc(4 * rows * 4), *b = malloc(4 * rows * 4);
    ck_assert_int_eq(sq_vk_matmul(vk, t, x, 4, a, &err), SQ_OK);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(sq_vk_matmul(vk, t, x, 4, b, &err), SQ_OK);
        ck_assert(!memcmp(a, b, 4 * rows * 4));
    }
    /* the GEMV, on the limb kernel where the device has integer dot products */
    setenv("SQUISH_VULKAN_LIMBS", "1", 1);
    ck_assert_int_eq(sq_vk_matmul(vk, t, x, 1, a, &err), SQ_OK);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(sq_vk_matmul(vk, t, x, 1, b, &err), SQ_OK);
        ck_assert(!memcmp(a, b, rows * 4));
    }
    unsetenv("SQUISH_VULKAN_LIMBS");
    sq_vk_tensor_free(vk, t);
    free(a); free(b); free(w); free(x);
    sq_encoded_free(&e);
}
END_TEST

/* Loading each chunk's words ahead (SQUISH_VULKAN_PREFETCH 1, on by default
 * for 4- and 2-bit codes) changes when the GEMVs read, not what they
 * compute: the float, q8 and limb GEMVs give the same bits either way, for
 * every decode path and for lanes with one, two or three chunks (TPR 16: 7,
 * 32 and 49 chunks per row). Loading the activations ahead too (2) is the
 * same chunk loop for every codec: checked on the 4-, 2- and 8-bit integer
 * codes and NF4 (float, q8 and limb kernels) at 2 chunks a lane, which keeps
 * the pipelines compiled for it (the test's cost on lavapipe) few. */
/* Padding the rows of codes on upload (SQUISH_VULKAN_ROWPAD) and spreading
 * consecutive workgroups over the matrix (SQUISH_VULKAN_SWIZZLE) change where
 * rows lie and which workgroup takes them, not what is computed: the float,
 * limb and q8 GEMVs, a matmul and the dequantization give the same bits, for
 * the codes family (integer, table-driven, MX codecs), and the padded
 * tensors take rows * 48 more bytes of device memory. */
START_TEST(placement_same_results) {
    const char *ps[] = {"int4:g128:sym", "int4:g32:asym", "int8:pc:sym", "int3", "int2", "nf4:g64", "fp4_e2m1:g32",
                        "mxfp4", "fp6_e3m2:g128", "fp8_e4m3"};
    const uint64_t rows = 301, cols = 1000, T = 3;
    float *w = random_matrix(rows * cols, 1), *x = random_matrix(T * cols, 0);
    for (size_t s = 0; s < sizeof ps / sizeof *ps; s++) {
        float *y[2][4], *dec[2];
        uint64_t bytes[2];
        sq_encoded e[2];
        sq_tview v;
        sq_err err;
        for (int knob = 0; knob < 2; knob++) {
            if (knob) {
                setenv("SQUISH_VULKAN_ROWPAD", "48", 1);
                setenv("SQUISH_VULKAN_SWIZZLE", "1", 1);
            }
            sq_vk_tensor *t = encode_upload(ps[s], w, rows, cols, 0, &e[knob], &v);
            bytes[knob] = sq_vk_tensor_device_bytes(t);
            for (int j = 0; j < 4; j++) y[knob][j] = calloc(T * rows, sizeof(float));
            dec[knob] = calloc(rows * cols, sizeof(float));
            setenv("SQUISH_VULKAN_LIMBS", "0", 1);
            ck_assert_int_eq(sq_vk_matmul(vk, t, x, 1, y[knob][0], &err), SQ_OK);
            ck_assert_int_eq(sq_vk_matmul(vk, t, x, (uint32_t)T, y[knob][1], &err), SQ_OK);
            if (sq_vk_q8_supported(vk, t)) {
                ck_assert_int_eq(sq_vk_gemv_q8(vk, t, x, y[knob][2], &err), SQ_OK);
                setenv("SQUISH_VULKAN_LIMBS", "1", 1);
                ck_assert_int_eq(sq_vk_matmul(vk, t, x, 1, y[knob][3], &err), SQ_OK);
            }
            ck_assert_int_eq(sq_vk_dequant(vk, t, 0, rows, dec[knob], &err), SQ_OK);
            sq_vk_tensor_free(vk, t);
            unsetenv("SQUISH_VULKAN_ROWPAD");
            unsetenv("SQUISH_VULKAN_SWIZZLE");
            unsetenv("SQUISH_VULKAN_LIMBS");
        }
        ck_assert_msg(bytes[1] >= bytes[0] + rows * 48, "%s: %llu bytes padded, %llu not", ps[s],
                      (unsigned long long)bytes[1], (unsigned long long)bytes[0]);
        for (int j = 0; j < 4; j++) {
            ck_assert_msg(!memcmp(y[0][j], y[1][j], T * rows * sizeof(float)), "%s: %s differs with padding and swizzle",
                          ps[s], j == 0 ? "GEMV" : j == 1 ? "matmul" : j == 2 ? "q8 GEMV" : "limb GEMV");
            free(y[0][j]);
            free(y[1][j]);
        }
        ck_assert_msg(!memcmp(dec[0], dec[1], rows * cols * sizeof(float)), "%s: dequant differs with padding", ps[s]);
        free(dec[0]);
        free(dec[1]);
        sq_encoded_free(&e[0]);
        sq_encoded_free(&e[1]);
    }
    free(w);
    free(x);
}
END_TEST

START_TEST(prefetch_same_results) {
    /* every codec's default and one more variant of each (its last: the other scale dtype, flag or grouping)
     * whose kernels have the prefetch (the codes and float families: not codebook or sparse + dense) */
    const uint64_t shapes[][2] = {{13, 200}, {21, 1000}, {6, 1568}};
    const char *ps[2 * 64];
    int idot = 0, want_idot = 0, nps = 0, nv = load_variants();
    for (int k = 0; k < nv; k++) {
        int last = k + 1 == nv || variants[k + 1].is_default;
        const sq_codec_family f = variants[k].codec->family;
        if (f == SQ_FAMILY_CODEBOOK || f == SQ_FAMILY_SPARSE_DENSE) continue;
        if (f == SQ_FAMILY_LATTICE) continue; /* lattice_matches_cpu: without the encoder's cost */
        if ((variants[k].is_default || (last && !variants[k].is_default)) && runs_here(&variants[k]) && nps < 2 * 64) {
            ps[nps++] = variants[k].scheme;
            want_idot += q8_expected(variants[k].codec) * 3;
        }
    }
    setenv("SQUISH_VULKAN_TPR", "16", 1);
    for (int s = 0; s < nps; s++)
        for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
            const uint64_t rows = shapes[k][0], cols = shapes[k][1];
            float *w = random_matrix(rows * cols, 1), *x = random_matrix(cols, 0), *y[3][3];
            sq_encoded e;
            sq_tview v;
            sq_err err;
            sq_vk_tensor *t = encode_upload(ps[s], w, rows, cols, 0, &e, &v);
            const int has_idot = sq_vk_q8_supported(vk, t);
            const int pf2 = k == 1 && (!strncmp(ps[s], "int4", 4) || !strncmp(ps[s], "int2", 4) ||
                                        !strncmp(ps[s], "int8", 4) || !strncmp(ps[s], "nf4", 3));
            for (int pf = 0; pf < 2 + pf2; pf++) {
                setenv("SQUISH_VULKAN_PREFETCH", pf == 2 ? "2" : pf ? "1" : "0", 1);
                for (int j = 0; j < 3; j++) y[pf][j] = calloc(rows, sizeof(float));
                setenv("SQUISH_VULKAN_LIMBS", "0", 1);
                ck_assert_int_eq(sq_vk_matmul(vk, t, x, 1, y[pf][0], &err), SQ_OK);
                if (has_idot) {
                    ck_assert_int_eq(sq_vk_gemv_q8(vk, t, x, y[pf][1], &err), SQ_OK);
                    setenv("SQUISH_VULKAN_LIMBS", "1", 1);
                    ck_assert_int_eq(sq_vk_matmul(vk, t, x, 1, y[pf][2], &err), SQ_OK);
                }
            }
            for (int j = 0; j < 3; j++) {
                for (int pf = 1; pf < 2 + pf2; pf++)
                    ck_assert_msg(!memcmp(y[0][j], y[pf][j], rows * sizeof(float)),
                                  "%s %llux%llu: %s GEMV differs with prefetch %d", ps[s], (unsigned long long)rows,
                                  (unsigned long long)cols, j == 0 ? "float" : j == 1 ? "q8" : "limb", pf);
                for (int pf = 0; pf < 2 + pf2; pf++) free(y[pf][j]);
            }
            idot += has_idot;
            sq_vk_tensor_free(vk, t);
            sq_encoded_free(&e);
            free(w);
            free(x);
        }
    if (sq_vk_has_integer_dot(vk)) ck_assert_int_eq(idot, want_idot);
    unsetenv("SQUISH_VULKAN_TPR");
    unsetenv("SQUISH_VULKAN_PREFETCH");
    unsetenv("SQUISH_VULKAN_LIMBS");
}
END_TEST

/* AQLM in every kind of MxB the format allows: byte and u16 codes (x8,
 * 1x16), codes across word boundaries (3x5, 2x12, 1x7), the largest table
 * (1x12: 4096 codewords), 8 codebooks; the lookup-table GEMV (one slab and
 * several: partial sums added by a second pass; codes read one by one and
 * 16 bytes at a time) and direct decoding,
 * ragged shapes, the matmul, perm/in_scale links. Bound: the float
 * kernels' 1e-5 sum|w x| per row against the CPU's GEMV; dequantization
 * bit for bit. */
START_TEST(codebook_kernels) {
    const uint32_t mb[][2] = {{2, 8}, {1, 16}, {3, 5}, {2, 12}, {1, 12}, {8, 2}, {4, 8}, {1, 7}};
    /* 130 x 512: x8 codes of each row and table block in one 16-byte load */
    const uint64_t shapes[][2] = {{37, 200}, {3, 33}, {1, 7}, {300, 1000}, {130, 512}};
    const char *kernel[] = {"lut", "direct"};
    for (size_t i = 0; i < sizeof mb / sizeof mb[0]; i++)
        for (int k = 0; k < 2; k++) {
            if (k == 0 && (mb[i][0] << mb[i][1]) > 4096) continue; /* no table: "lut" would run the direct kernel again */
            setenv("SQUISH_VULKAN_AQLM", kernel[k], 1);
            for (size_t j = 0; j < sizeof shapes / sizeof shapes[0]; j++) {
                /* 2x8, the default, in every shape; the others leave out 3 x 33, and 130 x 512 unless x8 */
                if ((mb[i][0] != 2 || mb[i][1] != 8) && (j == 1 || (j == 4 && mb[i][1] != 8))) continue;
                char scheme[32];
                sq_encoded e;
                sq_tview v;
                sq_vk_tensor *t = synthetic_aqlm(mb[i][0], mb[i][1], shapes[j][0], shapes[j][1], j == 0 ? XFORM : 0,
                                                 scheme, &e, &v);
                check_tensor(scheme, t, &v, 0, j == 0 ? 11 : 1);
                sq_encoded_free(&e);
            }
        }
    /* the split table GEMV gives the same bits every run */
    char scheme[32];
    sq_encoded e;
    sq_tview v;
    sq_err err;
    setenv("SQUISH_VULKAN_AQLM", "lut", 1);
    sq_vk_tensor *t = synthetic_aqlm(2, 8, 700, 2000, 0, scheme, &e, &v);
    float *x = random_matrix(2000, 0), a[700], b[700];
    ck_assert_int_eq(sq_vk_matmul(vk, t, x, 1, a, &err), SQ_OK);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(sq_vk_matmul(vk, t, x, 1, b, &err), SQ_OK);
        ck_assert(!memcmp(a, b, sizeof a));
    }
    unsetenv("SQUISH_VULKAN_AQLM");
    sq_vk_tensor_free(vk, t);
    sq_encoded_free(&e);
    free(x);
}
END_TEST

/* SpQR beyond the generated variants (which run spqr:w3): 2- and 4-bit
 * codes, 5..8-bit codes (two 4-code windows per 8 codes), groups that are not a multiple of 8 (the per-code path), row
 * blocks of 1, 3 and 4, statistic codes of 2, 6 and 8 bits, thresholds
 * that make many outliers (a fifth to a third of the weights) and none;
 * the perm link its encoder adds, or with :rht its rht_in link instead. Same bounds as every codec:
 * dequantization bit for bit (outliers replacing dense values), GEMV and
 * matmul within 1e-5 sum|w x| per row of the CPU's and of decode-then-dot. */
START_TEST(sparse_kernels) {
    const char *schemes[] = {"spqr:w2:b8:r4:sb2:t0.02", "spqr:w4:b5:r3:sb6:t0.05", "spqr:w3:b64:t0",
                             "spqr:w3:b12:r1:sb8:t0.01", "spqr:w5:b32:sb6:t0.05", "spqr:w6:sb8:t0",
                             "spqr:w7:b8:r2:t0.02", "spqr:w8:b12:sb6:t0.05", "spqr:w3:sb6:rht:t0.05"};
    const uint64_t shapes[][2] = {{37, 200}, {3, 33}, {64, 520}};
    const size_t nshapes = test_quick() ? 2 : 3; /* the sanitizer run leaves the widest to the release run */
    for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++)
        for (size_t j = 0; j < nshapes; j++)
            check_scheme(schemes[i], shapes[j][0], shapes[j][1], 0, j == 0 ? 11 : 1);
}
END_TEST

/* mix (spec/codecs.md §14) beyond its generated variants: other width sets
 * (1 and 8 bits, every block byte-aligned or not), blocks of 32 and 128,
 * without the perm link, on ragged shapes, and a row split over 128
 * invocations (many blocks per step); the same bounds as every codec. */
START_TEST(mix_kernels) {
    const char *schemes[] = {"mix:3.5:w1248", "mix:g32:5:w2468", "mix:g128:3:w1357:noao", "mix:8:w5678"};
    const uint64_t shapes[][2] = {{37, 200}, {3, 33}, {64, 520}};
    const size_t nshapes = test_quick() ? 2 : 3;
    for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++)
        for (size_t j = 0; j < nshapes; j++) check_scheme(schemes[i], shapes[j][0], shapes[j][1], 0, j == 0 ? 11 : 1);
    /* 128 invocations per row: blocks of 32 give 32 blocks per step, whose
     * offsets sum more than 16 width codes (two words of them) */
    setenv("SQUISH_VULKAN_TPR", "128", 1);
    check_scheme("mix:g32:5:w2468", 3, 600, 0, 1);
    unsetenv("SQUISH_VULKAN_TPR");
}
END_TEST

/* GEMVs of one vector batched in one submission (a decode step's q/k/v):
 * each result bit for bit as its own sq_vk_matmul, float and limb kernels
 * mixed, an input transform, and a non-finite input (limbs fall back). */
/* The randomized Hadamard transform on the device (vk_lattice.h's
 * sq_vk_rht, what the lattice GEMV runs on x and y) gives the CPU's bits,
 * forward and inverse, for every kind of length: powers of two in one tile
 * and beyond it (two levels), K·2^m with a Paley factor, the blocked
 * fallback, and blocks of 1 (odd n: signs alone). */
START_TEST(hadamard_matches_cpu) {
    const uint64_t ns[] = {1, 8, 19, 24, 200, 304, 520, 1536, 4096, 8192, 14336, 98304};
    sq_err err;
    for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) {
        const uint64_t n = ns[k];
        const uint32_t T = n > 10000 ? 2 : 3;
        uint8_t *s = calloc((n + 7) / 8, 1);
        for (uint64_t i = 0; i < n; i++) s[i / 8] |= (uint8_t)((urand() < 0.5) << (i % 8));
        float *x = random_matrix(T * n, 1), *g = malloc(T * n * sizeof(float)), *c = malloc(T * n * sizeof(float));
        for (int inv = 0; inv < 2; inv++) {
            memcpy(g, x, T * n * sizeof(float));
            memcpy(c, x, T * n * sizeof(float));
            ck_assert_msg(sq_vk_rht(vk, s, n, inv, g, T, &err) == SQ_OK, "n %llu: %s", (unsigned long long)n, err.msg);
            for (uint32_t t = 0; t < T; t++) (inv ? sq_rht_inverse : sq_rht_apply)(s, c + t * n, n);
            for (uint64_t i = 0; i < T * n; i++)
                ck_assert_msg(sq_f32_bits(g[i]) == sq_f32_bits(c[i]), "n %llu %s: value %llu: vulkan %a vs CPU %a",
                              (unsigned long long)n, inv ? "inverse" : "forward", (unsigned long long)i, g[i], c[i]);
        }
        free(s); free(x); free(g); free(c);
    }
}
END_TEST

/* A QuIP# tensor of scheme with random codes, f16 scales and both Hadamard
 * links (every code of every codebook is valid, so no encoder is needed for
 * shapes of any size). */
static void random_quip(const char *scheme, uint64_t rows, uint64_t cols, sq_encoded *e) {
    memset(e, 0, sizeof *e);
    ck_assert_int_eq(sq_scheme_parse(scheme, &e->codec, e->params, NULL), 0);
    e->rows = rows;
    e->cols = cols;
    e->nparts = e->codec->layout(e->codec, e->params, rows, cols, e->spec);
    for (int i = 0; i < e->nparts; i++) {
        e->bytes[i] = sq_part_spec_bytes(&e->spec[i]);
        e->data[i] = malloc(e->bytes[i]);
        uint8_t *b = e->data[i];
        if (!strcmp(e->spec[i].name, "scales"))
            for (uint64_t j = 0; j < e->bytes[i] / 2; j++) ((uint16_t *)b)[j] = sq_f32_to_f16((float)(0.01 + 0.1 * urand()));
        else
            for (uint64_t j = 0; j < e->bytes[i]; j++) b[j] = (uint8_t)(urand() * 256);
    }
    const sq_xform_kind ks[2] = {SQ_XFORM_RHT_IN, SQ_XFORM_RHT_OUT};
    for (int i = 0; i < 2; i++) {
        uint64_t n = i ? rows : cols;
        uint8_t *sg = calloc((n + 7) / 8, 1);
        for (uint64_t j = 0; j < n; j++) sg[j / 8] |= (uint8_t)((urand() < 0.5) << (j % 8));
        ck_assert_int_eq(sq_encoded_add_xform(e, ks[i], sg, NULL), 0);
        free(sg);
    }
}

/* Every quip scheme (2 bits; 3 and 4 bits nested, whose 4-bit form has a
 * third stage and part codes3; 3 and 4 bits residual) on shapes the encoder
 * would take long for: dequantize bit-exact,
 * GEMV (T = 1) and matmul (T = 5) within TOL * (sum|w x'| + the rows' root sum
 * of squares, as the output transform mixes rows), on both Hadamard sides'
 * kinds of length: 37 x 200 (H_200 on x, signs alone on y), 300 x 520 (blocks
 * of 104 and of 60), 64 x 1536 (H_12 (x) H_128), 8 x 8192 (two WHT levels),
 * 1536 x 24 (H_12 (x) H_128 on y, H_12 (x) H_2 on x); loading codes ahead
 * gives the same bits. */
START_TEST(lattice_matches_cpu) {
    const char *schemes[] = {"quip:2", "quip:3", "quip:4", "quip:3:rvq", "quip:4:rvq"};
    const int stages[] = {1, 2, 3, 2, 2};
    const uint64_t shapes[][2] = {{37, 200}, {300, 520}, {64, 1536}, {8, 8192}, {1536, 24}};
    const uint32_t T = 5;
    sq_err err;
    for (size_t si = 0; si < sizeof schemes / sizeof schemes[0]; si++)
        for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
            const char *scheme = schemes[si];
            const uint64_t rows = shapes[k][0], cols = shapes[k][1];
            sq_encoded e;
            random_quip(scheme, rows, cols, &e);
            ck_assert_int_eq(e.nparts, stages[si] + 3); /* codes (codes2, codes3), scales, rht_in, rht_out */
            ck_assert_uint_eq(e.params[SQ_QUIP_P_NESTED], strchr(scheme + 5, ':') == NULL && stages[si] > 1);
            sq_tview v;
            sq_tview_from_encoded(&e, &v);
            ck_assert_msg(sq_vk_supported(&v), "%s: no Vulkan kernel", scheme);
            sq_vk_tensor *t;
            ck_assert_msg(sq_vk_upload(vk, &v, &t, &err) == SQ_OK, "%s", err.msg);
            float *ref = malloc(rows * cols * sizeof(float)), *dec = malloc(rows * cols * sizeof(float));
            sq_decode_for(v.codec, SQ_ISA_PORTABLE)(&v, 0, rows, ref);
            ck_assert_int_eq(sq_vk_dequant(vk, t, 0, rows, dec, &err), SQ_OK);
            ck_assert_msg(!memcmp(dec, ref, rows * cols * sizeof(float)), "%s %llux%llu: dequant differs", scheme,
                          (unsigned long long)rows, (unsigned long long)cols);
            float *x = random_matrix(T * cols, 0), *y = malloc(T * rows * sizeof(float)), *y0 = malloc(rows * sizeof(float));
            float *y1 = malloc(rows * sizeof(float)), *xs = malloc(cols * sizeof(float));
            double *mag = malloc(rows * sizeof(double));
            for (uint32_t nt = 1; nt <= T; nt += T - 1) {
                ck_assert_int_eq(sq_vk_matmul(vk, t, x, nt, y, &err), SQ_OK);
                for (uint32_t tk = 0; tk < nt; tk++) {
                    sq_gemv(&v, x + tk * cols, y0, 0, rows);
                    sq_xform_input(&v, x + tk * cols, 1, xs);
                    double spread = 0;
                    for (uint64_t r = 0; r < rows; r++) {
                        mag[r] = row_mag(ref, xs, cols, r);
                        spread += mag[r] * mag[r];
                    }
                    spread = sqrt(spread);
                    for (uint64_t r = 0; r < rows; r++)
                        ck_assert_msg(fabs((double)y[tk * rows + r] - y0[r]) <= TOL * (mag[r] + spread),
                                      "%s %llux%llu T=%u token %u row %llu: vulkan %g vs CPU %g (|w.x| %g)", scheme,
                                      (unsigned long long)rows, (unsigned long long)cols, nt, tk, (unsigned long long)r,
                                      y[tk * rows + r], y0[r], mag[r] + spread);
                }
            }
            setenv("SQUISH_VULKAN_PREFETCH", "1", 1);
            ck_assert_int_eq(sq_vk_matmul(vk, t, x, 1, y1, &err), SQ_OK);
            unsetenv("SQUISH_VULKAN_PREFETCH");
            ck_assert_int_eq(sq_vk_matmul(vk, t, x, 1, y, &err), SQ_OK);
            ck_assert_msg(!memcmp(y, y1, rows * sizeof(float)), "%s %llux%llu: GEMV differs with prefetch", scheme,
                          (unsigned long long)rows, (unsigned long long)cols);
            sq_vk_tensor_free(vk, t);
            sq_encoded_free(&e);
            free(ref); free(dec); free(x); free(y); free(y0); free(y1); free(xs); free(mag);
        }
}
END_TEST

/* The worked examples of spec/codecs.md §11 (one row of 8, no links) on the
 * device: quip:3:rvq (E81B code 241 = 2e_0), quip:4 nested (E8R codes 120
 * and 255 in two stages with three scales) and quip:3 nested (E8R code 254 =
 * (3/4, 1/4 x 6, -1/4), the spec's test vector) dequantize to the values
 * worked out by hand, and the GEMV of x = (1..8) gives their dot product. */
START_TEST(lattice_worked_examples) {
    const struct {
        const char *scheme;
        uint16_t code;
        uint8_t code2, code3;
        float s[3];
        float want[8];
    } ex[] = {
        {"quip:3:rvq", 0x0180, 241, 0, {0.5f, 0.25f}, {0.125f, 0.125f, 0.125f, 0.125f, 0.125f, 0.125f, 0.125f, 0.625f}},
        {"quip:4", 0x0001, 120, 255, {0.5f, 0.5f, 0.25f}, {0.625f, 0.375f, 0.125f, 0.125f, 0.125f, 0.125f, 0.125f, 0.125f}},
        {"quip:3", 0x0001, 254, 0, {0.5f, 0.5f}, {0.5f, 0.25f, 0.25f, 0.25f, 0.25f, 0.25f, 0.25f, 0.0f}},
    };
    sq_err err;
    for (size_t k = 0; k < sizeof ex / sizeof ex[0]; k++) {
        sq_encoded e;
        memset(&e, 0, sizeof e);
        ck_assert_int_eq(sq_scheme_parse(ex[k].scheme, &e.codec, e.params, NULL), 0);
        e.rows = 1;
        e.cols = 8;
        e.nparts = e.codec->layout(e.codec, e.params, 1, 8, e.spec);
        int stages = 0;
        for (int i = 0; i < e.nparts; i++) {
            e.bytes[i] = sq_part_spec_bytes(&e.spec[i]);
            e.data[i] = calloc(1, e.bytes[i]);
            const char *nm = e.spec[i].name;
            if (!strcmp(nm, "codes")) *(uint16_t *)e.data[i] = ex[k].code;
            else if (!strcmp(nm, "codes2")) *(uint8_t *)e.data[i] = ex[k].code2;
            else if (!strcmp(nm, "codes3")) *(uint8_t *)e.data[i] = ex[k].code3;
            else if (!strcmp(nm, "scales"))
                for (stages = 0; stages < (int)(e.bytes[i] / 2); stages++)
                    ((uint16_t *)e.data[i])[stages] = sq_f32_to_f16(ex[k].s[stages]);
        }
        ck_assert_int_eq(stages, ex[k].s[2] != 0 ? 3 : 2);
        sq_tview v;
        sq_vk_tensor *t = upload_encoded(ex[k].scheme, &e, &v);
        float dec[8], x[8], y;
        double want_y = 0;
        ck_assert_int_eq(sq_vk_dequant(vk, t, 0, 1, dec, &err), SQ_OK);
        for (int i = 0; i < 8; i++) {
            ck_assert_msg(dec[i] == ex[k].want[i], "%s: value %d is %g, not %g", ex[k].scheme, i, dec[i], ex[k].want[i]);
            x[i] = (float)(i + 1);
            want_y += (double)ex[k].want[i] * x[i];
        }
        ck_assert_int_eq(sq_vk_matmul(vk, t, x, 1, &y, &err), SQ_OK);
        ck_assert_msg(fabs(y - want_y) <= TOL * want_y, "%s: GEMV %g, not %g", ex[k].scheme, y, want_y);
        sq_vk_tensor_free(vk, t);
        sq_encoded_free(&e);
    }
}
END_TEST

START_TEST(gemv_batch_same_bits) {
    const char *bs[] = {"int4:g32:asym", "nf4", "f16", "int8:pc:sym", "int4:g128:sym"};
    const uint64_t rows[] = {37, 64, 5, 19, 70}, cols = 300;
    enum { NB = 5 };
    sq_encoded e[NB];
    sq_tview v[NB];
    const sq_vk_tensor *t[NB];
    float *y[NB], *y1 = malloc(70 * sizeof(float)), *x = random_matrix(cols, 0);
    sq_err err;
    for (int i = 0; i < NB; i++) {
        float *w = random_matrix(rows[i] * cols, 1);
        t[i] = encode_upload(bs[i], w, rows[i], cols, i == NB - 1, &e[i], &v[i]); /* the last with an input transform */
        y[i] = malloc(rows[i] * sizeof(float));
        free(w);
    }
    int limb_runs = 0;
    for (int pass = 0; pass < 3; pass++) {
        setenv("SQUISH_VULKAN_LIMBS", pass == 0 ? "0" : "1", 1);
        if (pass == 2) x[123] = INFINITY;
        ck_assert_int_eq(sq_vk_gemv_many(vk, t, NB, x, y, &err), SQ_OK);
        for (int i = 0; i < NB; i++) {
            ck_assert_int_eq(sq_vk_matmul(vk, t[i], x, 1, y1, &err), SQ_OK);
            ck_assert_msg(!memcmp(y[i], y1, rows[i] * sizeof(float)), "pass %d, %s: batched GEMV differs", pass, bs[i]);
            limb_runs += pass == 1 && sq_vk_limbs_used(vk, t[i]);
        }
    }
    if (sq_vk_has_integer_dot(vk)) ck_assert_int_eq(limb_runs, 3);
    unsetenv("SQUISH_VULKAN_LIMBS");
    for (int i = 0; i < NB; i++) {
        sq_vk_tensor_free(vk, (sq_vk_tensor *)t[i]);
        sq_encoded_free(&e[i]);
        free(y[i]);
    }
    free(y1);
    free(x);
}
END_TEST

/* The sums' last levels in subgroup shuffles (shaders/reduce.glsl: on by
 * default where the device has shuffles in compute shaders, lavapipe among
 * them, so every comparison with the CPU above runs them there) add the same
 * values in the same order as the shared-memory tree alone
 * (SQUISH_VULKAN_SUBGROUP=0): the same bits from every GEMV program and its
 * matmul twin, the limb kernel, at invocations-per-row from 16 to the
 * workgroup (levels in shared memory, then shuffles, or shuffles alone). */
static sq_vk_tensor *upload_to(sq_vk *d, const char *scheme, const sq_tview *v) {
    sq_err err;
    sq_vk_tensor *t;
    ck_assert_msg(sq_vk_upload(d, v, &t, &err) == SQ_OK, "%s: %s", scheme, err.msg);
    return t;
}
START_TEST(subgroup_sums_same_bits) {
    if (strstr(sq_vk_describe(vk), "llvmpipe")) ck_assert_msg(sq_vk_subgroup(vk) > 0, "lavapipe ran without subgroup shuffles");
    if (!sq_vk_subgroup(vk)) return; /* nothing to compare on this device */
    fprintf(stderr, "vulkan: subgroup of %u\n", sq_vk_subgroup(vk));
    sq_err err;
    sq_vk *plain;
    setenv("SQUISH_VULKAN_SUBGROUP", "0", 1);
    ck_assert_int_eq(sq_vk_open(NULL, &plain, &err), SQ_OK);
    unsetenv("SQUISH_VULKAN_SUBGROUP");
    ck_assert_uint_eq(sq_vk_subgroup(plain), 0);
    const char *schemes[] = {"int4:g128:sym", "int4:g32:asym", "nf4:g64", "int3", "int8:pc:sym", "f16", "bf16", "mxfp4",
                             "spqr:w3", "mix:3.5:w1248", "aqlm", "quip:3"};
    const char *tpr[] = {NULL, "16", "128"}; /* lavapipe (8): one level in shared memory, four */
    const uint64_t rows = 70, cols = 1100;
    const uint32_t T = 5;
    float *x = random_matrix(T * 1536, 0), *a = malloc(T * rows * sizeof(float)), *b = malloc(T * rows * sizeof(float));
    setenv("SQUISH_VULKAN_AQLM", "direct", 1); /* the table kernel has no tree sum */
    for (size_t i = 0; i < sizeof schemes / sizeof *schemes; i++) {
        sq_encoded e;
        sq_tview v;
        char name[32];
        snprintf(name, sizeof name, "%s", schemes[i]);
        sq_vk_tensor *ts;
        if (!strcmp(schemes[i], "aqlm")) {
            ts = synthetic_aqlm(2, 8, rows, cols, 0, name, &e, &v);
        } else if (!strncmp(schemes[i], "quip", 4)) {
            random_quip(schemes[i], rows, 1536, &e); /* a length its Hadamard transform takes */
            sq_tview_from_encoded(&e, &v);
            ts = upload_to(vk, name, &v);
        } else {
            float *w = random_matrix(rows * cols, 1);
            ts = encode_upload(schemes[i], w, rows, cols, 0, &e, &v);
            free(w);
        }
        sq_vk_tensor *tp = upload_to(plain, name, &v);
        for (size_t j = 0; j < sizeof tpr / sizeof *tpr; j++)
            for (int limbs = 0; limbs < 1 + q8_expected(v.codec); limbs++) {
                if (tpr[j]) setenv("SQUISH_VULKAN_TPR", tpr[j], 1);
                setenv("SQUISH_VULKAN_LIMBS", limbs ? "1" : "0", 1);
                for (uint32_t nt = 1; nt <= T; nt += T - 1) {
                    ck_assert_int_eq(sq_vk_matmul(vk, ts, x, nt, a, &err), SQ_OK);
                    ck_assert_int_eq(sq_vk_matmul(plain, tp, x, nt, b, &err), SQ_OK);
                    ck_assert_msg(!memcmp(a, b, nt * rows * sizeof(float)), "%s TPR %s limbs %d T=%u: subgroup sums differ",
                                  name, tpr[j] ? tpr[j] : "default", limbs, nt);
                }
                unsetenv("SQUISH_VULKAN_TPR");
                unsetenv("SQUISH_VULKAN_LIMBS");
            }
        sq_vk_tensor_free(vk, ts);
        sq_vk_tensor_free(plain, tp);
        sq_encoded_free(&e);
    }
    unsetenv("SQUISH_VULKAN_AQLM");
    sq_vk_close(plain);
    free(x); free(a); free(b);
}
END_TEST

/* Device selection: by index, by name, and clear errors for bad choices. */
START_TEST(device_selection) {
    sq_err err;
    sq_vk *d;
    ck_assert_int_eq(sq_vk_open("0", &d, &err), SQ_OK);
    sq_vk_close(d);
    ck_assert_int_eq(sq_vk_open("99", &d, &err), SQ_EUSAGE);
    ck_assert_ptr_nonnull(strstr(err.msg, "device 99 does not exist"));
    ck_assert_int_eq(sq_vk_open("no-such-gpu-name", &d, &err), SQ_EUSAGE);
    ck_assert_ptr_nonnull(strstr(err.msg, "no-such-gpu-name"));
    ck_assert_ptr_null(d);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("vulkan");
    TCase *tc = tcase_create("kernels");
    tcase_set_timeout(tc, 600);
    tcase_add_checked_fixture(tc, open_device, close_device); /* per test: a device does not survive fork() */
    tcase_add_test(tc, every_codec_matches_cpu);
    tcase_add_test(tc, limb_gemv_matches_cpu);
    tcase_add_test(tc, input_transforms);
    tcase_add_test(tc, large_grids);
    tcase_add_test(tc, work_splits);
    tcase_add_test(tc, reproducible);
    tcase_add_test(tc, prefetch_same_results);
    tcase_add_test(tc, placement_same_results);
    tcase_add_test(tc, gemv_batch_same_bits);
    tcase_add_test(tc, hadamard_matches_cpu);
    tcase_add_test(tc, lattice_matches_cpu);
    tcase_add_test(tc, lattice_worked_examples);
    tcase_add_test(tc, device_selection);
    suite_add_tcase(s, tc);
    TCase *tg = tcase_create("subgroup"); /* reduce.glsl's two builds (CK_RUN_CASE=subgroup runs it alone) */
    tcase_set_timeout(tg, 600);
    tcase_add_checked_fixture(tg, open_device, close_device);
    tcase_add_test(tg, subgroup_sums_same_bits);
    suite_add_tcase(s, tg);
    TCase *tf = tcase_create("families"); /* codebook (AQLM) and sparse + dense (SpQR) in more variants */
    tcase_set_timeout(tf, 600);
    tcase_add_checked_fixture(tf, open_device, close_device);
    tcase_add_test(tf, codebook_kernels);
    tcase_add_test(tf, sparse_kernels);
    suite_add_tcase(s, tf);
    TCase *tm = tcase_create("mix");
    tcase_set_timeout(tm, 600);
    tcase_add_checked_fixture(tm, open_device, close_device);
    tcase_add_test(tm, mix_kernels);
    suite_add_tcase(s, tm);
    return s;
}

RUN_SUITE(suite())
