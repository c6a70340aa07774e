/* Codecs: golden vectors computed independently (testdata/gen_vectors.py),
 * exhaustive mini-float tables, SIMD kernels against the portable ones,
 * error bounds, scheme strings, thread-count independence. */
#include <math.h>

#include "squish/codec.h"
#include "squish/fp.h"
#include "testutil.h"


static int hexval(int c) { return c <= '9' ? c - '0' : (c | 32) - 'a' + 10; }

START_TEST(golden_vectors) {
    size_t len;
    char *text = (char *)read_all(src_path("testdata/vectors/codec-vectors.txt"), &len);
    ck_assert_ptr_nonnull(text);
    text[len] = 0;
    int n_vectors = 0;
    char *save = NULL;
    const sq_codec *c = NULL;
    uint32_t p[SQ_NPARAMS];
    uint64_t rows = 0, cols = 0;
    float *w = NULL;
    sq_encoded e[2];
    char scheme[64] = "";
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (!strncmp(line, "vector ", 7)) {
            unsigned long long r, cc;
            ck_assert_int_eq(sscanf(line + 7, "%63s %llu %llu", scheme, &r, &cc), 3);
            rows = r;
            cols = cc;
            sq_err err;
            ck_assert_msg(sq_scheme_parse(scheme, &c, p, &err) == 0, "%s", err.msg);
        } else if (!strncmp(line, "input ", 6)) {
            w = malloc(rows * cols * sizeof(float));
            char *q = line + 6;
            for (uint64_t i = 0; i < rows * cols; i++) {
                uint32_t bits = (uint32_t)strtoul(q, &q, 16);
                w[i] = sq_bits_f32(bits);
            }
            sq_err err;
            ck_assert_int_eq(sq_encode(c, p, w, rows, cols, 1, &e[0], &err), 0);
            ck_assert_int_eq(sq_encode(c, p, w, rows, cols, 3, &e[1], &err), 0);
        } else if (!strncmp(line, "part ", 5)) {
            char *name = line + 5, *hex = strchr(name, ' ');
            *hex++ = 0;
            int found = 0;
            for (int i = 0; i < e[0].nparts; i++) {
                if (strcmp(e[0].spec[i].name, name)) continue;
                found = 1;
                size_t nb = strlen(hex) / 2;
                ck_assert_msg(nb == e[0].bytes[i], "%s part %s: %zu bytes expected, %llu written", scheme, name, nb,
                              (unsigned long long)e[0].bytes[i]);
                const uint8_t *got = e[0].data[i];
                for (size_t k = 0; k < nb; k++) {
                    uint8_t want = (uint8_t)(hexval(hex[2 * k]) << 4 | hexval(hex[2 * k + 1]));
                    ck_assert_msg(got[k] == want, "%s part %s byte %zu: got %02x want %02x", scheme, name, k, got[k], want);
                }
                ck_assert_int_eq(memcmp(e[0].data[i], e[1].data[i], (size_t)e[0].bytes[i]), 0); /* thread count */
            }
            ck_assert_msg(found, "%s: no part %s", scheme, name);
        } else if (!strcmp(line, "end")) {
            sq_encoded_free(&e[0]);
            sq_encoded_free(&e[1]);
            free(w);
            w = NULL;
            n_vectors++;
        }
    }
    ck_assert_int_ge(n_vectors, 23);
    free(text);
}
END_TEST

