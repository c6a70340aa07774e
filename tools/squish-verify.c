/* squish-verify: integrity check of a .squizd file and, with --reference,
 * a tensor-by-tensor comparison against the original model with CI gates. */
#include <getopt.h>
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backend.h"
#include "cli.h"
#include "describe.h"
#include "squish/codec.h"
#include "squish/container.h"
#include "squish/fileio.h"
#include "squish/hash.h"
#include "squish/model.h"
#include "runtime.h"
#include "tokenizer.h"
#include "stats.h"
#include "verify_source.h"

static void usage(FILE *o) {
    fprintf(o,
            "Usage: squish-verify [OPTIONS] FILE\n"
            "Check a .squizd file: header, index, bounds, overlaps, alignment, zero padding, every\n"
            "checksum, zstd frame and codec layout, every value a decode could turn into NaN or\n"
            "infinity, and that its tensors match the model configuration in its metadata (what the\n"
            "runtime needs to load it). With --reference, also decode every tensor and compare it\n"
            "with the original model (a Hugging Face directory, llama2.c .bin or .gguf).\n"
            "FILE may also be a .gguf (F32/F16/BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K-Q6_K, IQ4_NL,\n"
            "IQ4_XS tensors, decoded exactly to f32): checked as a model, compared and evaluated like\n"
            "a .squizd.\n\n"
            "  -r, --reference MODEL  compare decoded tensors with MODEL\n"
            "      --min-cosine X     fail (exit 1) if any tensor's cosine similarity is below X (-1 <= X <= 1)\n"
            "      --max-rmse X       fail (exit 1) if any tensor's RMSE is above X (X >= 0)\n"
            "      --max-abs X        fail (exit 1) if any tensor's max abs error is above X (X >= 0)\n"
            "      --eval TEXT        perplexity over a UTF-8 text file, tokenized with --tokenizer, else the\n"
            "                         tokenizer embedded in FILE (by squish-quantize, or squish-pack bundle),\n"
            "                         else the reference model's; with --reference also KL-divergence\n"
            "      --tokenizer FILE   for --eval and --prompt: a Hugging Face tokenizer.json (byte-level BPE),\n"
            "                         a SentencePiece tokenizer.model or a llama2.c tokenizer.bin (a name\n"
            "                         ending in .bin)\n"
            "      --prompt TEXT      print a greedy continuation of TEXT (--max-tokens N, default 32)\n"
            "      --eval-ids FILE    perplexity over pre-tokenized text (whitespace-separated ids);\n"
            "                         with --reference also KL-divergence, top-1 agreement, delta ppl\n"
            "      --ctx N            window length for --eval and --eval-ids (default 512)\n"
            "      --windows N        evaluate at most N windows (default: all)\n"
            "      --llama-cpp        score only the second half of each window, as llama.cpp does\n"
            "      --ref-logits FILE  cache of the reference's log-probabilities: read when it matches the\n"
            "                         text, options and reference files over at least the windows\n"
            "                         evaluated, else computed and written\n"
            "      --max-ppl X        fail (exit 1) if the perplexity is above X (X >= 1)\n"
            "      --max-kld X        fail (exit 1) if the mean KL-divergence is above X (X >= 0)\n"
            "      --backend B        where --eval/--eval-ids/--prompt run the model's matrix products:\n"
            "                         cpu (default) or vulkan\n"
            "      --device SEL       Vulkan device: an index or part of a name (default:\n"
            "                         $SQUISH_VULKAN_DEVICE, else the first discrete GPU)\n"
            "      --list-devices     print the Vulkan devices and exit\n"
            "      --fast             run --eval/--eval-ids/--prompt on the runtime's fast kernels (int8-block\n"
            "                         activations where the codec has them) instead of the exact f32 path;\n"
            "                         the report names the path (\"path\": \"exact\" or \"fast\")\n"
            "  -j, --json             report as JSON on stdout\n"
            "  -T, --threads N        decoding threads (default or 0: all cores)\n"
            "  -q, --quiet            print nothing on success\n"
            "  -h, --help             this help\n"
            "  -V, --version          print the version\n\n"
            "Exit status: 0 ok, 1 a gate failed or the file does not match the reference,\n"
            "2 usage, 3 I/O error, 4 corrupt file, 5 unsupported version or codec, 6 resource limit.\n");
}

