/* Batched integer-activation products (sq_gemm_q8_fn, prefill) and the
 * int8-block activation quantizer they read. Asserts: every ISA's batched
 * kernel gives the portable reference's bits for every int width, sym and
 * asym, groups of 32/64/128/row, row counts off the 16-row tile, partial last
 * chunks, any number of activation rows and any row range; the reference is
 * within 1e-5 sum|w x| of a double-precision product of the dequantized
 * weights and activations computed here; the quantizer's SIMD path gives
 * the bits of its formula computed here; the AVX-512 FP4 GEMV (mxfp4,
 * fp4_e2m1) and int3 GEMV (groups other than 32-256) give the AVX2 kernels' bits, E8M0 scales down to
 * subnormal half-scales included. */
#include <math.h>

#include "codecs/codecs.h"
#include "testutil.h"

/* x ~ d q per block of 32 as sq_act_q8_init defines it, computed here. */
static void q8_expect(const float *x, uint64_t n, int8_t *q, float *d, int32_t *sum) {
    for (uint64_t b = 0; b < (n + 31) / 32; b++) {
        float amax = 0;
        for (uint64_t i = b * 32; i < n && i < b * 32 + 32; i++) amax = fmaxf(amax, fabsf(x[i]));
        d[b] = amax / 127.0f;
        sum[b] = 0;
        for (uint64_t i = b * 32; i < b * 32 + 32; i++) {
            q[i] = (int8_t)(i < n && d[b] > 0 ? (int)nearbyintf(x[i] / d[b]) : 0);
            sum[b] += q[i];
        }
    }
}

START_TEST(act_q8_matches_its_formula) {
    const uint64_t ns[] = {1, 31, 32, 33, 200, 512, 1536};
    for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) {
        const uint64_t n = ns[k], nb = (n + 31) / 32;
        float *x = random_matrix(n, 1);
        if (n > 40) memset(x + 32, 0, 32 * sizeof(float)); /* an all-zero block: d = 0 */
        sq_act_q8 a;
        ck_assert_int_eq(sq_act_q8_init(&a, x, n, NULL), SQ_OK);
        int8_t *q = malloc(nb * 32);
        float *d = malloc(nb * sizeof(float));
        int32_t *s = malloc(nb * sizeof(int32_t));
        q8_expect(x, n, q, d, s);
        ck_assert_msg(!memcmp(a.q, q, nb * 32) && !memcmp(a.d, d, nb * sizeof(float)) && !memcmp(a.sum, s, nb * sizeof(int32_t)),
                      "n = %llu: the quantized activations differ from the formula (ISA %s)", (unsigned long long)n,
                      sq_isa_name(sq_isa_active()));
        sq_act_q8_free(&a);
        free(x); free(q); free(d); free(s);
    }
}
END_TEST

/* One scheme and shape: every ISA slot against the portable reference (bits),
 * and the reference against the product in double precision. */
