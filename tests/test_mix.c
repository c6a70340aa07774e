/* The mix codec (spec/codecs.md §14): the decode reproduces the encoder's
 * reconstruction bit for bit; the width allocation meets the budget, is
 * exact at its Lagrangian points (against brute force) and puts wide codes
 * where XᵀX says the error costs most; bpw counts every part; the output
 * does not depend on the thread count; SIMD GEMV agrees with the portable
 * one; the scheme grammar; the check hook refuses offsets that do not add
 * up, padding bits and non-finite statistics. */
#include <math.h>

#include "codec_encode.h"
#include "codecs/codecs.h"
#include "codecs/mix/mix_format.h"
#include "codecs/mix/mix_kernels.h"
#include "mix_encode.h"
#include "squish/codec.h"
#include "testutil.h"

/* XᵀX of 2·cols pseudo-random rows whose column j is scaled by colscale[j]. */
static double *make_xtx(uint64_t cols, const double *colscale) {
    const uint64_t n = 2 * cols;
    double *x = malloc(n * cols * sizeof(double)), *h = calloc(cols * cols, sizeof(double));
    for (uint64_t i = 0; i < n * cols; i++) x[i] = (urand() - 0.5) * (colscale ? colscale[i % cols] : 1.0);
    for (uint64_t t = 0; t < n; t++)
        for (uint64_t i = 0; i < cols; i++)
            for (uint64_t j = 0; j < cols; j++) h[i * cols + j] += x[t * cols + i] * x[t * cols + j];
    free(x);
    return h;
}

static void params_of(const char *scheme, uint32_t *p) {
    const sq_codec *c;
    sq_err err;
    ck_assert_msg(sq_scheme_parse(scheme, &c, p, &err) == SQ_OK, "%s: %s", scheme, err.msg);
    ck_assert_str_eq(c->name, "mix");
}

static void view_of_result(const sq_mix_result *r, const uint32_t *p, sq_mix_view *v) {
    v->rows = r->rows, v->cols = r->cols, v->B = p[SQ_P_GROUP], v->nb = r->nb, v->wb = r->wb;
    for (unsigned k = 0; k < 4; k++) v->width[k] = sq_mix_width(p, k);
    v->widths = r->widths, v->scales = r->scales, v->mins = r->mins, v->row_ptr = r->row_ptr;
    v->codes = r->codes, v->ncodes = r->ncodes;
}

/* Decode equals the encoder's own reconstruction, bit for bit, for every block size, width set and ragged shape. */
START_TEST(decode_is_the_encoders_reconstruction) {
    const char *schemes[] = {"mix:3.5", "mix:2.5:g32", "mix:4.5:g128:noao", "mix:3:w1358", "mix:6:w2468:g32"};
    const uint64_t shapes[][2] = {{33, 256}, {17, 200}, {40, 96}};
    for (size_t s = 0; s < sizeof schemes / sizeof *schemes; s++)
        for (size_t k = 0; k < 3; k++) {
            const uint64_t rows = shapes[k][0], cols = shapes[k][1];
            uint32_t p[SQ_NPARAMS];
            params_of(schemes[s], p);
            float *w = random_matrix(rows * cols, 1), *rec = malloc(rows * cols * sizeof(float)),
                  *dec = malloc(rows * cols * sizeof(float));
            double *h = make_xtx(cols, NULL);
            sq_mix_result r;
            sq_err err;
            ck_assert_msg(sq_mix_quantize(w, rows, cols, h, p, 2, &r, rec, &err) == SQ_OK, "%s", err.msg);
            sq_mix_view v;
            view_of_result(&r, p, &v);
            char why[256];
            ck_assert_msg(sq_mix_validate(&v, why, sizeof why) == 0, "%s: %s", schemes[s], why);
            sq_mix_decode_rows(&v, 0, rows, dec);
            ck_assert_msg(!memcmp(dec, rec, rows * cols * sizeof(float)), "%s %llux%llu: decode differs from the encoder",
                          schemes[s], (unsigned long long)rows, (unsigned long long)cols);
            sq_mix_result_free(&r);
            free(w), free(rec), free(dec), free(h);
        }
}
END_TEST

/* The bits of the encoded tensor (every part, perm included) are the
 * encoder's count, at most the target's, and within one block's largest
 * step (128 weights x (8 - 2) bits) of it; the histogram uses more than one
 * width. Fewer bits: no smaller weighted error. */
