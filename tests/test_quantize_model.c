/* sq_quantize_model, the library call behind squish-quantize, on the tiny
 * model: the codec each tensor gets (rules, defaults), what the sink hears
 * (begin, per-tensor reports in writing order, progress up to the total,
 * warnings), the file written (its tensors, the model hash in the result),
 * thread-count independence, and refusals that leave no output. */
#include <sys/stat.h>

#include "quantize_model.h"
#include "squish/container.h"
#include "squish/llama_names.h"
#include "squish/model.h"
#include "testutil.h"

static const char *TINY = "testdata/tiny-llama";

typedef struct heard {
    int begins, ends, tensors, warnings, notes;
    uint64_t begin_total, last_done, last_total;
    int progress_calls, progress_monotone;
    char names[32][SQ_LLAMA_NAME_MAX], schemes[32][64];
    double rmse[32];
    char warning[4][512];
} heard;

static void h_message(void *ctx, sq_quantize_level level, const char *text) {
    heard *h = ctx;
    if (level == SQ_QUANTIZE_WARNING) {
        if (h->warnings < 4) snprintf(h->warning[h->warnings], sizeof h->warning[0], "%s", text);
        h->warnings++;
    } else {
        h->notes++;
    }
}
static void h_begin(void *ctx, uint64_t total) {
    heard *h = ctx;
    h->begins++;
    h->begin_total = total;
    h->progress_monotone = 1;
}
static void h_tensor(void *ctx, const sq_quantize_tensor_report *r) {
    heard *h = ctx;
    if (h->tensors < 32) {
        snprintf(h->names[h->tensors], sizeof h->names[0], "%s", r->name);
        snprintf(h->schemes[h->tensors], sizeof h->schemes[0], "%s", r->scheme);
        h->rmse[h->tensors] = r->rmse;
    }
    h->tensors++;
}
static void h_progress(void *ctx, uint64_t done, uint64_t total) {
    heard *h = ctx;
    if (done <= h->last_done || total != h->begin_total) h->progress_monotone = 0;
    h->last_done = done;
    h->last_total = total;
    h->progress_calls++;
}
static void h_end(void *ctx) { ((heard *)ctx)->ends++; }

static char test_dir[64];
static const char *tmp_path(const char *name) {
    static char ring[8][256];
    static int next;
    char *buf = ring[next++ % 8];
    if (!test_dir[0]) {
        snprintf(test_dir, sizeof test_dir, "/tmp/squish-qm-XXXXXX");
        ck_assert_ptr_nonnull(mkdtemp(test_dir));
    }
    snprintf(buf, sizeof ring[0], "%s/%s", test_dir, name);
    return buf;
}

/* Each test runs in its own process (Check forks) with its own directory. */
static void remove_tmp(void) {
    if (!test_dir[0]) return;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", test_dir);
    ck_assert_int_eq(system(cmd), 0);
    test_dir[0] = 0;
}

static void base_opts(sq_quantize_opts *o, heard *h, sq_scheme_rule *rules, int n_rules) {
    sq_quantize_opts_init(o);
    o->model = src_path(TINY);
    ck_assert_int_eq(sq_scheme_parse("int4:g32:asym", &o->scheme.codec, o->scheme.params, NULL), 0);
    o->scheme.rules = rules;
    o->scheme.n_rules = n_rules;
    o->threads = 2;
    memset(h, 0, sizeof *h);
    o->sink = (sq_quantize_sink){h, h_message, h_begin, h_tensor, h_progress, h_end};
}

static void rule(sq_scheme_rule *r, const char *text, const char *regex, const char *scheme) {
    r->text = text;
    ck_assert_int_eq(regcomp(&r->re, regex, REG_EXTENDED | REG_NOSUB), 0);
    ck_assert_int_eq(sq_scheme_parse_or_keep(scheme, &r->codec, r->params, NULL), 0);
}

/* The scheme a tiny-model tensor must get under base_opts plus the two rules
 * of quantizes_by_rules, worked out from the name here. */
static const char *expected_scheme(const char *name) {
    if (strstr(name, "mlp.down_proj")) return "int8:pc:sym";  /* rule 1 */
    if (strstr(name, "self_attn.q_proj")) return "bf16";      /* rule 2: keep */
    if (strstr(name, "_proj.weight")) return "int4:g32:asym"; /* the scheme */
    return "bf16";                                            /* embeddings, norms, lm_head: source precision */
}

