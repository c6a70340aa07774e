/* The decode step on the Vulkan device (runtime/vulkan/vk_decode.c) against
 * the CPU runtime's exact step: a multi-token decode from an empty cache
 * gives logits within a stated tolerance of the CPU's, for int4, int8, nf4,
 * bf16 and a file that mixes layouts, on the tiny test model (and the 34M
 * model where ../shared is present); input links (permutations, input
 * scales) run on the device too; SQUISH_VULKAN_DECODE=0 turns it off. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "runtime.h"
#include "squish/codec.h"
#include "testutil.h"
#include "vk.h"
#include "vk_decode.h"

/* |logit_gpu - logit_cpu| <= TOL * max |logit_cpu| over every position
 * (f32 sums in another order in the GEMVs, norms and attention, the
 * device's exp; observed on lavapipe: ~1e-6, see decode_matches_cpu). */
#define TOL 1e-4

static sq_vk *vk;
static void open_device(void) {
    sq_err err;
    ck_assert_msg(sq_vk_open(NULL, &vk, &err) == SQ_OK, "no Vulkan device: %s", err.msg);
}
static void close_device(void) {
    sq_vk_close(vk);
    vk = NULL;
}

typedef struct qmodel {
    sq_model *src;
    sq_rt_model m;
    sq_encoded *enc;
} qmodel;

/* The reference model with its linear layers re-encoded: layer i of each
 * block in schemes[i % nschemes] (one scheme, or several layouts in a
 * block); perm_first: input links (a permutation, input scales) on the first q_proj. */
static void load(qmodel *q, const char *path, const char *const *schemes, int nschemes, int perm_first) {
    sq_err err = {0};
    q->src = sq_model_open(path, &err);
    ck_assert_msg(q->src != NULL, "%s", err.msg);
    ck_assert_msg(sq_rt_load_model(q->src, &q->m, 2, &err) == 0, "%s", err.msg);
    const uint32_t nl = q->m.cfg.n_layers;
    q->enc = calloc((size_t)nl * SQ_LIN_COUNT, sizeof *q->enc);
    for (uint32_t l = 0; l < nl; l++)
        for (int i = 0; i < SQ_LIN_COUNT; i++) {
            const sq_codec *c;
            uint32_t p[SQ_NPARAMS];
            ck_assert_int_eq(sq_scheme_parse(schemes[i % nschemes], &c, p, &err), 0);
            sq_tview *v = (sq_tview *)sq_rt_linear_view(&q->m.layers[l], i);
            float *w = malloc(v->rows * v->cols * sizeof(float));
            ck_assert_int_eq(sq_decode_mt(v, w, 1), 0);
            sq_encoded *e = &q->enc[l * SQ_LIN_COUNT + (uint32_t)i];
            ck_assert_int_eq(sq_encode(c, p, w, v->rows, v->cols, 1, e, &err), 0);
            if (perm_first && l == 0 && i == SQ_LIN_Q) { /* reversed columns, scales 0.5 .. 2 */
                uint32_t *perm = malloc(v->cols * sizeof *perm);
                float *sc = malloc(v->cols * sizeof *sc);
                for (uint64_t j = 0; j < v->cols; j++) {
                    perm[j] = (uint32_t)(v->cols - 1 - j);
                    sc[j] = 0.5f + 1.5f * (float)j / (float)v->cols;
                }
                ck_assert_int_eq(sq_encoded_set_xform(e, perm, sc, &err), 0);
                free(perm);
                free(sc);
            }
            sq_tview_from_encoded(e, v);
            free(w);
        }
    q->m.fast_kernels = SQ_RT_PATH_EXACT;
}

/* (sq_rt_free frees the uploaded copies too) */
static void unload(qmodel *q) {
    const size_t n = (size_t)q->m.cfg.n_layers * SQ_LIN_COUNT;
    sq_rt_free(&q->m);
    for (size_t i = 0; i < n; i++) sq_encoded_free(&q->enc[i]);
    free(q->enc);
    sq_model_close(q->src);
}

static int32_t token_at(uint32_t t, uint32_t vocab) { return (int32_t)((t * 2654435761u + 17u) % vocab); }

/* n tokens decoded one at a time from an empty cache into out [n][vocab];
 * *on_device: whether the cache got the device decode. */
static void decode(sq_rt_model *m, uint32_t n, float *out, int *on_device) {
    sq_err err = {0};
    sq_rt_cache kv;
    ck_assert_msg(sq_rt_cache_init(m, n, &kv, &err) == 0, "%s", err.msg);
    *on_device = kv.gpu != NULL;
    for (uint32_t t = 0; t < n; t++)
        ck_assert_msg(sq_rt_step(m, &kv, token_at(t, m->cfg.vocab), out + (size_t)t * m->cfg.vocab, 1, &err) == 0, "%s",
                      err.msg);
    ck_assert_uint_eq(kv.pos, n);
    sq_rt_cache_free(&kv);
}

