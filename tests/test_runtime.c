/* The reference runtime against figures computed independently with
 * Hugging Face transformers (../shared/reference): logits, per-window NLL
 * sums and perplexity; thread-count independence; hostile evaluation input. */
#include <json-c/json.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "attention.h"
#include "runtime.h"
#include "tokenizer.h"
#include "testutil.h"

static sq_rt_model *load_ref(const char *model, sq_model **src) {
    sq_err err = {0};
    *src = sq_model_open(model, &err);
    ck_assert_msg(*src != NULL, "%s", err.msg);
    sq_rt_model *m = malloc(sizeof *m);
    ck_assert_msg(sq_rt_load_model(*src, m, 2, &err) == 0, "%s", err.msg);
    return m;
}

static json_object *refs(void) {
    json_object *r = json_object_from_file(shared_path("reference/refs.json"));
    ck_assert_ptr_nonnull(r);
    return r;
}

START_TEST(logits_match_transformers) {
    if (!have_shared()) return;
    sq_model *src;
    sq_rt_model *m = load_ref(shared_path("models/squish-lm-34m"), &src);
    int32_t *ids;
    uint64_t n;
    sq_err err;
    ck_assert_int_eq(sq_read_ids(shared_path("reference/ids/ids-34m-books-heldout.ids"), m->cfg.vocab, &ids, &n, &err), 0);
    uint32_t V = m->cfg.vocab;
    float *lg = malloc(4 * V * sizeof(float));
    ck_assert_int_eq(sq_rt_forward(m, ids, 4, lg, 2, &err), 0);
    size_t len = 0;
    float *ref = (float *)read_all(shared_path("reference/logits-34m-books-heldout-first4.f32"), &len);
    ck_assert_uint_eq(len, 4 * V * sizeof(float));
    double maxdiff = 0, maxref = 0;
    for (uint32_t i = 0; i < 4 * V; i++) {
        maxdiff = fmax(maxdiff, fabs((double)lg[i] - ref[i]));
        maxref = fmax(maxref, fabs((double)ref[i]));
    }
    ck_assert_msg(maxdiff / maxref < 1e-4, "logits differ by %g (relative to max %g)", maxdiff, maxref);
    free(ref); free(lg); free(ids);
    sq_rt_free(m); free(m);
    sq_model_close(src);
}
END_TEST

START_TEST(window_nll_matches_transformers) {
    if (!have_shared() || getenv("SQUISH_TEST_QUICK")) return; /* 2 full windows: too slow unoptimized */
    sq_model *src;
    sq_rt_model *m = load_ref(shared_path("models/squish-lm-34m"), &src);
    int32_t *ids;
    uint64_t n;
    sq_err err;
    ck_assert_int_eq(sq_read_ids(shared_path("reference/ids/ids-34m-books-heldout.ids"), m->cfg.vocab, &ids, &n, &err), 0);
    json_object *r = refs(), *w;
    ck_assert(json_pointer_get(r, "/squish-lm-34m/eval/books-heldout.txt/window_nll_sums", &w) == 0);
    for (uint32_t k = 0; k < 2; k++) {
        sq_eval_opts o = {512, 1, 0, 2, NULL, {0}, NULL, NULL};
        sq_eval_result res;
        ck_assert_int_eq(sq_rt_eval(m, NULL, ids + k * 512, 512, &o, &res, &err), 0);
        double want = json_object_get_double(json_object_array_get_idx(w, k));
        ck_assert_msg(fabs(res.nll_sum - want) / want < 1e-5, "window %u: NLL sum %.6f, transformers %.6f", k, res.nll_sum, want);
        ck_assert_uint_eq(res.scored, 511);
    }
    json_object_put(r);
    free(ids);
    sq_rt_free(m); free(m);
    sq_model_close(src);
}
END_TEST

START_TEST(stories260k_perplexity) {
    if (!have_shared()) return;
    sq_model *src;
    sq_rt_model *m = load_ref(shared_path("models/stories260K/stories260K.bin"), &src); /* llama2.c checkpoint */
    int32_t *ids;
    uint64_t n;
    sq_err err;
    ck_assert_int_eq(sq_read_ids(shared_path("reference/ids/ids-260K-tinystories-valid-excerpt.ids"), m->cfg.vocab, &ids, &n, &err), 0);
    sq_eval_opts o = {256, 0, 0, 2, NULL, {0}, NULL, NULL};
    sq_eval_result res;
    ck_assert_int_eq(sq_rt_eval(m, NULL, ids, n, &o, &res, &err), 0);
    json_object *r = refs(), *p;
    ck_assert(json_pointer_get(r, "/stories260K/eval/tinystories-valid-excerpt.txt/ppl", &p) == 0);
    double want = json_object_get_double(p);
    ck_assert_uint_eq(res.windows, 60);
    ck_assert_uint_eq(res.scored, 15300);
    ck_assert_msg(fabs(res.ppl - want) / want < 1e-3, "ppl %.6f, transformers %.6f", res.ppl, want);
    /* llama.cpp scoring: only the second half of each window */
    o.second_half = 1;
    ck_assert_int_eq(sq_rt_eval(m, NULL, ids, n, &o, &res, &err), 0);
    ck_assert_uint_eq(res.scored, 60 * 127);
    json_object_put(r);
    free(ids);
    sq_rt_free(m); free(m);
    sq_model_close(src);
}
END_TEST