START_TEST(quantizes_by_rules) {
    sq_scheme_rule rules[3];
    rule(&rules[0], "mlp\\.down=int8", "mlp\\.down", "int8");
    rule(&rules[1], "q_proj=keep", "q_proj", "keep");
    rule(&rules[2], "nothing_like_this=int2", "nothing_like_this", "int2");
    sq_quantize_opts o;
    heard h;
    base_opts(&o, &h, rules, 3);
    o.out = tmp_path("rules.squizd");
    o.report = tmp_path("rules.json");
    sq_quantize_result res;
    sq_err err = {0};
    ck_assert_msg(sq_quantize_model(&o, &res, &err) == SQ_OK, "%s", err.msg);

    sq_model *m = sq_model_open(src_path(TINY), &err);
    ck_assert_ptr_nonnull(m);
    uint64_t total = 0;
    for (uint32_t i = 0; i < m->n_tensors; i++) total += sq_model_tensor_elems(&m->tensors[i]);
    char hash[65];
    ck_assert_int_eq(sq_model_content_sha256(m, hash, &err), 0);
    uint32_t *order = sq_model_order(m);

    ck_assert_uint_eq(res.tensors, m->n_tensors);
    ck_assert_uint_eq(res.weights, total);
    ck_assert_str_eq(res.model_sha256, hash);
    ck_assert_int_eq(h.begins, 1);
    ck_assert_int_eq(h.ends, 1);
    ck_assert_uint_eq(h.begin_total, total);
    ck_assert_int_eq(h.tensors, (int)m->n_tensors);
    ck_assert_int_eq(h.progress_calls, (int)m->n_tensors);
    ck_assert(h.progress_monotone);
    ck_assert_uint_eq(h.last_done, total);
    ck_assert_int_eq(h.warnings, 1); /* the idle rule */
    ck_assert_msg(strstr(h.warning[0], "nothing_like_this=int2") && strstr(h.warning[0], "matches no tensor"), "%s",
                  h.warning[0]);

    sq_file *f = sq_open(o.out, &err);
    ck_assert_msg(f != NULL, "%s", err.msg);
    ck_assert_uint_eq(sq_file_ntensors(f), m->n_tensors);
    for (uint32_t k = 0; k < m->n_tensors; k++) {
        const char *name = m->tensors[order[k]].name;
        ck_assert_str_eq(h.names[k], name); /* reports come in writing order */
        ck_assert_str_eq(sq_file_tensor(f, k)->name, name);
        ck_assert_msg(!strcmp(h.schemes[k], expected_scheme(name)), "%s: %s, expected %s", name, h.schemes[k],
                      expected_scheme(name));
        if (!strcmp(h.schemes[k], "bf16")) ck_assert(h.rmse[k] == 0); /* kept: exact */
        else ck_assert(h.rmse[k] > 0);
    }
    sq_close(f);
    size_t len;
    char *rep = (char *)read_all(o.report, &len);
    ck_assert_ptr_nonnull(rep);
    ck_assert_ptr_nonnull(strstr(rep, "\"squish-quantize-report/1\""));
    ck_assert_ptr_nonnull(strstr(rep, "\"int8:pc:sym\""));
    free(rep);
    free(order);
    sq_model_close(m);
    for (int i = 0; i < 3; i++) regfree(&rules[i].re);
    remove_tmp();
}
END_TEST

START_TEST(output_independent_of_threads) {
    sq_quantize_opts o;
    heard h;
    sq_err err = {0};
    base_opts(&o, &h, NULL, 0);
    o.threads = 1;
    o.out = tmp_path("t1.squizd");
    ck_assert_msg(sq_quantize_model(&o, NULL, &err) == SQ_OK, "%s", err.msg);
    base_opts(&o, &h, NULL, 0);
    o.threads = 3;
    o.out = tmp_path("t3.squizd");
    ck_assert_msg(sq_quantize_model(&o, NULL, &err) == SQ_OK, "%s", err.msg);
    size_t n1, n3;
    unsigned char *a = read_all(tmp_path("t1.squizd"), &n1), *b = read_all(tmp_path("t3.squizd"), &n3);
    ck_assert(a && b && n1 == n3 && n1 > 0);
    ck_assert(!memcmp(a, b, n1));
    free(a);
    free(b);
    remove_tmp();
}
END_TEST