START_TEST(minifloat_tables_exhaustive) {
    size_t len;
    char *text = (char *)read_all(src_path("testdata/vectors/minifloat-tables.txt"), &len);
    ck_assert_ptr_nonnull(text);
    text[len] = 0;
    const char *names[SQ_MF_COUNT] = {"e4m3", "e5m2", "e3m2", "e2m3", "e2m1"};
    int seen[SQ_MF_COUNT] = {0};
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '#') continue;
        char fmt[8], val[64];
        int code;
        ck_assert_int_eq(sscanf(line, "%7s %d %63s", fmt, &code, val), 3);
        int f = -1;
        for (int i = 0; i < SQ_MF_COUNT; i++)
            if (!strcmp(fmt, names[i])) f = i;
        ck_assert_int_ge(f, 0);
        float got = sq_mf_decode((sq_minifloat)f, (uint8_t)code);
        if (!strcmp(val, "nan")) {
            ck_assert(isnan(got));
        } else {
            double want = strtod(val, NULL);
            ck_assert_msg(got == (float)want && !!signbit(got) == !!signbit(want), "%s code %d: %g != %s", fmt, code, got, val);
            ck_assert(sq_mf_table((sq_minifloat)f)[code] == got);
            /* encode(decode(c)) == c, except -0 which encodes as the canonical +0 */
            uint8_t back = sq_mf_encode((sq_minifloat)f, got);
            if (got == 0) ck_assert_uint_eq(back, 0);
            else if (!isinf(got)) ck_assert_msg(back == code, "%s: encode(%g) = %d, want %d", fmt, got, back, code);
        }
        seen[f]++;
    }
    for (int i = 0; i < SQ_MF_COUNT; i++) ck_assert_int_eq(seen[i], 1 << sq_mf((sq_minifloat)i)->bits);
    free(text);
    /* saturation and NaN rules */
    ck_assert_uint_eq(sq_mf_encode(SQ_MF_E4M3, 1000.0f), 0x7e);
    ck_assert_uint_eq(sq_mf_encode(SQ_MF_E4M3, -1e30f), 0xfe);
    ck_assert_uint_eq(sq_mf_encode(SQ_MF_E4M3, 464.0f), 0x7e); /* just above max: saturates, no NaN */
    ck_assert_uint_eq(sq_mf_encode(SQ_MF_E4M3, NAN), 0x7f);
    ck_assert_uint_eq(sq_mf_encode(SQ_MF_E5M2, 1e9f), 0x7b);
    ck_assert_uint_eq(sq_mf_encode(SQ_MF_E2M1, 5.0f), 0x6); /* tie 4|6 -> even mantissa: 4 */
    ck_assert_uint_eq(sq_mf_encode(SQ_MF_E2M1, 0.25f), 0x0);
    ck_assert_uint_eq(sq_mf_encode(SQ_MF_E2M1, 0.26f), 0x1);
}
END_TEST

/* Every codec, a few shapes: SIMD GEMV agrees with the portable GEMV, and
 * GEMV agrees with decode-then-dot. */
static const char *const kernel_schemes[] = {
    "int8:pc:sym", "int8:g32:asym", "int4:g32:sym", "int4:g128:asym", "int4:pc:sym:sbf16", "int3:g64:asym",
    "int3:g32:sym", "int2:g64:asym", "int2:pc:sym:s32", "nf4", "nf4:dq:g128", "fp8_e4m3", "fp8_e5m2:g32",
    "fp6_e3m2", "fp6_e2m3:pt", "fp4_e2m1", "fp4_e2m1:g64", "mxfp8_e4m3", "mxfp8_e5m2", "mxfp6_e3m2", "mxfp6_e2m3",
    "mxfp4", "f32", "f16", "bf16", NULL};

