/* AQLM: the quantizer's parts decode to what the test reconstructs from
 * them independently, the GEMV agrees with decode-then-dot, the objective
 * never rises, results do not depend on the thread count, bpw counts the
 * parts' bytes, bad parts are refused, and on a real layer of the 34M
 * model 2x8 beats GPTQ int2 g64 at a comparable size. */
#include <math.h>

#include "aqlm.h"
#include "calib.h"
#include "gptq.h"
#include "squish/model.h"
#include "testutil.h"

static uint64_t rng = 88172645463325252ull;
static float frand(void) { /* xorshift64, uniform in [-1, 1) */
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((double)(rng >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

/* XᵀX of T tokens with correlated, unevenly scaled channels. */
static double *make_xtx(uint32_t T, uint32_t n) {
    float *x = malloc((size_t)T * n * sizeof(float)), *mix = malloc((size_t)8 * n * sizeof(float));
    for (uint32_t i = 0; i < 8 * n; i++) mix[i] = frand();
    for (uint32_t t = 0; t < T; t++) {
        float src[8];
        for (int k = 0; k < 8; k++) src[k] = frand();
        for (uint32_t j = 0; j < n; j++) {
            float v = 0.3f * frand();
            for (int k = 0; k < 8; k++) v += src[k] * mix[k * n + j];
            x[(size_t)t * n + j] = v * (j % 17 == 0 ? 6.0f : 1.0f);
        }
    }
    double *H = calloc((size_t)n * n, sizeof(double));
    for (uint32_t t = 0; t < T; t++)
        for (uint32_t i = 0; i < n; i++)
            for (uint32_t j = 0; j < n; j++) H[(size_t)i * n + j] += (double)x[(size_t)t * n + i] * x[(size_t)t * n + j];
    free(x);
    free(mix);
    return H;
}

static float *make_w(uint64_t rows, uint64_t cols) {
    float *w = malloc(rows * cols * sizeof(float));
    for (uint64_t i = 0; i < rows * cols; i++) w[i] = frand() * 0.05f * (i % 37 == 0 ? 4.0f : 1.0f);
    return w;
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

static double rel_err(const float *w, const float *dec, uint64_t rows, uint64_t n, const double *H) {
    double *d = malloc(rows * n * sizeof(double)), *z = malloc(rows * n * sizeof(double));
    for (uint64_t i = 0; i < rows * n; i++) {
        d[i] = (double)w[i] - dec[i];
        z[i] = w[i];
    }
    double r = quad(d, rows, n, H) / quad(z, rows, n, H);
    free(d);
    free(z);
    return r;
}

static float f16le(const uint8_t *p) { return sq_f16_to_f32((uint16_t)(p[0] | p[1] << 8)); }

/* The documented layout, read bit by bit: code i at stream bits [iB, iB+B). */
static uint32_t code_bitwise(const uint8_t *codes, uint64_t i, uint32_t B) {
    uint32_t v = 0;
    for (uint32_t b = 0; b < B; b++) {
        uint64_t bit = i * B + b;
        v |= (uint32_t)(codes[bit / 8] >> (bit % 8) & 1) << b;
    }
    return v;
}

static float *reconstruct(const sq_aqlm_result *r) {
    const uint64_t G = r->cols / 8, K = 1ull << r->B;
    float *out = malloc(r->rows * r->cols * sizeof(float));
    for (uint64_t o = 0; o < r->rows; o++)
        for (uint64_t j = 0; j < G; j++)
            for (int t = 0; t < 8; t++) {
                float acc = 0;
                for (uint32_t m = 0; m < r->M; m++) {
                    uint32_t c = code_bitwise(r->codes, (o * G + j) * r->M + m, r->B);
                    float v = f16le(r->codebooks + ((m * K + c) * 8 + t) * 2);
                    acc = m ? acc + v : v;
                }
                out[o * r->cols + j * 8 + t] = f16le(r->scales + 2 * o) * acc;
            }
    return out;
}

static int same_result(const sq_aqlm_result *a, const sq_aqlm_result *b) {
    return a->codes_bytes == b->codes_bytes && !memcmp(a->codes, b->codes, a->codes_bytes) &&
           a->codebooks_bytes == b->codebooks_bytes && !memcmp(a->codebooks, b->codebooks, a->codebooks_bytes) &&
           a->scales_bytes == b->scales_bytes && !memcmp(a->scales, b->scales, a->scales_bytes);
}

/* GEMV of a view against decode-then-dot (dec: the decoded matrix), and
 * every ISA path against the portable one. */
static void check_gemv(const sq_aqlm_view *vv, const float *dec) {
    const sq_aqlm_view v = *vv;
    const sq_aqlm_view *r = &v; /* the fields used below: rows, cols, M, B, codes, codebooks, scales */
    sq_err err;
    /* GEMV vs decode-then-dot: both are float sums of the same products
     * (rounded at most ~(G·M + 16) times), so the difference is bounded by
     * (G·M + 16)·2^-23 times the sum of |terms| (plus float underflow) */
    float *x = malloc(r->cols * sizeof(float)), *y = malloc(r->rows * sizeof(float));
    for (uint64_t i = 0; i < r->cols; i++) x[i] = frand();
    uint64_t r0 = 1, r1 = r->rows; /* a row range, not starting at 0 */
    ck_assert_int_eq(sq_aqlm_gemv(&v, x, y, r0, r1, &err), SQ_OK);
    { /* every ISA path: the same bits as the portable one */
        float *yp = malloc(r->rows * sizeof(float));
        ck_assert_int_eq(sq_aqlm_gemv_isa(SQ_ISA_PORTABLE, &v, x, yp, r0, r1, &err), SQ_OK);
        for (int isa = SQ_ISA_AVX2; isa < SQ_ISA_COUNT; isa++) {
            ck_assert_int_eq(sq_aqlm_gemv_isa(isa, &v, x, y, r0, r1, &err), SQ_OK);
            ck_assert_msg(!memcmp(y, yp, (r1 - r0) * sizeof(float)), "gemv on %s differs from portable", sq_isa_name(isa));
        }
        free(yp);
    }
    const double bound_k = (double)(r->cols / 8 * r->M + 16) * ldexp(1, -23);
    const uint64_t G = r->cols / 8, K = 1ull << r->B;
    for (uint64_t o = r0; o < r1; o++) {
        double dot = 0, mag = 0;
        for (uint64_t i = 0; i < r->cols; i++) dot += (double)dec[o * r->cols + i] * x[i];
        for (uint64_t j = 0; j < G; j++)
            for (uint32_t m = 0; m < r->M; m++) {
                uint32_t c = code_bitwise(r->codes, (o * G + j) * r->M + m, r->B);
                for (int t = 0; t < 8; t++)
                    mag += fabs(f16le(r->scales + 2 * o) * f16le(r->codebooks + ((m * K + c) * 8 + t) * 2) * x[j * 8 + t]);
            }
        ck_assert_msg(fabs(y[o - r0] - dot) <= bound_k * mag + 1e-30, "row %llu: gemv %.9g, decode-then-dot %.9g (bound %g)",
                      (unsigned long long)o, y[o - r0], dot, bound_k * mag);
    }
    free(x);
    free(y);
}

/* Decode, GEMV, history and rel_err checks shared by the schemes. */
static void check_result(const sq_aqlm_result *r, const float *w, const double *H) {
    sq_aqlm_view v;
    sq_err err;
    sq_aqlm_result_view(r, &v);
    ck_assert_int_eq(sq_aqlm_validate(&v, "t", &err), SQ_OK);
    float *ref = reconstruct(r), *dec = malloc(r->rows * r->cols * sizeof(float));
    /* decode in two pieces: row ranges must not matter */
    sq_aqlm_decode_rows(&v, 0, r->rows / 3, dec);
    sq_aqlm_decode_rows(&v, r->rows / 3, r->rows, dec + r->rows / 3 * r->cols);
    ck_assert_msg(!memcmp(ref, dec, r->rows * r->cols * sizeof(float)), "decode differs from the parts' reconstruction");
    check_gemv(&v, dec);
    /* objective (a relative error, so about 1 at most): never rises beyond
     * float64 rounding of the incremental updates, ends below its start */
    ck_assert_uint_ge(r->n_hist, 4);
    for (uint32_t i = 1; i < r->n_hist; i++)
        ck_assert_msg(r->hist[i] <= r->hist[i - 1] + 1e-12, "objective rose at step %u: %.12g -> %.12g", i,
                      r->hist[i - 1], r->hist[i]);
    ck_assert_msg(r->hist[r->n_hist - 1] < 0.95 * r->hist[0], "no progress: %g -> %g", r->hist[0], r->hist[r->n_hist - 1]);
    /* the reported error is the decode's, and the last objective is it too (up to float decode rounding) */
    double e = rel_err(w, dec, r->rows, r->cols, H);
    ck_assert_msg(fabs(e - r->rel_err) <= 1e-9 * e, "rel_err %.12g, recomputed %.12g", r->rel_err, e);
    ck_assert_msg(fabs(e - r->hist[r->n_hist - 1]) <= 1e-4 * e, "final objective %.9g, decode's %.9g",
                  r->hist[r->n_hist - 1], e);
    /* bpw = the parts' bytes */
    double bpw = (double)(r->codes_bytes + r->codebooks_bytes + r->scales_bytes) * 8 / ((double)r->rows * r->cols);
    ck_assert_double_eq_tol(sq_aqlm_bpw(r->rows, r->cols, r->M, r->B, 1), bpw, 1e-12);
    free(ref);
    free(dec);
}

START_TEST(aqlm_2x8_properties_and_determinism) {
    const uint64_t rows = 96, cols = 128;
    double *H = make_xtx(400, cols);
    float *w = make_w(rows, cols);
    sq_aqlm_opts o = {.M = 2, .B = 8, .seed = 7, .n_threads = 1};
    sq_aqlm_result r1, r2, r3;
    sq_err err;
    ck_assert_int_eq(sq_aqlm_quantize(w, rows, cols, H, &o, &r1, &err), SQ_OK);
    check_result(&r1, w, H);
    ck_assert_uint_eq(r1.codes_bytes, rows * cols / 8 * 2);
    ck_assert_uint_eq(r1.codebooks_bytes, 2 * 256 * 8 * 2);
    o.n_threads = 2;
    ck_assert_int_eq(sq_aqlm_quantize(w, rows, cols, H, &o, &r2, &err), SQ_OK);
    ck_assert_msg(same_result(&r1, &r2), "1 and 2 threads differ");
    o.n_threads = 3;
    ck_assert_int_eq(sq_aqlm_quantize(w, rows, cols, H, &o, &r3, &err), SQ_OK);
    ck_assert_msg(same_result(&r1, &r3), "1 and 3 threads differ");
    sq_aqlm_result_free(&r3);
    o.n_threads = 1;
    ck_assert_int_eq(sq_aqlm_quantize(w, rows, cols, H, &o, &r3, &err), SQ_OK);
    ck_assert_msg(same_result(&r1, &r3), "the same seed gave another result");
    ck_assert_int_eq(memcmp(r1.hist, r3.hist, sizeof r1.hist), 0);
    sq_aqlm_result_free(&r1);
    sq_aqlm_result_free(&r2);
    sq_aqlm_result_free(&r3);
    free(H);
    free(w);
}
END_TEST

START_TEST(aqlm_gemv_random_parts) {
    /* valid random parts, wide enough for several table blocks (2x8: 128 groups a block) and
     * rows not a multiple of four */
    const uint32_t shapes[][4] = {{2, 8, 7, 300}, {1, 8, 5, 520}, {3, 3, 6, 40}, {1, 16, 3, 5}};
    for (int s = 0; s < 4; s++) {
        sq_aqlm_view v = {0};
        v.rows = shapes[s][2];
        v.cols = 8ull * shapes[s][3];
        v.M = shapes[s][0];
        v.B = shapes[s][1];
        v.codes_bytes = sq_aqlm_codes_bytes(v.rows, v.cols, v.M, v.B);
        v.codebooks_bytes = sq_aqlm_codebooks_bytes(v.M, v.B);
        v.scales_bytes = sq_aqlm_scales_bytes(v.rows);
        uint8_t *codes = malloc(v.codes_bytes), *cb = malloc(v.codebooks_bytes), *sc = malloc(v.scales_bytes);
        for (uint64_t i = 0; i < v.codes_bytes; i++) codes[i] = (uint8_t)(frand() * 128 + 128);
        uint64_t nbits = v.rows * v.cols / 8 * v.M * v.B;
        if (nbits % 8) codes[v.codes_bytes - 1] &= (uint8_t)((1u << (nbits % 8)) - 1);
        for (uint64_t i = 0; i < v.codebooks_bytes / 2; i++) {
            uint16_t h = sq_f32_to_f16(frand() * 0.1f);
            cb[2 * i] = (uint8_t)h;
            cb[2 * i + 1] = (uint8_t)(h >> 8);
        }
        for (uint64_t i = 0; i < v.rows; i++) {
            uint16_t h = sq_f32_to_f16(1.0f + frand() * 0.5f);
            sc[2 * i] = (uint8_t)h;
            sc[2 * i + 1] = (uint8_t)(h >> 8);
        }
        v.codes = codes;
        v.codebooks = cb;
        v.scales = sc;
        sq_err err;
        ck_assert_int_eq(sq_aqlm_validate(&v, "t", &err), SQ_OK);
        float *dec = malloc(v.rows * v.cols * sizeof(float));
        sq_aqlm_decode_rows(&v, 0, v.rows, dec);
        /* decode against the documented layout read bit by bit */
        sq_aqlm_result fake = {0};
        fake.rows = v.rows;
        fake.cols = v.cols;
        fake.M = v.M;
        fake.B = v.B;
        fake.codes = codes;
        fake.codebooks = cb;
        fake.scales = sc;
        float *ref = reconstruct(&fake);
        ck_assert_int_eq(memcmp(ref, dec, v.rows * v.cols * sizeof(float)), 0);
        check_gemv(&v, dec);
        free(ref);
        free(dec);
        free(codes);
        free(cb);
        free(sc);
    }
}
END_TEST

START_TEST(aqlm_other_schemes) {
    /* 1x16 (more codewords than groups here) and an unaligned 3x5 (15 bits per group) */
    const uint64_t rows = 40, cols = 64;
    double *H = make_xtx(300, cols);
    float *w = make_w(rows, cols);
    const uint32_t schemes[][2] = {{1, 16}, {3, 5}};
    for (int s = 0; s < 2; s++) {
        sq_aqlm_opts o = {.M = schemes[s][0], .B = schemes[s][1], .seed = 3, .n_threads = 1, .max_iters = 6};
        sq_aqlm_result a, b;
        sq_err err;
        ck_assert_int_eq(sq_aqlm_quantize(w, rows, cols, H, &o, &a, &err), SQ_OK);
        check_result(&a, w, H);
        ck_assert_uint_eq(a.codes_bytes, (rows * cols / 8 * o.M * o.B + 7) / 8);
        o.n_threads = 2;
        ck_assert_int_eq(sq_aqlm_quantize(w, rows, cols, H, &o, &b, &err), SQ_OK);
        ck_assert_msg(same_result(&a, &b), "%ux%u: 1 and 2 threads differ", o.M, o.B);
        sq_aqlm_result_free(&a);
        sq_aqlm_result_free(&b);
    }
    free(H);
    free(w);
}
END_TEST

START_TEST(aqlm_shared_codebooks) {
    const uint64_t rows[3] = {48, 32, 40}, cols = 64;
    double *H[3];
    float *w[3];
    for (int i = 0; i < 3; i++) {
        H[i] = make_xtx(250, cols);
        w[i] = make_w(rows[i], cols);
    }
    sq_aqlm_opts o = {.M = 2, .B = 6, .seed = 11, .n_threads = 2, .max_iters = 8};
    sq_aqlm_result r[3], q[3];
    sq_err err;
    ck_assert_int_eq(sq_aqlm_quantize_shared(3, (const float *const *)w, rows, cols, (const double *const *)H, &o, r, &err),
                     SQ_OK);
    o.n_threads = 1;
    ck_assert_int_eq(sq_aqlm_quantize_shared(3, (const float *const *)w, rows, cols, (const double *const *)H, &o, q, &err),
                     SQ_OK);
    double sum = 0;
    for (int i = 0; i < 3; i++) {
        ck_assert_msg(same_result(&r[i], &q[i]), "matrix %d: 1 and 2 threads differ", i);
        ck_assert_int_eq(memcmp(r[i].codebooks, r[0].codebooks, r[0].codebooks_bytes), 0);
        sq_aqlm_view v;
        sq_aqlm_result_view(&r[i], &v);
        ck_assert_int_eq(sq_aqlm_validate(&v, "t", &err), SQ_OK);
        float *dec = reconstruct(&r[i]);
        double e = rel_err(w[i], dec, rows[i], cols, H[i]);
        ck_assert_msg(fabs(e - r[i].rel_err) <= 1e-9 * e, "matrix %d: rel_err %g, recomputed %g", i, r[i].rel_err, e);
        sum += e;
        free(dec);
    }
    /* the objective is the sum of the relative errors */
    ck_assert_msg(fabs(sum - r[0].hist[r[0].n_hist - 1]) <= 1e-4 * sum, "objective %g, sum of errors %g",
                  r[0].hist[r[0].n_hist - 1], sum);
    for (uint32_t i = 1; i < r[0].n_hist; i++) ck_assert(r[0].hist[i] <= r[0].hist[i - 1] + 1e-12);
    /* shared: each matrix carries a third of the codebook */
    double bytes = (double)(r[1].codes_bytes + r[1].scales_bytes) + r[1].codebooks_bytes / 3.0;
    ck_assert_double_eq_tol(sq_aqlm_bpw(rows[1], cols, 2, 6, 3), bytes * 8 / (rows[1] * cols), 1e-12);
    for (int i = 0; i < 3; i++) {
        sq_aqlm_result_free(&r[i]);
        sq_aqlm_result_free(&q[i]);
        free(H[i]);
        free(w[i]);
    }
}
END_TEST

START_TEST(aqlm_bad_input) {
    const uint64_t rows = 16, cols = 24;
    double *H = make_xtx(50, cols);
    float *w = make_w(rows, cols);
    sq_aqlm_result r;
    sq_err err;
    sq_aqlm_opts o = {.M = 2, .B = 4, .max_iters = 2};
    ck_assert_int_eq(sq_aqlm_quantize(w, rows, 20, H, &o, &r, &err), SQ_EUSAGE); /* not a multiple of 8 */
    ck_assert_ptr_nonnull(strstr(err.msg, "multiple"));
    sq_aqlm_opts bad = {.M = 1, .B = 17};
    ck_assert_int_eq(sq_aqlm_quantize(w, rows, cols, H, &bad, &r, &err), SQ_EUSAGE);
    bad = (sq_aqlm_opts){.M = 2, .B = 4, .beam = 17}; /* beam width beyond 16 */
    ck_assert_int_eq(sq_aqlm_quantize(w, rows, cols, H, &bad, &r, &err), SQ_EUSAGE);
    ck_assert_ptr_nonnull(strstr(err.msg, "beam"));
    w[5] = NAN;
    ck_assert_int_eq(sq_aqlm_quantize(w, rows, cols, H, &o, &r, &err), SQ_EUSAGE);
    ck_assert_ptr_nonnull(strstr(err.msg, "not finite"));
    w[5] = 1e5f; /* a row norm beyond f16 */
    ck_assert_int_eq(sq_aqlm_quantize(w, rows, cols, H, &o, &r, &err), SQ_EUSAGE);
    ck_assert_ptr_nonnull(strstr(err.msg, "row 0"));
    w[5] = 0.01f;
    ck_assert_int_eq(sq_aqlm_quantize(w, rows, cols, H, &o, &r, &err), SQ_OK);
    sq_aqlm_view v;
    sq_aqlm_result_view(&r, &v);
    ck_assert_int_eq(sq_aqlm_validate(&v, "t", &err), SQ_OK);
    /* NaN / inf codebook entries and scales */
    uint8_t *cb = malloc(r.codebooks_bytes), *sc = malloc(r.scales_bytes), *codes = malloc(r.codes_bytes + 1);
    memcpy(cb, r.codebooks, r.codebooks_bytes);
    memcpy(sc, r.scales, r.scales_bytes);
    memcpy(codes, r.codes, r.codes_bytes);
    v.codebooks = cb;
    cb[2 * 37] = 0x01;
    cb[2 * 37 + 1] = 0x7e; /* NaN */
    ck_assert_int_eq(sq_aqlm_validate(&v, "layer.x", &err), SQ_ECORRUPT);
    ck_assert_msg(strstr(err.msg, "layer.x") && strstr(err.msg, "NaN") && strstr(err.msg, "entry 4"), "%s", err.msg);
    v.codebooks = r.codebooks;
    v.scales = sc;
    sc[2 * 3] = 0x00;
    sc[2 * 3 + 1] = 0xfc; /* -inf */
    ck_assert_int_eq(sq_aqlm_validate(&v, "t", &err), SQ_ECORRUPT);
    ck_assert_ptr_nonnull(strstr(err.msg, "row 3"));
    v.scales = r.scales;
    /* sizes that do not match the shape */
    v.codebooks_bytes--;
    ck_assert_int_eq(sq_aqlm_validate(&v, "t", &err), SQ_ECORRUPT);
    v.codebooks_bytes++;
    v.codes_bytes++;
    v.codes = codes;
    ck_assert_int_eq(sq_aqlm_validate(&v, "t", &err), SQ_ECORRUPT);
    v.codes_bytes--;
    v.cols = 0;
    ck_assert_int_eq(sq_aqlm_validate(&v, "t", &err), SQ_EUSAGE);
    v.cols = cols;
    v.B = 0;
    ck_assert_int_eq(sq_aqlm_validate(&v, "t", &err), SQ_EUSAGE);
    sq_aqlm_result_free(&r);
    /* padding bits: 3 rows x 1 group x 1 codebook of 5 bits = 15 bits, the 16th must be 0 */
    uint8_t cd[2] = {0xff, 0x7f}, cbk[32 * 8 * 2] = {0}, s3[6] = {0};
    sq_aqlm_view p = {3, 8, 1, 5, cd, 2, cbk, sizeof cbk, s3, 6};
    ck_assert_int_eq(sq_aqlm_validate(&p, "t", &err), SQ_OK);
    cd[1] = 0xff;
    ck_assert_int_eq(sq_aqlm_validate(&p, "t", &err), SQ_ECORRUPT);
    ck_assert_ptr_nonnull(strstr(err.msg, "padding"));
    free(cb);
    free(sc);
    free(codes);
    free(H);
    free(w);
}
END_TEST

/* model.layers.0.self_attn.q_proj of the 34M model with its calibration:
 * 2x8 must beat GPTQ int2 g64 (asym) at a comparable or higher bpw. */
START_TEST(aqlm_beats_gptq_int2_on_real_layer) {
    const char *calib = "/work/calib16.h5";
    if (!have_shared() || access(calib, R_OK)) {
        fprintf(stderr, "skipped: no %s or shared models\n", calib);
        return;
    }
    sq_err err;
    sq_model *m = sq_model_open(shared_path("models/squish-lm-34m"), &err);
    ck_assert_msg(m != NULL, "%s", err.msg);
    const sq_model_tensor *t = sq_model_find(m, "model.layers.0.self_attn.q_proj.weight");
    ck_assert_ptr_nonnull(t);
    const uint64_t cols = t->dims[t->ndim - 1], rows = sq_model_tensor_elems(t) / cols;
    float *w = malloc(rows * cols * sizeof(float));
    ck_assert_int_eq(sq_model_tensor_f32(m, t, w, &err), SQ_OK);
    sq_calib_file *cf = sq_calib_open(calib, &err);
    ck_assert_msg(cf != NULL, "%s", err.msg);
    sq_calib_site site;
    ck_assert_int_eq(sq_calib_read_site(cf, 0, SQ_SITE_ATTN_IN, &site, &err), SQ_OK);
    ck_assert_uint_eq(site.n, cols);

    sq_aqlm_opts o = {.M = 2, .B = 8, .seed = 1, .n_threads = 2};
    sq_aqlm_result r;
    ck_assert_int_eq(sq_aqlm_quantize(w, rows, cols, site.xtx, &o, &r, &err), SQ_OK);
    double bpw_aqlm = sq_aqlm_bpw(rows, cols, 2, 8, 1);

    const sq_codec *c;
    uint32_t p[SQ_NPARAMS];
    ck_assert_int_eq(sq_scheme_parse("int2:g64:asym", &c, p, &err), 0);
    /* the better of plain GPTQ and act-order with static groups (no permutation part) */
    double e_gptq = INFINITY, bpw_gptq = sq_layout_bpw(c, p, rows, cols);
    float *dec = malloc(rows * cols * sizeof(float));
    for (int mode = 0; mode < 2; mode++) {
        sq_encoded g;
        sq_gptq_info info;
        sq_gptq_opts go = {.damp = 0.01, .act_order = mode, .static_groups = mode, .block = 128, .n_threads = 2};
        ck_assert_int_eq(sq_gptq_quantize("q_proj", c, p, w, rows, cols, site.xtx, &go, &g, &info, &err), SQ_OK);
        sq_tview v;
        sq_tview_from_encoded(&g, &v);
        sq_decode_mt(&v, dec, 2);
        double e = rel_err(w, dec, rows, cols, site.xtx);
        if (e < e_gptq) e_gptq = e;
        sq_encoded_free(&g);
    }
    /* the default beam search (8 hypotheses per group) against the greedy search (beam 1): on this layer it
     * must lower the error clearly (layer 0 v_proj with 128 windows: -9%), every objective step still non-increasing */
    sq_aqlm_opts og = o;
    og.beam = 1;
    sq_aqlm_result rg;
    ck_assert_int_eq(sq_aqlm_quantize(w, rows, cols, site.xtx, &og, &rg, &err), SQ_OK);
    for (uint32_t i = 1; i < r.n_hist; i++) ck_assert(r.hist[i] <= r.hist[i - 1] + 1e-12);
    fprintf(stderr, "q_proj 0: aqlm 2x8 rel err %.5f (beam 8), %.5f (greedy) at %.4f bpw (%u iterations); gptq int2:g64 %.5f at %.4f bpw\n",
            r.rel_err, rg.rel_err, bpw_aqlm, r.iters, e_gptq, bpw_gptq);
    ck_assert_msg(r.rel_err < 0.97 * rg.rel_err, "beam 8 %.5f is not clearly below greedy %.5f", r.rel_err, rg.rel_err);
    sq_aqlm_result_free(&rg);
    ck_assert_msg(bpw_aqlm <= bpw_gptq + 0.05, "aqlm %.4f bpw is not comparable to gptq's %.4f", bpw_aqlm, bpw_gptq);
    ck_assert_msg(r.rel_err < e_gptq, "aqlm 2x8 %.5f is not below gptq int2 g64 %.5f", r.rel_err, e_gptq);
    free(dec);
    sq_aqlm_result_free(&r);
    sq_calib_site_free(&site);
    sq_calib_close(cf);
    free(w);
    sq_model_release(m, t);
    sq_model_close(m);
}
END_TEST

int main(void) {
    Suite *s = suite_create("aqlm");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 900);
    tcase_add_test(tc, aqlm_2x8_properties_and_determinism);
    tcase_add_test(tc, aqlm_gemv_random_parts);
    tcase_add_test(tc, aqlm_other_schemes);
    tcase_add_test(tc, aqlm_shared_codebooks);
    tcase_add_test(tc, aqlm_bad_input);
    tcase_add_test(tc, aqlm_beats_gptq_int2_on_real_layer);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