START_TEST(allocation_meets_the_budget) {
    const uint64_t rows = 256, cols = 512;
    double cs[512];
    for (uint64_t j = 0; j < cols; j++) cs[j] = j % 37 == 5 ? 20.0 : 0.3 + urand(); /* a few inputs that matter */
    double *h = make_xtx(cols, cs);
    float *w = random_matrix(rows * cols, 1);
    const char *schemes[] = {"mix:2.5:g128", "mix:3", "mix:3.5", "mix:4.5", "mix:5.25:g32"};
    for (size_t s = 0; s < sizeof schemes / sizeof *schemes; s++) {
        uint32_t p[SQ_NPARAMS];
        params_of(schemes[s], p);
        const sq_codec *c = sq_codec_by_name("mix");
        sq_encoded e;
        sq_err err;
        sq_encode_ctx x = {.codec = c, .params = p, .w = w, .rows = rows, .cols = cols, .xtx = h, .n_threads = 2};
        ck_assert_msg(sq_quant_encode(&x, &e, &err) == SQ_OK, "%s", err.msg);
        sq_mix_result r;
        ck_assert(sq_mix_quantize(w, rows, cols, h, p, 1, &r, NULL, &err) == SQ_OK);
        uint64_t total = 0;
        for (int i = 0; i < e.nparts; i++) total += e.bytes[i] * 8;
        const double target = p[SQ_MIX_P_TARGET] / 1000.0, bpw = sq_encoded_bpw(&e);
        ck_assert_msg(fabs(bpw - (double)total / (double)(rows * cols)) < 1e-12, "bpw %g vs parts %llu bits", bpw,
                      (unsigned long long)total);
        ck_assert_msg(bpw <= target + 1e-12 && bpw >= target - 768.0 / (double)(rows * cols), "%s: %.5f bpw", schemes[s], bpw);
        ck_assert_msg(r.used_bits == total, "%s: encoder counts %llu bits, parts hold %llu", schemes[s],
                      (unsigned long long)r.used_bits, (unsigned long long)total);
        int used = 0;
        for (int k = 0; k < 4; k++) used += r.hist[k] > 0;
        ck_assert_msg(used >= 2, "%s: one width only (%llu %llu %llu %llu)", schemes[s], (unsigned long long)r.hist[0],
                      (unsigned long long)r.hist[1], (unsigned long long)r.hist[2], (unsigned long long)r.hist[3]);
        sq_mix_result_free(&r);
        sq_encoded_free(&e);
    }
    /* a target below what the statistics alone take: every block at the narrowest width */
    uint32_t p[SQ_NPARAMS];
    params_of("mix:2.5", p);
    sq_mix_result r;
    sq_err err;
    ck_assert(sq_mix_quantize(w, 64, cols, h, p, 1, &r, NULL, &err) == SQ_OK);
    ck_assert_uint_eq(r.hist[0], 64 * r.nb);
    ck_assert(r.used_bits > r.budget_bits);
    sq_mix_result_free(&r);
    free(h), free(w);
}
END_TEST

/* With act-order, the blocks holding the inputs XᵀX weights most get wider
 * codes than the rest: the first block (largest diagonal) is never narrower
 * on average than the last. */
START_TEST(wide_codes_go_where_the_error_costs) {
    const uint64_t rows = 64, cols = 256;
    double cs[256];
    for (uint64_t j = 0; j < cols; j++) cs[j] = j % 4 == 1 ? 10.0 : 0.5;
    double *h = make_xtx(cols, cs);
    float *w = random_matrix(rows * cols, 0);
    uint32_t p[SQ_NPARAMS];
    params_of("mix:3.5", p);
    sq_mix_result r;
    sq_err err;
    ck_assert(sq_mix_quantize(w, rows, cols, h, p, 1, &r, NULL, &err) == SQ_OK);
    double first = 0, last = 0;
    for (uint64_t row = 0; row < rows; row++) {
        first += sq_mix_width(p, sq_mix_wcode(r.widths + row * r.wb, 0));
        last += sq_mix_width(p, sq_mix_wcode(r.widths + row * r.wb, r.nb - 1));
    }
    ck_assert_msg(first > last + rows, "first block %.2f bits on average, last %.2f", first / rows, last / rows);
    sq_mix_result_free(&r);
    free(h), free(w);
}
END_TEST