/* Always available: the tiny model, quantized, against itself in f32. */
START_TEST(tiny_model_eval_and_threads) {
    sq_model *src;
    sq_rt_model *m = load_ref(src_path("testdata/tiny-llama"), &src);
    int32_t ids[130];
    for (int i = 0; i < 130; i++) ids[i] = (i * 37 + 11) % 512;
    uint32_t V = m->cfg.vocab;
    float *a = malloc(64 * V * sizeof(float)), *b = malloc(64 * V * sizeof(float));
    sq_err err;
    ck_assert_int_eq(sq_rt_forward(m, ids, 64, a, 1, &err), 0);
    ck_assert_int_eq(sq_rt_forward(m, ids, 64, b, 3, &err), 0);
    ck_assert_int_eq(memcmp(a, b, 64 * V * sizeof(float)), 0); /* same bits for any thread count */
    /* a prefix gives the same logits: the mask is causal */
    ck_assert_int_eq(sq_rt_forward(m, ids, 10, b, 2, &err), 0);
    ck_assert_int_eq(memcmp(a, b, 10 * V * sizeof(float)), 0);
    /* incremental decoding with the KV cache gives the batched logits */
    sq_rt_cache kv;
    ck_assert_int_eq(sq_rt_cache_init(m, 64, &kv, &err), 0);
    float *step = malloc(V * sizeof(float));
    for (uint32_t t = 0; t < 64; t++) {
        ck_assert_int_eq(sq_rt_step(m, &kv, ids[t], step, 2, &err), 0);
        double md = 0, mx = 0;
        for (uint32_t i = 0; i < V; i++) {
            md = fmax(md, fabs((double)step[i] - a[t * V + i]));
            mx = fmax(mx, fabs((double)a[t * V + i]));
        }
        ck_assert_msg(md <= 1e-4 * mx, "position %u: step logits differ by %g (max %g)", t, md, mx);
    }
    ck_assert_int_eq(sq_rt_step(m, &kv, ids[0], step, 2, &err), SQ_EUSAGE); /* cache full */
    sq_rt_cache_free(&kv);
    free(step);
    sq_eval_opts o = {64, 0, 0, 2, NULL, {0}, NULL, NULL};
    sq_eval_result r;
    ck_assert_int_eq(sq_rt_eval(m, m, ids, 130, &o, &r, &err), 0);
    ck_assert_uint_eq(r.windows, 2);
    ck_assert_uint_eq(r.scored, 126);
    ck_assert(fabs(r.kld_mean) < 1e-12 && r.top1 == 1.0 && r.ppl == r.ref_ppl); /* a model against itself */
    ck_assert(r.ppl > 1 && isfinite(r.ppl));
    /* hostile evaluation input */
    ck_assert_int_eq(sq_rt_eval(m, NULL, ids, 30, &o, &r, &err), SQ_EUSAGE); /* shorter than one window */
    o.ctx = 1;
    ck_assert_int_eq(sq_rt_eval(m, NULL, ids, 130, &o, &r, &err), SQ_EUSAGE);
    int32_t bad[4] = {1, 2, 600, 3};
    ck_assert_int_eq(sq_rt_forward(m, bad, 4, a, 1, &err), SQ_EUSAGE);
    const char *d = tmpdir();
    char p[512];
    snprintf(p, sizeof p, "%s/ids", d);
    int32_t *got;
    uint64_t n;
    write_all_file(p, "1 2 3 512", 9);
    ck_assert_int_eq(sq_read_ids(p, V, &got, &n, &err), SQ_ECORRUPT);
    write_all_file(p, "1 2 x 3", 7);
    ck_assert_int_eq(sq_read_ids(p, V, &got, &n, &err), SQ_ECORRUPT);
    write_all_file(p, "", 0);
    ck_assert_int_eq(sq_read_ids(p, V, &got, &n, &err), SQ_EUSAGE);
    write_all_file(p, " 7\n8\t9 ", 7);
    ck_assert_int_eq(sq_read_ids(p, V, &got, &n, &err), SQ_OK);
    ck_assert_uint_eq(n, 3);
    ck_assert_int_eq(got[2], 9);
    free(got);
    free(a); free(b);
    sq_rt_free(m); free(m);
    sq_model_close(src);
}
END_TEST

/* Decoding with each codec's fastest kernel (int8-block activations for
 * int4): the linear layers of the tiny model re-encoded as int4:g128 (one
 * with a perm transform); the fast path's logits stay within the q8
 * rounding of the exact path's and do not depend on the thread count. */
START_TEST(fast_kernels_decode) {
    sq_model *src;
    sq_rt_model *m = load_ref(src_path("testdata/tiny-llama"), &src);
    const sq_codec *c;
    uint32_t p[SQ_NPARAMS];
    sq_err err;
    ck_assert_int_eq(sq_scheme_parse("int4:g128:asym", &c, p, &err), 0); /* a group where q8 pays (sq_best_kernel) */
    const uint32_t nl = m->cfg.n_layers;
    sq_encoded *enc = calloc((size_t)nl * SQ_LIN_COUNT, sizeof *enc);
    sq_tview *saved = calloc((size_t)nl * SQ_LIN_COUNT, sizeof *saved);
    for (uint32_t l = 0; l < nl; l++)
        for (int i = 0; i < SQ_LIN_COUNT; i++) {
            sq_tview *v = (sq_tview *)sq_rt_linear_view(&m->layers[l], i);
            float *w = malloc(v->rows * v->cols * sizeof(float));
            ck_assert_int_eq(sq_decode_mt(v, w, 1), 0);
            sq_encoded *e = &enc[l * SQ_LIN_COUNT + (uint32_t)i];
            ck_assert_int_eq(sq_encode(c, p, w, v->rows, v->cols, 1, e, &err), 0);
            if (l == 0 && i == 0) { /* a transform: reversed columns */
                uint32_t *perm = malloc(v->cols * sizeof *perm);
                for (uint64_t j = 0; j < v->cols; j++) perm[j] = (uint32_t)(v->cols - 1 - j);
                ck_assert_int_eq(sq_encoded_set_xform(e, perm, NULL, &err), 0);
                free(perm);
            }
            saved[l * SQ_LIN_COUNT + (uint32_t)i] = *v;
            sq_tview_from_encoded(e, v);
            free(w);
        }
    uint32_t V = m->cfg.vocab, n = 24;
    float *exact = malloc((size_t)n * V * sizeof(float)), *f1 = malloc((size_t)n * V * sizeof(float)),
          *f3 = malloc((size_t)n * V * sizeof(float));
    for (int pass = 0; pass < 3; pass++) {
        sq_rt_cache kv;
        ck_assert_int_eq(sq_rt_cache_init(m, n, &kv, &err), 0);
        m->fast_kernels = pass > 0;
        float *out = pass == 0 ? exact : pass == 1 ? f1 : f3;
        for (uint32_t t = 0; t < n; t++)
            ck_assert_int_eq(sq_rt_step(m, &kv, (int32_t)((t * 37 + 11) % 512), out + (size_t)t * V, pass == 2 ? 3 : 1, &err), 0);
        sq_rt_cache_free(&kv);
    }
    ck_assert_int_eq(memcmp(f1, f3, (size_t)n * V * sizeof(float)), 0);
    double md = 0, mx = 0, diff = 0;
    for (size_t i = 0; i < (size_t)n * V; i++) {
        md = fmax(md, fabs((double)f1[i] - exact[i]));
        mx = fmax(mx, fabs((double)exact[i]));
        diff += f1[i] != exact[i];
    }
    ck_assert_msg(md <= 0.05 * mx, "fast-kernel logits differ from exact by %g (max %g)", md, mx);
    ck_assert_msg(diff > 0, "the fast path gave the exact path's bits: it did not run");
    /* the batched pass over the same tokens (its products through the
     * batched q8 kernels, the perm applied to the activations first): the
     * same bits for 1 and 3 threads, within the q8 rounding of the exact pass */
    int32_t ids[24];
    for (uint32_t t = 0; t < n; t++) ids[t] = (int32_t)((t * 37 + 11) % 512);
    m->fast_kernels = SQ_RT_PATH_EXACT;
    ck_assert_int_eq(sq_rt_forward(m, ids, n, exact, 1, &err), 0);
    m->fast_kernels = SQ_RT_PATH_FAST;
    ck_assert_int_eq(sq_rt_forward(m, ids, n, f1, 1, &err), 0);
    ck_assert_int_eq(sq_rt_forward(m, ids, n, f3, 3, &err), 0);
    ck_assert_int_eq(memcmp(f1, f3, (size_t)n * V * sizeof(float)), 0);
    md = mx = diff = 0;
    for (size_t i = 0; i < (size_t)n * V; i++) {
        md = fmax(md, fabs((double)f1[i] - exact[i]));
        mx = fmax(mx, fabs((double)exact[i]));
        diff += f1[i] != exact[i];
    }
    ck_assert_msg(md <= 0.05 * mx, "fast prefill logits differ from exact by %g (max %g)", md, mx);
    ck_assert_msg(diff > 0, "the fast prefill gave the exact path's bits: it did not run");
    m->fast_kernels = 0;
    for (uint32_t k = 0; k < nl * SQ_LIN_COUNT; k++) {
        *(sq_tview *)sq_rt_linear_view(&m->layers[k / SQ_LIN_COUNT], (int)(k % SQ_LIN_COUNT)) = saved[k];
        sq_encoded_free(&enc[k]);
    }
    free(enc); free(saved); free(exact); free(f1); free(f3);
    sq_rt_free(m); free(m);
    sq_model_close(src);
}
END_TEST

