/* The quip codec (QuIP#, issue 19 phase 2) through the codec architecture:
 * scheme grammar and params, the encoder through sq_quant_encode (parts,
 * transform links, bpw, thread-count independence), decode and GEMV through
 * the transform chain against the phase-1 reference decode (which applies
 * the signs itself), the AVX2 GEMV against the portable one bit for bit,
 * the codec's check, the refusals, and the generic error-feedback driver
 * (gptq.c, BlockLDLQ with dim 8) against the separate LDLQ driver. */
#include <math.h>

#include "codecs/codecs.h" /* sq_codec_check_params */
#include "codecs/quip/e8p.h"
#include "codecs/quip/quip_codec.h"
#include "e8p_encode.h"
#include "encoders.h"
#include "gptq.h"
#include "ldlq.h"
#include "quip.h"
#include "squish/fp.h"
#include "testutil.h"

static double gauss(void) {
    double g = 0;
    for (int k = 0; k < 12; k++) g += urand();
    return g - 6;
}

static double *random_hessian(uint64_t n, uint64_t T) {
    double *H = calloc(n * n, 8), *x = malloc(n * 8);
    for (uint64_t t = 0; t < T; t++) {
        double common = gauss();
        for (uint64_t j = 0; j < n; j++) x[j] = (0.5 * common + gauss()) * (j % 13 == 0 ? 5 : 1);
        for (uint64_t i = 0; i < n; i++)
            for (uint64_t j = 0; j < n; j++) H[i * n + j] += x[i] * x[j];
    }
    free(x);
    return H;
}