/* sq_mix_allocate is exact at every Lagrangian point: for a multiplier λ,
 * the per-block argmin of err + λ·bits uses some bits B(λ); given B(λ) as
 * the budget, its error equals the brute-force optimum over all 4^n
 * choices. At any budget, it never exceeds it (unless the cheapest does). */
START_TEST(allocation_is_exact_at_lagrangian_points) {
    enum { N = 6 };
    const int trials = test_quick() ? 20 : 200;
    for (int t = 0; t < trials; t++) {
        uint64_t bits[4 * N];
        double err[4 * N];
        for (int i = 0; i < N; i++) {
            const double a = 0.1 + urand();
            const uint64_t len = 8 + (uint64_t)(urand() * 57);
            const unsigned wd[4] = {2, 3, 4, 8};
            for (int k = 0; k < 4; k++) {
                bits[4 * i + k] = 8 * sq_mix_block_bytes(len, wd[k]);
                err[4 * i + k] = a * (double)len * ldexp(1, -2 * (int)wd[k]) * (0.8 + 0.4 * urand());
            }
        }
        const double lambda = ldexp(urand(), -(int)(urand() * 12));
        uint64_t budget = 0;
        for (int i = 0; i < N; i++) {
            int best = 0;
            for (int k = 1; k < 4; k++)
                if (err[4 * i + k] + lambda * bits[4 * i + k] < err[4 * i + best] + lambda * bits[4 * i + best]) best = k;
            budget += bits[4 * i + best];
        }
        double opt = INFINITY;
        for (int m = 0; m < 1 << (2 * N); m++) {
            uint64_t b = 0;
            double e = 0;
            for (int i = 0; i < N; i++) b += bits[4 * i + (m >> (2 * i) & 3)], e += err[4 * i + (m >> (2 * i) & 3)];
            if (b <= budget && e < opt) opt = e;
        }
        uint8_t code[N];
        const uint64_t used = sq_mix_allocate(N, bits, err, budget, code);
        double e = 0;
        uint64_t b = 0;
        for (int i = 0; i < N; i++) e += err[4 * i + code[i]], b += bits[4 * i + code[i]];
        ck_assert_uint_eq(b, used);
        ck_assert_msg(used <= budget, "trial %d: %llu bits over the budget %llu", t, (unsigned long long)used,
                      (unsigned long long)budget);
        ck_assert_msg(e <= opt * (1 + 1e-12), "trial %d: greedy error %.9g, optimum %.9g at %llu bits", t, e, opt,
                      (unsigned long long)budget);
    }
}
END_TEST

/* Same parts for 1, 2 and 3 threads (several row tiles). */
START_TEST(same_bytes_any_thread_count) {
    const uint64_t rows = 70, cols = 320;
    float *w = random_matrix(rows * cols, 1);
    uint32_t p[SQ_NPARAMS];
    params_of("mix:3.25", p);
    const sq_codec *c = sq_codec_by_name("mix");
    sq_encoded e[3];
    sq_err err;
    for (int t = 0; t < 3; t++) ck_assert_msg(codec_encode(c, p, w, rows, cols, t + 1, &e[t], &err) == SQ_OK, "%s", err.msg);
    for (int t = 1; t < 3; t++) {
        ck_assert_int_eq(e[t].nparts, e[0].nparts);
        for (int i = 0; i < e[0].nparts; i++)
            ck_assert_msg(e[t].bytes[i] == e[0].bytes[i] && !memcmp(e[t].data[i], e[0].data[i], e[0].bytes[i]),
                          "part %s differs with %d threads", e[0].spec[i].name, t + 1);
    }
    for (int t = 0; t < 3; t++) sq_encoded_free(&e[t]);
    free(w);
}
END_TEST

/* Every ISA's GEMV against the portable kernel and against decode·x, on a
 * realistic shape (the generated kernel tests use small ones). */