/* The fast attention's vectorized exponential against expf over the
 * softmax's arguments [-104, 0] (every 4096th float there, and the ends):
 * within 2 ulp, where ulp is the distance between neighbouring floats (so
 * subnormal results count in units of the smallest subnormal). */
START_TEST(attn_exp_within_2ulp) {
    const uint32_t lo = 0x80000000u, hi = 0xC2D00000u; /* -0 .. -104 by bit pattern */
    uint64_t n = 0;
    float *x = malloc(((hi - lo) / 4096 + 32) * sizeof(float)), *y = malloc(((hi - lo) / 4096 + 32) * sizeof(float));
    for (uint32_t b = lo; b <= hi - 4096; b += 4096) {
        float v;
        memcpy(&v, &b, 4);
        x[n++] = v;
    }
    x[n++] = 0.0f, x[n++] = -104.0f, x[n++] = -87.5f, x[n++] = -103.9f;
    while (n % 16) x[n++] = -1.0f;
    if (!sq_attn_exp_avx512(x, y, n)) {
        free(x), free(y);
        return; /* no AVX-512 here: the kernel never runs */
    }
    int32_t worst = 0;
    for (uint64_t i = 0; i < n; i++) {
        const float e = expf(x[i]);
        int32_t be, by;
        memcpy(&be, &e, 4);
        memcpy(&by, &y[i], 4);
        const int32_t d = be > by ? be - by : by - be;
        ck_assert_msg(d <= 2 && y[i] >= 0, "exp(%a): %a, expf gives %a (%d ulp)", (double)x[i], (double)y[i], (double)e, d);
        if (d > worst) worst = d;
    }
    ck_assert_int_le(worst, 2);
    free(x), free(y);
}
END_TEST

/* Re-encodes every linear layer of m in scheme (the output layer stays f32);
 * restore() puts the f32 views back. */
typedef struct reenc {
    sq_encoded *enc;
    sq_tview *saved;
    uint32_t n;
} reenc;
static reenc reencode(sq_rt_model *m, const char *scheme) {
    const sq_codec *c;
    uint32_t p[SQ_NPARAMS];
    sq_err err;
    ck_assert_int_eq(sq_scheme_parse(scheme, &c, p, &err), 0);
    reenc r = {calloc((size_t)m->cfg.n_layers * SQ_LIN_COUNT, sizeof(sq_encoded)),
               calloc((size_t)m->cfg.n_layers * SQ_LIN_COUNT, sizeof(sq_tview)), m->cfg.n_layers * SQ_LIN_COUNT};
    for (uint32_t k = 0; k < r.n; k++) {
        sq_tview *v = (sq_tview *)sq_rt_linear_view(&m->layers[k / SQ_LIN_COUNT], (int)(k % SQ_LIN_COUNT));
        float *w = malloc(v->rows * v->cols * sizeof(float));
        ck_assert_int_eq(sq_decode_mt(v, w, 2), 0);
        ck_assert_int_eq(sq_encode(c, p, w, v->rows, v->cols, 2, &r.enc[k], &err), 0);
        r.saved[k] = *v;
        sq_tview_from_encoded(&r.enc[k], v);
        free(w);
    }
    return r;
}
static void restore(sq_rt_model *m, reenc *r) {
    for (uint32_t k = 0; k < r->n; k++) {
        *(sq_tview *)sq_rt_linear_view(&m->layers[k / SQ_LIN_COUNT], (int)(k % SQ_LIN_COUNT)) = r->saved[k];
        sq_encoded_free(&r->enc[k]);
    }
    free(r->enc);
    free(r->saved);
}