START_TEST(scheme_grammar_and_params) {
    const sq_codec *c;
    uint32_t p[SQ_NPARAMS];
    sq_err err;
    char buf[64];
    ck_assert_int_eq(sq_scheme_parse("quip", &c, p, &err), 0);
    ck_assert_ptr_eq(c, sq_codec_by_id(96));
    ck_assert_int_eq(c->family, SQ_FAMILY_LATTICE);
    ck_assert_uint_eq(p[4], 2);
    /* quip:3 and quip:4 take the nested stages (params[5] = 1), :rvq quip-sharp's residual ones */
    for (uint32_t b = 2; b <= 4; b++)
        for (int rvq = 0; rvq <= (b > 2); rvq++) {
            snprintf(buf, sizeof buf, "quip:%u%s", b, rvq ? ":rvq" : "");
            ck_assert_int_eq(sq_scheme_parse(buf, &c, p, &err), 0);
            ck_assert_uint_eq(p[4], b);
            for (int i = 0; i < SQ_NPARAMS; i++)
                ck_assert_uint_eq(p[i], i == 4 ? b : i == SQ_QUIP_P_NESTED ? (uint32_t)(b > 2 && !rvq) : 0);
            char out[64];
            sq_scheme_format(c, p, out, sizeof out);
            ck_assert_str_eq(out, buf);
            ck_assert_int_eq(sq_codec_check_params(c, p, &err, "t"), 0);
        }
    const char *bad[] = {"quip:5", "quip:1", "quip:22", "quip:g64", "quip:pc", "quip:asym", "quip:s32", "quip:dq",
                         "quip:rvq", "quip:2:rvq", "quip:rvq:4", "quip:4:rvq2", NULL};
    for (int i = 0; bad[i]; i++) ck_assert_msg(sq_scheme_parse(bad[i], &c, p, &err) == SQ_EUSAGE, "%s accepted", bad[i]);
    ck_assert_int_eq(sq_scheme_parse("quip:5", &c, p, &err), SQ_EUSAGE);
    ck_assert_ptr_nonnull(strstr(err.msg, "2, 3 or 4"));
    ck_assert_int_eq(sq_scheme_parse("quip:2:rvq", &c, p, &err), SQ_EUSAGE);
    ck_assert_ptr_nonnull(strstr(err.msg, "follows 3 or 4"));
    /* params a file may carry: only params[4] in 2..4 and the transform flags */
    sq_scheme_parse("quip:3", &c, p, &err);
    const struct { int i; uint32_t v; } hostile[] = {{4, 0}, {4, 5}, {4, 0xFFFFFFFF}, {0, 64}, {1, 1}, {2, SQ_DT_F16}, {5, 2}, {6, 1}, {7, 9}};
    for (size_t k = 0; k < sizeof hostile / sizeof hostile[0]; k++) {
        uint32_t q[SQ_NPARAMS];
        memcpy(q, p, sizeof q);
        q[hostile[k].i] = hostile[k].v;
        ck_assert_msg(sq_codec_check_params(c, q, &err, "t") == SQ_ECORRUPT, "params[%d] = %u accepted", hostile[k].i,
                      hostile[k].v);
    }
    uint32_t q[SQ_NPARAMS];
    memcpy(q, p, sizeof q);
    q[SQ_P_XFORM] = SQ_XF_RHT_IN | SQ_XF_RHT_OUT;
    ck_assert_int_eq(sq_codec_check_params(c, q, &err, "t"), 0);
    q[4] = 2; /* nested stages at 2 bits */
    q[SQ_QUIP_P_NESTED] = 1;
    ck_assert_int_eq(sq_codec_check_params(c, q, &err, "t"), SQ_ECORRUPT);
    /* the layout: codes u16 [rows][cols/8]; codes2 u8 (3 bits; 4 bits nested) or u16 (4 bits residual);
     * codes3 u8 (4 bits nested); scales f16 [stages][rows] */
    sq_part_spec sp[SQ_CODEC_MAX_PARTS];
    for (uint32_t b = 2; b <= 4; b++)
        for (uint32_t nested = 0; nested <= (b > 2); nested++) {
            p[4] = b;
            p[SQ_QUIP_P_NESTED] = nested;
            const uint32_t S = b == 2 ? 1 : b == 4 && nested ? 3 : 2;
            int n = sq_layout(c, p, 40, 96, sp);
            ck_assert_int_eq(n, (int)S + 1);
            ck_assert_str_eq(sp[0].name, "codes");
            ck_assert_uint_eq(sp[0].dtype, SQ_DT_U16);
            ck_assert(sp[0].dims[0] == 40 && sp[0].dims[1] == 12);
            if (b > 2) {
                ck_assert_str_eq(sp[1].name, "codes2");
                ck_assert_uint_eq(sp[1].dtype, b == 4 && !nested ? SQ_DT_U16 : SQ_DT_U8);
                ck_assert(sp[1].dims[0] == 40 && sp[1].dims[1] == 12);
            }
            if (S == 3) {
                ck_assert_str_eq(sp[2].name, "codes3");
                ck_assert_uint_eq(sp[2].dtype, SQ_DT_U8);
                ck_assert(sp[2].dims[0] == 40 && sp[2].dims[1] == 12);
            }
            ck_assert_str_eq(sp[n - 1].name, "scales");
            ck_assert_uint_eq(sp[n - 1].dtype, SQ_DT_F16);
            ck_assert(sp[n - 1].dims[0] == S && sp[n - 1].dims[1] == 40);
        }
}
END_TEST

