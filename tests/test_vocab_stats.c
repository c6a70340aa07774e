/* The output layer's calibration statistics and their use by the allocator:
 *  - /output/lm_head_in and /vocab of the tiny model against an independent
 *    computation from the runtime's logits (sq_rt_forward, another thread
 *    count): W XᵀX Wᵀ's diagonal equals Σ_t logit², the counts equal a
 *    histogram of the windows' tokens, the mean probabilities equal a softmax
 *    taken here in long double; the file round trip; the allocator's row
 *    weights read from it;
 *  - the row-weighted loss: an error on a rare row costs less than the same
 *    error on a frequent one, in exact proportion to the weights;
 *  - mix with row weights gives the heavy rows more bits. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc_model.h"
#include "calib.h"
#include "mix_encode.h"
#include "runtime.h"
#include "squish/codec.h"
#include "testutil.h"

#define WIN 3
#define T 40

START_TEST(output_stats_match_an_independent_computation) {
    sq_err err = {0};
    sq_model *src = sq_model_open(src_path("testdata/tiny-llama"), &err);
    ck_assert_msg(src != NULL, "%s", err.msg);
    sq_rt_model m;
    ck_assert_msg(sq_rt_load_model(src, &m, 2, &err) == 0, "%s", err.msg);
    const uint32_t V = m.cfg.vocab, H = m.cfg.hidden;
    sq_calib_acc a;
    ck_assert_int_eq(sq_calib_acc_init(&a, &m.cfg, 0, m.cfg.n_layers, 2, &err), 0);
    ck_assert(a.has_output);
    int32_t ids[WIN][T];
    test_rng = 0x1234567ull;
    for (int w = 0; w < WIN; w++)
        for (int t = 0; t < T; t++) ids[w][t] = (int32_t)(urand() < 0.5 ? urand() * 8 : urand() * V); /* a skewed mix */
    float *lg = malloc((size_t)T * V * sizeof *lg), *all = malloc((size_t)WIN * T * V * sizeof *all);
    for (int w = 0; w < WIN; w++) {
        ck_assert_int_eq(sq_rt_forward_tap(&m, ids[w], T, lg, 2, sq_calib_tap, &a, &err), 0);
        ck_assert_int_eq(a.status, 0);
        ck_assert_int_eq(sq_calib_acc_window(&a, ids[w], lg, T, &err), 0);
        /* the independent logits: the plain forward, one thread */
        ck_assert_int_eq(sq_rt_forward(&m, ids[w], T, all + (size_t)w * T * V, 1, &err), 0);
    }
    sq_calib_acc_symmetrize(&a);
    ck_assert_uint_eq(a.output.tokens, WIN * T);
    ck_assert_uint_eq(a.vocab.positions, WIN * T);
    /* counts: a histogram of the tokens */
    uint64_t *hist = calloc(V, sizeof *hist);
    for (int w = 0; w < WIN; w++)
        for (int t = 0; t < T; t++) hist[ids[w][t]]++;
    for (uint32_t v = 0; v < V; v++) ck_assert_uint_eq(a.vocab.count[v], hist[v]);
    /* mean probabilities: p_v = 1 / Σ_j exp(l_j - l_v) in long double */
    for (uint32_t v = 0; v < V; v++) {
        long double sum = 0;
        for (int p = 0; p < WIN * T; p++) {
            const float *l = all + (size_t)p * V;
            long double z = 0;
            for (uint32_t j = 0; j < V; j++) z += expl((long double)l[j] - (long double)l[v]);
            sum += 1.0L / z;
        }
        const double want = (double)(sum / (WIN * T)), got = a.vocab.mean_prob[v] / (double)a.vocab.positions;
        ck_assert_msg(fabs(got - want) <= 1e-12 * want + 1e-300, "mean_prob[%u] %.17g, independent %.17g", v, got, want);
    }
    /* XᵀX of the output layer's input: w_v XᵀX w_vᵀ = Σ_t logit_tv² for every entry v */
    float *W = malloc((size_t)V * H * sizeof *W);
    const sq_model_tensor *lt = sq_model_find(src, "lm_head.weight");
    ck_assert_ptr_nonnull(lt);
    ck_assert_int_eq(sq_model_tensor_f32(src, lt, W, &err), 0);
    for (uint32_t v = 0; v < V; v++) {
        double q = 0, s = 0;
        for (uint32_t i = 0; i < H; i++) {
            double r = 0;
            for (uint32_t j = 0; j < H; j++) r += a.output.xtx[(size_t)i * H + j] * W[(size_t)v * H + j];
            q += W[(size_t)v * H + i] * r;
        }
        for (int p = 0; p < WIN * T; p++) s += (double)all[(size_t)p * V + v] * all[(size_t)p * V + v];
        ck_assert_msg(fabs(q - s) <= 1e-4 * s, "entry %u: w XtX w' %.9g, sum of squared logits %.9g", v, q, s);
    }
    /* the file round trip, and the allocator's row weights from it */
    a.info.samples = WIN;
    a.info.seqlen = T;
    memset(a.info.model_sha256, 'a', 64);
    memset(a.info.text_sha256, 'b', 64);
    a.info.provenance = strdup("{}");
    char path[] = "/tmp/squish-test-vocab-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    ck_assert_msg(sq_calib_write(path, &a, &err) == 0, "%s", err.msg);
    sq_calib_file *f = sq_calib_open(path, &err);
    ck_assert_msg(f != NULL, "%s", err.msg);
    ck_assert(sq_calib_has_output(f));
    sq_calib_site os;
    sq_calib_vocab vs;
    ck_assert_msg(sq_calib_read_output(f, &os, &err) == 0, "%s", err.msg);
    ck_assert_msg(sq_calib_read_vocab(f, &vs, &err) == 0, "%s", err.msg);
    ck_assert(!memcmp(os.xtx, a.output.xtx, (size_t)H * H * sizeof(double)));
    ck_assert_uint_eq(os.tokens, WIN * T);
    for (uint32_t j = 0; j < H; j++) ck_assert(os.abs_mean[j] == a.output.abs_mean[j] / (double)(WIN * T));
    ck_assert_uint_eq(vs.n, V);
    ck_assert_uint_eq(vs.positions, WIN * T);
    ck_assert(!memcmp(vs.count, hist, V * sizeof *hist));
    for (uint32_t v = 0; v < V; v++) ck_assert(vs.mean_prob[v] == a.vocab.mean_prob[v] / (double)(WIN * T));
    sq_method q;
    memset(&q, 0, sizeof q);
    q.calib = f;
    double *rw;
    ck_assert_int_eq(sq_alloc_row_weights(&q, sq_model_find(src, "model.embed_tokens.weight"), V, &rw, &err), 0);
    ck_assert_ptr_nonnull(rw);
    for (uint32_t v = 0; v < V; v++) ck_assert(rw[v] == (double)hist[v] + SQ_ALLOC_COUNT_PRIOR);
    free(rw);
    ck_assert_int_eq(sq_alloc_row_weights(&q, lt, V, &rw, &err), 0);
    ck_assert_ptr_nonnull(rw);
    for (uint32_t v = 0; v < V; v++) ck_assert(rw[v] == vs.mean_prob[v]);
    free(rw);
    ck_assert_int_eq(sq_alloc_row_weights(&q, sq_model_find(src, "model.layers.0.mlp.up_proj.weight"), m.cfg.inter, &rw,
                                          &err), 0);
    ck_assert_ptr_null(rw); /* no row weights for a block's linear layer */
    sq_calib_site_free(&os);
    sq_calib_vocab_free(&vs);
    sq_calib_close(f);
    unlink(path);
    free(W), free(hist), free(lg), free(all);
    sq_calib_acc_free(&a);
    sq_rt_free(&m);
    sq_model_close(src);
}
END_TEST

