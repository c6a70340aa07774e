/* The spqr codec as the rest of squish sees it: its scheme grammar and
 * params checks, the encoder reached through the quantization library
 * (sq_quant_encode) with a synthetic XᵀX, the act-order permutation as the
 * chain's perm link, decode and GEMV through the generic entry points
 * against the algorithm's own result, and the check hook on damaged CSR
 * parts. The algorithm itself is tested in test_spqr.c. */
#include <math.h>
#include <stdlib.h>

#include "codecs/spqr/spqr_codec.h"
#include "codecs/spqr/spqr_params.h"
#include "encoders.h"
#include "spqr.h"
#include "squish/codec.h"
#include "testutil.h"
#include "xform/hadamard.h"

static const sq_codec *parse_ok(const char *s, uint32_t *p) {
    const sq_codec *c;
    sq_err err;
    ck_assert_msg(sq_scheme_parse(s, &c, p, &err) == SQ_OK, "%s: %s", s, err.msg);
    return c;
}

START_TEST(test_scheme_defaults_and_roundtrip) {
    uint32_t p[SQ_NPARAMS];
    const sq_codec *c = parse_ok("spqr", p);
    ck_assert_str_eq(c->name, "spqr");
    ck_assert_uint_eq(c->id, 112);
    ck_assert_int_eq(c->family, SQ_FAMILY_SPARSE_DENSE);
    ck_assert_uint_eq(p[0], 0);
    ck_assert_uint_eq(p[1], 0);
    ck_assert_uint_eq(p[2], 0);
    ck_assert_uint_eq(p[3], 0);
    ck_assert_uint_eq(sq_spqr_p_wbits(p), 3);
    ck_assert_uint_eq(sq_spqr_p_stat_bits(p), 3);
    ck_assert_uint_eq(sq_spqr_p_group(p), 16);
    ck_assert_uint_eq(sq_spqr_p_stat_group(p), 16);
    ck_assert(sq_spqr_p_tau(p) == 0.2f);
    ck_assert_uint_eq(p[SQ_SPQR_P_BUDGET], 0);
    char s[96];
    sq_scheme_format(c, p, s, sizeof s);
    ck_assert_str_eq(s, "spqr:w3");
    uint32_t q[SQ_NPARAMS];
    parse_ok("spqr:w3", q);
    ck_assert(!memcmp(p, q, sizeof p));
    /* each option lands in its field, and the canonical text reads back the same */
    struct { const char *in, *canon; uint32_t wb, sb, g, r; float tau, bud; } cases[] = {
        {"spqr:w4:b64:t0", "spqr:w4:b64:t0", 4, 3, 64, 16, 0, 0},
        {"spqr:w2", "spqr:w2", 2, 3, 16, 16, 0.2f, 0},
        {"spqr:w6:b16:sb8:t0", "spqr:w6:sb8:t0", 6, 8, 16, 16, 0, 0},
        {"spqr:w5:b32:sb6:t0", "spqr:w5:b32:sb6:t0", 5, 6, 32, 16, 0, 0},
        {"spqr:w8:r32", "spqr:w8:r32", 8, 3, 16, 32, 0.2f, 0},
        {"spqr:t0:mse:sb6:w4:b32", "spqr:w4:b32:sb6:t0", 4, 6, 32, 16, 0, 0},
        {"spqr:w4:minmax:b32", "spqr:w4:b32:minmax", 4, 3, 32, 16, 0.2f, 0},
        {"spqr:minmax:mse", "spqr:w3", 3, 3, 16, 16, 0.2f, 0}, /* the later one wins */
        {"spqr:o0.5", "spqr:w3:o0.5", 3, 3, 16, 16, 0.2f, 0.5f},
        {"spqr:t0.35:r8:sb4:b32:w3", "spqr:w3:b32:r8:sb4:t0.35", 3, 4, 32, 8, 0.35f, 0},
        {"spqr:w3:b16:r16:sb3:t0.2:o0", "spqr:w3", 3, 3, 16, 16, 0.2f, 0},
        {"spqr:t.125:o1.75", "spqr:w3:t0.125:o1.75", 3, 3, 16, 16, 0.125f, 1.75f},
        {"spqr:rht:t0:w3:mse:sb6", "spqr:w3:sb6:rht:t0", 3, 6, 16, 16, 0, 0},
        {"spqr:rht:minmax", "spqr:w3:minmax:rht", 3, 3, 16, 16, 0.2f, 0},
        {"spqr:cd0:w4", "spqr:w4:cd0", 4, 3, 16, 16, 0.2f, 0},
        {"spqr:t0:cd15:rht", "spqr:w3:rht:cd15:t0", 3, 3, 16, 16, 0, 0},
        {"spqr:cd4", "spqr:w3", 3, 3, 16, 16, 0.2f, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        c = parse_ok(cases[i].in, p);
        ck_assert_uint_eq(sq_spqr_p_search(p), strstr(cases[i].canon, "minmax") == NULL);
        ck_assert_uint_eq(sq_spqr_p_rht(p), strstr(cases[i].in, "rht") != NULL);
        const char *cd = strstr(cases[i].canon, ":cd");
        ck_assert_uint_eq(sq_spqr_p_refine(p), cd ? (uint32_t)atoi(cd + 3) : SQ_SPQR_DEFAULT_REFINE);
        ck_assert_uint_eq(sq_spqr_p_wbits(p), cases[i].wb);
        ck_assert_uint_eq(sq_spqr_p_stat_bits(p), cases[i].sb);
        ck_assert_uint_eq(sq_spqr_p_group(p), cases[i].g);
        ck_assert_uint_eq(sq_spqr_p_stat_group(p), cases[i].r);
        ck_assert_msg(cases[i].tau ? sq_spqr_p_tau(p) == cases[i].tau : p[SQ_SPQR_P_TAU] == 0, "%s: tau", cases[i].in);
        ck_assert_msg(cases[i].bud ? sq_spqr_p_budget(p) == cases[i].bud : p[SQ_SPQR_P_BUDGET] == 0, "%s", cases[i].in);
        char why[160] = "";
        ck_assert_msg(c->check_params(c, p, why, sizeof why) == 0, "%s: %s", cases[i].in, why);
        sq_scheme_format(c, p, s, sizeof s);
        ck_assert_str_eq(s, cases[i].canon);
        parse_ok(s, q);
        ck_assert_msg(!memcmp(p, q, sizeof p), "%s does not read back", s);
    }
}
END_TEST

START_TEST(test_scheme_refusals) {
    const char *bad[] = {"spqr:w1", "spqr:w9", "spqr:w16", "spqr:w0", "spqr:w3x", "spqr:b0", "spqr:b2000", "spqr:r0", "spqr:sb0", "spqr:sb9",
                         "spqr:t-1", "spqr:tx", "spqr:t1e3", "spqr:t0.1.2", "spqr:o100", "spqr:o-1", "spqr:g128",
                         "spqr:pc", "spqr:asym", "spqr:dq", "spqr:s16", "spqr:sbf16", "spqr:q3", "spqr:ms", "spqr:msex",
                         "spqr:mse1", "spqr:rh", "spqr:rht1", "spqr:minma", "spqr:minmax1", "spqr:cd16", "spqr:cd", "spqr:cdx",
                         "spqr:cd-1", NULL};
    for (int i = 0; bad[i]; i++) {
        const sq_codec *c;
        uint32_t p[SQ_NPARAMS];
        sq_err err;
        ck_assert_msg(sq_scheme_parse(bad[i], &c, p, &err) == SQ_EUSAGE, "'%s' was accepted", bad[i]);
    }
}
END_TEST

/* Files are untrusted: params the codec does not define are refused by its check_params. */
START_TEST(test_check_params) {
    uint32_t p[SQ_NPARAMS];
    const sq_codec *c = parse_ok("spqr", p);
    char why[160];
    ck_assert_int_eq(c->check_params(c, p, why, sizeof why), 0);
    struct { int i; uint32_t v; const char *word; } bad[] = {
        {0, 16, "params[0]"},
        {SQ_SPQR_P_BITS, 9 | 3 << 8, "weight bits"},
        {SQ_SPQR_P_BITS, 1 | 3 << 8, "weight bits"},
        {SQ_SPQR_P_BITS, 3 | 0 << 8, "statistic bits"},
        {SQ_SPQR_P_BITS, 3 | 3 << 8 | 1u << 22, "params[4]"},
        {SQ_SPQR_P_GROUPS, 0 | 16 << 16, "group"},
        {SQ_SPQR_P_GROUPS, 16 | 2000u << 16, "group"},
        {SQ_SPQR_P_TAU, 0x7fc00000u, "tau"},  /* NaN */
        {SQ_SPQR_P_TAU, 0xbe4ccccdu, "tau"},  /* -0.2 */
        {SQ_SPQR_P_TAU, 0x7f800000u, "tau"},  /* inf */
        {SQ_SPQR_P_BUDGET, 0x42c80000u, "budget"}, /* 100 */
        {SQ_SPQR_P_BUDGET, 0xbf000000u, "budget"}, /* -0.5 */
        {SQ_P_XFORM, SQ_XF_PERM | SQ_XF_IN_SCALE, "one link"}, /* 9 parts: more than a tensor can have */
        {SQ_P_XFORM, SQ_XF_PERM | SQ_XF_RHT_IN, "one link"},
        {SQ_P_XFORM, SQ_XF_RHT_OUT, "one link"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        uint32_t q[SQ_NPARAMS];
        memcpy(q, p, sizeof q);
        q[bad[k].i] = bad[k].v;
        why[0] = 0;
        ck_assert_msg(c->check_params(c, q, why, sizeof why) != 0, "params[%d] = 0x%x accepted", bad[k].i, bad[k].v);
        ck_assert_msg(strstr(why, bad[k].word), "params[%d] = 0x%x: message '%s' lacks '%s'", bad[k].i, bad[k].v, why,
                      bad[k].word);
    }
    uint32_t q[SQ_NPARAMS];
    for (uint32_t xf = 0; xf <= SQ_XF_RHT_IN; xf += SQ_XF_RHT_IN) { /* rht_in alone: the 8th part instead of perm */
        memcpy(q, p, sizeof q);
        q[SQ_P_XFORM] = xf ? xf : SQ_XF_PERM;
        ck_assert_int_eq(c->check_params(c, q, why, sizeof why), 0);
    }
    parse_ok("spqr:t0", q);
    q[SQ_SPQR_P_BUDGET] = 0x3f000000u; /* 0.5 % with no outliers allowed */
    ck_assert_int_ne(c->check_params(c, q, why, sizeof why), 0);
}
END_TEST

/* XᵀX of T tokens with correlated channels and a few loud ones. */
static double *make_xtx(uint64_t n, uint64_t T) {
    float *x = malloc(T * n * sizeof(float));
    for (uint64_t t = 0; t < T; t++) {
        double common = urand() - 0.5;
        for (uint64_t j = 0; j < n; j++)
            x[t * n + j] = (float)((urand() - 0.5 + 0.5 * common) * (j % 13 == 0 ? 6 : 1));
    }
    double *H = calloc(n * n, sizeof(double));
    for (uint64_t t = 0; t < T; t++)
        for (uint64_t i = 0; i < n; i++)
            for (uint64_t j = 0; j < n; j++) H[i * n + j] += (double)x[t * n + i] * x[t * n + j];
    free(x);
    return H;
}

static sq_status encode(const char *scheme, const float *w, uint64_t rows, uint64_t cols, const double *H, int threads,
                        sq_encoded *e, sq_err *err) {
    uint32_t p[SQ_NPARAMS];
    const sq_codec *c = parse_ok(scheme, p);
    sq_encode_ctx x = {.codec = c, .params = p, .w = w, .rows = rows, .cols = cols, .xtx = H, .n_threads = threads};
    return sq_quant_encode(&x, e, err);
}

/* Through sq_quant_encode: the layout's parts (data-sized nnz), then the
 * perm link; decode in the original order is exactly what the SpQR sweep
 * committed to; GEMV agrees with decode-then-dot; 1 and 3 threads give
 * the same bytes; bpw counts every part. */
START_TEST(test_encode_through_registry) {
    const uint64_t rows = 40, cols = 72; /* partial groups (72 = 4.5 x 16) and row blocks (40 = 2.5 x 16) */
    float *w = random_matrix(rows * cols, 1);
    double *H = make_xtx(cols, 300);
    const char *schemes[] = {"spqr",           "spqr:w2",          "spqr:w4:b64:t0",    "spqr:w3:o1",
                             "spqr:w3:b8:r4:sb4:t0.1", "spqr:w5:b32:sb6:t0", "spqr:w6:sb8:t0", "spqr:w8:b8:r4:t0.1",
                             "spqr:w4:b8:sb6:mse:t0", "spqr:w3:mse"};
    for (size_t s = 0; s < sizeof schemes / sizeof schemes[0]; s++) {
        sq_encoded e, e3;
        sq_err err;
        ck_assert_msg(encode(schemes[s], w, rows, cols, H, 1, &e, &err) == SQ_OK, "%s: %s", schemes[s], err.msg);
        ck_assert_msg(encode(schemes[s], w, rows, cols, H, 3, &e3, &err) == SQ_OK, "%s: %s", schemes[s], err.msg);
        ck_assert_int_eq(e.nparts, 8);
        const char *names[] = {"codes", "scale_codes", "zero_codes", "stats2", "row_ptr", "outlier_cols", "outlier_vals", "perm"};
        for (int i = 0; i < 8; i++) {
            ck_assert_str_eq(e.spec[i].name, names[i]);
            ck_assert_uint_eq(e.bytes[i], e3.bytes[i]);
            ck_assert_msg(!memcmp(e.data[i], e3.data[i], e.bytes[i]), "%s: part %s differs for 3 threads", schemes[s], names[i]);
        }
        ck_assert_uint_eq(e.params[SQ_P_XFORM], SQ_XF_PERM);
        ck_assert_uint_eq(e.spec[7].dtype, SQ_DT_U32);
        /* the same sweep run directly, with the options the params stand for */
        sq_spqr_opts o;
        sq_spqr_opts_from_params(e.params, &o);
        sq_spqr_result r;
        ck_assert_int_eq(sq_spqr_quantize(w, rows, cols, H, &o, &r, &err), SQ_OK);
        const uint64_t nnz = r.shape.nnz;
        ck_assert_uint_eq(e.spec[5].dims[0], nnz);
        ck_assert_uint_eq(e.spec[6].dims[0], nnz);
        if (strstr(schemes[s], "t0") && !strstr(schemes[s], "t0.")) ck_assert_uint_eq(nnz, 0);
        else ck_assert_uint_gt(nnz, 0);
        if (strstr(schemes[s], ":o1")) ck_assert_uint_le(nnz, rows * cols / 100);
        const uint32_t *perm = e.data[7];
        for (uint64_t j = 0; j < cols; j++) ck_assert_uint_eq(perm[j], r.perm[j]);
        /* bpw: the algorithm's own count with the u16 perm replaced by the u32 link */
        double want = sq_spqr_result_bpw(&r) + 16.0 * (double)cols / (double)(rows * cols);
        ck_assert_msg(fabs(sq_encoded_bpw(&e) - want) < 1e-9, "%s: bpw %g, want %g", schemes[s], sq_encoded_bpw(&e), want);
        sq_tview v;
        sq_tview_from_encoded(&e, &v);
        char why[256] = "";
        ck_assert_msg(v.codec->check(&v, why, sizeof why) == 0, "%s: %s", schemes[s], why);
        float *d = malloc(rows * cols * sizeof(float)), *x = random_matrix(cols, 0), y[40];
        ck_assert_int_eq(sq_decode_rows(&v, 0, rows, d), SQ_OK);
        for (uint64_t i = 0; i < rows * cols; i++)
            ck_assert_msg(sq_f32_bits(d[i]) == sq_f32_bits(r.deq[i]), "%s: value %llu decodes to %a, the sweep committed to %a",
                          schemes[s], (unsigned long long)i, d[i], r.deq[i]);
        ck_assert_int_eq(sq_gemv(&v, x, y, 0, rows), SQ_OK);
        for (uint64_t i = 0; i < rows; i++) {
            double dot = 0, mag = 0;
            for (uint64_t j = 0; j < cols; j++) {
                dot += (double)d[i * cols + j] * x[j];
                mag += fabs((double)d[i * cols + j] * x[j]);
            }
            ck_assert_msg(fabs(y[i] - dot) <= 1e-5 * mag + 1e-30, "%s row %llu: %g vs %g", schemes[s], (unsigned long long)i,
                          y[i], dot);
        }
        free(d);
        free(x);
        sq_spqr_result_free(&r);
        sq_encoded_free(&e);
        sq_encoded_free(&e3);
    }
    free(w);
    free(H);
}
END_TEST

/* Relative output error tr(ΔW H ΔWᵀ) / tr(W H Wᵀ) in float64. */
static double rel_loss(const float *w, const float *d, uint64_t rows, uint64_t cols, const double *H) {
    double num = 0, den = 0;
    double *e = malloc(cols * sizeof(double)), *f = malloc(cols * sizeof(double));
    for (uint64_t r = 0; r < rows; r++) {
        for (uint64_t j = 0; j < cols; j++) {
            e[j] = (double)d[r * cols + j] - w[r * cols + j];
            f[j] = w[r * cols + j];
        }
        for (uint64_t i = 0; i < cols; i++)
            for (uint64_t j = 0; j < cols; j++) {
                num += e[i] * H[i * cols + j] * e[j];
                den += f[i] * H[i * cols + j] * f[j];
            }
    }
    free(e);
    free(f);
    return num / den;
}

/* :rht (incoherence processing): the sweep runs on W·diag(s)·Ĥᵀ and the
 * chain's rht_in link replaces perm. Asserted: the 8 parts end with rht_in
 * (ceil(cols/8) bytes, the signs sq_rht_signs draws from the seed), counted
 * in bpw; the same bytes at 1 and 3 threads and a seed decides the signs;
 * decode through the chain is the stored-order decode mapped back by
 * diag(s)·Ĥᵀ (an independent inverse here, float tolerance); GEMV agrees
 * with decode-then-dot; and on a matrix with spiky weights (what the
 * rotation is for) the output error is below the act-order sweep's at
 * equal settings. */
START_TEST(test_encode_rht) {
    const uint64_t rows = 48, cols = 96; /* 96 = 3·32: a Paley-12 factor, not a power of two */
    float *w = random_matrix(rows * cols, 1);
    for (uint64_t i = 0; i < rows * cols; i += 97) w[i] *= 25; /* spikes */
    double *H = make_xtx(cols, 400);
    const char *schemes[] = {"spqr:w3:mse:rht:t0", "spqr:w3:rht", "spqr:w4:b32:sb6:rht:t0"};
    for (size_t s = 0; s < sizeof schemes / sizeof schemes[0]; s++) {
        uint32_t p[SQ_NPARAMS];
        const sq_codec *c = parse_ok(schemes[s], p);
        sq_encoded e, e3, e7;
        sq_err err;
        sq_encode_ctx x = {.codec = c, .params = p, .w = w, .rows = rows, .cols = cols, .xtx = H, .seed = 5, .n_threads = 1};
        ck_assert_msg(sq_quant_encode(&x, &e, &err) == SQ_OK, "%s: %s", schemes[s], err.msg);
        x.n_threads = 3;
        ck_assert_msg(sq_quant_encode(&x, &e3, &err) == SQ_OK, "%s: %s", schemes[s], err.msg);
        x.seed = 7;
        ck_assert_msg(sq_quant_encode(&x, &e7, &err) == SQ_OK, "%s: %s", schemes[s], err.msg);
        ck_assert_int_eq(e.nparts, 8);
        ck_assert_str_eq(e.spec[7].name, "rht_in");
        ck_assert_uint_eq(e.params[SQ_P_XFORM], SQ_XF_RHT_IN);
        ck_assert_uint_eq(e.bytes[7], (cols + 7) / 8);
        for (int i = 0; i < 8; i++)
            ck_assert_msg(e.bytes[i] == e3.bytes[i] && !memcmp(e.data[i], e3.data[i], e.bytes[i]),
                          "%s: part %s differs for 3 threads", schemes[s], e.spec[i].name);
        ck_assert_msg(memcmp(e.data[7], e7.data[7], e.bytes[7]), "%s: the seed does not change the signs", schemes[s]);
        double bytes = 0;
        for (int i = 0; i < 8; i++) bytes += (double)e.bytes[i];
        ck_assert(fabs(sq_encoded_bpw(&e) - 8 * bytes / (double)(rows * cols)) < 1e-12);
        sq_tview v;
        sq_tview_from_encoded(&e, &v);
        char why[256] = "";
        ck_assert_msg(v.codec->check(&v, why, sizeof why) == 0, "%s: %s", schemes[s], why);
        float *d = malloc(rows * cols * sizeof(float)), *ds = malloc(rows * cols * sizeof(float));
        float *xv = random_matrix(cols, 0), y[48];
        ck_assert_int_eq(sq_decode_rows(&v, 0, rows, d), SQ_OK);
        /* stored order: the codec's own decode, no chain */
        sq_decode_for(c, SQ_ISA_PORTABLE)(&v, 0, rows, ds);
        const uint8_t *sg = e.data[7];
        for (uint64_t r = 0; r < rows; r++) {
            /* W's row = diag(s)·Ĥᵀ·D's row, summed column by column of that inverse (each
             * one the library's inverse of a unit vector) in float64 */
            double *acc = calloc(cols, sizeof(double));
            float *unit = malloc(cols * sizeof(float));
            for (uint64_t j = 0; j < cols; j++) {
                memset(unit, 0, cols * sizeof(float));
                unit[j] = 1;
                sq_rht_inverse(sg, unit, cols); /* diag(s)·Ĥᵀ·e_j: column j of the inverse */
                for (uint64_t i = 0; i < cols; i++) acc[i] += (double)unit[i] * ds[r * cols + j];
            }
            double big = 0; /* cancellation: the bound is relative to the row's largest stored value */
            for (uint64_t j = 0; j < cols; j++) big = fabs(ds[r * cols + j]) > big ? fabs(ds[r * cols + j]) : big;
            for (uint64_t i = 0; i < cols; i++)
                ck_assert_msg(fabs(acc[i] - d[r * cols + i]) <= 1e-5 * big, "%s (%llu, %llu): %g vs %g",
                              schemes[s], (unsigned long long)r, (unsigned long long)i, acc[i], d[r * cols + i]);
            free(acc);
            free(unit);
        }
        ck_assert_int_eq(sq_gemv(&v, xv, y, 0, rows), SQ_OK);
        for (uint64_t i = 0; i < rows; i++) {
            double dot = 0, mag = 0;
            for (uint64_t j = 0; j < cols; j++) {
                dot += (double)d[i * cols + j] * xv[j];
                mag += fabs((double)d[i * cols + j] * xv[j]);
            }
            ck_assert_msg(fabs(y[i] - dot) <= 1e-5 * mag, "%s row %llu: %g vs %g", schemes[s], (unsigned long long)i, y[i], dot);
        }
        if (strstr(schemes[s], "t0")) { /* without outliers, the rotation must beat act-order on the spikes */
            char plain[64];
            snprintf(plain, sizeof plain, "%.*s%s", (int)(strstr(schemes[s], ":rht") - schemes[s]), schemes[s], ":t0");
            sq_encoded ep;
            ck_assert_msg(encode(plain, w, rows, cols, H, 1, &ep, &err) == SQ_OK, "%s: %s", plain, err.msg);
            sq_tview vp;
            sq_tview_from_encoded(&ep, &vp);
            ck_assert_int_eq(sq_decode_rows(&vp, 0, rows, ds), SQ_OK);
            const double lr = rel_loss(w, d, rows, cols, H), lp = rel_loss(w, ds, rows, cols, H);
            ck_assert_msg(lr < lp, "%s: output error %g, %s %g", schemes[s], lr, plain, lp);
            sq_encoded_free(&ep);
        }
        free(d);
        free(ds);
        free(xv);
        sq_encoded_free(&e);
        sq_encoded_free(&e3);
        sq_encoded_free(&e7);
    }
    free(w);
    free(H);
}
END_TEST

/* Without XᵀX the encoder refuses; the decode library alone refuses the codec. */
START_TEST(test_encode_needs_xtx) {
    float *w = random_matrix(16 * 32, 0);
    sq_encoded e;
    sq_err err;
    ck_assert(sq_quant_needs_xtx(sq_codec_by_name("spqr")));
    ck_assert_int_eq(encode("spqr", w, 16, 32, NULL, 1, &e, &err), SQ_EUSAGE);
    ck_assert_msg(strstr(err.msg, "calibration"), "%s", err.msg);
    uint32_t p[SQ_NPARAMS];
    const sq_codec *c = parse_ok("spqr", p);
    ck_assert_int_eq(sq_encode(c, p, w, 16, 32, 1, &e, &err), SQ_EUNSUPPORTED);
    /* params that check_params refuses never reach the sweep */
    double *H = make_xtx(32, 64);
    p[SQ_SPQR_P_BITS] = 9 | 3 << 8;
    sq_encode_ctx x = {.codec = c, .params = p, .w = w, .rows = 16, .cols = 32, .xtx = H, .n_threads = 1};
    ck_assert_int_eq(sq_quant_encode(&x, &e, &err), SQ_EUSAGE);
    ck_assert_msg(strstr(err.msg, "weight bits"), "%s", err.msg);
    free(H);
    free(w);
}
END_TEST

/* The check hook on damaged CSR parts: each refusal names the part. */
START_TEST(test_check_hook_refuses_damage) {
    const uint64_t rows = 24, cols = 48;
    float *w = random_matrix(rows * cols, 1);
    double *H = make_xtx(cols, 200);
    sq_encoded e;
    sq_err err;
    ck_assert_msg(encode("spqr:w3:t0.05", w, rows, cols, H, 1, &e, &err) == SQ_OK, "%s", err.msg);
    sq_tview v;
    sq_tview_from_encoded(&e, &v);
    const uint64_t nnz = v.dim0[5];
    ck_assert_uint_ge(nnz, 4);
    uint32_t *row_ptr = e.data[4];
    uint16_t *oc = e.data[5], *ov = e.data[6];
    char why[256];
    ck_assert_int_eq(v.codec->check(&v, why, sizeof why), 0);
    uint64_t r = 0; /* a row with two outliers or more */
    while (r < rows && row_ptr[r + 1] - row_ptr[r] < 2) r++;
    ck_assert_uint_lt(r, rows);
    const uint32_t k = row_ptr[r];
    struct { const char *part; } cases[] = {{"outlier_cols"}, {"outlier_cols"}, {"outlier_vals"}, {"row_ptr"}, {"row_ptr"},
                                            {"outlier_vals"}};
    for (int c = 0; c < 6; c++) {
        uint16_t c0 = oc[k], c1 = oc[k + 1], v0 = ov[k];
        uint32_t p1 = row_ptr[1], pe = row_ptr[rows];
        switch (c) {
        case 0: oc[k] = c1, oc[k + 1] = c0; break;            /* unsorted within the row */
        case 1: oc[k] = (uint16_t)cols; break;                /* out of range */
        case 2: ov[k] = 0x7e00; break;                        /* NaN */
        case 3: row_ptr[1] = row_ptr[rows] + 1; break;        /* past nnz */
        case 4: row_ptr[rows] = (uint32_t)nnz - 1; break;     /* does not add up to nnz */
        case 5: v.dim0[6] = nnz - 1; break;                   /* the two arrays disagree */
        }
        why[0] = 0;
        ck_assert_msg(v.codec->check(&v, why, sizeof why) != 0, "damage %d accepted", c);
        ck_assert_msg(strstr(why, cases[c].part), "damage %d: '%s' does not name %s", c, why, cases[c].part);
        oc[k] = c0, oc[k + 1] = c1, ov[k] = v0, row_ptr[1] = p1, row_ptr[rows] = pe, v.dim0[6] = nnz;
        ck_assert_int_eq(v.codec->check(&v, why, sizeof why), 0);
    }
    sq_encoded_free(&e);
    free(w);
    free(H);
}
END_TEST

/* spec/codecs.md §13.7, byte for byte: the parts decode (through the perm
 * link) to the W the spec computes by hand, the GEMV agrees, and the
 * check hook accepts them. */
START_TEST(test_spec_worked_example) {
    static const uint8_t codes[] = {0x18, 0x0f, 0x51, 0x0d}, sc[] = {2, 4}, zc[] = {7, 6};
    static const uint16_t stats2[] = {0x3400, 0x0000, 0x3800, 0x0000}, ocols[] = {2}, ovals[] = {0x4900};
    static const uint32_t row_ptr[] = {0, 0, 1}, perm[] = {2, 0, 3, 1};
    static const float want[8] = {-0.25f, 1.75f, -1.75f, 0.25f, -1, 3, -2, 10};
    uint32_t p[SQ_NPARAMS];
    const sq_codec *c = parse_ok("spqr:w3:b4:r2", p);
    ck_assert_uint_eq(p[4], 0x110303); /* bit 16: :mse, bits 18..21: cd4, the defaults; decode ignores them */
    ck_assert_uint_eq(p[5], 0x20004);
    ck_assert_uint_eq(p[6], 0x3e4ccccd);
    p[SQ_P_XFORM] = SQ_XF_PERM;
    sq_tview v = {.codec = c, .rows = 2, .cols = 4, .nparts = 7};
    memcpy(v.params, p, sizeof p);
    const void *parts[7] = {codes, sc, zc, stats2, row_ptr, ocols, ovals};
    const uint64_t dim0[7] = {2, 2, 2, 1, 3, 1, 1};
    sq_part_spec sp[SQ_CODEC_MAX_PARTS];
    ck_assert_int_eq(sq_layout(c, p, 2, 4, sp), 8);
    const uint64_t bytes[8] = {sizeof codes, sizeof sc, sizeof zc, sizeof stats2, sizeof row_ptr, 0, 0, sizeof perm};
    for (int i = 0; i < 7; i++) {
        v.part[i] = parts[i];
        v.dim0[i] = dim0[i];
        if (!(sp[i].flags & SQ_PART_DATA_DIM0)) ck_assert_uint_eq(sq_part_spec_bytes(&sp[i]), bytes[i]);
    }
    ck_assert_uint_eq(sq_part_spec_bytes(&sp[7]), bytes[7]);
    v.xf[SQ_XFORM_PERM] = perm;
    char why[256] = "";
    ck_assert_msg(c->check(&v, why, sizeof why) == 0, "%s", why);
    float d[8], x[4] = {1, -2, 0.5f, 4}, y[2];
    ck_assert_int_eq(sq_decode_rows(&v, 0, 2, d), SQ_OK);
    for (int i = 0; i < 8; i++) ck_assert_msg(d[i] == want[i], "W[%d] = %g, the spec says %g", i, d[i], want[i]);
    ck_assert_int_eq(sq_gemv(&v, x, y, 0, 2), SQ_OK);
    ck_assert_float_eq_tol(y[0], -0.25f - 3.5f - 0.875f + 1.0f, 1e-6f);
    ck_assert_float_eq_tol(y[1], -1 - 6 - 1 + 40, 1e-5f);
}
END_TEST

/* spec/codecs.md §13.7's second example (6-bit codes, 8-bit statistic
 * codes, no outliers): the bytes decode to the spec's W through the perm
 * link, and the GEMV (the AVX2 kernel's two-window read where the machine
 * has it: a group of 8 codes is the whole 6-byte part) gives W·x. */
START_TEST(test_spec_worked_example_w6) {
    static const uint8_t codes[] = {0xc0, 0x1f, 0xf8, 0xe0, 0x57, 0xa0}, sc[] = {2}, zc[] = {0x40};
    static const uint16_t stats2[] = {0x3400, 0x0000, 0x3800, 0x0000};
    static const uint32_t row_ptr[] = {0, 0}, perm[] = {7, 6, 5, 4, 3, 2, 1, 0};
    static const float want[8] = {4, -13.5f, -0.5f, 0, 15, -15.5f, 15.5f, -16};
    uint32_t p[SQ_NPARAMS];
    const sq_codec *c = parse_ok("spqr:w6:b8:r1:sb8:t0", p);
    ck_assert_uint_eq(p[4], 0x110806);
    ck_assert_uint_eq(p[5], 0x10008);
    ck_assert_uint_eq(p[6], 0);
    p[SQ_P_XFORM] = SQ_XF_PERM;
    sq_tview v = {.codec = c, .rows = 1, .cols = 8, .nparts = 7};
    memcpy(v.params, p, sizeof p);
    const void *parts[7] = {codes, sc, zc, stats2, row_ptr, NULL, NULL};
    const uint64_t dim0[7] = {1, 1, 1, 1, 2, 0, 0};
    sq_part_spec sp[SQ_CODEC_MAX_PARTS];
    ck_assert_int_eq(sq_layout(c, p, 1, 8, sp), 8);
    const uint64_t bytes[5] = {sizeof codes, sizeof sc, sizeof zc, sizeof stats2, sizeof row_ptr};
    for (int i = 0; i < 7; i++) {
        v.part[i] = parts[i];
        v.dim0[i] = dim0[i];
        if (i < 5) ck_assert_uint_eq(sq_part_spec_bytes(&sp[i]), bytes[i]);
    }
    v.xf[SQ_XFORM_PERM] = perm;
    char why[256] = "";
    ck_assert_msg(c->check(&v, why, sizeof why) == 0, "%s", why);
    float d[8], x[8] = {1, -2, 0.5f, 4, -1, 0.25f, 3, -0.5f}, y[1];
    ck_assert_int_eq(sq_decode_rows(&v, 0, 1, d), SQ_OK);
    for (int i = 0; i < 8; i++) ck_assert_msg(d[i] == want[i], "W[%d] = %g, the spec says %g", i, d[i], want[i]);
    ck_assert_int_eq(sq_gemv(&v, x, y, 0, 1), SQ_OK);
    ck_assert_float_eq_tol(y[0], 66.375f, 1e-5f);
}
END_TEST

/* spec/codecs.md §13.7's third example: spqr:w3:b4:r1:rht:t0 with the rht_in
 * link instead of perm; the decode through the chain is the spec's
 * D·Ĥ·diag(s), computed there by hand with the 4 x 4 Sylvester matrix. */
START_TEST(test_spec_worked_example_rht) {
    static const uint8_t codes[] = {0x18, 0x0f}, sc[] = {2}, zc[] = {7}, signs[] = {0x05};
    static const uint16_t stats2[] = {0x3400, 0x0000, 0x3800, 0x0000};
    static const uint32_t row_ptr[] = {0, 0};
    static const float want[4] = {0, -1.5f, 2, 0};
    uint32_t p[SQ_NPARAMS];
    const sq_codec *c = parse_ok("spqr:w3:b4:r1:rht:t0", p);
    ck_assert_uint_eq(p[4], 0x130303);
    ck_assert_uint_eq(p[5], 0x10004);
    p[SQ_P_XFORM] = SQ_XF_RHT_IN;
    sq_part_spec sp[SQ_CODEC_MAX_PARTS];
    ck_assert_int_eq(sq_layout(c, p, 1, 4, sp), 8);
    ck_assert_str_eq(sp[7].name, "rht_in");
    ck_assert_uint_eq(sq_part_spec_bytes(&sp[7]), 1);
    sq_tview v = {.codec = c, .rows = 1, .cols = 4, .nparts = 7};
    memcpy(v.params, p, sizeof p);
    const void *parts[7] = {codes, sc, zc, stats2, row_ptr, NULL, NULL};
    const uint64_t dim0[7] = {1, 1, 1, 1, 2, 0, 0};
    for (int i = 0; i < 7; i++) {
        v.part[i] = parts[i];
        v.dim0[i] = dim0[i];
    }
    v.xf[SQ_XFORM_RHT_IN] = signs;
    char why[256] = "";
    ck_assert_msg(c->check(&v, why, sizeof why) == 0, "%s", why);
    float d[4], x[4] = {1, 2, 3, 4}, y[1];
    ck_assert_int_eq(sq_decode_rows(&v, 0, 1, d), SQ_OK);
    for (int i = 0; i < 4; i++) ck_assert_msg(fabsf(d[i] - want[i]) < 1e-6f, "W[%d] = %g, the spec says %g", i, d[i], want[i]);
    ck_assert_int_eq(sq_gemv(&v, x, y, 0, 1), SQ_OK);
    ck_assert_float_eq_tol(y[0], 3.0f, 1e-5f);
}
END_TEST

/* The integer-activation GEMV (spqr_q8.c) on encoded matrices (outliers,
 * partial groups and chunks, widths 2..8, groups 16/32/64/128 and 8/24
 * where the SIMD kernel does not run): the portable kernel against the
 * stored-order decode times the q8 activations in double (within 2e-5 of
 * sum |w x|), the AVX-512 kernel against it bit for bit where the CPU has
 * VBMI, and the runtime's pick (sq_best_kernel) the q8 kernel exactly
 * there. */
START_TEST(test_q8_gemv) {
    const uint64_t shapes[][2] = {{20, 200}, {9, 520}, {5, 64}};
    const char *schemes[] = {"spqr:w3:t0.1", "spqr:w4:b64:t0", "spqr:w5:b32:sb6:t0.1", "spqr:w2:b16:r4",
                             "spqr:w8:b128:t0.05", "spqr:w6:b8:t0.1", "spqr:w4:b24:t0"};
    int simd = 0;
    for (size_t sh = 0; sh < 3; sh++)
        for (size_t k = 0; k < sizeof schemes / sizeof schemes[0]; k++) {
            const uint64_t rows = shapes[sh][0], cols = shapes[sh][1];
            float *w = random_matrix(rows * cols, 1), *x = random_matrix(cols, 0);
            double *H = make_xtx(cols, 300);
            sq_encoded e;
            sq_err err;
            ck_assert_msg(encode(schemes[k], w, rows, cols, H, 1, &e, &err) == SQ_OK, "%s: %s", schemes[k], err.msg);
            sq_tview v;
            sq_tview_from_encoded(&e, &v);
            memset(v.xf, 0, sizeof v.xf); /* stored order: the kernels' own basis */
            v.params[SQ_P_XFORM] = 0;
            sq_act_q8 a;
            ck_assert_int_eq(sq_act_q8_init(&a, x, cols, NULL), SQ_OK);
            float *dec = malloc(rows * cols * sizeof *dec), *y = malloc(rows * sizeof *y), *y2 = malloc(rows * sizeof *y2);
            v.codec->cpu->decode[SQ_ISA_PORTABLE](&v, 0, rows, dec);
            sq_spqr_gemv_q8_portable(&v, &a, y, 0, rows);
            for (uint64_t r = 0; r < rows; r++) {
                double d = 0, mag = 0;
                for (uint64_t i = 0; i < cols; i++) {
                    const double xi = (double)a.d[i / 32] * a.q[i];
                    d += (double)dec[r * cols + i] * xi;
                    mag += fabs((double)dec[r * cols + i] * xi);
                }
                ck_assert_msg(fabs(y[r] - d) <= 2e-5 * mag, "%s %llux%llu row %llu: q8 %g, reference %g", schemes[k],
                              (unsigned long long)rows, (unsigned long long)cols, (unsigned long long)r, y[r], d);
            }
            if (sq_spqr_q8_avx512_ok(&v)) {
                simd++;
                memset(y2, 0, rows * sizeof *y2);
                sq_spqr_gemv_q8_avx512(&v, &a, y2, 1, rows);
                ck_assert_msg(y2[0] == 0 && !memcmp(y + 1, y2 + 1, (rows - 1) * sizeof *y), "%s %llux%llu: AVX-512 q8 differs",
                              schemes[k], (unsigned long long)rows, (unsigned long long)cols);
            }
            for (int isa = 0; isa < SQ_ISA_COUNT; isa++)
                ck_assert_int_eq(sq_best_kernel(&v, (sq_isa)isa).act,
                                 isa == SQ_ISA_AVX512 && sq_spqr_q8_avx512_ok(&v) ? SQ_ACT_Q8 : SQ_ACT_F32);
            sq_act_q8_free(&a);
            free(dec); free(y); free(y2); free(w); free(x); free(H);
            sq_encoded_free(&e);
        }
    fprintf(stderr, "spqr q8: %d AVX-512 comparisons\n", simd);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("spqr_codec");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_scheme_defaults_and_roundtrip);
    tcase_add_test(tc, test_scheme_refusals);
    tcase_add_test(tc, test_check_params);
    tcase_add_test(tc, test_encode_through_registry);
    tcase_add_test(tc, test_encode_rht);
    tcase_add_test(tc, test_encode_needs_xtx);
    tcase_add_test(tc, test_check_hook_refuses_damage);
    tcase_add_test(tc, test_spec_worked_example);
    tcase_add_test(tc, test_spec_worked_example_w6);
    tcase_add_test(tc, test_spec_worked_example_rht);
    tcase_add_test(tc, test_q8_gemv);
    suite_add_tcase(s, tc);
    return s;
}

RUN_SUITE(suite())