/* Perplexity of tokens[1..T) under logits [T][V]. */
static double ppl_of(const float *lg, const int32_t *ids, uint32_t T, uint32_t V) {
    double nll = 0;
    for (uint32_t t = 0; t + 1 < T; t++) {
        const float *l = lg + (size_t)t * V;
        double mx = -INFINITY, s = 0;
        for (uint32_t i = 0; i < V; i++) mx = fmax(mx, l[i]);
        for (uint32_t i = 0; i < V; i++) s += exp(l[i] - mx);
        nll += mx + log(s) - l[ids[t + 1]];
    }
    return exp(nll / (T - 1));
}

/* The runtime's paths on one model and scheme: the batched pass (prefill)
 * and decode on the FAST and FAST_Q8_GEMM paths against the EXACT path.
 * Asserts: each path is the same bits for 1 and 3 threads; FAST prefill
 * differs from EXACT only by the attention summation order (max logit
 * difference <= 1e-3 of the largest logit) where the codec has no batched
 * integer kernel for the ISA, else (sq_gemm_q8_fn) like FAST_Q8_GEMM
 * prefill and FAST decode: within the int8 rounding of the activations (tol
 * of the largest logit), perplexity moved by at most ppl_tol relative; the
 * fast paths really ran (some logit differs). */
static void check_paths(sq_rt_model *m, const int32_t *ids, uint32_t T, double tol, double ppl_tol) {
    sq_err err = {0};
    const uint32_t V = m->cfg.vocab;
    const size_t n = (size_t)T * V;
    float *ex = malloc(n * 4), *fa = malloc(n * 4), *q8 = malloc(n * 4), *alt = malloc(n * 4), *dec = malloc(n * 4);
    m->fast_kernels = SQ_RT_PATH_EXACT;
    ck_assert_int_eq(sq_rt_forward(m, ids, T, ex, 2, &err), 0);
    m->fast_kernels = SQ_RT_PATH_FAST;
    ck_assert_int_eq(sq_rt_forward(m, ids, T, fa, 1, &err), 0);
    ck_assert_int_eq(sq_rt_forward(m, ids, T, alt, 3, &err), 0);
    ck_assert_int_eq(memcmp(fa, alt, n * 4), 0);
    m->fast_kernels = SQ_RT_PATH_FAST_Q8_GEMM;
    ck_assert_int_eq(sq_rt_forward(m, ids, T, q8, 1, &err), 0);
    ck_assert_int_eq(sq_rt_forward(m, ids, T, alt, 3, &err), 0);
    ck_assert_int_eq(memcmp(q8, alt, n * 4), 0);
    m->fast_kernels = SQ_RT_PATH_FAST;
    sq_rt_cache kv;
    ck_assert_int_eq(sq_rt_cache_init(m, T, &kv, &err), 0);
    for (uint32_t t = 0; t < T; t++) ck_assert_int_eq(sq_rt_step(m, &kv, ids[t], dec + (size_t)t * V, 2, &err), 0);
    sq_rt_cache_free(&kv);
    m->fast_kernels = SQ_RT_PATH_EXACT;
    double mx = 0, dfa = 0, dq8 = 0, ddec = 0;
    size_t nq8 = 0, ndec = 0;
    for (size_t i = 0; i < n; i++) {
        mx = fmax(mx, fabs((double)ex[i]));
        dfa = fmax(dfa, fabs((double)fa[i] - ex[i]));
        dq8 = fmax(dq8, fabs((double)q8[i] - ex[i]));
        ddec = fmax(ddec, fabs((double)dec[i] - ex[i]));
        nq8 += q8[i] != ex[i];
        ndec += dec[i] != ex[i];
    }
    double pe = ppl_of(ex, ids, T, V), pq = ppl_of(q8, ids, T, V), pd = ppl_of(dec, ids, T, V);
    printf("paths over %u tokens: max |logit| %.3f; max diff FAST prefill %.3g, FAST_Q8_GEMM prefill %.3g, FAST decode %.3g;"
           " ppl exact %.4f, q8 gemm %.4f, fast decode %.4f\n", T, mx, dfa, dq8, ddec, pe, pq, pd);
    const sq_tview *w0 = sq_rt_linear_view(&m->layers[0], SQ_LIN_Q);
    sq_gemm_q8_fn g = sq_isa_active() > SQ_ISA_PORTABLE ? sq_gemm_q8_for(w0->codec, sq_isa_active()) : NULL;
    int batched = g && g != w0->codec->cpu->gemm_q8[SQ_ISA_PORTABLE];
    double pf = ppl_of(fa, ids, T, V);
    printf("FAST prefill %s: max diff %.3g, ppl %.4f\n", batched ? "on the batched q8 kernels" : "on the f32 GEMM", dfa, pf);
    ck_assert_msg(dfa <= (batched ? tol : 1e-3) * mx, "FAST prefill differs from EXACT by %g (max %g)", dfa, mx);
    ck_assert_msg(fabs(pf / pe - 1) <= ppl_tol, "FAST prefill ppl %g, exact %g", pf, pe);
    ck_assert_msg(dq8 <= tol * mx, "FAST_Q8_GEMM prefill differs from EXACT by %g (max %g)", dq8, mx);
    ck_assert_msg(ddec <= tol * mx, "FAST decode differs from EXACT by %g (max %g)", ddec, mx);
    ck_assert_msg(fabs(pq / pe - 1) <= ppl_tol && fabs(pd / pe - 1) <= ppl_tol, "ppl %g / %g / %g", pe, pq, pd);
    ck_assert_msg(nq8 > 0 && ndec > 0, "a fast path gave the exact path's bits: it did not run");
    free(ex); free(fa); free(q8); free(alt); free(dec);
}

/* sq_rt_forward_last: the last position's logits of the whole pass, on
 * the exact and the fast path (its output layer runs as one T = 1 product,
 * so within the float rounding of a different summation order: 1e-4 of the
 * largest logit exact, the q8 tolerance fast). */