/* max |a - b| / max |b| over n values, and whether any value differs */
static double rel_diff(const float *a, const float *b, size_t n, int *differs) {
    double md = 0, mx = 0;
    *differs = 0;
    for (size_t i = 0; i < n; i++) {
        ck_assert_msg(isfinite(a[i]), "logit %zu is not finite", i);
        md = fmax(md, fabs((double)a[i] - b[i]));
        mx = fmax(mx, fabs((double)b[i]));
        *differs |= a[i] != b[i];
    }
    return mx > 0 ? md / mx : md;
}

/* CPU exact step vs the device step (and the host step with its products
 * on the device, SQUISH_VULKAN_DECODE=0) over n tokens. */
static void check_model(const char *path, const char *const *schemes, int nschemes, uint32_t n, const char *what) {
    qmodel q;
    load(&q, path, schemes, nschemes, 0);
    const size_t nv = (size_t)n * q.m.cfg.vocab;
    float *cpu = malloc(nv * sizeof(float)), *dev = malloc(nv * sizeof(float)), *host = malloc(nv * sizeof(float));
    int on;
    decode(&q.m, n, cpu, &on);
    ck_assert_int_eq(on, 0);
    sq_err err = {0};
    ck_assert_msg(sq_rt_use_vulkan(&q.m, vk, &err) == 0, "%s", err.msg);
    decode(&q.m, n, dev, &on);
    ck_assert_msg(on, "%s: the decode step did not run on the device", what);
    setenv("SQUISH_VULKAN_DECODE", "0", 1);
    decode(&q.m, n, host, &on);
    unsetenv("SQUISH_VULKAN_DECODE");
    ck_assert_msg(!on, "SQUISH_VULKAN_DECODE=0 still decoded on the device");
    int d1, d2;
    double e_cpu = rel_diff(dev, cpu, nv, &d1), e_host = rel_diff(dev, host, nv, &d2);
    fprintf(stderr, "%s: %u tokens, device vs cpu %.3g, vs host step on vulkan %.3g (relative to max |logit|)\n", what, n,
            e_cpu, e_host);
    ck_assert_msg(e_cpu <= TOL, "%s: device decode differs from the CPU by %g (max |logit| relative)", what, e_cpu);
    ck_assert_msg(e_host <= TOL, "%s: device decode differs from the host step by %g", what, e_host);
    /* the other operations run in another order than the host step's: equal
     * bits everywhere would mean the device step did not run */
    ck_assert_msg(d2, "%s: the device step gave the host step's bits", what);
    /* attention scores through device memory instead of shared memory: the same bits */
    setenv("SQUISH_VULKAN_SCORES", "global", 1);
    decode(&q.m, n, host, &on);
    unsetenv("SQUISH_VULKAN_SCORES");
    ck_assert(on);
    ck_assert_msg(!memcmp(host, dev, nv * sizeof(float)), "%s: scores in device memory changed the logits", what);
    free(cpu);
    free(dev);
    free(host);
    unload(&q);
}

START_TEST(decode_matches_cpu) {
    static const char *const int4[] = {"int4:g32:asym"}, *const int8[] = {"int8:pc"}, *const bf16[] = {"bf16"},
                             *const nf4[] = {"nf4:g64"}, *const mixed[] = {"int4:g128:sym", "bf16", "int8:pc", "fp8_e4m3"};
    const char *tiny = src_path("testdata/tiny-llama");
    check_model(tiny, int4, 1, 24, "tiny int4:g32:asym");
    check_model(tiny, int8, 1, 24, "tiny int8:pc");
    check_model(tiny, bf16, 1, 24, "tiny bf16");
    if (test_quick()) return; /* the sanitizer run: three codecs on the tiny model */
    check_model(tiny, nf4, 1, 24, "tiny nf4:g64");
    check_model(tiny, mixed, 4, 40, "tiny mixed layouts");
}
END_TEST

/* The 34M model (widths 512 and 1536, 8 layers, GQA 8/4, head_dim 64) in
 * int4 and int8. */
START_TEST(decode_34m) {
    if (!have_shared() || test_quick()) return;
    static const char *const int4[] = {"int4:g128:asym"}, *const int8[] = {"int8:pc"};
    check_model(shared_path("models/squish-lm-34m"), int4, 1, 12, "34M int4:g128:asym");
    check_model(shared_path("models/squish-lm-34m"), int8, 1, 6, "34M int8:pc");
}
END_TEST

/* Input links (a permutation, input scales) run on the device in the
 * packing of the product's input: a model with a reversed-columns
 * permutation and input scales on the first q_proj still decodes on the
 * device, within TOL of the CPU. */