START_TEST(simd_gemv_matches_portable) {
    const uint64_t rows = 48, cols = 1000; /* ragged last block */
    float *w = random_matrix(rows * cols, 1), *x = malloc(cols * sizeof(float)), *dec = malloc(rows * cols * sizeof(float));
    for (uint64_t i = 0; i < cols; i++) x[i] = (float)(urand() - 0.5);
    const char *schemes[] = {"mix:3.5", "mix:5:g32", "mix:2.75:w1358:g128"};
    for (size_t s = 0; s < 3; s++) {
        uint32_t p[SQ_NPARAMS];
        params_of(schemes[s], p);
        sq_encoded e;
        sq_err err;
        ck_assert(codec_encode(sq_codec_by_name("mix"), p, w, rows, cols, 2, &e, &err) == SQ_OK);
        sq_tview t;
        sq_tview_from_encoded(&e, &t);
        sq_mix_view v;
        sq_mix_view_of(&t, &v);
        sq_mix_decode_rows(&v, 0, rows, dec);
        float y0[48], y[48];
        sq_mix_gemv_portable(&v, x, y0, 0, rows);
        for (uint64_t r = 0; r < rows; r++) {
            double d = 0, mag = 0;
            for (uint64_t i = 0; i < cols; i++) d += (double)dec[r * cols + i] * x[i], mag += fabs((double)dec[r * cols + i] * x[i]);
            ck_assert_msg(fabs(y0[r] - d) <= 1e-5 * mag, "%s row %llu: portable %g vs decode.x %g", schemes[s],
                          (unsigned long long)r, y0[r], d);
            for (int isa = SQ_ISA_AVX2; isa < SQ_ISA_COUNT; isa++) {
                if (!sq_isa_supported((sq_isa)isa)) continue;
                (isa == SQ_ISA_AVX2 ? sq_mix_gemv_avx2 : sq_mix_gemv_avx512)(&v, x, y, r, r + 1);
                ck_assert_msg(fabs((double)y[r] - y0[r]) <= 1e-5 * mag, "%s %s row %llu: %g vs %g", schemes[s],
                              sq_isa_name((sq_isa)isa), (unsigned long long)r, y[r], y0[r]);
            }
        }
        sq_encoded_free(&e);
    }
    free(w), free(x), free(dec);
}
END_TEST

START_TEST(scheme_grammar) {
    const struct { const char *in, *out; } good[] = {
        {"mix", "mix:g128:4"}, {"mix:3.5", "mix:g128:3.5"}, {"mix:2.75:w1248", "mix:g128:2.75:w1248"},
        {"mix:4.125:g64:noao", "mix:g64:4.125:noao"}, {"mix:g32:16", "mix:g32:16"}};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        const sq_codec *c;
        uint32_t p[SQ_NPARAMS];
        sq_err err;
        ck_assert_msg(sq_scheme_parse(good[i].in, &c, p, &err) == SQ_OK, "%s: %s", good[i].in, err.msg);
        char out[64];
        sq_scheme_format(c, p, out, sizeof out);
        ck_assert_str_eq(out, good[i].out);
        ck_assert_int_eq(sq_codec_check_params(c, p, &err, "test"), SQ_OK);
    }
    const char *bad[] = {"mix:0.5", "mix:17", "mix:3.5.1", "mix:w2233", "mix:w2349", "mix:w234", "mix:3x", "mix:g256", "mix:pc"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        const sq_codec *c;
        uint32_t p[SQ_NPARAMS];
        sq_err err;
        ck_assert_msg(sq_scheme_parse(bad[i], &c, p, &err) != SQ_OK || sq_codec_check_params(c, p, &err, "t") != SQ_OK,
                      "%s accepted", bad[i]);
    }
}
END_TEST

/* The check hook: row offsets that do not add up to the widths, codes of
 * the wrong size, nonzero width padding and NaN statistics are refused. */
START_TEST(check_refuses_damage) {
    const uint64_t rows = 9, cols = 200; /* 4 blocks: one padding pair of bits per row's width byte */
    float *w = random_matrix(rows * cols, 0);
    uint32_t p[SQ_NPARAMS];
    params_of("mix:3.5:noao", p);
    const sq_codec *c = sq_codec_by_name("mix");
    sq_encoded e;
    sq_err err;
    ck_assert(codec_encode(c, p, w, rows, cols, 1, &e, &err) == SQ_OK);
    sq_tview t;
    sq_tview_from_encoded(&e, &t);
    char why[256];
    ck_assert_msg(c->check(&t, why, sizeof why) == 0, "%s", why);
    uint8_t *wd = e.data[SQ_MIX_WIDTHS];
    uint32_t *rp = e.data[SQ_MIX_ROW_PTR];
    uint16_t *sc = e.data[SQ_MIX_SCALES];
    const uint8_t w0 = wd[0];
    wd[0] ^= 1; /* a block's width changes: row 0's offsets no longer add up */
    ck_assert(c->check(&t, why, sizeof why) != 0 && strstr(why, "add up"));
    wd[0] = w0;
    rp[3] += 1;
    ck_assert(c->check(&t, why, sizeof why) != 0 && strstr(why, "row_ptr"));
    rp[3] -= 1;
    t.dim0[SQ_MIX_CODES] += 1;
    ck_assert(c->check(&t, why, sizeof why) != 0 && strstr(why, "codes part"));
    t.dim0[SQ_MIX_CODES] -= 1;
    const uint16_t s0 = sc[5];
    sc[5] = 0x7e00; /* NaN */
    ck_assert(c->check(&t, why, sizeof why) != 0 && strstr(why, "not finite"));
    sc[5] = s0;
    ck_assert_msg(c->check(&t, why, sizeof why) == 0, "%s", why);
    sq_encoded_free(&e);
    /* width padding: 5 blocks per row leave 3 code pairs of padding in the second byte */
    float *w5 = random_matrix(rows * 300, 0);
    ck_assert(codec_encode(c, p, w5, rows, 300, 1, &e, &err) == SQ_OK);
    sq_tview_from_encoded(&e, &t);
    ((uint8_t *)e.data[SQ_MIX_WIDTHS])[1] |= 0x80;
    ck_assert(c->check(&t, why, sizeof why) != 0 && strstr(why, "padding"));
    sq_encoded_free(&e);
    free(w), free(w5);
}
END_TEST