static void check_gemm(const char *scheme, uint64_t rows, uint64_t cols, uint32_t T) {
    const sq_codec *c;
    uint32_t p[SQ_NPARAMS];
    sq_err err;
    ck_assert_int_eq(sq_scheme_parse(scheme, &c, p, &err), 0);
    ck_assert_ptr_nonnull(c->cpu->gemm_q8[SQ_ISA_PORTABLE]);
    float *w = random_matrix(rows * cols, 1), *x = random_matrix((uint64_t)T * cols, 1);
    for (uint64_t i = 0; i < (uint64_t)T * cols; i++) x[i] *= 40; /* activation-sized values */
    sq_encoded e;
    ck_assert_int_eq(sq_encode(c, p, w, rows, cols, 1, &e, &err), 0);
    sq_tview v;
    sq_tview_from_encoded(&e, &v);
    sq_act_q8 *a = malloc(T * sizeof *a);
    for (uint32_t t = 0; t < T; t++) ck_assert_int_eq(sq_act_q8_init(&a[t], x + (uint64_t)t * cols, cols, NULL), SQ_OK);
    const size_t ny = (size_t)T * rows;
    float *ref = malloc(ny * sizeof(float)), *y = malloc(ny * sizeof(float)), *wd = malloc(rows * cols * sizeof(float));
    c->cpu->gemm_q8[SQ_ISA_PORTABLE](&v, a, T, ref, 0, rows);

    /* the reference against sum_i w_i (d q)_i in double */
    ck_assert_int_eq(sq_decode_rows(&v, 0, rows, wd), SQ_OK);
    for (uint32_t t = 0; t < T; t++)
        for (uint64_t r = 0; r < rows; r++) {
            double s = 0, sa = 0;
            for (uint64_t i = 0; i < cols; i++) {
                double xv = (double)a[t].d[i / 32] * a[t].q[i];
                s += (double)wd[r * cols + i] * xv;
                sa += fabs((double)wd[r * cols + i] * xv);
            }
            double got = ref[(uint64_t)t * rows + r];
            ck_assert_msg(fabs(got - s) <= 1e-5 * sa + 1e-30, "%s %llux%llu: row %llu, activation row %u: %.9g, expected %.9g (sum|wx| %g)",
                          scheme, (unsigned long long)rows, (unsigned long long)cols, (unsigned long long)r, t, got, s, sa);
        }

    for (int isa = SQ_ISA_PORTABLE + 1; isa < SQ_ISA_COUNT; isa++) {
        sq_gemm_q8_fn f = c->cpu->gemm_q8[isa];
        if (!f || !sq_isa_supported((sq_isa)isa)) continue;
        memset(y, 0xff, ny * sizeof(float));
        f(&v, a, T, y, 0, rows);
        ck_assert_msg(!memcmp(y, ref, ny * sizeof(float)), "%s %llux%llu T=%u: the %s kernel differs from the portable one",
                      scheme, (unsigned long long)rows, (unsigned long long)cols, T, sq_isa_name((sq_isa)isa));
        /* rows in pieces that do not start on a tile: the same bits, nothing outside written */
        memset(y, 0xff, ny * sizeof(float));
        uint64_t cut = rows > 5 ? 5 : rows;
        f(&v, a, T, y, cut, rows);
        for (uint32_t t = 0; t < T; t++)
            for (uint64_t r = 0; r < cut; r++) {
                uint32_t bits;
                memcpy(&bits, &y[(uint64_t)t * rows + r], 4);
                ck_assert_msg(bits == 0xffffffffu, "%s: the %s kernel wrote row %llu outside its range", scheme,
                              sq_isa_name((sq_isa)isa), (unsigned long long)r);
            }
        f(&v, a, T, y, 0, cut);
        ck_assert_msg(!memcmp(y, ref, ny * sizeof(float)), "%s T=%u: the %s kernel gives other bits over split row ranges",
                      scheme, T, sq_isa_name((sq_isa)isa));
    }
    for (uint32_t t = 0; t < T; t++) sq_act_q8_free(&a[t]);
    sq_encoded_free(&e);
    free(a); free(w); free(x); free(ref); free(y); free(wd);
}

START_TEST(batched_kernels_agree) {
    const char *schemes[] = {"int8:g32:sym", "int8:g32:asym", "int8", "int4:g32:sym", "int4:g64:asym", "int4:g128:sym",
                             "int3:g32:asym", "int3:g128:sym", "int2:g32:asym", "int2:g64:sym", "int4:g32:sym:s32", "int8:g64:sym:sbf16"};
    const uint32_t Ts[] = {1, 3, 8, 13};
    for (size_t s = 0; s < sizeof schemes / sizeof schemes[0]; s++)
        for (size_t k = 0; k < sizeof Ts / sizeof Ts[0]; k++) {
            check_gemm(schemes[s], 37, 256, Ts[k]);
            check_gemm(schemes[s], 3, 64, Ts[k]);
            if (!strstr(schemes[s], "g64") && !strstr(schemes[s], "g128")) check_gemm(schemes[s], 16, 200, Ts[k]); /* partial chunk */
        }
}
END_TEST

/* sq_fp4_gemv_q8_avx512 promises the bits of sq_fp4_gemv_q8_avx2 (same
 * lane integers, same float steps in the same order): every group form,
 * scale dtype, odd and partial chunk counts, and row ranges. */