START_TEST(kernels_agree_on_every_path) {
    const uint64_t shapes[][2] = {{37, 200}, {8, 256}, {3, 33}, {1, 7}};
    for (int s = 0; kernel_schemes[s]; s++)
        for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
            uint64_t rows = shapes[k][0], cols = shapes[k][1];
            const sq_codec *c;
            uint32_t p[SQ_NPARAMS];
            sq_err err;
            ck_assert_int_eq(sq_scheme_parse(kernel_schemes[s], &c, p, &err), 0);
            float *w = random_matrix(rows * cols, 1), *x = random_matrix(cols, 0);
            sq_encoded e;
            ck_assert_int_eq(sq_encode(c, p, w, rows, cols, 2, &e, &err), 0);
            sq_tview v;
            sq_tview_from_encoded(&e, &v);
            float *ref_dec = malloc(rows * cols * sizeof(float)), *dec = malloc(rows * cols * sizeof(float));
            float *y0 = malloc(rows * sizeof(float)), *y = malloc(rows * sizeof(float));
            sq_decode_for(c, SQ_ISA_PORTABLE)(&v, 0, rows, ref_dec);
            sq_gemv_for(c, SQ_ISA_PORTABLE)(&v, x, y0, 0, rows);
            for (uint64_t r = 0; r < rows; r++) { /* portable GEMV = decode then dot (in double) */
                double d = 0, mag = 0;
                for (uint64_t i = 0; i < cols; i++) {
                    d += (double)ref_dec[r * cols + i] * x[i];
                    mag += fabs((double)ref_dec[r * cols + i] * x[i]);
                }
                ck_assert_msg(fabs(y0[r] - d) <= 1e-5 * mag + 1e-30, "%s %llux%llu row %llu: gemv %g vs dot %g",
                              kernel_schemes[s], (unsigned long long)rows, (unsigned long long)cols, (unsigned long long)r,
                              y0[r], d);
            }
            for (int isa = 0; isa < SQ_ISA_COUNT; isa++) {
                if (!sq_isa_supported((sq_isa)isa)) continue;
                sq_decode_for(c, (sq_isa)isa)(&v, 0, rows, dec);
                ck_assert_msg(!memcmp(dec, ref_dec, rows * cols * sizeof(float)), "%s: decode on %s differs", kernel_schemes[s],
                              sq_isa_name((sq_isa)isa));
                sq_gemv_for(c, (sq_isa)isa)(&v, x, y, 0, rows);
                for (uint64_t r = 0; r < rows; r++) {
                    double mag = 0;
                    for (uint64_t i = 0; i < cols; i++) mag += fabs((double)ref_dec[r * cols + i] * x[i]);
                    ck_assert_msg(fabs((double)y[r] - y0[r]) <= 1e-5 * mag + 1e-30, "%s on %s row %llu: %g vs %g",
                                  kernel_schemes[s], sq_isa_name((sq_isa)isa), (unsigned long long)r, y[r], y0[r]);
                }
            }
            /* the active path (SQUISH_ISA may force portable) and the threaded helpers */
            sq_gemv_mt(&v, x, y, 3);
            for (uint64_t r = 0; r < rows; r++) ck_assert(fabsf(y[r] - y0[r]) <= 1e-4f * (fabsf(y0[r]) + 1e-3f));
            sq_decode_mt(&v, dec, 3);
            ck_assert(!memcmp(dec, ref_dec, rows * cols * sizeof(float)));
            free(ref_dec); free(dec); free(y0); free(y); free(w); free(x);
            sq_encoded_free(&e);
        }
}
END_TEST

/* Integer-activation kernels: every path equals the portable reference up to
 * float summation order, and the reference is the exact GEMV of the rounded x. */
START_TEST(q8_kernels) {
    const char *schemes[] = {"int8:pc:sym", "int8:g32:asym", "int4:g128:asym", "int4:g32:sym", "int3:g64:asym", "int2:pc:sym",
                             "mxfp4", "fp4_e2m1", "fp4_e2m1:pt", "fp4_e2m1:g128:s32", NULL};
    const uint64_t shapes[][2] = {{19, 256}, {5, 200}, {2, 33}};
    for (int s = 0; schemes[s]; s++)
        for (int k = 0; k < 3; k++) {
            uint64_t rows = shapes[k][0], cols = shapes[k][1];
            const sq_codec *c;
            uint32_t p[SQ_NPARAMS];
            ck_assert_int_eq(sq_scheme_parse(schemes[s], &c, p, NULL), 0);
            ck_assert_ptr_nonnull(sq_gemv_q8_for(c, SQ_ISA_PORTABLE));
            float *w = random_matrix(rows * cols, 1), *x = random_matrix(cols, 1);
            sq_encoded e;
            ck_assert_int_eq(sq_encode(c, p, w, rows, cols, 1, &e, NULL), 0);
            sq_tview v;
            sq_tview_from_encoded(&e, &v);
            sq_act_q8 a;
            ck_assert_int_eq(sq_act_q8_init(&a, x, cols, NULL), 0);
            float *xr = malloc(cols * sizeof(float)), *y0 = malloc(rows * 4), *y = malloc(rows * 4), *yx = malloc(rows * 4);
            for (uint64_t i = 0; i < cols; i++) xr[i] = a.d[i / 32] * a.q[i]; /* the rounded activation */
            sq_gemv_q8_for(c, SQ_ISA_PORTABLE)(&v, &a, y0, 0, rows);
            sq_gemv_for(c, SQ_ISA_PORTABLE)(&v, xr, yx, 0, rows);
            float *dec = malloc(rows * cols * 4);
            sq_decode_rows(&v, 0, rows, dec);
            for (uint64_t r = 0; r < rows; r++) {
                double mag = 0;
                for (uint64_t i = 0; i < cols; i++) mag += fabs((double)dec[r * cols + i] * xr[i]);
                ck_assert_msg(fabs(y0[r] - yx[r]) <= 1e-5 * mag + 1e-30, "%s: q8 ref %g vs exact %g", schemes[s], y0[r], yx[r]);
                for (int isa = 1; isa < SQ_ISA_COUNT; isa++) {
                    if (!sq_isa_supported((sq_isa)isa) || !c->cpu->fast[isa].fn.q8) continue;
                    sq_gemv_q8_for(c, (sq_isa)isa)(&v, &a, y, 0, rows);
                    /* the SIMD kernel subtracts the zero-point term once per row (cancellation): looser bound */
                    ck_assert_msg(fabs(y[r] - y0[r]) <= 1e-4 * mag + 1e-30, "%s on %s: %g vs %g", schemes[s],
                                  sq_isa_name((sq_isa)isa), y[r], y0[r]);
                }
            }
            free(xr); free(y0); free(y); free(yx); free(dec); free(w); free(x);
            sq_act_q8_free(&a);
            sq_encoded_free(&e);
        }
}
END_TEST