/* A random symmetric positive definite cols x cols matrix. */
static double *spd(uint64_t n) {
    double *A = malloc(n * n * sizeof *A), *H = calloc(n * n, sizeof *H);
    for (uint64_t i = 0; i < n * n; i++) A[i] = urand() - 0.5;
    for (uint64_t i = 0; i < n; i++)
        for (uint64_t j = 0; j < n; j++) {
            double s = i == j ? 0.1 : 0;
            for (uint64_t k = 0; k < n; k++) s += A[i * n + k] * A[j * n + k];
            H[i * n + j] = s;
        }
    free(A);
    return H;
}

START_TEST(rare_rows_cost_less) {
    const uint64_t rows = 64, cols = 32;
    test_rng = 99;
    float *w = random_matrix(rows * cols, 0), *d1 = malloc(rows * cols * 4), *d2 = malloc(rows * cols * 4);
    double rw[64], flat[64];
    for (uint64_t r = 0; r < rows; r++) rw[r] = r < 32 ? 100.0 : 1.0, flat[r] = 1.0;
    double *H = spd(cols);
    sq_err err;
    for (int withH = 0; withH < 2; withH++) {
        /* the same error vector on a frequent row (8) and on a rare one (40) */
        memcpy(d1, w, rows * cols * 4);
        memcpy(d2, w, rows * cols * 4);
        for (uint64_t j = 0; j < cols; j++) {
            const float e = (float)(0.01 * (urand() - 0.5));
            d1[8 * cols + j] = w[8 * cols + j] + e;
            d2[40 * cols + j] = w[40 * cols + j] + e;
        }
        /* row 40's weights as row 8's, so that only the row weight differs */
        memcpy(w + 40 * cols, w + 8 * cols, cols * 4);
        memcpy(d1 + 40 * cols, w + 8 * cols, cols * 4);
        for (uint64_t j = 0; j < cols; j++) d2[40 * cols + j] = d1[8 * cols + j];
        const double *h = withH ? H : NULL;
        double lf, lr, uf, ur;
        ck_assert_int_eq(sq_alloc_rows_loss(w, d1, rows, cols, h, rw, 2, &lf, &err), 0);
        ck_assert_int_eq(sq_alloc_rows_loss(w, d2, rows, cols, h, rw, 3, &lr, &err), 0);
        ck_assert_int_eq(sq_alloc_rows_loss(w, d1, rows, cols, h, flat, 1, &uf, &err), 0);
        ck_assert_int_eq(sq_alloc_rows_loss(w, d2, rows, cols, h, flat, 1, &ur, &err), 0);
        ck_assert(lr > 0 && lr < lf);
        ck_assert_msg(fabs(lf / lr - 100.0) <= 1e-9 * 100.0, "frequent/rare loss %.17g, weights 100", lf / lr);
        ck_assert_msg(uf == ur, "equal weights, equal errors: %.17g vs %.17g", uf, ur);
    }
    free(w), free(d1), free(d2), free(H);
}
END_TEST