/* encode through the quantization library, then decode / GEMV through the chain */
START_TEST(encode_decode_gemv_through_the_chain) {
    const uint64_t shapes[][2] = {{40, 96}, {24, 520}, {7, 64}}; /* 96 = 12·8 (Paley), 520: blocking fallback, 7 odd rows */
    const char *schemes[] = {"quip:2", "quip:3", "quip:4", "quip:3:rvq", "quip:4:rvq"};
    for (size_t s = 0; s < 3; s++)
        for (int k = 0; k < 5; k++) {
            const uint64_t rows = shapes[s][0], cols = shapes[s][1], G = cols / 8;
            const sq_codec *c;
            uint32_t p[SQ_NPARAMS];
            const char *scheme = schemes[k];
            ck_assert_int_eq(sq_scheme_parse(scheme, &c, p, NULL), 0);
            const uint32_t bits = p[SQ_QUIP_P_BITS];
            float *w = random_matrix(rows * cols, 1);
            double *H = random_hessian(cols, 2 * cols);
            sq_encode_ctx x = {.codec = c, .params = p, .w = w, .rows = rows, .cols = cols, .xtx = H, .seed = 99, .n_threads = 1};
            sq_encoded e, e3;
            sq_err err;
            ck_assert_msg(sq_quant_encode(&x, &e, &err) == 0, "%s", err.msg);
            x.n_threads = 3;
            ck_assert_int_eq(sq_quant_encode(&x, &e3, &err), 0);
            /* parts: the codec's, then the chain's links rht_in, rht_out */
            ck_assert_int_eq(e.nparts, 3 + (int)sq_quip_stages(bits, p[SQ_QUIP_P_NESTED]));
            ck_assert_uint_eq(e.params[SQ_P_XFORM], SQ_XF_RHT_IN | SQ_XF_RHT_OUT);
            ck_assert_str_eq(e.spec[e.nparts - 2].name, "rht_in");
            ck_assert_str_eq(e.spec[e.nparts - 1].name, "rht_out");
            ck_assert_uint_eq(e.bytes[e.nparts - 2], (cols + 7) / 8);
            ck_assert_uint_eq(e.bytes[e.nparts - 1], (rows + 7) / 8);
            for (int i = 0; i < e.nparts; i++) ck_assert(!memcmp(e.data[i], e3.data[i], e.bytes[i])); /* thread count */
            ck_assert(fabs(sq_encoded_bpw(&e) - sq_quip_bpw(rows, cols, bits, p[SQ_QUIP_P_NESTED])) < 1e-12);
            /* the signs are the ones the documented seed gives */
            uint8_t su[128], sv[8];
            sq_rht_signs(99, cols, su);
            sq_rht_signs(99 ^ SQ_QUIP_SV_SEED_XOR, rows, sv);
            ck_assert(!memcmp(e.data[e.nparts - 2], su, (cols + 7) / 8));
            ck_assert(!memcmp(e.data[e.nparts - 1], sv, (rows + 7) / 8));
            /* decode through the chain == the phase-1 reference decode with su/sv as its own parts */
            sq_tview v;
            sq_tview_from_encoded(&e, &v);
            const uint32_t S = sq_quip_stages(bits, p[SQ_QUIP_P_NESTED]);
            sq_quip_view qv = {.rows = rows, .cols = cols, .bits = bits, .nested = p[SQ_QUIP_P_NESTED], .codes = e.data[0],
                               .codes2 = S > 1 ? e.data[1] : NULL, .codes3 = S > 2 ? e.data[2] : NULL, .su = su, .sv = sv,
                               .scales = e.data[S]};
            float *ref = malloc(rows * cols * 4), *dec = malloc(rows * cols * 4);
            ck_assert_int_eq(sq_quip_decode(&qv, ref, &err), 0);
            ck_assert_int_eq(sq_decode_mt(&v, dec, 2), 0);
            double num = 0, den = 0;
            for (uint64_t i = 0; i < rows * cols; i++) {
                num += fabs((double)dec[i] - ref[i]);
                den += fabs((double)ref[i]);
            }
            ck_assert_msg(num <= 1e-6 * den, "%s %llux%llu: chain decode differs from the reference (%g / %g)", scheme,
                          (unsigned long long)rows, (unsigned long long)cols, num, den);
            /* quantization error: a real fit, falling with the bits */
            double err2 = 0, ww = 0;
            for (uint64_t i = 0; i < rows * cols; i++) {
                err2 += ((double)dec[i] - w[i]) * ((double)dec[i] - w[i]);
                ww += (double)w[i] * w[i];
            }
            const double lim[] = {0, 0, 0.25, 0.08, 0.03};
            ck_assert_msg(err2 / ww < lim[bits], "%s: relative squared error %g", scheme, err2 / ww);
            /* GEMV: stored-basis kernels, AVX2 == portable bit for bit; through the chain == dec·x */
            float *xv = random_matrix(cols, 0), *xs = malloc(cols * 4), *y0 = malloc(rows * 4), *y1 = malloc(rows * 4);
            sq_xform_input(&v, xv, 1, xs);
            sq_quip_gemv_portable(&v, xs, y0, 0, rows);
            float *dt = malloc(rows * cols * 4);
            sq_decode_for(c, SQ_ISA_PORTABLE)(&v, 0, rows, dt);
            for (uint64_t r = 0; r < rows; r++) { /* transformed rows · transformed x */
                double d = 0, mag = 0;
                for (uint64_t i = 0; i < cols; i++) {
                    d += (double)dt[r * cols + i] * xs[i];
                    mag += fabs((double)dt[r * cols + i] * xs[i]);
                }
                ck_assert(fabs(y0[r] - d) <= 1e-5 * mag + 1e-30);
            }
            if (sq_isa_supported(SQ_ISA_AVX2)) {
                for (uint64_t r0 = 0; r0 < rows; r0 += 5) { /* row ranges that cut the 4-row blocks */
                    uint64_t r1 = r0 + 5 < rows ? r0 + 5 : rows;
                    sq_gemv_for(c, SQ_ISA_AVX2)(&v, xs, y1, r0, r1);
                }
                ck_assert_msg(!memcmp(y0, y1, rows * 4), "%s: AVX2 GEMV differs from the portable one", scheme);
            }
            if (sq_isa_supported(SQ_ISA_AVX512)) {
                memset(y1, 0, rows * 4);
                for (uint64_t r0 = 0; r0 < rows; r0 += 11) { /* row ranges that cut the 8-row blocks, odd tails */
                    uint64_t r1 = r0 + 11 < rows ? r0 + 11 : rows;
                    sq_gemv_for(c, SQ_ISA_AVX512)(&v, xs, y1, r0, r1);
                }
                ck_assert_msg(!memcmp(y0, y1, rows * 4), "%s: AVX-512 GEMV differs from the portable one", scheme);
            } else {
                fprintf(stderr, "note: no AVX-512 here, its GEMV is not compared\n");
            }
            ck_assert_int_eq(sq_gemv_mt(&v, xv, y1, 2), 0);
            for (uint64_t r = 0; r < rows; r++) {
                double d = 0, mag = 0;
                for (uint64_t i = 0; i < cols; i++) {
                    d += (double)ref[r * cols + i] * xv[i];
                    mag += fabs((double)ref[r * cols + i] * xv[i]);
                }
                ck_assert_msg(fabs(y1[r] - d) <= 1e-4 * mag + 1e-6, "%s row %llu: gemv %g vs %g", scheme, (unsigned long long)r,
                              y1[r], d);
            }
            /* the codec's check: finite scales pass, an infinite one is refused by name */
            char why[160];
            ck_assert_int_eq(c->check(&v, why, sizeof why), 0);
            uint16_t *sc = e.data[S];
            const uint16_t keep = sc[rows - 1];
            sc[rows - 1] = 0x7c00;
            ck_assert_int_eq(c->check(&v, why, sizeof why), -1);
            ck_assert_ptr_nonnull(strstr(why, "scales"));
            sc[rows - 1] = keep;
            (void)G;
            free(w); free(H); free(ref); free(dec); free(xv); free(xs); free(y0); free(y1); free(dt);
            sq_encoded_free(&e);
            sq_encoded_free(&e3);
        }
}
END_TEST