START_TEST(forward_last_is_last_row) {
    sq_model *src;
    sq_rt_model *m = load_ref(src_path("testdata/tiny-llama"), &src);
    reenc r = reencode(m, "int4:g128:asym");
    const uint32_t T = 20, V = m->cfg.vocab;
    int32_t ids[20];
    for (uint32_t t = 0; t < T; t++) ids[t] = (int32_t)((t * 37 + 11) % V);
    float *all = malloc((size_t)T * V * 4), *last = malloc((size_t)V * 4);
    sq_err err = {0};
    for (int fast = 0; fast < 2; fast++) {
        m->fast_kernels = fast ? SQ_RT_PATH_FAST : SQ_RT_PATH_EXACT;
        ck_assert_int_eq(sq_rt_forward(m, ids, T, all, 2, &err), 0);
        ck_assert_int_eq(sq_rt_forward_last(m, ids, T, last, 2, &err), 0);
        double mx = 0, d = 0;
        for (uint32_t i = 0; i < V; i++) {
            mx = fmax(mx, fabs((double)all[(size_t)(T - 1) * V + i]));
            d = fmax(d, fabs((double)last[i] - all[(size_t)(T - 1) * V + i]));
        }
        ck_assert_msg(mx > 0 && d <= (fast ? 0.05 : 1e-4) * mx, "%s path: last-position logits differ by %g (max %g)",
                      fast ? "fast" : "exact", d, mx);
    }
    m->fast_kernels = SQ_RT_PATH_EXACT;
    free(all); free(last);
    restore(m, &r);
    sq_rt_free(m); free(m);
    sq_model_close(src);
}
END_TEST

/* sq_rt_load_model_mapped (calibration's loader: a 7B model without a 27 GB
 * f32 copy) reads the bf16 weights where they are mapped and gives the bits
 * of the f32 copy on the exact path: batched forward (the calibration pass)
 * and single-token steps, for 1 and 3 threads. */
static void mapped_same_bits(const char *path) {
    sq_err err = {0};
    sq_model *src = sq_model_open(path, &err);
    ck_assert_msg(src != NULL, "%s", err.msg);
    sq_rt_model copy, mapped;
    ck_assert_msg(sq_rt_load_model(src, &copy, 2, &err) == 0, "%s", err.msg);
    ck_assert_msg(sq_rt_load_model_mapped(src, &mapped, 2, &err) == 0, "%s", err.msg);
    const sq_model_tensor *t = sq_model_find(src, "model.layers.0.mlp.down_proj.weight");
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(t->dtype, SQ_DT_BF16);
    ck_assert_ptr_eq(mapped.layers[0].down.part[0], t->data); /* in place: no copy */
    ck_assert_ptr_eq(mapped.layers[0].down.codec, sq_codec_by_id(SQ_CODEC_BF16));
    ck_assert_ptr_eq(copy.layers[0].down.codec, sq_codec_by_id(SQ_CODEC_F32));
    const uint32_t T = 12, V = copy.cfg.vocab;
    int32_t ids[12];
    for (uint32_t i = 0; i < T; i++) ids[i] = (int32_t)((i * 53 + 7) % V);
    float *a = malloc((size_t)T * V * 4), *b = malloc((size_t)T * V * 4);
    for (int threads = 1; threads <= 3; threads += 2) {
        ck_assert_int_eq(sq_rt_forward(&copy, ids, T, a, threads, &err), 0);
        ck_assert_int_eq(sq_rt_forward(&mapped, ids, T, b, threads, &err), 0);
        ck_assert_msg(!memcmp(a, b, (size_t)T * V * 4), "%s: mapped forward differs (%d threads)", path, threads);
        sq_rt_cache ca, cb;
        ck_assert_int_eq(sq_rt_cache_init(&copy, T, &ca, &err), 0);
        ck_assert_int_eq(sq_rt_cache_init(&mapped, T, &cb, &err), 0);
        for (uint32_t i = 0; i < 4; i++) {
            ck_assert_int_eq(sq_rt_step(&copy, &ca, ids[i], a, threads, &err), 0);
            ck_assert_int_eq(sq_rt_step(&mapped, &cb, ids[i], b, threads, &err), 0);
            ck_assert_msg(!memcmp(a, b, (size_t)V * 4), "%s: mapped step %u differs (%d threads)", path, i, threads);
        }
        sq_rt_cache_free(&ca);
        sq_rt_cache_free(&cb);
    }
    free(a); free(b);
    sq_rt_free(&copy);
    sq_rt_free(&mapped);
    sq_model_close(src);
}

START_TEST(mapped_reference_same_bits) {
    mapped_same_bits(src_path("testdata/tiny-llama"));
    if (have_shared()) mapped_same_bits(shared_path("models/squish-lm-34m"));
}
END_TEST

/* sq_rt_linear_batch (prefill's q/k/v and gate/up, one quantization of X
 * shared) gives the bits of separate sq_rt_linear calls, on every path, for
 * 1 and 3 threads. */
START_TEST(linear_batch_same_bits) {
    sq_model *src;
    sq_rt_model *m = load_ref(src_path("testdata/tiny-llama"), &src);
    reenc r = reencode(m, "int4:g128:asym");
    const sq_rt_layer *L = &m->layers[1];
    const int idx[][3] = {{SQ_LIN_Q, SQ_LIN_K, SQ_LIN_V}, {SQ_LIN_GATE, SQ_LIN_UP, -1}};
    const uint32_t T = 21, K = m->cfg.hidden;
    float *x = malloc((size_t)T * K * 4);
    for (uint64_t i = 0; i < (uint64_t)T * K; i++) x[i] = sinf(0.37f * (float)i) * (1.0f + (float)(i % 7));
    sq_err err = {0};
    const int paths[] = {SQ_RT_PATH_EXACT, SQ_RT_PATH_FAST, SQ_RT_PATH_FAST_Q8_GEMM};
    for (int p = 0; p < 3; p++)
        for (int g = 0; g < 2; g++) {
            m->fast_kernels = paths[p];
            const int n = g ? 2 : 3;
            float *a[3], *b[3];
            for (int i = 0; i < n; i++) {
                const uint64_t rows = sq_rt_linear_view(L, idx[g][i])->rows;
                a[i] = malloc((size_t)T * rows * 4);
                b[i] = malloc((size_t)T * rows * 4);
                ck_assert_int_eq(sq_rt_linear(m, sq_rt_linear_view(L, idx[g][i]), NULL, x, T, a[i], 1, &err), 0);
            }
            for (int th = 1; th <= 3; th += 2) {
                ck_assert_int_eq(sq_rt_linear_batch(m, L, idx[g], n, x, T, b, th, &err), 0);
                for (int i = 0; i < n; i++) {
                    const uint64_t rows = sq_rt_linear_view(L, idx[g][i])->rows;
                    ck_assert_msg(memcmp(a[i], b[i], (size_t)T * rows * 4) == 0, "path %d group %d matrix %d threads %d", p, g, i, th);
                }
            }
            for (int i = 0; i < n; i++) free(a[i]), free(b[i]);
        }
    m->fast_kernels = SQ_RT_PATH_EXACT;
    free(x);
    restore(m, &r);
    sq_rt_free(m); free(m);
    sq_model_close(src);
}
END_TEST