START_TEST(forced_portable_path) {
    const char *e = getenv("SQUISH_ISA");
    if (e && !strcmp(e, "portable")) ck_assert_int_eq(sq_isa_active(), SQ_ISA_PORTABLE);
    else ck_assert_int_ge(sq_isa_active(), SQ_ISA_PORTABLE);
}
END_TEST

/* Affine int codes with f32 scales: every weight within half a step. */
START_TEST(int_error_bounds) {
    const int bits[] = {8, 4, 3, 2};
    const char *names[] = {"int8", "int4", "int3", "int2"};
    for (int b = 0; b < 4; b++) {
        char scheme[64];
        snprintf(scheme, sizeof scheme, "%s:g32:asym:s32", names[b]);
        const sq_codec *c;
        uint32_t p[SQ_NPARAMS];
        ck_assert_int_eq(sq_scheme_parse(scheme, &c, p, NULL), 0);
        uint64_t rows = 16, cols = 96;
        float *w = random_matrix(rows * cols, 1), *d = malloc(rows * cols * sizeof(float));
        sq_encoded e;
        ck_assert_int_eq(sq_encode(c, p, w, rows, cols, 1, &e, NULL), 0);
        sq_tview v;
        sq_tview_from_encoded(&e, &v);
        sq_decode_rows(&v, 0, rows, d);
        const float *sc = e.data[1];
        for (uint64_t r = 0; r < rows; r++)
            for (uint64_t i = 0; i < cols; i++) {
                float s = sc[r * 3 + i / 32], err = fabsf(d[r * cols + i] - w[r * cols + i]);
                ck_assert_msg(err <= s * 0.5f * (1 + 1e-5f), "%s: |err| %g > s/2 = %g", scheme, err, s / 2);
            }
        (void)bits;
        sq_encoded_free(&e);
        free(w);
        free(d);
    }
}
END_TEST

/* Mini-float groups: relative error bounded by half an ulp of the element format. */
START_TEST(minifloat_error_bounds) {
    const char *schemes[] = {"fp8_e4m3:g32:s32", "fp6_e2m3:g32:s32", "fp6_e3m2:g32:s32", "mxfp8_e4m3", "mxfp6_e2m3", "mxfp4"};
    const sq_minifloat fmt[] = {SQ_MF_E4M3, SQ_MF_E2M3, SQ_MF_E3M2, SQ_MF_E4M3, SQ_MF_E2M3, SQ_MF_E2M1};
    for (int k = 0; k < 6; k++) {
        const sq_mf_info *mi = sq_mf(fmt[k]);
        const sq_codec *c;
        uint32_t p[SQ_NPARAMS];
        ck_assert_int_eq(sq_scheme_parse(schemes[k], &c, p, NULL), 0);
        uint64_t rows = 4, cols = 128;
        float *w = random_matrix(rows * cols, 0), *d = malloc(rows * cols * sizeof(float));
        sq_encoded e;
        ck_assert_int_eq(sq_encode(c, p, w, rows, cols, 1, &e, NULL), 0);
        sq_tview v;
        sq_tview_from_encoded(&e, &v);
        sq_decode_rows(&v, 0, rows, d);
        for (uint64_t g = 0; g < rows * cols / 32; g++) {
            float amax = 0;
            for (int i = 0; i < 32; i++) amax = fmaxf(amax, fabsf(w[g * 32 + i]));
            for (int i = 0; i < 32; i++) {
                float x = w[g * 32 + i], err = fabsf(d[g * 32 + i] - x);
                /* normal range: half an ulp, relative; subnormal range: half the subnormal step, which is
                 * at most amax * 2^(1 - bias - mbits - emax) / 2 since the scale is at most amax / 2^emax */
                float bound = fmaxf(fabsf(x) * ldexpf(1, -mi->mbits - 1), amax * ldexpf(1, -mi->bias - mi->mbits - mi->emax));
                if (c->family == SQ_FAMILY_MX) /* OCP MX rule: amax/X lies in [2^emax, 2^(emax+1)), values above
                                                      max_normal clip (for E4M3: (448, 512)·X -> 448·X) */
                    bound = fmaxf(bound, amax * (1 - mi->max_normal / ldexpf(1, mi->emax + 1)));
                ck_assert_msg(err <= bound * 1.0001f, "%s: x=%g dec=%g", schemes[k], x, d[g * 32 + i]);
            }
        }
        sq_encoded_free(&e);
        free(w);
        free(d);
    }
}
END_TEST