/* spec/codecs.md §14.8: the worked example's bytes decode to its values and x = 1 gives -4.21875. */
START_TEST(worked_example) {
    const sq_codec *c;
    uint32_t p[SQ_NPARAMS];
    sq_err err;
    ck_assert(sq_scheme_parse("mix:g32:3", &c, p, &err) == SQ_OK);
    ck_assert_uint_eq(p[SQ_P_GROUP], 32);
    ck_assert_uint_eq(p[SQ_MIX_P_TARGET], 3000);
    ck_assert_uint_eq(p[SQ_MIX_P_WIDTHS], 0x8432);
    ck_assert_uint_eq(p[SQ_MIX_P_ENC], 1);
    uint8_t widths[] = {0x0c}, codes[16] = {0xe4, 0xe4, 0xe4, 0xe4, 0xe4, 0xe4, 0xe4, 0xe4, 0x00, 0xff, 0x01, 0x80, 0x0a, 0x14, 0x1e, 0x28};
    uint16_t scales[] = {0x3800, 0x2000}, mins[] = {0xba00, 0xbc00};
    uint32_t row_ptr[] = {0, 16};
    sq_tview t = {.codec = c, .rows = 1, .cols = 40, .nparts = 5,
                  .part = {widths, scales, mins, row_ptr, codes}, .dim0 = {1, 1, 1, 2, 16}};
    memcpy(t.params, p, sizeof p);
    char why[200];
    ck_assert_msg(c->check(&t, why, sizeof why) == 0, "%s", why);
    float d[40], x[40], y;
    c->cpu->decode[SQ_ISA_PORTABLE](&t, 0, 1, d);
    const float b0[4] = {-0.75f, -0.25f, 0.25f, 0.75f};
    const float b1[8] = {-1.0f, 0.9921875f, -0.9921875f, 0.0f, -0.921875f, -0.84375f, -0.765625f, -0.6875f};
    for (int i = 0; i < 32; i++) ck_assert_float_eq(d[i], b0[i % 4]);
    for (int i = 0; i < 8; i++) ck_assert_float_eq(d[32 + i], b1[i]);
    for (int i = 0; i < 40; i++) x[i] = 1.0f;
    for (int isa = 0; isa < SQ_ISA_COUNT; isa++) {
        if (!sq_isa_supported((sq_isa)isa) || !c->cpu->gemv[isa]) continue;
        c->cpu->gemv[isa](&t, x, &y, 0, 1);
        ck_assert_msg(y == -4.21875f, "%s: %g", sq_isa_name((sq_isa)isa), y);
    }
}
END_TEST

int main(void) {
    Suite *s = suite_create("mix");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, decode_is_the_encoders_reconstruction);
    tcase_add_test(tc, allocation_meets_the_budget);
    tcase_add_test(tc, wide_codes_go_where_the_error_costs);
    tcase_add_test(tc, allocation_is_exact_at_lagrangian_points);
    tcase_add_test(tc, same_bytes_any_thread_count);
    tcase_add_test(tc, simd_gemv_matches_portable);
    tcase_add_test(tc, scheme_grammar);
    tcase_add_test(tc, check_refuses_damage);
    tcase_add_test(tc, worked_example);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