/* FILE when it is a source model (a GGUF...) rather than a .squizd. */
static const sq_model *file_model;

/* --fast: evaluate on the runtime's fast kernels (int8-block activations)
 * instead of the exact f32 path that verification uses by default. */
static int use_fast;
static const char *path_name(void) { return use_fast ? "fast" : "exact"; }

/* The model under test, from FILE: the .squizd f or file_model. */
static sq_status load_subject(sq_file *f, sq_rt_model *m, int n_threads, sq_err *err) {
    sq_status st = file_model ? sq_rt_load_model(file_model, m, n_threads, err) : sq_rt_load_file(f, m, err);
    if (!st) m->fast_kernels = use_fast;
    return st;
}

typedef struct ctx {
    int json, n_problems;
    json_object *problems;
} ctx;

static void on_problem(void *p, sq_status st, const char *msg) {
    ctx *c = p;
    c->n_problems++;
    if (c->json) json_object_array_add(c->problems, json_object_new_string(msg));
    else fprintf(stderr, "%s: %s: %s\n", cli_prog, sq_status_name(st), msg);
}

typedef struct gates {
    double min_cos, max_rmse, max_abs;
} gates;

/* Compares every tensor with the reference; returns an exit code. */
typedef struct eval_args {
    const char *ids, *text, *tokenizer, *prompt, *tokenizer_used;
    uint32_t vocab; /* of the model, for llama2.c tokenizer.bin files */
    uint32_t max_tokens;
    sq_eval_opts o;
    double max_ppl, max_kld;
    cli_backend be;
} eval_args;

/* The tokenizer: --tokenizer, else the one embedded in the file (squish-pack
 * bundle), else the reference model directory's tokenizer.json or .model. */
static sq_tokenizer *open_tokenizer(eval_args *ea, sq_file *f, const char *ref_path, sq_err *err) {
    static char path[4096];
    if (!ea->tokenizer && f) {
        sq_tokenizer *t = sq_tokenizer_embedded(f, ea->vocab, path, sizeof path, err);
        if (t || err->status) {
            ea->tokenizer_used = path;
            if (t) cli_note("%s: tokenizer: %s\n", cli_prog, path);
            return t;
        }
    }
    if (ea->tokenizer) snprintf(path, sizeof path, "%s", ea->tokenizer);
    else if (ref_path) {
        snprintf(path, sizeof path, "%s/tokenizer.json", ref_path);
        if (access(path, R_OK) != 0) snprintf(path, sizeof path, "%s/tokenizer.model", ref_path);
    } else {
        sq_err_set(err, SQ_EUSAGE, "--eval and --prompt need --tokenizer FILE, a file with an embedded tokenizer "
                   "(squish-quantize embeds it unless --no-bundle; squish-pack bundle) or a --reference model directory "
                   "with tokenizer.json or tokenizer.model");
        return NULL;
    }
    ea->tokenizer_used = path;
    return sq_tokenizer_load_vocab(path, ea->vocab, err);
}

static sq_status tokenize_file(eval_args *ea, sq_file *f, const char *ref_path, const char *file, int32_t **ids, uint64_t *n,
                               sq_err *err) {
    sq_tokenizer *tk = open_tokenizer(ea, f, ref_path, err);
    if (!tk) return err->status;
    char *b = NULL;
    size_t len = 0;
    sq_status rs = sq_read_file(file, (size_t)1 << 32, &b, &len, err);
    if (rs) {
        sq_tokenizer_free(tk);
        return rs;
    }
    len = sq_text_newlines(b, len); /* as Python reads text: the reference convention */
    sq_status st = len == 0 ? sq_err_set(err, SQ_EUSAGE, "%s: the text is empty", file) : sq_tokenize(tk, b, len, ids, n, err);
    if (st && st != SQ_ENOMEM && !strstr(err->msg, file)) {
        char msg[sizeof err->msg];
        snprintf(msg, sizeof msg, "%.200s: %.290s", file, err->msg);
        sq_err_set(err, st, "%s", msg);
    }
    free(b);
    sq_tokenizer_free(tk);
    return st;
}