START_TEST(refusals) {
    const sq_codec *c;
    uint32_t p[SQ_NPARAMS];
    sq_err err;
    sq_scheme_parse("quip:2", &c, p, NULL);
    float *w = random_matrix(16 * 64, 1);
    double *H = random_hessian(64, 128);
    sq_encoded e;
    /* the decode library alone cannot encode it */
    ck_assert_int_eq(sq_encode(c, p, w, 16, 64, 1, &e, &err), SQ_EUNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(err.msg, "--calib"));
    ck_assert(sq_quant_needs_xtx(c));
    /* no XᵀX */
    sq_encode_ctx x = {.codec = c, .params = p, .w = w, .rows = 16, .cols = 64, .n_threads = 1};
    ck_assert_int_eq(sq_quant_encode(&x, &e, &err), SQ_EUSAGE);
    ck_assert_ptr_nonnull(strstr(err.msg, "calibration"));
    /* a width that is not whole groups of 8 */
    x.xtx = H;
    x.cols = 60;
    ck_assert_int_eq(sq_quant_encode(&x, &e, &err), SQ_EUSAGE);
    ck_assert_ptr_nonnull(strstr(err.msg, "multiple of 8"));
    /* non-finite weights or Hessian */
    x.cols = 64;
    w[5] = NAN;
    ck_assert_int_ne(sq_quant_encode(&x, &e, &err), 0);
    w[5] = 0;
    H[70] = INFINITY;
    ck_assert_int_eq(sq_quant_encode(&x, &e, &err), SQ_ECORRUPT);
    /* the check refuses a view whose width is not whole groups */
    H[70] = 0;
    sq_tview v = {0};
    v.codec = c;
    memcpy(v.params, p, sizeof p);
    v.rows = 2;
    v.cols = 12;
    uint16_t codes[2] = {0, 0}, scales[2] = {0x3c00, 0x3c00};
    v.part[0] = codes;
    v.part[1] = scales;
    char why[160];
    ck_assert_int_eq(c->check(&v, why, sizeof why), -1);
    ck_assert_ptr_nonnull(strstr(why, "groups of 8"));
    free(w);
    free(H);
}
END_TEST