START_TEST(shards_split_the_model) {
    /* shard 1/2 gets the embeddings and layer 0; shard 2/2 layer 1, the final norm and lm_head */
    ck_assert_int_eq(sq_quantize_shard_of(SQ_LLAMA_EMBED_NAME, 2, 2), 1);
    ck_assert_int_eq(sq_quantize_shard_of("model.layers.0.mlp.up_proj.weight", 2, 2), 1);
    ck_assert_int_eq(sq_quantize_shard_of("model.layers.1.input_layernorm.weight", 2, 2), 2);
    ck_assert_int_eq(sq_quantize_shard_of(SQ_LLAMA_FINAL_NORM_NAME, 2, 2), 2);
    ck_assert_int_eq(sq_quantize_shard_of(SQ_LLAMA_LM_HEAD_NAME, 2, 2), 2);
    /* 8 layers in 3 shards: 0-1, 2-4, 5-7 */
    ck_assert_int_eq(sq_quantize_shard_of("model.layers.1.mlp.up_proj.weight", 8, 3), 1);
    ck_assert_int_eq(sq_quantize_shard_of("model.layers.4.mlp.up_proj.weight", 8, 3), 2);
    ck_assert_int_eq(sq_quantize_shard_of("model.layers.5.mlp.up_proj.weight", 8, 3), 3);
    uint32_t counted[3] = {0};
    for (int k = 1; k <= 2; k++) {
        sq_quantize_opts o;
        heard h;
        sq_err err = {0};
        base_opts(&o, &h, NULL, 0);
        o.shard_k = k;
        o.shard_n = 2;
        o.out = tmp_path(k == 1 ? "s1.squizd" : "s2.squizd");
        sq_quantize_result res;
        ck_assert_msg(sq_quantize_model(&o, &res, &err) == SQ_OK, "%s", err.msg);
        counted[k] = res.tensors;
        ck_assert_int_eq(h.tensors, (int)res.tensors);
        ck_assert_uint_eq(h.last_done, h.begin_total);
    }
    ck_assert_uint_eq(counted[1], 1 + 9);     /* embeddings + layer 0 */
    ck_assert_uint_eq(counted[2], 9 + 1 + 1); /* layer 1 + final norm + lm_head */
    remove_tmp();
}
END_TEST

START_TEST(refusals_leave_no_output) {
    sq_quantize_opts o;
    heard h;
    sq_err err = {0};
    struct stat st;

    base_opts(&o, &h, NULL, 0);
    o.model = src_path("testdata/no-such-model");
    o.out = tmp_path("none1.squizd");
    ck_assert_int_ne(sq_quantize_model(&o, NULL, &err), SQ_OK);
    ck_assert_ptr_nonnull(strstr(err.msg, "no-such-model"));
    ck_assert_int_ne(stat(o.out, &st), 0);
    ck_assert_int_eq(h.begins, 0);

    base_opts(&o, &h, NULL, 0);
    o.method = SQ_METHOD_GPTQ; /* without a calibration file */
    o.out = tmp_path("none2.squizd");
    ck_assert_int_eq(sq_quantize_model(&o, NULL, &err), SQ_EUSAGE);
    ck_assert_int_ne(stat(o.out, &st), 0);

    base_opts(&o, &h, NULL, 0);
    o.scheme.codec = NULL;
    o.out = tmp_path("none3.squizd");
    ck_assert_int_eq(sq_quantize_model(&o, NULL, &err), SQ_EUSAGE);
    ck_assert_int_ne(stat(o.out, &st), 0);

    base_opts(&o, &h, NULL, 0);
    o.calib = tmp_path("no-such.h5");
    o.out = tmp_path("none4.squizd");
    ck_assert_int_ne(sq_quantize_model(&o, NULL, &err), SQ_OK);
    ck_assert_int_ne(stat(o.out, &st), 0);

    /* a report that cannot be written: SQ_EIO, after the output was committed */
    base_opts(&o, &h, NULL, 0);
    o.out = tmp_path("committed.squizd");
    o.report = tmp_path("no-such-dir/r.json");
    ck_assert_int_eq(sq_quantize_model(&o, NULL, &err), SQ_EIO);
    ck_assert_ptr_nonnull(strstr(err.msg, "cannot write the report"));
    ck_assert_int_eq(stat(o.out, &st), 0);
    remove_tmp();
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("quantize_model");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, quantizes_by_rules);
    tcase_add_test(tc, output_independent_of_threads);
    tcase_add_test(tc, shards_split_the_model);
    tcase_add_test(tc, refusals_leave_no_output);
    suite_add_tcase(s, tc);
    return s;
}
RUN_SUITE(suite())