START_TEST(float_codecs_are_lossless) {
    uint64_t rows = 5, cols = 50;
    float *w = random_matrix(rows * cols, 1), *d = malloc(rows * cols * sizeof(float));
    const char *s[] = {"f32", "bf16"}; /* inputs are bf16-representable */
    for (int k = 0; k < 2; k++) {
        const sq_codec *c;
        uint32_t p[SQ_NPARAMS];
        ck_assert_int_eq(sq_scheme_parse(s[k], &c, p, NULL), 0);
        ck_assert(c->lossless);
        sq_encoded e;
        ck_assert_int_eq(sq_encode(c, p, w, rows, cols, 1, &e, NULL), 0);
        sq_tview v;
        sq_tview_from_encoded(&e, &v);
        sq_decode_rows(&v, 0, rows, d);
        ck_assert_int_eq(memcmp(d, w, rows * cols * sizeof(float)), 0);
        sq_encoded_free(&e);
    }
    /* f16: exact for f16-representable values, and the conversion is RNE */
    for (uint32_t h = 0; h < 0x7c00; h++) ck_assert_uint_eq(sq_f32_to_f16(sq_f16_to_f32((uint16_t)h)), h);
    ck_assert_uint_eq(sq_f32_to_f16(1.0f + ldexpf(1, -11)), 0x3c00);                 /* tie -> even */
    ck_assert_uint_eq(sq_f32_to_f16(1.0f + 3 * ldexpf(1, -11)), 0x3c02);             /* tie -> even (up) */
    ck_assert_uint_eq(sq_f32_to_f16(65520.0f), 0x7c00);                              /* rounds to inf */
    ck_assert_uint_eq(sq_f32_to_f16(ldexpf(1, -25)), 0x0000);                        /* tie -> even (0) */
    ck_assert_uint_eq(sq_f32_to_f16(3 * ldexpf(1, -25)), 0x0002);
    ck_assert_uint_eq(sq_f32_to_bf16(1.0f + ldexpf(1, -8)), 0x3f80);
    ck_assert_uint_eq(sq_f32_to_bf16(1.0f + 3 * ldexpf(1, -8)), 0x3f82);
    free(w);
    free(d);
}
END_TEST