/* The tiny model with int4:g128:asym linear layers (the integer kernels pay
 * at g128, so every fast path uses them). */
START_TEST(fast_paths_tiny) {
    sq_model *src;
    sq_rt_model *m = load_ref(src_path("testdata/tiny-llama"), &src);
    ck_assert_int_eq(m->fast_kernels, SQ_RT_PATH_EXACT); /* references load exact */
    reenc r = reencode(m, "int4:g128:asym");
    int32_t ids[48];
    for (uint32_t t = 0; t < 48; t++) ids[t] = (int32_t)((t * 37 + 11) % m->cfg.vocab);
    check_paths(m, ids, 48, 0.05, 0.02);
    restore(m, &r);
    sq_rt_free(m); free(m);
    sq_model_close(src);
}
END_TEST

/* squish-lm-34m with int4:g128:asym linear layers, on 256 tokens of
 * books-heldout: the fast paths' perplexity within 1% of the exact path's. */
START_TEST(fast_paths_34m) {
    if (!have_shared() || getenv("SQUISH_TEST_QUICK")) return;
    sq_model *src;
    sq_rt_model *m = load_ref(shared_path("models/squish-lm-34m"), &src);
    reenc r = reencode(m, "int4:g128:asym");
    int32_t *ids;
    uint64_t n;
    sq_err err = {0};
    ck_assert_int_eq(sq_read_ids(shared_path("reference/ids/ids-34m-books-heldout.ids"), m->cfg.vocab, &ids, &n, &err), 0);
    ck_assert_uint_ge(n, 256);
    check_paths(m, ids, 256, 0.05, 0.01);
    free(ids);
    restore(m, &r);
    sq_rt_free(m); free(m);
    sq_model_close(src);
}
END_TEST

/* The byte-level BPE tokenizer gives exactly the ids transformers' tokenizers gave. */
START_TEST(tokenizer_matches_golden_ids) {
    if (!have_shared()) return;
    sq_err err = {0};
    sq_tokenizer *tk = sq_tokenizer_load(shared_path("models/squish-lm-34m/tokenizer.json"), &err);
    ck_assert_msg(tk != NULL, "%s", err.msg);
    ck_assert_uint_eq(sq_tokenizer_vocab(tk), 8192);
    const char *pairs[][2] = {{"data/books-heldout.txt", "reference/ids/ids-34m-books-heldout.ids"},
                              {"data/wikitext-2-raw-test.head.txt", "reference/ids/ids-34m-wikitext-2-raw-test.head.ids"},
                              {"data/wikitext-2-raw-test.raw", "reference/ids/ids-34m-wikitext-2-raw-test.raw.ids"}};
    for (int k = 0; k < 3; k++) {
        size_t len;
        char *text = (char *)read_all(shared_path(pairs[k][0]), &len);
        ck_assert_ptr_nonnull(text);
        int32_t *ids, *want;
        uint64_t n, nw;
        ck_assert_msg(sq_tokenize(tk, text, len, &ids, &n, &err) == 0, "%s", err.msg);
        ck_assert_int_eq(sq_read_ids(shared_path(pairs[k][1]), 8192, &want, &nw, &err), 0);
        ck_assert_uint_eq(n, nw);
        for (uint64_t i = 0; i < n; i++) ck_assert_msg(ids[i] == want[i], "%s: token %llu is %d, want %d", pairs[k][0], (unsigned long long)i, ids[i], want[i]);
        free(ids); free(want); free(text);
    }
    /* SentencePiece BPE (stories260K), on the text read as Python reads it (CRLF -> LF) */
    for (int form = 0; form < 2; form++) { /* tokenizer.model, then llama2.c's tok512.bin */
    sq_tokenizer *sp = form == 0 ? sq_tokenizer_load(shared_path("models/stories260K/hf/tokenizer.model"), &err)
                                 : sq_tokenizer_load_vocab(shared_path("models/stories260K/tok512.bin"), 512, &err);
    ck_assert_msg(sp != NULL, "%s", err.msg);
    ck_assert_uint_eq(sq_tokenizer_vocab(sp), 512);
    {
        size_t len;
        char *text = (char *)read_all(shared_path("data/tinystories-valid-excerpt.txt"), &len);
        len = sq_text_newlines(text, len);
        int32_t *got, *want;
        uint64_t n, nw;
        ck_assert_int_eq(sq_tokenize(sp, text, len, &got, &n, &err), 0);
        ck_assert_int_eq(sq_read_ids(shared_path("reference/ids/ids-260K-tinystories-valid-excerpt.ids"), 512, &want, &nw, &err), 0);
        ck_assert_uint_eq(n, nw);
        for (uint64_t i = 0; i < n; i++) ck_assert_msg(got[i] == want[i], "tinystories: token %llu is %d, want %d", (unsigned long long)i, got[i], want[i]);
        free(got); free(want); free(text);
    }
    sq_tokenizer_free(sp);
    }
    /* a truncated tokenizer.bin is refused */
    {
        size_t len;
        unsigned char *b = read_all(shared_path("models/stories260K/tok512.bin"), &len);
        const char *d = tmpdir();
        char p[512];
        snprintf(p, sizeof p, "%s/tok.bin", d);
        for (size_t cut = 0; cut < len; cut += 97) {
            write_all_file(p, b, cut);
            sq_tokenizer *bad = sq_tokenizer_load_vocab(p, 512, &err);
            ck_assert_msg(bad == NULL, "truncation to %zu accepted", cut);
        }
        free(b);
    }
    /* another model's tokenizer: the message says so and gives both sizes */
    {
        struct { const char *path; uint32_t vocab; const char *says; } wrong[] = {
            {"models/squish-lm-34m/tokenizer.json", 512, "has 8192 tokens but the model's vocabulary has 512: a tokenizer of another model"},
            {"models/stories260K/tok512.bin", 8192, "holds 512 tokens but the model's vocabulary has 8192: a tokenizer of another model"},
            {"models/stories260K/tok512.bin", 500, "holds 512 tokens but the model's vocabulary has 500: a tokenizer of another model"},
            {"models/stories260K/hf/tokenizer.model", 256, "has 512 tokens but the model's vocabulary has 256"}};
        for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++) {
            ck_assert_ptr_null(sq_tokenizer_load_vocab(shared_path(wrong[i].path), wrong[i].vocab, &err));
            ck_assert_int_eq(err.status, SQ_EUSAGE);
            ck_assert_msg(strstr(err.msg, wrong[i].says), "%s: '%s' lacks '%s'", wrong[i].path, err.msg, wrong[i].says);
        }
        sq_tokenizer *padded = sq_tokenizer_load_vocab(shared_path("models/squish-lm-34m/tokenizer.json"), 8256, &err);
        ck_assert_msg(padded != NULL, "a model vocabulary padded past the tokenizer's is refused: %s", err.msg);
        sq_tokenizer_free(padded);
    }
    /* special tokens split out; invalid UTF-8 refused */
    int32_t *ids;
    uint64_t n;
    ck_assert_int_eq(sq_tokenize(tk, "a<|endoftext|>b", 15, &ids, &n, &err), 0);
    ck_assert_uint_eq(n, 3);
    ck_assert_int_eq(ids[1], 0);
    free(ids);
    ck_assert_int_eq(sq_tokenize(tk, "ok \xc3\x28", 5, &ids, &n, &err), SQ_ECORRUPT);
    ck_assert_int_eq(sq_tokenize(tk, "\xed\xa0\x80", 3, &ids, &n, &err), SQ_ECORRUPT); /* a surrogate */
    sq_tokenizer_free(tk);
}
END_TEST