/* The generic driver (gptq.c, dim 8) running the codec's vq ops gives the
 * same codes and scales as the standalone LDLQ driver (ldlq.c) running the
 * same quantizer: BlockLDLQ is one algorithm in one place. */
typedef struct ldlq_vq {
    const sq_vq_ops *ops;
    sq_vq vq;
    float *stat;
    uint32_t *codes; /* [rows][cols/8] */
} ldlq_vq;

static sq_status vq_block(void *ctx, uint64_t r0, uint64_t nrows, uint64_t c0, uint32_t width, const float *v, size_t ldv,
                          float *q, size_t ldq) {
    ldlq_vq *x = ctx;
    for (uint64_t r = 0; r < nrows; r++) {
        float *st = x->stat + (r0 + r) * SQ_VQ_MAX_STAT;
        if (c0 == 0) x->ops->fit(&x->vq, r0 + r, 0, v + r * ldv, x->vq.cols, st); /* not yet updated: row as given */
        x->codes[(r0 + r) * (x->vq.cols / 8) + c0 / 8] = x->ops->quant(&x->vq, st, v + r * ldv, q + r * ldq);
    }
    (void)width;
    return SQ_OK;
}

START_TEST(generic_driver_is_blockldlq) {
    const uint64_t rows = 70, cols = 256;
    const char *schemes[] = {"quip:2", "quip:3", "quip:4", "quip:3:rvq", "quip:4:rvq"};
    for (int k = 0; k < 5; k++) {
        const sq_codec *c;
        uint32_t p[SQ_NPARAMS];
        const char *scheme = schemes[k];
        sq_scheme_parse(scheme, &c, p, NULL);
        const sq_codec_encoder *enc = sq_quant_encoder(c);
        ck_assert_ptr_nonnull(enc);
        ck_assert_ptr_nonnull(enc->vq);
        ck_assert_uint_eq(enc->vq->dim, 8);
        ck_assert(sq_gptq_supports(c, p));
        float *w = random_matrix(rows * cols, 1);
        double *H = random_hessian(cols, 400);
        sq_gptq_opts go = {.damp = 0.01, .block = 128, .n_threads = 2};
        sq_gptq_info info;
        sq_encoded e;
        sq_err err;
        ck_assert_int_eq(sq_gptq_quantize("t", c, p, w, rows, cols, H, &go, &e, &info, &err), 0);
        ck_assert(!info.fell_back && !info.permuted);
        /* the LDLQ driver: the first fitting wants the row before any update; the full row is
         * in v only when the block is the whole row, so fit beforehand on w itself */
        float *U = malloc(cols * cols * 4);
        sq_gptq_info hi = {0};
        ck_assert_int_eq(sq_gptq_hinv(H, cols, NULL, 0.01, U, 1, &hi, &err), 0);
        sq_encoded e2;
        ck_assert_int_eq(sq_encoded_alloc(c, p, rows, cols, &e2, &err), 0);
        ldlq_vq x = {enc->vq, {c, e2.params, rows, cols, e2.data}, calloc(rows * SQ_VQ_MAX_STAT, 4),
                     malloc(rows * (cols / 8) * 4)};
        for (uint64_t r = 0; r < rows; r++) enc->vq->fit(&x.vq, r, 0, w + r * cols, cols, x.stat + r * SQ_VQ_MAX_STAT);
        sq_ldlq_opts lo = {8, 128, 64, 1};
        ck_assert_int_eq(sq_ldlq_run(w, rows, cols, U, &lo, vq_block, &x, NULL, &err), 0);
        for (uint64_t r = 0; r < rows; r++) enc->vq->pack_row(&x.vq, r, x.codes + r * (cols / 8));
        for (int i = 0; i < e.nparts; i++)
            ck_assert_msg(!memcmp(e.data[i], e2.data[i], e.bytes[i]), "%s: part %s differs between the drivers", scheme,
                          e.spec[i].name);
        free(w); free(H); free(U); free(x.stat); free(x.codes);
        sq_encoded_free(&e);
        sq_encoded_free(&e2);
    }
}
END_TEST