/* Greedy continuation of a prompt (each step re-runs the prefix: a check, not a server). */
static int generate(sq_file *f, const char *ref_path, eval_args *ea) {
    sq_err err = {0};
    sq_rt_model m;
    if (load_subject(f, &m, ea->o.n_threads, &err)) return cli_fail(&err);
    if (cli_backend_attach(&ea->be, &m, &err)) {
        sq_rt_free(&m);
        return cli_fail(&err);
    }
    ea->vocab = m.cfg.vocab;
    sq_tokenizer *tk = open_tokenizer(ea, f, ref_path, &err);
    int32_t *ids = NULL;
    uint64_t n = 0;
    int rc = EXIT_OK;
    if (!tk || sq_tokenize(tk, ea->prompt, strlen(ea->prompt), &ids, &n, &err)) { rc = cli_fail(&err); goto out; }
    if (!n) { fprintf(stderr, "%s: the prompt is empty\n", cli_prog); rc = EXIT_USAGE; goto out; }
    uint64_t total = n + ea->max_tokens;
    if (m.cfg.max_seq && total > m.cfg.max_seq) total = m.cfg.max_seq;
    int32_t *seq = realloc(ids, total * sizeof *ids);
    float *lg = malloc((size_t)m.cfg.vocab * sizeof(float));
    sq_rt_cache kv = {0};
    if (!seq || !lg || sq_rt_cache_init(&m, (uint32_t)total, &kv, &err)) {
        free(lg);
        if (seq) ids = seq;
        fprintf(stderr, "%s: out of memory\n", cli_prog);
        rc = EXIT_RESOURCE;
        goto out;
    }
    ids = seq;
    fputs(ea->prompt, stdout);
    for (uint64_t i = 0; i < n && !rc; i++) /* the prompt, one position at a time */
        if (sq_rt_step(&m, &kv, ids[i], lg, ea->o.n_threads, &err)) rc = cli_fail(&err);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    uint64_t made = 0;
    for (; n < total && !rc; n++) {
        int32_t best = 0;
        for (uint32_t v = 1; v < m.cfg.vocab; v++)
            if (lg[v] > lg[best]) best = (int32_t)v;
        ids[n] = best;
        char piece[256];
        size_t l = sq_detokenize_one(tk, best, piece, sizeof piece);
        fwrite(piece, 1, l, stdout);
        fflush(stdout);
        made++;
        if (n + 1 < total && sq_rt_step(&m, &kv, best, lg, ea->o.n_threads, &err)) rc = cli_fail(&err);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    sq_rt_cache_free(&kv);
    fputc('\n', stdout);
    char where[512];
    cli_backend_describe(&ea->be, ea->o.n_threads, where, sizeof where);
    if (!cli_quiet && made > 1) fprintf(stderr, "%s: decoded %llu tokens at %.1f tokens/s (KV cache, %s)\n", cli_prog,
                                        (unsigned long long)made, (double)(made - 1) / secs, where);
    free(lg);
out:
    free(ids);
    sq_tokenizer_free(tk);
    sq_rt_free(&m);
    return rc;
}

/* Perplexity of the file's model (and KLD against the reference). */
static int evaluate(sq_file *f, const char *ref_path, eval_args *ea, int json, json_object *out) {
    sq_err err = {0};
    sq_rt_model m, ref;
    sq_model *src = NULL;
    int have_ref = 0, rc = EXIT_OK;
    if (load_subject(f, &m, ea->o.n_threads, &err)) return cli_fail(&err);
    int32_t *ids = NULL;
    uint64_t n = 0;
    ea->vocab = m.cfg.vocab;
    if (cli_backend_attach(&ea->be, &m, &err)) { rc = cli_fail(&err); goto out; }
    char where[512];
    cli_backend_describe(&ea->be, ea->o.n_threads, where, sizeof where);
    if (ea->text) {
        if (tokenize_file(ea, f, ref_path, ea->text, &ids, &n, &err)) { rc = cli_fail(&err); goto out; }
        for (uint64_t i = 0; i < n; i++)
            if ((uint32_t)ids[i] >= m.cfg.vocab) {
                sq_err_set(&err, SQ_EUSAGE, "%s: token id %d is outside the model's vocabulary of %u", ea->tokenizer_used, ids[i], m.cfg.vocab);
                rc = cli_fail(&err);
                goto out;
            }
    } else if (sq_read_ids(ea->ids, m.cfg.vocab, &ids, &n, &err)) {
        rc = cli_fail(&err);
        goto out;
    }
    int cached = 0;
    if (ref_path) {
        if (!(src = sq_model_open(ref_path, &err))) { rc = cli_fail(&err); goto out; }
        if (ea->o.ref_cache) { /* identity of the reference: SHA-256 over its files' SHA-256s */
            char hex[65];
            if (sq_model_identity(src, hex, &err)) { rc = cli_fail(&err); goto out; }
            sq_unhex32(hex, ea->o.ref_id);
            cached = sq_rt_ref_cache_matches(ids, n, m.cfg.vocab, &ea->o);
        }
        if (!cached && sq_rt_load_model(src, &ref, ea->o.n_threads, &err)) { rc = cli_fail(&err); goto out; }
        have_ref = !cached;
    }
    sq_eval_result r;
    cli_progress_start("evaluating", 0, "windows");
    ea->o.progress = cli_progress_cb;
    sq_status st = sq_rt_eval(&m, have_ref ? &ref : NULL, ids, n, &ea->o, &r, &err);
    cli_progress_done();
    if (!st && r.ref_cache_used && !cli_quiet)
        fprintf(stderr, "%s: reference log-probabilities %s %s\n", cli_prog, r.ref_cache_used == 1 ? "read from" : "computed and cached in",
                ea->o.ref_cache);
    have_ref = have_ref || cached;
    if (st) { rc = cli_fail(&err); goto out; }
    int fail = r.ppl > ea->max_ppl || (have_ref && r.kld_mean > ea->max_kld);
    if (fail) rc = EXIT_CHECK;
    if (json) {
        json_object *e = json_object_new_object();
        json_object_object_add(e, ea->text ? "text" : "ids", json_object_new_string(ea->text ? ea->text : ea->ids));
        json_object_object_add(e, "tokens", json_object_new_int64((int64_t)n));
        json_object_object_add(e, "ctx", json_object_new_int64(ea->o.ctx));
        json_object_object_add(e, "scoring", json_object_new_string(ea->o.second_half ? "llama.cpp" : "all"));
        json_object_object_add(e, "windows", json_object_new_int64((int64_t)r.windows));
        json_object_object_add(e, "scored_tokens", json_object_new_int64((int64_t)r.scored));
        json_object_object_add(e, "nll_sum", json_object_new_double(r.nll_sum));
        json_object_object_add(e, "ppl", json_object_new_double(r.ppl));
        json_object_object_add(e, "prefill_tokens_per_s", json_object_new_double(r.prefill_tps));
        json_object_object_add(e, "backend", json_object_new_string(ea->be.vulkan ? "vulkan" : "cpu"));
        json_object_object_add(e, "path", json_object_new_string(path_name()));
        if (ea->be.vk) json_object_object_add(e, "device", json_object_new_string(sq_vk_describe(ea->be.vk)));
        if (have_ref) {
            json_object_object_add(e, "ref_ppl", json_object_new_double(r.ref_ppl));
            json_object_object_add(e, "delta_ppl", json_object_new_double(r.ppl - r.ref_ppl));
            json_object_object_add(e, "kld_mean", json_object_new_double(r.kld_mean));
            json_object_object_add(e, "kld_p99", json_object_new_double(r.kld_p99));
            json_object_object_add(e, "kld_max", json_object_new_double(r.kld_max));
            json_object_object_add(e, "top1_agreement", json_object_new_double(r.top1));
        }
        json_object_object_add(e, "pass", json_object_new_boolean(!fail));
        json_object_object_add(out, "eval", e);
    } else if (!cli_quiet || fail) {
        FILE *o = cli_quiet ? stderr : stdout;
        fprintf(o, "eval %s: %llu tokens, ctx %u, %llu windows, %llu scored tokens%s\n", ea->text ? ea->text : ea->ids,
                (unsigned long long)n, ea->o.ctx, (unsigned long long)r.windows,
                (unsigned long long)r.scored, ea->o.second_half ? " (second half of each window)" : "");
        fprintf(o, "ppl %.4f%s  (prefill %.0f tokens/s, %s, %s path)\n", r.ppl, fail && r.ppl > ea->max_ppl ? "  FAIL" : "",
                r.prefill_tps, where, path_name());
        if (have_ref)
            fprintf(o, "reference ppl %.4f, delta %+.4f; KLD mean %.6f, p99 %.6f, max %.4f%s; top-1 agreement %.4f\n", r.ref_ppl,
                    r.ppl - r.ref_ppl, r.kld_mean, r.kld_p99, r.kld_max, r.kld_mean > ea->max_kld ? "  FAIL" : "", r.top1);
    }
out:
    free(ids);
    if (src && !cached && have_ref) sq_rt_free(&ref);
    sq_model_close(src);
    sq_rt_free(&m);
    return rc;
}

static int compare(sq_file *f, const char *model_path, const gates *g, int threads, ctx *cx, json_object *out) {
    sq_err err = {0};
    sq_model *m = sq_model_open(model_path, &err);
    if (!m) return cli_fail(&err);
    int rc = EXIT_OK;
    json_object *arr = json_object_new_array();
    if ((sq_file_header(f)->flags & SQ_FLAG_AWQ) && !cli_quiet)
        fprintf(stderr, "%s: note: %s was quantized with AWQ, which folds scales into norms and linear layers: those "
                "tensors differ from the source on purpose; judge the file with --eval\n", cli_prog, sq_file_path(f));
    if (!cx->json && !cli_quiet)
        printf("%-48s %-22s %12s %12s %10s %9s %s\n", "NAME", "SCHEME", "RMSE", "MAX_ABS", "COSINE", "SNR_DB", "GATE");
    for (uint32_t i = 0; i < m->n_tensors; i++)
        if (!sq_file_find(f, m->tensors[i].name)) {
            fprintf(stderr, "%s: reference tensor %s is missing from %s\n", cli_prog, m->tensors[i].name, sq_file_path(f));
            rc = EXIT_CHECK;
        }
    cli_progress_start("comparing", sq_file_ntensors(f), "tensors");
    for (uint32_t i = 0; i < sq_file_ntensors(f) && rc != EXIT_CORRUPT; i++) {
        const sq_tensor *t = sq_file_tensor(f, i);
        const sq_model_tensor *mt = sq_model_find(m, t->name);
        if (!mt) {
            fprintf(stderr, "%s: tensor %s is not in the reference model %s\n", cli_prog, t->name, model_path);
            rc = EXIT_CHECK;
            continue;
        }
        int same = mt->ndim == t->ndim;
        for (uint32_t d = 0; same && d < t->ndim; d++) same = mt->dims[d] == t->dims[d];
        if (!same) {
            fprintf(stderr, "%s: tensor %s: shape differs from the reference\n", cli_prog, t->name);
            rc = EXIT_CHECK;
            continue;
        }
        cli_progress_update(i); /* drawn while the tensor is decoded, erased before its row */
        sq_tview v;
        void *owned[SQ_CODEC_MAX_PARTS];
        if (sq_tview_open(f, t, 1, &v, owned, &err)) {
            rc = cli_fail(&err);
            break;
        }
        uint64_t n = sq_model_tensor_elems(mt);
        float *ref = malloc((size_t)n * sizeof(float)), *dec = malloc((size_t)n * sizeof(float));
        sq_errstats st = {0};
        if (!ref || !dec) {
            fprintf(stderr, "%s: out of memory for tensor %s\n", cli_prog, t->name);
            rc = EXIT_RESOURCE;
        } else if (sq_model_tensor_f32(m, mt, ref, &err)) {
            rc = cli_fail(&err);
        } else {
            sq_decode_mt(&v, dec, threads);
            sq_errstats_add(&st, ref, dec, n);
        }
        free(ref);
        free(dec);
        for (int k = 0; k < SQ_CODEC_MAX_PARTS; k++) free(owned[k]);
        sq_model_release(m, mt);
        cli_progress_clear();
        if (rc == EXIT_RESOURCE || rc == EXIT_IO) break;
        double rmse = sq_errstats_rmse(&st), cosv = sq_errstats_cosine(&st), snr = sq_errstats_snr_db(&st);
        int fail = cosv < g->min_cos || rmse > g->max_rmse || st.max_abs > g->max_abs || isnan(rmse);
        if (fail) rc = EXIT_CHECK;
        char scheme[64];
        describe_scheme(t, scheme, sizeof scheme);
        if (cx->json) {
            json_object *o = json_object_new_object();
            json_object_object_add(o, "name", json_object_new_string(t->name));
            json_object_object_add(o, "scheme", json_object_new_string(scheme));
            json_object_object_add(o, "rmse", json_object_new_double(rmse));
            json_object_object_add(o, "max_abs", json_object_new_double(st.max_abs));
            json_object_object_add(o, "cosine", json_object_new_double(cosv));
            json_object_object_add(o, "snr_db", isinf(snr) ? NULL : json_object_new_double(snr));
            json_object_object_add(o, "exact", json_object_new_boolean(st.sum_sq_err == 0));
            json_object_object_add(o, "pass", json_object_new_boolean(!fail));
            json_object_array_add(arr, o);
        } else if (!cli_quiet || fail) {
            fprintf(cli_quiet ? stderr : stdout, "%-48s %-22s %12.4e %12.4e %10.6f %9.2f %s\n", t->name, scheme, rmse, st.max_abs, cosv,
                   isinf(snr) ? 999.99 : snr, fail ? "FAIL" : "ok");
        }
    }
    cli_progress_done();
    json_object_object_add(out, "tensors", arr);
    sq_model_close(m);
    return rc;
}

/* A gate's threshold: a number in [lo, hi]. Anything else (NaN included)
 * would make the gate always or never fail, so it is a usage error. */
static int parse_gate(const char *s, double lo, double hi, double *out) {
    double v;
    if (cli_parse_double(s, &v) || !(v >= lo && v <= hi)) return -1;
    *out = v;
    return 0;
}

int main(int argc, char **argv) {
    cli_prog = "squish-verify";
    static const struct option opts[] = {{"reference", required_argument, 0, 'r'}, {"min-cosine", required_argument, 0, 1},
                                         {"max-rmse", required_argument, 0, 2},     {"max-abs", required_argument, 0, 3},
                                         {"json", no_argument, 0, 'j'},             {"threads", required_argument, 0, 'T'},
                                         {"quiet", no_argument, 0, 'q'},            {"help", no_argument, 0, 'h'},
                                         {"version", no_argument, 0, 'V'},          {"eval-ids", required_argument, 0, 4},
                                         {"ctx", required_argument, 0, 5},          {"windows", required_argument, 0, 6},
                                         {"llama-cpp", no_argument, 0, 7},          {"max-ppl", required_argument, 0, 8},
                                         {"max-kld", required_argument, 0, 9},      {"eval", required_argument, 0, 10},
                                         {"tokenizer", required_argument, 0, 11},   {"prompt", required_argument, 0, 12},
                                         {"max-tokens", required_argument, 0, 13},  {"ref-logits", required_argument, 0, 14},
                                         {"backend", required_argument, 0, 15},     {"device", required_argument, 0, 16},
                                         {"list-devices", no_argument, 0, 17},      {"fast", no_argument, 0, 18},
                                         {0, 0, 0, 0}};
    eval_args ea = {NULL, NULL, NULL, NULL, NULL, 0, 32, {512, 0, 0, 1, NULL, {0}, NULL, NULL}, INFINITY, INFINITY, {0, NULL, NULL}};
    double dv;
    gates g = {-INFINITY, INFINITY, INFINITY};
    const char *ref = NULL;
    int threads = sq_default_threads(), c;
    ctx cx = {0};
    while ((c = getopt_long(argc, argv, "r:jT:qhV", opts, NULL)) != -1) {
        switch (c) {
        case 'r': ref = optarg; break;
        case 1:
            if (parse_gate(optarg, -1, 1, &g.min_cos))
                return cli_usage_error("--min-cosine needs a number in [-1, 1], got '%s'", optarg);
            break;
        case 2:
            if (parse_gate(optarg, 0, INFINITY, &g.max_rmse))
                return cli_usage_error("--max-rmse needs a number >= 0, got '%s'", optarg);
            break;
        case 3:
            if (parse_gate(optarg, 0, INFINITY, &g.max_abs))
                return cli_usage_error("--max-abs needs a number >= 0, got '%s'", optarg);
            break;
        case 4: ea.ids = optarg; break;
        case 10: ea.text = optarg; break;
        case 11: ea.tokenizer = optarg; break;
        case 14: ea.o.ref_cache = optarg; break;
        case 12: ea.prompt = optarg; break;
        case 13: if (cli_parse_double(optarg, &dv) || dv < 1 || dv > 4096 || dv != (uint32_t)dv) return cli_usage_error("--max-tokens needs 1..4096"); ea.max_tokens = (uint32_t)dv; break;
        case 5: if (cli_parse_double(optarg, &dv) || dv < 2 || dv > 1e6 || dv != (uint32_t)dv) return cli_usage_error("--ctx needs an integer >= 2"); ea.o.ctx = (uint32_t)dv; break;
        case 6: if (cli_parse_double(optarg, &dv) || dv < 1 || dv != (uint32_t)dv) return cli_usage_error("--windows needs a positive integer"); ea.o.max_windows = (uint32_t)dv; break;
        case 7: ea.o.second_half = 1; break;
        case 15: if (cli_parse_backend(optarg, &ea.be)) return cli_usage_error("--backend needs cpu or vulkan"); break;
        case 16: ea.be.device = optarg; break;
        case 17: return cli_list_devices();
        case 18: use_fast = 1; break;
        case 8:
            if (parse_gate(optarg, 1, INFINITY, &ea.max_ppl))
                return cli_usage_error("--max-ppl needs a number >= 1 (a perplexity is at least 1), got '%s'", optarg);
            break;
        case 9:
            if (parse_gate(optarg, 0, INFINITY, &ea.max_kld))
                return cli_usage_error("--max-kld needs a number >= 0, got '%s'", optarg);
            break;
        case 'j': cx.json = 1; break;
        case 'T': if (cli_parse_threads(optarg, &threads)) return cli_usage_error("--threads needs 0..1024 (0: all cores)"); break;
        case 'q': cli_quiet = 1; break;
        case 'h': usage(stdout); return EXIT_OK;
        case 'V': printf("squish-verify %s\n", SQUISH_VERSION); return EXIT_OK;
        default: return cli_usage_error("invalid option");
        }
    }
    if (optind != argc - 1) return cli_usage_error("expected exactly one FILE");
    if ((ea.be.vulkan || ea.be.device) && !ea.ids && !ea.text && !ea.prompt)
        return cli_usage_error("--backend and --device apply to --eval, --eval-ids and --prompt");
    if (ea.be.device && !ea.be.vulkan) return cli_usage_error("--device needs --backend vulkan");
    if (!ref && (isfinite(g.min_cos) || isfinite(g.max_rmse) || isfinite(g.max_abs) || isfinite(ea.max_kld)))
        return cli_usage_error("--min-cosine, --max-rmse, --max-abs and --max-kld need --reference");
    if (ea.ids && ea.text) return cli_usage_error("give --eval or --eval-ids, not both");
    if (ea.o.ref_cache && !ref) return cli_usage_error("--ref-logits needs --reference");
    if (ea.prompt && cx.json) return cli_usage_error("--prompt writes text to standard output; it cannot be combined with --json");
    if (!ea.ids && !ea.text && (isfinite(ea.max_ppl) || isfinite(ea.max_kld))) return cli_usage_error("--max-ppl and --max-kld need --eval or --eval-ids");
    const char *path = argv[optind];
    sq_install_signal_cleanup(); /* the --ref-logits cache is written through a temporary file */
    sq_err err = {0};
    sq_model *fm = NULL; /* FILE may be a GGUF (one llama.cpp quantized, say) instead of a .squizd */
    sq_file *f = NULL;
    if (verify_source_is_model(path)) file_model = fm = verify_source_open(path, &err);
    else f = sq_open(path, &err);
    json_object *root = json_object_new_object();
    json_object_object_add(root, "schema", json_object_new_string("squish-verify/1"));
    json_object_object_add(root, "file", json_object_new_string(path));
    int rc;
    if (!f && !fm) {
        if (cx.json) {
            json_object_object_add(root, "status", json_object_new_string(sq_status_name(err.status)));
            json_object *pr = json_object_new_array();
            json_object_array_add(pr, json_object_new_string(err.msg));
            json_object_object_add(root, "problems", pr);
            printf("%s\n", json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
            fprintf(stderr, "%s: error: %s\n", cli_prog, err.msg);
            rc = cli_exit_code(err.status);
        } else {
            rc = cli_fail(&err);
        }
        json_object_put(root);
        return rc;
    }
    cx.problems = json_object_new_array();
    sq_status st = fm ? SQ_OK : sq_verify(f, on_problem, &cx, &err);
    if (!st && f && (st = sq_file_check_model(f, &err))) on_problem(&cx, st, err.msg); /* what the runtime needs to load it */
    rc = cli_exit_code(st);
    if (!st && ref) rc = fm ? verify_source_compare(fm, ref, g.min_cos, g.max_rmse, g.max_abs, cx.json, root)
                            : compare(f, ref, &g, threads, &cx, root);
    ea.o.n_threads = threads;
    if (!st && (ea.ids || ea.text) && (rc == EXIT_OK || rc == EXIT_CHECK)) {
        int erc = evaluate(f, ref, &ea, cx.json, root);
        if (erc) rc = erc;
    }
    if (!st && ea.prompt && (rc == EXIT_OK || rc == EXIT_CHECK)) {
        int grc = generate(f, ref, &ea);
        if (grc) rc = grc;
    }
    if (cx.json) {
        json_object_object_add(root, "status", json_object_new_string(st ? sq_status_name(st) : rc == EXIT_OK ? "ok"
                                                                                   : rc == EXIT_CHECK ? "check failed" : "error"));
        json_object_object_add(root, "problems", cx.problems);
        json_object_object_add(root, "n_tensors", json_object_new_int64(fm ? fm->n_tensors : sq_file_ntensors(f)));
        printf("%s\n", json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
    } else {
        json_object_put(cx.problems);
        if (st) fprintf(stderr, "%s: %s: FAILED (%d problem%s)\n", cli_prog, path, cx.n_problems, cx.n_problems == 1 ? "" : "s");
        else if (rc == EXIT_CHECK) fprintf(stderr, "%s: %s: FAILED a requested check\n", cli_prog, path);
        else if (rc == EXIT_OK && !cli_quiet) printf("%s: OK (%u tensors, %llu bytes)\n", path, fm ? fm->n_tensors : sq_file_ntensors(f),
                                    fm ? verify_source_bytes(fm) : (unsigned long long)sq_file_header(f)->file_size);
    }
    json_object_put(root);
    cli_backend_close(&ea.be);
    sq_close(f);
    sq_model_close(fm);
    return rc;
}
