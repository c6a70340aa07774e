/* GPTQ, AWQ's error measure and the codecs' input transforms: properties
 * that must hold whatever the data (GPTQ with a diagonal Hessian is RTN bit
 * for bit; with a correlated Hessian it lowers the output error; results do
 * not depend on the thread count; damping retries and the RTN fallback). */
#include <math.h>

#include "awq.h"
#include "gptq.h"
#include "runtime.h"
#include "testutil.h"
#include "xform/hadamard.h"

static uint64_t rng = 88172645463325252ull;
static float frand(void) { /* xorshift64, uniform in [-1, 1) */
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((double)(rng >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

/* X [T][n] with correlated columns (a random mixing of a few sources, plus
 * a heavy-tailed scale per channel, like real activations). */
static float *make_acts(uint32_t T, uint32_t n) {
    float *x = malloc((size_t)T * n * sizeof(float)), *mix = malloc((size_t)8 * n * sizeof(float));
    for (uint32_t i = 0; i < 8 * n; i++) mix[i] = frand();
    for (uint32_t t = 0; t < T; t++) {
        float src[8];
        for (int k = 0; k < 8; k++) src[k] = frand();
        for (uint32_t j = 0; j < n; j++) {
            float v = 0.3f * frand();
            for (int k = 0; k < 8; k++) v += src[k] * mix[k * n + j];
            x[(size_t)t * n + j] = v * (j % 17 == 0 ? 8.0f : 1.0f);
        }
    }
    free(mix);
    return x;
}

static double *xtx_of(const float *x, uint32_t T, uint32_t n) {
    double *H = calloc((size_t)n * n, sizeof(double));
    for (uint32_t t = 0; t < T; t++)
        for (uint32_t i = 0; i < n; i++)
            for (uint32_t j = 0; j < n; j++) H[(size_t)i * n + j] += (double)x[(size_t)t * n + i] * x[(size_t)t * n + j];
    return H;
}

static float *hfloat(const double *H, uint32_t n) {
    float *f = malloc((size_t)n * n * sizeof(float));
    for (size_t i = 0; i < (size_t)n * n; i++) f[i] = (float)H[i];
    return f;
}

static float *decode(const sq_encoded *e) {
    float *d = malloc(e->rows * e->cols * sizeof(float));
    sq_tview v;
    sq_tview_from_encoded(e, &v);
    sq_decode_mt(&v, d, 1);
    return d;
}

static int same_parts(const sq_encoded *a, const sq_encoded *b) {
    if (a->nparts != b->nparts) return 0;
    for (int i = 0; i < a->nparts; i++)
        if (a->bytes[i] != b->bytes[i] || memcmp(a->data[i], b->data[i], a->bytes[i])) return 0;
    return 1;
}

START_TEST(hessian_err_is_output_mse) {
    const uint32_t T = 200, n = 96, rows = 24;
    float *x = make_acts(T, n), *a = malloc(rows * n * 4), *b = malloc(rows * n * 4);
    for (uint32_t i = 0; i < rows * n; i++) {
        a[i] = frand();
        b[i] = frand();
    }
    double *H = xtx_of(x, T, n), direct = 0;
    float *Hf = hfloat(H, n);
    for (uint32_t t = 0; t < T; t++)
        for (uint32_t r = 0; r < rows; r++) {
            double y = 0;
            for (uint32_t j = 0; j < n; j++) y += ((double)a[r * n + j] - b[r * n + j]) * x[(size_t)t * n + j];
            direct += y * y;
        }
    double viaH = sq_hessian_err(a, b, rows, n, Hf);
    ck_assert_msg(fabs(viaH - direct) / direct < 1e-4, "tr(D H Dt) = %g, sum of squared outputs = %g", viaH, direct);
    free(x); free(a); free(b); free(H); free(Hf);
}
END_TEST

START_TEST(gptq_diagonal_hessian_is_rtn) {
    /* with a diagonal H no error is propagated: GPTQ must equal RTN exactly */
    const uint64_t rows = 70, cols = 200; /* ragged: 200 = 128 + 72 */
    const char *schemes[] = {"int4:g128:asym", "int3:g64:sym", "int8:pc:sym", "int2:g32:asym"};
    float *w = malloc(rows * cols * 4);
    for (uint64_t i = 0; i < rows * cols; i++) w[i] = frand() * (i % 7 == 0 ? 3.0f : 1.0f);
    double *H = calloc(cols * cols, sizeof(double));
    for (uint64_t i = 0; i < cols; i++) H[i * cols + i] = 1.0 + (double)(i % 5);
    for (int s = 0; s < 4; s++) {
        const sq_codec *c;
        uint32_t p[SQ_NPARAMS];
        sq_err err;
        ck_assert_int_eq(sq_scheme_parse(schemes[s], &c, p, &err), 0);
        sq_encoded g, r;
        sq_gptq_info info;
        sq_gptq_opts o = {.damp = 0.01, .act_order = 0, .static_groups = 0, .block = 128, .n_threads = 2};
        ck_assert_int_eq(sq_gptq_quantize("t", c, p, w, rows, cols, H, &o, &g, &info, &err), 0);
        ck_assert_int_eq(sq_encode(c, p, w, rows, cols, 1, &r, &err), 0);
        ck_assert_msg(same_parts(&g, &r), "%s: GPTQ with a diagonal Hessian differs from RTN", schemes[s]);
        ck_assert_int_eq(info.retries, 0);
        sq_encoded_free(&g);
        sq_encoded_free(&r);
    }
    free(w); free(H);
}
END_TEST

START_TEST(gptq_lowers_output_error_and_is_deterministic) {
    const uint32_t T = 600, n = 256, rows = 150;
    float *x = make_acts(T, n), *w = malloc(rows * n * 4);
    for (uint32_t i = 0; i < rows * n; i++) w[i] = frand() * 0.05f;
    double *H = xtx_of(x, T, n);
    float *Hf = hfloat(H, n);
    const sq_codec *c;
    uint32_t p[SQ_NPARAMS];
    sq_err err;
    ck_assert_int_eq(sq_scheme_parse("int3:g128:asym", &c, p, &err), 0);
    sq_encoded r;
    ck_assert_int_eq(sq_encode(c, p, w, rows, n, 1, &r, &err), 0);
    float *dr = decode(&r);
    double e_rtn = sq_hessian_err(dr, w, rows, n, Hf);
    for (int mode = 0; mode < 3; mode++) { /* plain, act-order, act-order + static groups */
        sq_gptq_opts o1 = {.damp = 0.01, .act_order = mode > 0, .static_groups = mode == 2, .block = 128, .n_threads = 1}, o3 = o1;
        o3.n_threads = 3;
        o3.block = 32; /* the block size must not change the result either */
        sq_encoded g1, g3;
        sq_gptq_info info;
        ck_assert_int_eq(sq_gptq_quantize("t", c, p, w, rows, n, H, &o1, &g1, &info, &err), 0);
        ck_assert_int_eq(info.permuted, mode == 1);
        ck_assert_int_eq(sq_gptq_quantize("t", c, p, w, rows, n, H, &o3, &g3, &info, &err), 0);
        ck_assert_msg(same_parts(&g1, &g3), "mode %d: 1 thread/block 128 and 3 threads/block 32 differ", mode);
        float *dg = decode(&g1);
        double e_g = sq_hessian_err(dg, w, rows, n, Hf);
        ck_assert_msg(e_g < 0.8 * e_rtn, "mode %d: GPTQ output error %g not clearly below RTN's %g", mode, e_g, e_rtn);
        if (mode == 1) { /* perm sorts columns by decreasing H diagonal */
            sq_tview v;
            sq_tview_from_encoded(&g1, &v);
            ck_assert_ptr_nonnull(sq_tview_perm(&v));
            for (uint32_t j = 1; j < n; j++)
                ck_assert(H[(size_t)sq_tview_perm(&v)[j - 1] * n + sq_tview_perm(&v)[j - 1]] >= H[(size_t)sq_tview_perm(&v)[j] * n + sq_tview_perm(&v)[j]]);
        }
        free(dg);
        sq_encoded_free(&g1);
        sq_encoded_free(&g3);
    }
    free(dr); sq_encoded_free(&r);
    free(x); free(w); free(H); free(Hf);
}
END_TEST

/* Generated from the registry: every codec whose encoder offers an
 * error-feedback quantizer is driven by GPTQ, and beats its own RTN on the
 * output error; results do not depend on the thread count. */
START_TEST(gptq_drives_every_vq_codec) {
    const uint32_t T = 600, n = 256, rows = 64;
    float *x = make_acts(T, n), *w = malloc(rows * n * 4);
    for (uint32_t i = 0; i < rows * n; i++) w[i] = frand() * 0.05f;
    double *H = xtx_of(x, T, n);
    float *Hf = hfloat(H, n);
    int driven = 0;
    for (const sq_codec *const *cp = sq_codec_list(); *cp; cp++) {
        const sq_codec *c = *cp;
        uint32_t p[SQ_NPARAMS];
        sq_err err;
        const sq_codec *pc;
        ck_assert_int_eq(sq_scheme_parse(c->name, &pc, p, &err), 0);
        const sq_vq_ops *ops = c->enc ? c->enc->vq : NULL;
        if (!ops || (ops->supports && !ops->supports(c, p))) continue;
        sq_encoded r, g1, g3;
        sq_gptq_info info;
        sq_gptq_opts o1 = {.damp = 0.01, .act_order = 1, .block = 128, .n_threads = 1}, o3 = o1;
        o3.n_threads = 3;
        ck_assert_int_eq(sq_encode(c, p, w, rows, n, 1, &r, &err), 0);
        ck_assert_msg(sq_gptq_quantize("t", c, p, w, rows, n, H, &o1, &g1, &info, &err) == 0, "%s: %s", c->name, err.msg);
        ck_assert_int_eq(sq_gptq_quantize("t", c, p, w, rows, n, H, &o3, &g3, &info, &err), 0);
        ck_assert_msg(same_parts(&g1, &g3), "%s: 1 and 3 threads differ", c->name);
        float *dr = decode(&r), *dg = decode(&g1);
        double e_rtn = sq_hessian_err(dr, w, rows, n, Hf), e_g = sq_hessian_err(dg, w, rows, n, Hf);
        ck_assert_msg(e_g < 0.9 * e_rtn, "%s: GPTQ output error %g not below RTN's %g", c->name, e_g, e_rtn);
        free(dr); free(dg);
        sq_encoded_free(&r); sq_encoded_free(&g1); sq_encoded_free(&g3);
        driven++;
    }
    ck_assert_int_ge(driven, 14); /* int2/3/4/8, nf4, five mini-floats, five MX */
    free(x); free(w); free(H); free(Hf);
}
END_TEST

/* The coordinate descent after GPTQ (scalar codecs): with the group
 * statistics fixed it only moves codes, so no row's calibrated loss
 * e (H + lam I) eᵀ rises, the total falls, and with it on or off the result
 * does not depend on the thread count. Row losses are summed here in
 * float64 from the decoded weights, independently of the encoder. */
START_TEST(gptq_descent_lowers_each_row) {
    const uint32_t T = 600, n = 256, rows = 70;
    float *x = make_acts(T, n), *w = malloc(rows * n * 4);
    for (uint32_t i = 0; i < rows * n; i++) w[i] = frand() * 0.05f;
    double *H = xtx_of(x, T, n), mean = 0;
    for (uint32_t i = 0; i < n; i++) mean += H[(size_t)i * n + i];
    mean /= n;
    const char *schemes[] = {"int3:g128:asym", "int4:g32:sym", "nf4:g64", "fp4_e2m1:g32", "int2:g64:asym"};
    for (size_t s = 0; s < sizeof schemes / sizeof schemes[0]; s++)
        for (int mode = 0; mode < 3; mode++) {
            const sq_codec *c;
            uint32_t p[SQ_NPARAMS];
            sq_err err;
            ck_assert_int_eq(sq_scheme_parse(schemes[s], &c, p, &err), 0);
            sq_gptq_opts o = {.damp = 0.01, .act_order = mode > 0, .static_groups = mode == 2, .block = 128, .n_threads = 1, .refine = -1};
            sq_encoded g0, g1, g3;
            sq_gptq_info i0, i1, i3;
            ck_assert_int_eq(sq_gptq_quantize("t", c, p, w, rows, n, H, &o, &g0, &i0, &err), 0);
            o.refine = 0; /* the default */
            ck_assert_int_eq(sq_gptq_quantize("t", c, p, w, rows, n, H, &o, &g1, &i1, &err), 0);
            o.n_threads = 3;
            ck_assert_int_eq(sq_gptq_quantize("t", c, p, w, rows, n, H, &o, &g3, &i3, &err), 0);
            ck_assert_msg(same_parts(&g1, &g3), "%s mode %d: 1 and 3 threads differ", schemes[s], mode);
            ck_assert_uint_eq(i0.refine_moves, 0);
            ck_assert_uint_gt(i1.refine_moves, 0);
            float *d0 = decode(&g0), *d1 = decode(&g1);
            const double lam = i1.damp_used * mean;
            double l0 = 0, l1 = 0;
            for (uint32_t r = 0; r < rows; r++) {
                double a0 = 0, a1 = 0;
                for (uint32_t i = 0; i < n; i++) {
                    const double e0 = (double)w[r * n + i] - d0[r * n + i], e1 = (double)w[r * n + i] - d1[r * n + i];
                    double h0 = lam * e0, h1 = lam * e1;
                    for (uint32_t j = 0; j < n; j++) {
                        h0 += H[(size_t)i * n + j] * ((double)w[r * n + j] - d0[r * n + j]);
                        h1 += H[(size_t)i * n + j] * ((double)w[r * n + j] - d1[r * n + j]);
                    }
                    a0 += e0 * h0;
                    a1 += e1 * h1;
                }
                ck_assert_msg(a1 <= a0 * (1 + 1e-6), "%s mode %d row %u: %g after descent, %g before", schemes[s], mode, r, a1, a0);
                l0 += a0;
                l1 += a1;
            }
            fprintf(stderr, "%s mode %d: GPTQ %.4e, + descent %.4e (%.3f, %llu moves)\n", schemes[s], mode, l0, l1, l1 / l0,
                    (unsigned long long)i1.refine_moves);
            ck_assert_double_lt(l1, l0 * 0.999);
            free(d0);
            free(d1);
            sq_encoded_free(&g0);
            sq_encoded_free(&g1);
            sq_encoded_free(&g3);
        }
    free(x); free(w); free(H);
}
END_TEST

START_TEST(gptq_damping_retry_and_fallback) {
    const uint64_t n = 64, rows = 8;
    float *w = malloc(rows * n * 4);
    for (uint64_t i = 0; i < rows * n; i++) w[i] = frand();
    const sq_codec *c;
    uint32_t p[SQ_NPARAMS];
    sq_err err;
    ck_assert_int_eq(sq_scheme_parse("int4:g32:sym", &c, p, &err), 0);
    /* indefinite by 5% of the diagonal: damping 0.01 fails, 0.1 succeeds */
    double *H = calloc(n * n, sizeof(double));
    for (uint64_t i = 0; i < n; i++) H[i * n + i] = 1.0;
    H[0 * n + 1] = H[1 * n + 0] = 1.05;
    sq_encoded g;
    sq_gptq_info info;
    sq_gptq_opts o = {.damp = 0.01, .act_order = 0, .static_groups = 0, .block = 128, .n_threads = 1};
    ck_assert_int_eq(sq_gptq_quantize("t", c, p, w, rows, n, H, &o, &g, &info, &err), 0);
    ck_assert_int_eq(info.retries, 1);
    ck_assert(fabs(info.damp_used - 0.1) < 1e-12);
    ck_assert_int_eq(info.fell_back, 0);
    sq_encoded_free(&g);
    /* hopeless (indefinite by far more than the diagonal): RTN fallback */
    H[0 * n + 1] = H[1 * n + 0] = 5.0;
    ck_assert_int_eq(sq_gptq_quantize("t", c, p, w, rows, n, H, &o, &g, &info, &err), 0);
    ck_assert_int_eq(info.fell_back, 1);
    sq_encoded r;
    ck_assert_int_eq(sq_encode(c, p, w, rows, n, 1, &r, &err), 0);
    ck_assert(same_parts(&g, &r));
    sq_encoded_free(&g);
    sq_encoded_free(&r);
    /* dead inputs (zero diagonal) are counted and do not break the factorization */
    memset(H, 0, n * n * sizeof(double));
    for (uint64_t i = 0; i < n; i += 2) H[i * n + i] = 2.0;
    ck_assert_int_eq(sq_gptq_quantize("t", c, p, w, rows, n, H, &o, &g, &info, &err), 0);
    ck_assert_uint_eq(info.dead, n / 2);
    sq_encoded_free(&g);
    /* codecs without an error-feedback quantizer, or options it cannot drive, are refused */
    const char *refused[] = {"f16", "nf4:dq", "fp8_e4m3:pt", NULL};
    for (int k = 0; refused[k]; k++) {
        ck_assert_int_eq(sq_scheme_parse(refused[k], &c, p, &err), 0);
        ck_assert_int_eq(sq_gptq_quantize("t", c, p, w, rows, n, H, &o, &g, &info, &err), SQ_EUSAGE);
        ck_assert_ptr_nonnull(strstr(err.msg, "error-feedback"));
    }
    free(w); free(H);
}
END_TEST

/* The Hadamard links on both sides: W' = Ĥ·diag(t)·W·diag(s)·Ĥᵀ stored
 * (rows 48 = 12·4 and cols 40 = 20·2 take the Paley factors); decode, the
 * GEMVs (single row range too) and the runtime matmul give W's results, and
 * the links go after perm in the chain (out of order is refused). */
START_TEST(hadamard_links_round_trip) {
    const uint64_t rows = 48, cols = 40;
    float *w = malloc(rows * cols * 4), *ws = malloc(rows * cols * 4), *x = malloc(2 * cols * 4), *col = malloc(rows * 4);
    uint8_t sin_[5], sout[6];
    sq_rht_signs(7, cols, sin_);
    sq_rht_signs(8, rows, sout);
    for (uint64_t i = 0; i < rows * cols; i++) w[i] = frand();
    for (uint64_t i = 0; i < 2 * cols; i++) x[i] = frand();
    memcpy(ws, w, rows * cols * 4);
    for (uint64_t r = 0; r < rows; r++) sq_rht_apply(sin_, ws + r * cols, cols); /* W·diag(s)·Ĥᵀ, row by row */
    for (uint64_t j = 0; j < cols; j++) { /* Ĥ·diag(t)·(.), column by column */
        for (uint64_t r = 0; r < rows; r++) col[r] = ws[r * cols + j];
        sq_rht_apply(sout, col, rows);
        for (uint64_t r = 0; r < rows; r++) ws[r * cols + j] = col[r];
    }
    const sq_codec *c;
    uint32_t p[SQ_NPARAMS];
    sq_err err;
    ck_assert_int_eq(sq_scheme_parse("f32", &c, p, &err), 0);
    sq_encoded e;
    ck_assert_int_eq(sq_encode(c, p, ws, rows, cols, 1, &e, &err), 0);
    ck_assert_int_eq(sq_encoded_add_xform(&e, SQ_XFORM_RHT_IN, sin_, &err), 0);
    ck_assert_int_eq(sq_encoded_add_xform(&e, SQ_XFORM_PERM, sin_, &err), SQ_EUSAGE); /* perm comes first */
    ck_assert_int_eq(sq_encoded_add_xform(&e, SQ_XFORM_RHT_OUT, sout, &err), 0);
    ck_assert_int_eq(e.nparts, 3);
    ck_assert_uint_eq(e.bytes[1], 5);
    ck_assert_uint_eq(e.bytes[2], 6);
    char name[64];
    sq_scheme_format(c, e.params, name, sizeof name);
    ck_assert_str_eq(name, "f32+rht_in+rht_out");
    float *d = decode(&e);
    for (uint64_t i = 0; i < rows * cols; i++) ck_assert_msg(fabsf(d[i] - w[i]) <= 1e-5f, "decode at %llu: %g vs %g", (unsigned long long)i, d[i], w[i]);
    sq_tview v;
    sq_tview_from_encoded(&e, &v);
    float y[48], y2[48], ym[2 * 48], dr[3 * 40];
    sq_gemv_mt(&v, x, y, 2);
    ck_assert_int_eq(sq_gemv(&v, x, y2, 5, 9), 0);
    ck_assert_int_eq(sq_decode_rows(&v, 10, 13, dr), 0);
    ck_assert_int_eq(memcmp(dr, d + 10 * cols, 3 * cols * 4), 0);
    sq_rt_matmul(&v, x, 2, ym, 2);
    for (uint64_t r = 0; r < rows; r++)
        for (int t = 0; t < 2; t++) {
            double ref = 0, mag = 0;
            for (uint64_t j = 0; j < cols; j++) {
                ref += (double)w[r * cols + j] * x[t * cols + j];
                mag += fabs((double)w[r * cols + j] * x[t * cols + j]);
            }
            ck_assert_msg(fabs(ym[t * rows + r] - ref) <= 1e-5 * mag, "matmul row %llu", (unsigned long long)r);
            if (t == 0) ck_assert_msg(fabs(y[r] - ref) <= 1e-5 * mag, "gemv row %llu", (unsigned long long)r);
            if (t == 0 && r >= 5 && r < 9) ck_assert_msg(y2[r] == y[r], "gemv rows 5..9, row %llu", (unsigned long long)r);
        }
    free(d); sq_encoded_free(&e);
    free(w); free(ws); free(x); free(col);
}
END_TEST

START_TEST(input_transforms_round_trip) {
    /* W' = W[:, perm] * s stored; decode, GEMV and the runtime matmul must all give W's results */
    const uint64_t rows = 33, cols = 96;
    float *w = malloc(rows * cols * 4), *ws = malloc(rows * cols * 4), *x = malloc(3 * cols * 4);
    uint32_t *perm = malloc(cols * 4);
    float *s = malloc(cols * 4);
    for (uint64_t j = 0; j < cols; j++) {
        perm[j] = (uint32_t)((j * 37 + 5) % cols); /* 37 is prime to 96: a permutation */
        s[j] = 0.5f + (float)(j % 4);
    }
    for (uint64_t i = 0; i < rows * cols; i++) w[i] = frand();
    for (uint64_t i = 0; i < 3 * cols; i++) x[i] = frand();
    for (uint64_t r = 0; r < rows; r++)
        for (uint64_t j = 0; j < cols; j++) ws[r * cols + j] = w[r * cols + perm[j]] * s[j];
    const sq_codec *c;
    uint32_t p[SQ_NPARAMS];
    sq_err err;
    ck_assert_int_eq(sq_scheme_parse("f32", &c, p, &err), 0); /* lossless: results comparable exactly */
    sq_encoded e;
    ck_assert_int_eq(sq_encode(c, p, ws, rows, cols, 1, &e, &err), 0);
    ck_assert_int_eq(sq_encoded_set_xform(&e, perm, s, &err), 0);
    ck_assert_uint_eq(e.params[SQ_P_XFORM], SQ_XF_PERM | SQ_XF_IN_SCALE);
    ck_assert_int_eq(e.nparts, 3);
    char name[64];
    sq_scheme_format(c, e.params, name, sizeof name);
    ck_assert_str_eq(name, "f32+perm+in_scale");
    float *d = decode(&e);
    for (uint64_t i = 0; i < rows * cols; i++) ck_assert_msg(fabsf(d[i] - w[i]) <= 1e-6f * fabsf(w[i]), "decode at %llu", (unsigned long long)i);
    sq_tview v;
    sq_tview_from_encoded(&e, &v);
    float y[33], ym[3 * 33];
    sq_gemv_mt(&v, x, y, 2);
    sq_rt_matmul(&v, x, 3, ym, 2);
    for (uint64_t r = 0; r < rows; r++) {
        for (int t = 0; t < 3; t++) {
            double ref = 0, mag = 0;
            for (uint64_t j = 0; j < cols; j++) {
                ref += (double)w[r * cols + j] * x[t * cols + j];
                mag += fabs((double)w[r * cols + j] * x[t * cols + j]);
            }
            ck_assert_msg(fabs(ym[t * rows + r] - ref) <= 1e-5 * mag, "matmul row %llu", (unsigned long long)r);
            if (t == 0) ck_assert_msg(fabs(y[r] - ref) <= 1e-5 * mag, "gemv row %llu", (unsigned long long)r);
        }
    }
    free(d); sq_encoded_free(&e);
    free(w); free(ws); free(x); free(perm); free(s);
}
END_TEST

START_TEST(bad_transform_parts_are_refused) {
    /* a stored perm that is not a permutation, or a zero in_scale, must not reach the kernels */
    const uint64_t rows = 4, cols = 64;
    float w[4 * 64];
    for (int i = 0; i < 4 * 64; i++) w[i] = frand();
    const sq_codec *c;
    uint32_t p[SQ_NPARAMS];
    sq_err err;
    ck_assert_int_eq(sq_scheme_parse("int8:pc:sym", &c, p, &err), 0);
    for (int bad = 0; bad < 3; bad++) {
        uint32_t perm[64];
        float s[64];
        for (int j = 0; j < 64; j++) {
            perm[j] = (uint32_t)(63 - j);
            s[j] = 1.0f;
        }
        if (bad == 0) perm[5] = perm[6];   /* duplicate */
        if (bad == 1) perm[7] = 64;        /* out of range */
        if (bad == 2) s[3] = 0.0f;         /* zero scale */
        sq_encoded e;
        ck_assert_int_eq(sq_encode(c, p, w, rows, cols, 1, &e, &err), 0);
        ck_assert_int_eq(sq_encoded_set_xform(&e, perm, s, &err), 0);
        const char *dir = tmpdir();
        char path[512];
        snprintf(path, sizeof path, "%s/x.squizd", dir);
        sq_writer *wr = sq_writer_open(path, NULL, &err);
        ck_assert_ptr_nonnull(wr);
        uint64_t dims[2] = {rows, cols};
        ck_assert_int_eq(sq_writer_begin_tensor(wr, "t", 2, dims, SQ_DT_F32, c->id, e.params, &err), 0);
        for (int i = 0; i < e.nparts; i++)
            ck_assert_int_eq(sq_writer_add_part(wr, e.spec[i].name, e.spec[i].dtype, e.spec[i].ndim, e.spec[i].dims,
                                                e.data[i], e.bytes[i], SQ_COMP_NONE, &err), 0);
        ck_assert_int_eq(sq_writer_end_tensor(wr, &err), 0);
        ck_assert_int_eq(sq_writer_commit(wr, &err), 0);
        sq_file *f = sq_open(path, &err);
        ck_assert_ptr_nonnull(f);
        sq_tview v;
        void *owned[SQ_CODEC_MAX_PARTS];
        ck_assert_int_eq(sq_tview_open(f, sq_file_tensor(f, 0), 0, &v, owned, &err), SQ_ECORRUPT);
        ck_assert_ptr_nonnull(strstr(err.msg, bad == 2 ? "in_scale" : "perm"));
        sq_close(f);
        unlink(path);
        rmdir(dir);
        sq_encoded_free(&e);
    }
}
END_TEST

/* sq_rt_matmul (prefill, calibration) gives the bits of its definition on
 * whatever path SQUISH_ISA selects: per output 8 lanes of fused
 * multiply-adds over whole blocks of 8, summed ((l0+l4)+(l2+l6)) +
 * ((l1+l5)+(l3+l7)), then the tail by product and sum. Ragged shapes: a
 * partial block of 16 rows, a tail of 5 columns, 5 tokens (3 + 1 + 1). */
START_TEST(rt_matmul_is_its_definition) {
    /* the lane GEMM's ragged blocks and tiles: 70 rows (AVX-512: 64 + 6,
     * AVX2: 4 x 16 + 6), 33 rows (AVX-512: vectors of 16 + 16 + 1 + none),
     * 29 tokens (4 x 6 + 5), 12 tokens (2 x 6); 5 tokens take the
     * dot-product kernels */
    static const uint64_t shapes[][3] = {{37, 45, 5}, {70, 45, 29}, {33, 16, 12}};
    for (size_t sh = 0; sh < sizeof shapes / sizeof shapes[0]; sh++) {
        const uint64_t rows = shapes[sh][0], cols = shapes[sh][1], T = shapes[sh][2];
        float *w = malloc(rows * cols * 4), *x = malloc(T * cols * 4), *y = malloc(T * rows * 4);
        for (uint64_t i = 0; i < rows * cols; i++) w[i] = frand();
        for (uint64_t i = 0; i < T * cols; i++) x[i] = frand() * (i % 11 ? 1.0f : 1e3f);
        const sq_codec *c;
        uint32_t p[SQ_NPARAMS];
        sq_err err;
        ck_assert_int_eq(sq_scheme_parse("f32", &c, p, &err), 0);
        sq_encoded e;
        ck_assert_int_eq(sq_encode(c, p, w, rows, cols, 1, &e, &err), 0);
        sq_tview v;
        sq_tview_from_encoded(&e, &v);
        for (int threads = 1; threads <= 3; threads += 2) {
            ck_assert_int_eq(sq_rt_matmul(&v, x, (uint32_t)T, y, threads), 0);
            for (uint64_t t = 0; t < T; t++)
                for (uint64_t r = 0; r < rows; r++) {
                    float l[8] = {0};
                    uint64_t k = 0;
                    for (; k + 8 <= cols; k += 8)
                        for (int q = 0; q < 8; q++) l[q] = fmaf(w[r * cols + k + q], x[t * cols + k + q], l[q]);
                    float want = ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]));
                    for (; k < cols; k++) {
                        volatile float pr = w[r * cols + k] * x[t * cols + k];
                        want += pr;
                    }
                    ck_assert_msg(!memcmp(&y[t * rows + r], &want, 4), "token %llu row %llu: %.9g, want %.9g",
                                  (unsigned long long)t, (unsigned long long)r, y[t * rows + r], want);
                }
        }
        sq_encoded_free(&e);
        free(w), free(x), free(y);
    }
}
END_TEST