START_TEST(fp4_vnni_matches_avx2) {
    if (!sq_isa_supported(SQ_ISA_AVX512)) return; /* nothing to compare on this CPU */
    /* and int3's VNNI GEMV (groups of 64 and more), which promises the AVX2 kernel's bits too, for groups
     * other than 32-256 values (those take the bit-plane kernels on both ISAs, AVX-512 from 4096 columns,
     * held to test_codecs.c's tolerance) */
    const char *schemes[] = {"mxfp4", "fp4_e2m1", "fp4_e2m1:g64", "fp4_e2m1:g128:sbf16", "fp4_e2m1:pc", "fp4_e2m1:pt",
                             "fp4_e2m1:g32:s32", "fp4_e2m1:g256:s32", "int3:g128:sym", "int3:g64:asym", "int3:pc:sym:s32",
                             "int3:g256:asym:sbf16", "int3:pc:asym"};
    const uint64_t shapes[][2] = {{37, 256}, {5, 96}, {16, 200}, {9, 4128}, {3, 32}};
    for (size_t s = 0; s < sizeof schemes / sizeof schemes[0]; s++)
        for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
            const uint64_t rows = shapes[k][0], cols = shapes[k][1];
            const sq_codec *c;
            uint32_t p[SQ_NPARAMS];
            sq_err err;
            ck_assert_int_eq(sq_scheme_parse(schemes[s], &c, p, &err), 0);
            const uint64_t gl = sq_codec_group_len(p, cols);
            if (c->id == SQ_CODEC_INT3 && (gl == 32 || gl == 64 || gl == 128 || gl == 256)) continue; /* bit-plane kernels */
            float *w = random_matrix(rows * cols, 1), *x = random_matrix(cols, 1);
            sq_encoded e;
            ck_assert_int_eq(sq_encode(c, p, w, rows, cols, 1, &e, &err), 0);
            if (c->family == SQ_FAMILY_MX) /* row 0: E8M0 codes 0..3 (half-scales 2^-128 .. 2^-125, two subnormal) */
                for (uint64_t g = 0; g < e.bytes[1] / rows; g++) ((uint8_t *)e.data[1])[g] = (uint8_t)(g % 4);
            sq_tview v;
            sq_tview_from_encoded(&e, &v);
            sq_act_q8 a;
            ck_assert_int_eq(sq_act_q8_init(&a, x, cols, NULL), SQ_OK);
            float *y2 = malloc(rows * sizeof(float)), *y5 = malloc(rows * sizeof(float));
            const int fp4 = c->id != SQ_CODEC_INT3;
            sq_gemv_q8_fn k2 = fp4 ? sq_fp4_gemv_q8_avx2 : sq_int_gemv_q8_avx2, k5 = fp4 ? sq_fp4_gemv_q8_avx512 : sq_int_gemv_q8_avx512;
            k2(&v, &a, y2, 0, rows);
            k5(&v, &a, y5, 0, rows);
            ck_assert_msg(!memcmp(y2, y5, rows * sizeof(float)), "%s %llux%llu: the AVX-512 q8 GEMV differs from the AVX2 one",
                          schemes[s], (unsigned long long)rows, (unsigned long long)cols);
            for (uint64_t r = 0; r < rows; r++) y5[r] = NAN;
            k5(&v, &a, y5, rows / 2, rows); /* a row range: the same bits for its rows */
            ck_assert_msg(!memcmp(y2 + rows / 2, y5 + rows / 2, (rows - rows / 2) * sizeof(float)) && (rows < 2 || isnan(y5[0])),
                          "%s %llux%llu: the AVX-512 q8 GEMV over rows %llu.. gives other bits, or writes outside them",
                          schemes[s], (unsigned long long)rows, (unsigned long long)cols, (unsigned long long)(rows / 2));
            sq_act_q8_free(&a);
            sq_encoded_free(&e);
            free(w); free(x); free(y2); free(y5);
        }
}
END_TEST

int main(void) {
    Suite *s = suite_create("gemm_q8");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, act_q8_matches_its_formula);
    tcase_add_test(tc, batched_kernels_agree);
    tcase_add_test(tc, fp4_vnni_matches_avx2);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