/* spec/codecs.md §11's test vectors and worked example, through the codec's decode */
START_TEST(spec_vectors) {
    const struct { uint16_t c; float v[8]; } e8p[] = {
        {0x0000, {0.75f, 0.75f, 0.75f, 0.75f, 0.75f, 0.75f, 0.75f, 0.75f}},
        {0x0001, {0.25f, 0.25f, 0.25f, 0.25f, 0.25f, 0.25f, 0.25f, 0.25f}},
        {0x0003, {-0.25f, 0.75f, -0.25f, 0.75f, 0.75f, 0.75f, 0.75f, 0.75f}},
        {0x0180, {-0.75f, 0.25f, 0.25f, 0.25f, 0.25f, 0.25f, 0.25f, 1.25f}},
        {0x1A53, {-0.25f, -0.25f, -0.25f, 0.75f, 1.75f, -1.25f, 1.75f, 1.75f}},
        {0xFF7E, {1.75f, -1.25f, -0.25f, -0.25f, -1.25f, -1.25f, -1.25f, -0.25f}},
    };
    for (size_t k = 0; k < sizeof e8p / sizeof e8p[0]; k++) {
        float o[8];
        sq_e8p_decode(e8p[k].c, o);
        ck_assert_msg(!memcmp(o, e8p[k].v, sizeof o), "E8P code 0x%04x", e8p[k].c);
    }
    float o[8];
    sq_e81b_decode(0, o);
    ck_assert(o[0] == -1 && o[1] == -1 && o[2] == 0 && o[7] == 0);
    sq_e81b_decode(56, o);
    for (int i = 0; i < 8; i++) ck_assert(o[i] == 0);
    sq_e81b_decode(113, o);
    for (int i = 0; i < 8; i++) ck_assert(o[i] == -0.5f);
    sq_e81b_decode(240, o);
    for (int i = 0; i < 8; i++) ck_assert(o[i] == 0.5f);
    sq_e81b_decode(241, o);
    ck_assert(o[0] == 2 && o[1] == 0);
    sq_e81b_decode(255, o);
    ck_assert(o[6] == -2 && o[7] == 0 && o[0] == 0);
    /* worked example: quip:3:rvq, 1 x 8, no links */
    const sq_codec *c;
    uint32_t p[SQ_NPARAMS];
    sq_scheme_parse("quip:3:rvq", &c, p, NULL);
    uint16_t codes[1] = {0x0180}, scales[2] = {0x3800, 0x3400};
    uint8_t codes2[1] = {241};
    sq_tview v = {0};
    v.codec = c;
    memcpy(v.params, p, sizeof p);
    v.rows = 1;
    v.cols = 8;
    v.nparts = 3;
    v.part[0] = codes;
    v.part[1] = codes2;
    v.part[2] = scales;
    float d[8];
    ck_assert_int_eq(sq_decode_rows(&v, 0, 1, d), 0);
    const float want[8] = {0.125f, 0.125f, 0.125f, 0.125f, 0.125f, 0.125f, 0.125f, 0.625f};
    ck_assert(!memcmp(d, want, sizeof d));
    /* bits per weight of §11 */
    sq_scheme_parse("quip:2", &c, p, NULL);
    ck_assert(fabs(sq_quip_bpw(512, 512, 2, 0) - 2.03515625) < 1e-12);
    ck_assert(fabs(sq_quip_bpw(512, 512, 3, 0) - 3.06640625) < 1e-12);
    ck_assert(fabs(sq_layout_bpw(c, p, 512, 512) - 2.03125) < 1e-12); /* codec parts alone, without the links */
}
END_TEST