START_TEST(gptq_hinv_factor) {
    /* UᵀU must be the inverse of the damped Hessian */
    const uint32_t n = 48, T = 120;
    float *x = make_acts(T, n);
    double *H = xtx_of(x, T, n);
    float *U = malloc((size_t)n * n * sizeof(float));
    sq_gptq_info info = {0};
    sq_err err;
    ck_assert_int_eq(sq_gptq_hinv(H, n, NULL, 0.01, U, 1, &info, &err), 0);
    double mean = 0;
    for (uint32_t i = 0; i < n; i++) mean += H[(size_t)i * n + i] / n;
    double maxerr = 0;
    for (uint32_t i = 0; i < n; i++)
        for (uint32_t j = 0; j < n; j++) { /* (UᵀU)(H + λI) = I */
            double acc = 0;
            for (uint32_t k = 0; k < n; k++) {
                double utu = 0;
                for (uint32_t m = 0; m < n; m++) utu += (double)U[(size_t)m * n + i] * U[(size_t)m * n + k];
                acc += utu * (H[(size_t)k * n + j] + (k == j ? 0.01 * mean : 0));
            }
            maxerr = fmax(maxerr, fabs(acc - (i == j ? 1.0 : 0.0)));
        }
    ck_assert_msg(maxerr < 1e-3, "UᵀU (H + damp) differs from I by %g", maxerr);
    free(x); free(H); free(U);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("quant");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, hessian_err_is_output_mse);
    tcase_add_test(tc, gptq_diagonal_hessian_is_rtn);
    tcase_add_test(tc, gptq_lowers_output_error_and_is_deterministic);
    tcase_add_test(tc, gptq_descent_lowers_each_row);
    tcase_add_test(tc, gptq_damping_retry_and_fallback);
    tcase_add_test(tc, gptq_drives_every_vq_codec);
    tcase_add_test(tc, gptq_hinv_factor);
    tcase_add_test(tc, rt_matmul_is_its_definition);
    tcase_add_test(tc, input_transforms_round_trip);
    tcase_add_test(tc, hadamard_links_round_trip);
    tcase_add_test(tc, bad_transform_parts_are_refused);
    suite_add_tcase(s, tc);
    return s;
}
RUN_SUITE(suite())