static double max_rel_diff(const float *a, const float *b, size_t n) {
    double md = 0, mx = 0;
    for (size_t i = 0; i < n; i++) {
        md = fmax(md, fabs((double)a[i] - b[i]));
        mx = fmax(mx, fabs((double)b[i]));
    }
    return md / mx;
}

START_TEST(linear_biases) {
    /* an identity that holds for any weights: attention probabilities sum
     * to 1, so a v_proj bias b shifts the attention output by b, i.e. it
     * equals an o_proj bias W_o·b */
    sq_model *src;
    sq_rt_model *m = load_ref(src_path("testdata/tiny-llama"), &src);
    const sq_rt_config *c = &m->cfg;
    const uint32_t V = c->vocab, T = 48, hd = c->head_dim, qd = c->n_heads * hd, kvd = c->n_kv_heads * hd;
    int32_t ids[48];
    for (uint32_t i = 0; i < T; i++) ids[i] = (int32_t)((i * 53 + 7) % V);
    float *base = malloc((size_t)T * V * 4), *out = malloc((size_t)T * V * 4), *out2 = malloc((size_t)T * V * 4);
    sq_err err;
    ck_assert_int_eq(sq_rt_forward(m, ids, T, base, 2, &err), 0);
    sq_rt_layer *L = &m->layers[1];
    float *bk = malloc(kvd * 4), *bv = malloc(kvd * 4), *bo = calloc(c->hidden, 4);
    for (uint32_t i = 0; i < kvd; i++) {
        bk[i] = 0.5f * sinf((float)i);
        bv[i] = 0.3f * cosf((float)i * 0.7f);
    }
    /* a k bias is added before the rotary embedding (as transformers does),
     * so it does change the scores */
    L->bias[SQ_LIN_K] = bk;
    ck_assert_int_eq(sq_rt_forward(m, ids, T, out, 2, &err), 0);
    ck_assert_msg(max_rel_diff(out, base, (size_t)T * V) > 1e-3, "k bias had no effect");
    L->bias[SQ_LIN_K] = NULL;
    L->bias[SQ_LIN_V] = bv;
    ck_assert_int_eq(sq_rt_forward(m, ids, T, out, 2, &err), 0);
    ck_assert_msg(max_rel_diff(out, base, (size_t)T * V) > 1e-3, "v bias had no effect");
    const float *wo = L->o.part[0]; /* the reference model holds f32 weights */
    for (uint32_t r = 0; r < c->hidden; r++)
        for (uint32_t j = 0; j < qd; j++) bo[r] += wo[(size_t)r * qd + j] * bv[(j / hd) / (c->n_heads / c->n_kv_heads) * hd + j % hd];
    L->bias[SQ_LIN_V] = NULL;
    L->bias[SQ_LIN_O] = bo;
    ck_assert_int_eq(sq_rt_forward(m, ids, T, out2, 2, &err), 0);
    ck_assert_msg(max_rel_diff(out2, out, (size_t)T * V) < 1e-4, "v bias and the equivalent o bias differ by %g",
                  max_rel_diff(out2, out, (size_t)T * V));
    /* every bias at once: the KV-cache step path agrees with the batched pass */
    float *bb[SQ_LIN_COUNT];
    uint32_t dims[SQ_LIN_COUNT] = {qd, kvd, kvd, c->hidden, c->inter, c->inter, c->hidden};
    for (int i = 0; i < SQ_LIN_COUNT; i++) {
        bb[i] = malloc(dims[i] * 4);
        for (uint32_t j = 0; j < dims[i]; j++) bb[i][j] = 0.2f * sinf((float)(j + 13 * i));
        L->bias[i] = bb[i];
    }
    ck_assert_int_eq(sq_rt_forward(m, ids, T, out, 2, &err), 0);
    sq_rt_cache kv;
    ck_assert_int_eq(sq_rt_cache_init(m, T, &kv, &err), 0);
    for (uint32_t t = 0; t < T; t++) {
        ck_assert_int_eq(sq_rt_step(m, &kv, ids[t], out2, 2, &err), 0);
        ck_assert_msg(max_rel_diff(out2, out + (size_t)t * V, V) < 1e-4, "step %u differs", t);
    }
    sq_rt_cache_free(&kv);
    for (int i = 0; i < SQ_LIN_COUNT; i++) {
        L->bias[i] = NULL;
        free(bb[i]);
    }
    free(bk); free(bv); free(bo); free(base); free(out); free(out2);
    sq_rt_free(m); free(m);
    sq_model_close(src);
}
END_TEST