START_TEST(scheme_strings) {
    const char *good[] = {"int4", "int4:g128:asym", "int8:pc:sym", "int3:g64", "int2:g32:sym:s32", "nf4", "nf4:dq",
                          "nf4:g128:dq", "fp8_e4m3", "fp8_e4m3:pt", "fp4_e2m1:g32:sbf16", "mxfp4", "mxfp8_e5m2:g32",
                          "f16", NULL};
    for (int i = 0; good[i]; i++) {
        const sq_codec *c, *c2;
        uint32_t p[SQ_NPARAMS], p2[SQ_NPARAMS];
        sq_err err;
        ck_assert_msg(sq_scheme_parse(good[i], &c, p, &err) == 0, "%s: %s", good[i], err.msg);
        char s[64];
        sq_scheme_format(c, p, s, sizeof s);
        ck_assert_int_eq(sq_scheme_parse(s, &c2, p2, &err), 0); /* canonical text parses back the same */
        ck_assert_ptr_eq(c, c2);
        ck_assert_int_eq(memcmp(p, p2, sizeof p), 0);
    }
    const char *bad[] = {"", "int5", "int4:g100", "int4:g128:g64", "nf4:asym", "mxfp4:g64", "int4:pt", "f16:g32",
                         "int4:sym:asym", "fp8_e4m3:dq", "int4:g0", "int4:g128x", "nf4:pc", NULL};
    for (int i = 0; bad[i]; i++) {
        const sq_codec *c;
        uint32_t p[SQ_NPARAMS];
        sq_err err;
        ck_assert_msg(sq_scheme_parse(bad[i], &c, p, &err) == SQ_EUSAGE, "'%s' was accepted", bad[i]);
    }
    const sq_codec *c;
    uint32_t p[SQ_NPARAMS];
    sq_scheme_parse("int4", &c, p, NULL);
    ck_assert_uint_eq(p[SQ_P_GROUP], 128);
    ck_assert_uint_eq(p[SQ_P_FLAGS], 0);
    ck_assert_uint_eq(p[SQ_P_SCALE_DTYPE], SQ_DT_F16);
    ck_assert(fabs(sq_layout_bpw(c, p, 4096, 4096) - 4.125) < 1e-9);
    sq_scheme_parse("int4:g128:asym", &c, p, NULL);
    ck_assert(fabs(sq_layout_bpw(c, p, 4096, 4096) - 4.1875) < 1e-9);
    sq_scheme_parse("mxfp4", &c, p, NULL);
    ck_assert(fabs(sq_layout_bpw(c, p, 4096, 4096) - 4.25) < 1e-9);
    sq_scheme_parse("nf4:dq", &c, p, NULL);
    ck_assert(fabs(sq_layout_bpw(c, p, 4096, 4096) - (4 + 8.0 / 64 + 32.0 / (64 * 256) + 32.0 / (4096.0 * 4096))) < 1e-9);
}
END_TEST

/* Random bytes as parts: decoding must stay in bounds (ASan catches it if not). */
START_TEST(random_parts_decode_safely) {
    for (const sq_codec *const *l = sq_codec_list(); *l; l++) {
        const sq_codec *c = *l;
        uint32_t p[SQ_NPARAMS];
        ck_assert_int_eq(sq_scheme_parse(c->name, &c, p, NULL), 0);
        uint64_t rows = 5, cols = 70;
        sq_part_spec sp[SQ_CODEC_MAX_PARTS];
        int n = sq_layout(c, p, rows, cols, sp);
        sq_tview v = {0};
        v.codec = c;
        memcpy(v.params, p, sizeof p);
        v.rows = rows;
        v.cols = cols;
        void *bufs[SQ_CODEC_MAX_PARTS] = {0};
        for (int i = 0; i < n; i++) {
            uint64_t b = sq_dtype_size(sp[i].dtype);
            for (uint32_t k = 0; k < sp[i].ndim; k++) b *= sp[i].dims[k];
            uint8_t *m = malloc(b);
            for (uint64_t k = 0; k < b; k++) m[k] = (uint8_t)(urand() * 256);
            bufs[i] = m;
            v.part[i] = m;
        }
        float *out = malloc(rows * cols * sizeof(float)), *x = random_matrix(cols, 0), y[5];
        for (int isa = 0; isa < SQ_ISA_COUNT; isa++) {
            if (!sq_isa_supported((sq_isa)isa)) continue;
            sq_decode_for(c, (sq_isa)isa)(&v, 0, rows, out);
            sq_gemv_for(c, (sq_isa)isa)(&v, x, y, 0, rows);
        }
        for (int i = 0; i < n; i++) free(bufs[i]);
        free(out);
        free(x);
    }
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("codecs");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, golden_vectors);
    tcase_add_test(tc, minifloat_tables_exhaustive);
    tcase_add_test(tc, kernels_agree_on_every_path);
    tcase_add_test(tc, q8_kernels);
    tcase_add_test(tc, forced_portable_path);
    tcase_add_test(tc, int_error_bounds);
    tcase_add_test(tc, minifloat_error_bounds);
    tcase_add_test(tc, float_codecs_are_lossless);
    tcase_add_test(tc, scheme_strings);
    tcase_add_test(tc, random_parts_decode_safely);
    suite_add_tcase(s, tc);
    return s;
}
RUN_SUITE(suite())
