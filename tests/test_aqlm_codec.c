/* The aqlm codec through the codec interface (squish/codec.h): scheme
 * strings and params, the encoder through sq_quant_encode (XᵀX, columns
 * not a multiple of 8, thread-count independence), decode against an
 * independent reading of spec/codecs.md §12, the GEMV on every path and
 * row split, the check hook, and the spec's worked example. */
#include <math.h>

#include "codecs/codecs.h" /* sq_codec_check_params */
#include "encoders.h"
#include "squish/codec.h"
#include "squish/fp.h"
#include "testutil.h"

static uint64_t rng = 0x2545F4914F6CDD1Dull;
static float frand(void) { /* xorshift64, uniform in [-1, 1) */
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((double)(rng >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

/* XᵀX of T tokens with correlated, unevenly scaled channels. */
static double *make_xtx(uint32_t T, uint32_t n) {
    float *x = malloc((size_t)T * n * sizeof(float));
    for (uint32_t t = 0; t < T; t++) {
        float a = frand(), b = frand();
        for (uint32_t j = 0; j < n; j++)
            x[(size_t)t * n + j] = (0.4f * frand() + a * sinf((float)j) + b * cosf(0.3f * (float)j)) * (j % 13 ? 1.0f : 5.0f);
    }
    double *H = calloc((size_t)n * n, sizeof(double));
    for (uint32_t t = 0; t < T; t++)
        for (uint32_t i = 0; i < n; i++)
            for (uint32_t j = 0; j < n; j++) H[(size_t)i * n + j] += (double)x[(size_t)t * n + i] * x[(size_t)t * n + j];
    free(x);
    return H;
}

/* tr(A H Aᵀ) in float64, plain loops. */
static double quad(const double *a, uint64_t rows, uint64_t n, const double *H) {
    double t = 0;
    for (uint64_t o = 0; o < rows; o++)
        for (uint64_t i = 0; i < n; i++) {
            double hi = 0;
            for (uint64_t j = 0; j < n; j++) hi += H[i * n + j] * a[o * n + j];
            t += a[o * n + i] * hi;
        }
    return t;
}

static float f16_at(const uint8_t *p, uint64_t i) { return sq_f16_to_f32((uint16_t)(p[2 * i] | p[2 * i + 1] << 8)); }

/* Decode as spec/codecs.md §12 words it: code i at stream bits [iB, iB+B), LSB first. */
static void spec_decode(const sq_tview *v, uint32_t M, uint32_t B, float *out) {
    const uint8_t *codes = sq_tview_part(v, "codes"), *cb = sq_tview_part(v, "codebooks"), *sc = sq_tview_part(v, "scales");
    const uint64_t G = (v->cols + 7) / 8, K = 1ull << B;
    for (uint64_t o = 0; o < v->rows; o++)
        for (uint64_t j = 0; j < G; j++) {
            float acc[8];
            for (uint32_t m = 0; m < M; m++) {
                uint64_t i = (o * G + j) * M + m, c = 0;
                for (uint32_t b = 0; b < B; b++) {
                    uint64_t t = i * B + b;
                    c |= (uint64_t)(codes[t / 8] >> (t % 8) & 1) << b;
                }
                for (int t = 0; t < 8; t++) acc[t] = m ? acc[t] + f16_at(cb, (m * K + c) * 8 + t) : f16_at(cb, (m * K + c) * 8 + t);
            }
            for (int t = 0; t < 8; t++)
                if (j * 8 + t < v->cols) out[o * v->cols + j * 8 + t] = f16_at(sc, o) * acc[t];
        }
}

START_TEST(aqlm_scheme_strings_and_params) {
    const sq_codec *c, *c2;
    uint32_t p[SQ_NPARAMS], p2[SQ_NPARAMS];
    sq_err err;
    ck_assert_int_eq(sq_scheme_parse("aqlm", &c, p, &err), 0);
    ck_assert_str_eq(c->name, "aqlm");
    ck_assert_int_eq(c->id, 80);
    ck_assert_int_eq(c->family, SQ_FAMILY_CODEBOOK);
    ck_assert_uint_eq(p[4], 2);
    ck_assert_uint_eq(p[5], 8);
    char s[64];
    sq_scheme_format(c, p, s, sizeof s);
    ck_assert_str_eq(s, "aqlm:2x8");
    const char *good[] = {"aqlm:2x8", "aqlm:1x16", "aqlm:1x8", "aqlm:8x4", "aqlm:3x5", NULL};
    for (int i = 0; good[i]; i++) {
        ck_assert_msg(sq_scheme_parse(good[i], &c, p, &err) == 0, "%s: %s", good[i], err.msg);
        sq_scheme_format(c, p, s, sizeof s);
        ck_assert_str_eq(s, good[i]); /* canonical */
        ck_assert_int_eq(sq_scheme_parse(s, &c2, p2, &err), 0);
        ck_assert_int_eq(memcmp(p, p2, sizeof p), 0);
        ck_assert_int_eq(sq_codec_check_params(c, p, &err, "t"), 0);
    }
    const char *bad[] = {"aqlm:0x8", "aqlm:2x0", "aqlm:9x8", "aqlm:2x17", "aqlm:2x", "aqlm:2x8x", "aqlm:g64", "aqlm:asym",
                         "aqlm:pc", "aqlm:s32", "aqlm:dq", NULL};
    for (int i = 0; bad[i]; i++)
        ck_assert_msg(sq_scheme_parse(bad[i], &c, p, &err) == SQ_EUSAGE, "'%s' was accepted", bad[i]);
    /* params a file may hold: anything the codec does not define is refused */
    sq_scheme_parse("aqlm", &c, p, NULL);
    const int idx[] = {0, 1, 2, 4, 5, 6, 7};
    const uint32_t val[] = {64, 1, SQ_DT_F16, 9, 17, 1, 1};
    for (int k = 0; k < 7; k++) {
        memcpy(p2, p, sizeof p);
        p2[idx[k]] = val[k];
        ck_assert_msg(sq_codec_check_params(c, p2, &err, "t") == SQ_ECORRUPT, "params[%d] = %u accepted", idx[k], val[k]);
    }
    p2[4] = 0;
    /* bits per weight: 2 of codes + 8 KiB of codebooks + 2 bytes a row */
    ck_assert(fabs(sq_layout_bpw(c, p, 4096, 4096) - (2.0 + 65536.0 / (4096.0 * 4096) + 16.0 / 4096)) < 1e-12);
    sq_scheme_parse("aqlm:1x16", &c, p, NULL);
    ck_assert(fabs(sq_layout_bpw(c, p, 512, 512) - (2.0 + 65536.0 * 8 * 16 / (512.0 * 512) + 16.0 / 512)) < 1e-12);
}
END_TEST

/* Encode 40 x 60 (G = 8, the last group partial) at 2x4 and 2x8 with a synthetic XᵀX. */
START_TEST(aqlm_encode_decode_gemv) {
    const uint64_t rows = 40, cols = 60;
    double *H = make_xtx(200, cols);
    float *w = malloc(rows * cols * sizeof(float));
    for (uint64_t i = 0; i < rows * cols; i++) w[i] = 0.05f * frand() * (i % 29 ? 1.0f : 4.0f);
    const char *schemes[] = {"aqlm:2x4", "aqlm:2x8", "aqlm:1x5"};
    for (int sc = 0; sc < 3; sc++) {
        const sq_codec *c;
        uint32_t p[SQ_NPARAMS];
        sq_err err;
        ck_assert_int_eq(sq_scheme_parse(schemes[sc], &c, p, &err), 0);
        sq_encode_ctx x = {.codec = c, .params = p, .w = w, .rows = rows, .cols = cols, .xtx = H, .seed = 7, .n_threads = 1};
        sq_encoded e1, e3, ee;
        ck_assert(sq_quant_needs_xtx(c));
        ck_assert_msg(sq_quant_encode(&x, &e1, &err) == 0, "%s", err.msg);
        x.n_threads = 3;
        ck_assert_int_eq(sq_quant_encode(&x, &e3, &err), 0);
        for (int i = 0; i < e1.nparts; i++) { /* thread count does not change a byte */
            ck_assert_uint_eq(e1.bytes[i], e3.bytes[i]);
            ck_assert_int_eq(memcmp(e1.data[i], e3.data[i], e1.bytes[i]), 0);
        }
        /* the library alone refuses it; without XᵀX it is a usage error naming --calib */
        ck_assert_int_eq(sq_encode(c, p, w, rows, cols, 1, &ee, &err), SQ_EUNSUPPORTED);
        x.xtx = NULL;
        ck_assert_int_eq(sq_quant_encode(&x, &ee, &err), SQ_EUSAGE);
        ck_assert_ptr_nonnull(strstr(err.msg, "--calib"));
        /* the parts are the layout's */
        sq_part_spec sp[SQ_CODEC_MAX_PARTS];
        ck_assert_int_eq(sq_layout(c, p, rows, cols, sp), 3);
        for (int i = 0; i < 3; i++) {
            ck_assert_str_eq(e1.spec[i].name, sp[i].name);
            ck_assert_uint_eq(e1.bytes[i], sq_part_spec_bytes(&sp[i]));
        }
        sq_tview v;
        sq_tview_from_encoded(&e1, &v);
        char why[256] = "";
        ck_assert_msg(c->check(&v, why, sizeof why) == 0, "%s", why);
        float *dec = malloc(rows * cols * sizeof(float)), *ref = malloc(rows * cols * sizeof(float));
        ck_assert_int_eq(sq_decode_rows(&v, 0, rows, dec), 0);
        spec_decode(&v, p[4], p[5], ref);
        ck_assert_int_eq(memcmp(dec, ref, rows * cols * sizeof(float)), 0);
        /* it is a quantization of w: the XᵀX-weighted error is well below w's own */
        double *d = malloc(rows * cols * sizeof(double));
        for (uint64_t i = 0; i < rows * cols; i++) d[i] = w[i];
        double den = quad(d, rows, cols, H);
        for (uint64_t i = 0; i < rows * cols; i++) d[i] = (double)w[i] - dec[i];
        double rel = quad(d, rows, cols, H) / den;
        ck_assert_msg(rel < 0.2, "%s: relative output error %g", schemes[sc], rel);
        /* GEMV: every ISA path and every row split (tables or in-place dots) gives the portable bits */
        float *xv = malloc(cols * sizeof(float)), *y0 = malloc(rows * sizeof(float)), *y = malloc(rows * sizeof(float));
        for (uint64_t i = 0; i < cols; i++) xv[i] = frand();
        sq_gemv_for(c, SQ_ISA_PORTABLE)(&v, xv, y0, 0, rows);
        for (uint64_t r = 0; r < rows; r++) {
            double dot = 0, mag = 0;
            for (uint64_t i = 0; i < cols; i++) {
                dot += (double)dec[r * cols + i] * xv[i];
                mag += fabs((double)dec[r * cols + i] * xv[i]);
            }
            ck_assert_msg(fabs(y0[r] - dot) <= 1e-5 * mag + 1e-30, "%s row %llu: %g vs %g", schemes[sc],
                          (unsigned long long)r, y0[r], dot);
        }
        for (int isa = 0; isa < SQ_ISA_COUNT; isa++) {
            if (!sq_isa_supported((sq_isa)isa)) continue;
            for (uint64_t step = 1; step <= rows; step += 13) {
                memset(y, 0xff, rows * sizeof(float));
                for (uint64_t r0 = 0; r0 < rows; r0 += step) sq_gemv_for(c, (sq_isa)isa)(&v, xv, y, r0, r0 + step < rows ? r0 + step : rows);
                ck_assert_msg(!memcmp(y, y0, rows * sizeof(float)), "%s on %s, rows %llu at a time", schemes[sc],
                              sq_isa_name((sq_isa)isa), (unsigned long long)step);
            }
        }
        ck_assert_int_eq(sq_gemv_mt(&v, xv, y, 3), 0);
        ck_assert(!memcmp(y, y0, rows * sizeof(float)));
        /* the check hook names the part and the value */
        uint8_t *cb = malloc(e1.bytes[1]);
        memcpy(cb, e1.data[1], e1.bytes[1]);
        cb[2 * 19] = 0x01;
        cb[2 * 19 + 1] = 0x7e; /* NaN: codebook 0, entry 2, element 3 */
        v.part[1] = cb;
        ck_assert_int_eq(c->check(&v, why, sizeof why), -1);
        ck_assert_msg(strstr(why, "codebooks") && strstr(why, "NaN") && strstr(why, "entry 2"), "%s", why);
        v.part[1] = e1.data[1];
        uint8_t *sv = malloc(e1.bytes[2]);
        memcpy(sv, e1.data[2], e1.bytes[2]);
        sv[2 * 5 + 1] = 0x7c; /* +inf or NaN in row 5's scale */
        v.part[2] = sv;
        ck_assert_int_eq(c->check(&v, why, sizeof why), -1);
        ck_assert_msg(strstr(why, "scales") && strstr(why, "row 5"), "%s", why);
        free(cb);
        free(sv);
        free(xv);
        free(y0);
        free(y);
        free(d);
        free(dec);
        free(ref);
        sq_encoded_free(&e1);
        sq_encoded_free(&e3);
    }
    free(H);
    free(w);
}
END_TEST

/* spec/codecs.md §12's worked example, byte for byte. */
START_TEST(aqlm_spec_worked_example) {
    const sq_codec *c;
    uint32_t p[SQ_NPARAMS];
    ck_assert_int_eq(sq_scheme_parse("aqlm:2x2", &c, p, NULL), 0);
    uint8_t codes[1] = {0x09}, cb[2 * 4 * 8 * 2] = {0}, sc[2] = {0x00, 0x40};
    for (int t = 0; t < 8; t++) {
        cb[2 * (1 * 8 + t) + 1] = 0x38;                      /* codebooks[0][1][t] = 0.5 */
        cb[2 * ((4 + 2) * 8 + t) + 1] = t % 2 ? 0xbc : 0x3c; /* codebooks[1][2][t] = ±1 */
    }
    sq_tview v = {.codec = c, .rows = 1, .cols = 8, .nparts = 3, .part = {codes, cb, sc}};
    memcpy(v.params, p, sizeof p);
    sq_part_spec sp[SQ_CODEC_MAX_PARTS];
    sq_layout(c, p, 1, 8, sp);
    ck_assert_uint_eq(sq_part_spec_bytes(&sp[0]) + sq_part_spec_bytes(&sp[1]) + sq_part_spec_bytes(&sp[2]), 131);
    char why[256];
    ck_assert_int_eq(c->check(&v, why, sizeof why), 0);
    float out[8], x[8] = {1, 2, 3, 4, 5, 6, 7, 8}, y[1];
    sq_decode_for(c, SQ_ISA_PORTABLE)(&v, 0, 1, out);
    for (int t = 0; t < 8; t++) ck_assert_float_eq(out[t], t % 2 ? -1.0f : 3.0f);
    sq_gemv_for(c, SQ_ISA_PORTABLE)(&v, x, y, 0, 1);
    ck_assert_float_eq(y[0], 3 * (1 + 3 + 5 + 7) - (2 + 4 + 6 + 8));
    codes[0] = 0x19; /* a bit past the last code */
    ck_assert_int_eq(c->check(&v, why, sizeof why), -1);
    ck_assert_ptr_nonnull(strstr(why, "padding"));
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("aqlm_codec");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, aqlm_scheme_strings_and_params);
    tcase_add_test(tc, aqlm_encode_decode_gemv);
    tcase_add_test(tc, aqlm_spec_worked_example);
    suite_add_tcase(s, tc);
    return s;
}
RUN_SUITE(suite())