START_TEST(bias_tensors_load) {
    /* a Qwen2-style checkpoint: the tiny model plus q/k/v biases in an extra shard */
    const char *d = tmpdir();
    char cmd[8400], path[512];
    snprintf(cmd, sizeof cmd, "cp %s/* %s/", src_path("testdata/tiny-llama"), d);
    ck_assert_int_eq(system(cmd), 0);
    const char *names[3] = {"model.layers.0.self_attn.q_proj.bias", "model.layers.0.self_attn.k_proj.bias",
                            "model.layers.0.self_attn.v_proj.bias"};
    const uint32_t n[3] = {192, 64, 64};
    char hdr[1024];
    int hl = snprintf(hdr, sizeof hdr,
                      "{\"%s\":{\"dtype\":\"F32\",\"shape\":[192],\"data_offsets\":[0,768]},"
                      "\"%s\":{\"dtype\":\"F32\",\"shape\":[64],\"data_offsets\":[768,1024]},"
                      "\"%s\":{\"dtype\":\"F32\",\"shape\":[64],\"data_offsets\":[1024,1280]}}",
                      names[0], names[1], names[2]);
    while (hl % 8) hdr[hl++] = ' ';
    snprintf(path, sizeof path, "%s/bias.safetensors", d);
    FILE *f = fopen(path, "wb");
    uint64_t len = (uint64_t)hl;
    fwrite(&len, 8, 1, f);
    fwrite(hdr, 1, (size_t)hl, f);
    for (int t = 0; t < 3; t++)
        for (uint32_t i = 0; i < n[t]; i++) {
            float v = 0.01f * (float)(i + t);
            fwrite(&v, 4, 1, f);
        }
    fclose(f);
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", d);
    json_object *idx = json_object_from_file(path), *wm;
    ck_assert(json_object_object_get_ex(idx, "weight_map", &wm));
    for (int t = 0; t < 3; t++) json_object_object_add(wm, names[t], json_object_new_string("bias.safetensors"));
    ck_assert_int_eq(json_object_to_file(path, idx), 0);
    json_object_put(idx);
    sq_model *src;
    sq_rt_model *m = load_ref(d, &src);
    ck_assert_ptr_nonnull(m->layers[0].bias[SQ_LIN_Q]);
    ck_assert_ptr_nonnull(m->layers[0].bias[SQ_LIN_V]);
    ck_assert_ptr_null(m->layers[0].bias[SQ_LIN_O]);
    ck_assert_ptr_null(m->layers[1].bias[SQ_LIN_Q]);
    ck_assert(m->layers[0].bias[SQ_LIN_K][5] == 0.01f * 6);
    sq_rt_free(m); free(m);
    sq_model_close(src);
    snprintf(cmd, sizeof cmd, "rm -rf %s", d);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

/* The thread pool: every loop, back to back or after the workers went to
 * sleep, from one caller or two at once (the second gets fresh threads),
 * runs each index exactly once, in the fixed chunks n*i/parts .. n*(i+1)/parts
 * that make results independent of which thread runs which chunk. */
typedef struct pool_probe {
    uint64_t n;
    int parts;
    _Atomic int hits[97];
    _Atomic int bad_chunk;
} pool_probe;

static void pool_probe_chunk(void *p, uint64_t i0, uint64_t i1) {
    pool_probe *c = p;
    int ok = 0;
    for (int i = 0; i < c->parts; i++)
        ok |= i0 == c->n * (uint64_t)i / (uint64_t)c->parts && i1 == c->n * (uint64_t)(i + 1) / (uint64_t)c->parts;
    if (!ok) atomic_fetch_add(&c->bad_chunk, 1);
    for (uint64_t i = i0; i < i1; i++) atomic_fetch_add(&c->hits[i], 1);
}

static void *pool_loops(void *arg) {
    const int loops = *(int *)arg;
    long failures = 0;
    for (int l = 0; l < loops; l++) {
        pool_probe c = {.n = 1 + (uint64_t)(l * 37 % 97)};
        const int threads = 2 + l % 3;
        c.parts = (uint64_t)threads < c.n ? threads : (int)c.n;
        if (l % 500 == 499) usleep(2000); /* the workers stop spinning and block */
        sq_parallel_for(threads, c.n, pool_probe_chunk, &c);
        for (uint64_t i = 0; i < c.n; i++) failures += atomic_load(&c.hits[i]) != 1;
        failures += atomic_load(&c.bad_chunk);
    }
    return (void *)(intptr_t)failures;
}

START_TEST(parallel_pool_loops) {
    int loops = 4000;
    ck_assert_int_eq((int)(intptr_t)pool_loops(&loops), 0);
    pthread_t a, b;
    void *ra, *rb;
    ck_assert_int_eq(pthread_create(&a, NULL, pool_loops, &loops), 0);
    ck_assert_int_eq(pthread_create(&b, NULL, pool_loops, &loops), 0);
    pthread_join(a, &ra);
    pthread_join(b, &rb);
    ck_assert_int_eq((int)(intptr_t)ra, 0);
    ck_assert_int_eq((int)(intptr_t)rb, 0);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("runtime");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, logits_match_transformers);
    tcase_add_test(tc, window_nll_matches_transformers);
    tcase_add_test(tc, stories260k_perplexity);
    tcase_add_test(tc, tiny_model_eval_and_threads);
    tcase_add_test(tc, fast_kernels_decode);
    tcase_add_test(tc, attn_exp_within_2ulp);
    tcase_add_test(tc, fast_paths_tiny);
    tcase_add_test(tc, forward_last_is_last_row);
    tcase_add_test(tc, fast_paths_34m);
    tcase_add_test(tc, linear_biases);
    tcase_add_test(tc, bias_tensors_load);
    tcase_add_test(tc, tokenizer_matches_golden_ids);
    tcase_add_test(tc, parallel_pool_loops);
    tcase_add_test(tc, linear_batch_same_bits);
    tcase_add_test(tc, mapped_reference_same_bits);
    suite_add_tcase(s, tc);
    return s;
}
RUN_SUITE(suite())