/* The integer-activation GEMV (quip_q8.c) on random codes (every code is
 * valid) and scales, every stage layout, widths with partial q8 blocks and
 * partial 512-weight chunks: the portable kernel against the decoded rows
 * times the q8 activations in double (within 1e-5 of sum |w x|), the
 * AVX-512 kernel (where the CPU has VBMI and GFNI) against the portable one
 * bit for bit, the batched kernels token by token against the GEMV bit for
 * bit, and the runtime's choice (sq_best_kernel) takes the q8 kernel only
 * with that AVX-512 kernel. */
START_TEST(q8_gemv_matches_the_reference) {
    const uint64_t shapes[][2] = {{5, 8}, {3, 24}, {4, 40}, {6, 512}, {3, 520}, {2, 1000}, {3, 4104}};
    const uint32_t layouts[][2] = {{2, 0}, {3, 0}, {3, 1}, {4, 0}, {4, 1}};
    int simd_runs = 0;
    for (size_t sh = 0; sh < sizeof shapes / sizeof shapes[0]; sh++)
        for (size_t l = 0; l < sizeof layouts / sizeof layouts[0]; l++) {
            const uint64_t rows = shapes[sh][0], cols = shapes[sh][1], G = cols / 8;
            const uint32_t bits = layouts[l][0], nested = layouts[l][1], S = sq_quip_stages(bits, nested);
            uint32_t p[SQ_NPARAMS] = {0};
            p[SQ_QUIP_P_BITS] = bits;
            p[SQ_QUIP_P_NESTED] = nested;
            sq_tview t = {.codec = &sq_codec_quip, .rows = rows, .cols = cols, .nparts = (int)S + 1};
            memcpy(t.params, p, sizeof p);
            void *parts[4];
            for (uint32_t s = 0; s < S; s++) {
                const size_t w = sq_quip_stage_book(bits, nested, s) == SQ_QUIP_E8P ? 2 : 1;
                uint8_t *c = malloc(rows * G * w);
                for (uint64_t i = 0; i < rows * G * w; i++) c[i] = (uint8_t)(urand() * 256);
                parts[s] = c;
            }
            uint16_t *sc = malloc(S * rows * sizeof *sc);
            for (uint64_t i = 0; i < S * rows; i++) sc[i] = sq_f32_to_f16((float)(0.01 + urand()));
            parts[S] = sc;
            for (uint32_t k = 0; k <= S; k++) t.part[k] = parts[k];
            float *x = malloc(cols * sizeof *x), *xr = malloc(cols * sizeof *xr), *dec = malloc(rows * cols * sizeof *dec);
            float *y = malloc(rows * sizeof *y), *y2 = malloc(rows * sizeof *y2);
            for (uint64_t i = 0; i < cols; i++) x[i] = (float)gauss() * (i % 13 == 0 ? 6.0f : 1.0f);
            sq_act_q8 a;
            ck_assert_int_eq(sq_act_q8_init(&a, x, cols, NULL), SQ_OK);
            for (uint64_t i = 0; i < cols; i++) xr[i] = a.d[i / 32] * (float)a.q[i];
            sq_quip_view v;
            sq_quip_view_from_tview(&t, &v);
            sq_quip_decode_transformed(&v, 0, rows, dec);
            sq_quip_gemv_q8_portable(&t, &a, y, 0, rows);
            for (uint64_t r = 0; r < rows; r++) {
                double d = 0, mag = 0;
                for (uint64_t i = 0; i < cols; i++) {
                    d += (double)dec[r * cols + i] * xr[i];
                    mag += fabs((double)dec[r * cols + i] * xr[i]);
                }
                ck_assert_msg(fabs(y[r] - d) <= 1e-5 * mag, "quip %u bits nested %u %llux%llu row %llu: q8 %g, reference %g", bits,
                              nested, (unsigned long long)rows, (unsigned long long)cols, (unsigned long long)r, y[r], d);
            }
            if (sq_quip_q8_avx512_ok()) {
                simd_runs++;
                sq_quip_gemv_q8_avx512(&t, &a, y2, 0, rows);
                ck_assert_msg(!memcmp(y, y2, rows * sizeof *y), "quip %u bits nested %u %llux%llu: AVX-512 q8 differs", bits,
                              nested, (unsigned long long)rows, (unsigned long long)cols);
                memset(y2, 0, rows * sizeof *y2);
                sq_quip_gemv_q8_avx512(&t, &a, y2, 1, rows); /* a row range on its own (y by absolute row) */
                ck_assert(y2[0] == 0 && !memcmp(y + 1, y2 + 1, (rows - 1) * sizeof *y));
            }
            { /* batched: 11 tokens (a tile of 8 and 3 alone) on rows [1, rows), each token the GEMV's bits */
                enum { T = 11 };
                sq_act_q8 xs[T];
                float *yt = calloc(T * rows, sizeof *yt), *yg = malloc(rows * sizeof *yg), *xt = malloc(cols * sizeof *xt);
                for (int j = 0; j < T; j++) {
                    for (uint64_t i = 0; i < cols; i++) xt[i] = (float)gauss();
                    ck_assert_int_eq(sq_act_q8_init(&xs[j], xt, cols, NULL), SQ_OK);
                }
                sq_gemm_q8_fn gemms[2] = {sq_quip_gemm_q8_portable, sq_quip_q8_avx512_ok() ? sq_quip_gemm_q8_avx512 : NULL};
                for (int f = 0; f < 2; f++) {
                    if (!gemms[f]) continue;
                    gemms[f](&t, xs, T, yt, 1, rows);
                    for (int j = 0; j < T; j++) {
                        sq_quip_gemv_q8_portable(&t, &xs[j], yg, 1, rows);
                        ck_assert_msg(yt[(uint64_t)j * rows] == 0 && !memcmp(yt + (uint64_t)j * rows + 1, yg + 1, (rows - 1) * sizeof *yg),
                                      "quip %u bits nested %u %llux%llu: batched (%s) token %d differs from its GEMV", bits, nested,
                                      (unsigned long long)rows, (unsigned long long)cols, f ? "avx512" : "portable", j);
                    }
                }
                for (int j = 0; j < T; j++) sq_act_q8_free(&xs[j]);
                free(yt); free(yg); free(xt);
            }
            for (int isa = 0; isa < SQ_ISA_COUNT; isa++) {
                const sq_cpu_kernel k = sq_best_kernel(&t, (sq_isa)isa);
                ck_assert_int_eq(k.act, isa == SQ_ISA_AVX512 && sq_quip_q8_avx512_ok() ? SQ_ACT_Q8 : SQ_ACT_F32);
            }
            sq_act_q8_free(&a);
            for (uint32_t k = 0; k <= S; k++) free(parts[k]);
            free(x); free(xr); free(dec); free(y); free(y2);
        }
    fprintf(stderr, "quip q8: %d SIMD comparisons%s\n", simd_runs,
            sq_quip_q8_avx512_ok() ? "" : " (this CPU lacks AVX-512 VBMI/GFNI: the SIMD kernel not run)");
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("quip_codec");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, scheme_grammar_and_params);
    tcase_add_test(tc, spec_vectors);
    tcase_add_test(tc, encode_decode_gemv_through_the_chain);
    tcase_add_test(tc, refusals);
    tcase_add_test(tc, generic_driver_is_blockldlq);
    tcase_add_test(tc, q8_gemv_matches_the_reference);
    suite_add_tcase(s, tc);
    return s;
}
RUN_SUITE(suite())