START_TEST(mix_gives_heavy_rows_more_bits) {
    const uint64_t rows = 64, cols = 256;
    test_rng = 7;
    float *w = random_matrix(rows * cols, 1);
    double *H = calloc(cols * cols, sizeof *H), rw[64];
    for (uint64_t i = 0; i < cols; i++) H[i * cols + i] = 1;
    for (uint64_t r = 0; r < rows; r++) rw[r] = r % 2 ? 1000.0 : 1.0; /* odd rows heavy */
    const sq_codec *c;
    uint32_t p[SQ_NPARAMS];
    sq_err err;
    ck_assert_int_eq(sq_scheme_parse("mix:3.5:g64", &c, p, &err), 0);
    for (int weighted = 0; weighted < 2; weighted++) {
        sq_mix_result r;
        ck_assert_msg(sq_mix_quantize_rw(w, rows, cols, H, weighted ? rw : NULL, p, 2, &r, NULL, &err) == 0, "%s", err.msg);
        uint64_t heavy = 0, light = 0;
        for (uint64_t i = 0; i < rows; i++) *(i % 2 ? &heavy : &light) += r.row_ptr[i + 1] - r.row_ptr[i];
        if (weighted) ck_assert_msg(heavy > light * 5 / 4, "heavy rows %llu code bytes, light %llu", (unsigned long long)heavy,
                                    (unsigned long long)light);
        else ck_assert_msg(heavy < light * 5 / 4 && light < heavy * 5 / 4, "unweighted: %llu vs %llu", (unsigned long long)heavy,
                           (unsigned long long)light);
        sq_mix_result_free(&r);
    }
    free(w), free(H);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("vocab_stats");
    TCase *tc = tcase_create("vocab_stats");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, output_stats_match_an_independent_computation);
    tcase_add_test(tc, rare_rows_cost_less);
    tcase_add_test(tc, mix_gives_heavy_rows_more_bits);
    suite_add_tcase(s, tc);
    return s;
}
RUN_SUITE(suite())