START_TEST(input_links_on_device) {
    static const char *const int8[] = {"int8:pc"};
    qmodel q;
    load(&q, src_path("testdata/tiny-llama"), int8, 1, 1);
    const uint32_t n = 12;
    const size_t nv = (size_t)n * q.m.cfg.vocab;
    float *cpu = malloc(nv * sizeof(float)), *gpu = malloc(nv * sizeof(float));
    int on, differs;
    decode(&q.m, n, cpu, &on);
    sq_err err = {0};
    ck_assert_msg(sq_rt_use_vulkan(&q.m, vk, &err) == 0, "%s", err.msg);
    decode(&q.m, n, gpu, &on);
    ck_assert_msg(on, "a permutation kept the step on the host");
    double e = rel_diff(gpu, cpu, nv, &differs);
    fprintf(stderr, "tiny int8:pc with input links: device vs cpu %.3g\n", e);
    ck_assert_double_le(e, TOL);
    free(cpu);
    free(gpu);
    unload(&q);
}
END_TEST

/* A full cache is refused with a clear error, on the device as on the host. */
START_TEST(full_cache_refused) {
    static const char *const int8[] = {"int8:pc"};
    qmodel q;
    load(&q, src_path("testdata/tiny-llama"), int8, 1, 0);
    sq_err err = {0};
    ck_assert_msg(sq_rt_use_vulkan(&q.m, vk, &err) == 0, "%s", err.msg);
    sq_rt_cache kv;
    ck_assert_int_eq(sq_rt_cache_init(&q.m, 2, &kv, &err), 0);
    ck_assert_ptr_nonnull(kv.gpu);
    float *lg = malloc(q.m.cfg.vocab * sizeof(float));
    ck_assert_int_eq(sq_rt_step(&q.m, &kv, 1, lg, 1, &err), 0);
    ck_assert_int_eq(sq_rt_step(&q.m, &kv, 2, lg, 1, &err), 0);
    ck_assert_int_eq(sq_rt_step(&q.m, &kv, 3, lg, 1, &err), SQ_EUSAGE);
    ck_assert_msg(strstr(err.msg, "full"), "%s", err.msg);
    ck_assert_int_eq(sq_vk_decode_step(kv.gpu, 0, (int32_t)q.m.cfg.vocab, lg, &err), SQ_EUSAGE);
    free(lg);
    sq_rt_cache_free(&kv);
    unload(&q);
}
END_TEST

/* The decode step's sums with subgroup shuffles (the default where the
 * device has them, lavapipe among them: the comparisons with the CPU above
 * run them there) give the bits of the shared-memory tree alone
 * (SQUISH_VULKAN_SUBGROUP=0): norms, softmax maximum and sum, and every
 * product, over a whole multi-token decode. */
/* n tokens decoded on device d from an empty cache (the model with input links); *nv: values returned */
static float *decode_on(sq_vk *d, const char *const *schemes, uint32_t n, size_t *nv) {
    qmodel q;
    load(&q, src_path("testdata/tiny-llama"), schemes, 1, 1);
    sq_err err = {0};
    ck_assert_msg(sq_rt_use_vulkan(&q.m, d, &err) == 0, "%s", err.msg);
    *nv = (size_t)n * q.m.cfg.vocab;
    float *out = malloc(*nv * sizeof(float));
    int on;
    decode(&q.m, n, out, &on);
    ck_assert(on);
    unload(&q);
    return out;
}
START_TEST(decode_subgroup_same_bits) {
    if (strstr(sq_vk_describe(vk), "llvmpipe")) ck_assert_msg(sq_vk_subgroup(vk) > 0, "lavapipe ran without subgroup shuffles");
    if (!sq_vk_subgroup(vk)) return;
    static const char *const int4[] = {"int4:g32:asym"};
    size_t na, nb;
    float *a = decode_on(vk, int4, 20, &na);
    sq_err err = {0};
    sq_vk *plain;
    setenv("SQUISH_VULKAN_SUBGROUP", "0", 1);
    ck_assert_int_eq(sq_vk_open(NULL, &plain, &err), SQ_OK);
    unsetenv("SQUISH_VULKAN_SUBGROUP");
    ck_assert_uint_eq(sq_vk_subgroup(plain), 0);
    float *b = decode_on(plain, int4, 20, &nb);
    sq_vk_close(plain);
    ck_assert_uint_eq(na, nb);
    ck_assert_msg(!memcmp(a, b, na * sizeof(float)), "subgroup sums changed the decode's logits");
    free(a);
    free(b);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("vulkan_decode");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 900);
    tcase_add_checked_fixture(tc, open_device, close_device); /* per test: a device does not survive fork() */
    tcase_add_test(tc, decode_matches_cpu);
    tcase_add_test(tc, decode_34m);
    tcase_add_test(tc, input_links_on_device);
    tcase_add_test(tc, full_cache_refused);
    tcase_add_test(tc, decode_subgroup_same_bits);
    suite_add_tcase(s, tc);
    return s;
}

RUN_SUITE(suite())
