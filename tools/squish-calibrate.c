/* squish-calibrate: run the reference runtime over calibration text and
 * store per-layer activation statistics (XᵀX, mean/max |x|) in HDF5. */
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calib.h"
#include "cli.h"
#include "provenance.h"
#include "runtime.h"
#include "squish/container.h"
#include "squish/fileio.h"
#include "squish/hash.h"
#include "squish/model.h"
#include "tokenizer.h"

#define MAX_TEXTS 64
#define MAX_TEXT_BYTES ((size_t)1 << 31)

typedef struct opts {
    const char *model, *out, *tokenizer;
    const char *texts[MAX_TEXTS];
    int n_texts, threads, shard_k, shard_n;
    uint64_t samples, seed;
    uint32_t seqlen, layer0, layer1;
    int have_layers;
} opts;

static void usage(FILE *o) {
    fprintf(o,
            "Usage: squish-calibrate [OPTIONS] MODEL --text FILE... -o CALIB.h5\n"
            "       squish-calibrate --merge A.h5 B.h5... -o CALIB.h5\n"
            "Run MODEL (Hugging Face directory, llama2.c .bin or .gguf) over calibration text and store,\n"
            "for the input of every linear layer (the output layer's too), XᵀX and per-channel mean and max\n"
            "of |x| in HDF5, and per vocabulary entry its count as an input token and its mean probability.\n\n"
            "  -t, --text FILE         calibration text (UTF-8; repeatable; tokenized separately, then joined)\n"
            "  -o, --output FILE       output HDF5 file (written atomically)\n"
            "  -n, --samples N         windows drawn from the text (default 128)\n"
            "  -L, --seqlen N          tokens per window (default 512; at most the model's context)\n"
            "      --seed N            seed for drawing windows (default 0)\n"
            "      --tokenizer FILE    tokenizer.json, tokenizer.model or llama2.c tokenizer.bin (a name ending\n"
            "                          in .bin); default: the one beside the model\n"
            "      --layers A:B        only layers A..B-1 (bounded memory; merge the parts afterwards)\n"
            "      --shard K/N         only the K-th of N contiguous layer ranges (K from 1)\n"
            "      --merge             merge the given calibration files of one model into -o\n"
            "  -T, --threads N         worker threads (default or 0: all cores; output does not depend on it)\n"
            "  -q, --quiet             no progress on stderr\n"
            "  -h, --help              this help\n"
            "  -V, --version           print the version\n\n"
            "Exit status: 0 ok, 2 usage, 3 I/O error, 4 corrupt input or non-finite activations,\n"
            "5 unsupported input, 6 out of memory.\n");
}


/* The command line as squish records it, the same for every way of typing
 * one job: the model, texts and tokenizer by name without directories (the
 * texts and tokenizer also by content hash, beside it), then each option
 * that changes the output, defaults written out. --layers and --shard only
 * select layers (shards merge into the whole run's bytes); -o, -T and -q
 * do not change the bytes. */
static json_object *canonical_command(const opts *o, const char *tokenizer) {
    json_object *cl = prov_command("squish-calibrate");
    char name[256], num[32];
    prov_name(o->model, name, sizeof name);
    json_object_array_add(cl, json_object_new_string(name));
    for (int i = 0; i < o->n_texts; i++) {
        prov_name(o->texts[i], name, sizeof name);
        prov_arg(cl, "--text", name);
    }
    snprintf(num, sizeof num, "%llu", (unsigned long long)o->samples);
    prov_arg(cl, "--samples", num);
    snprintf(num, sizeof num, "%u", o->seqlen);
    prov_arg(cl, "--seqlen", num);
    snprintf(num, sizeof num, "%llu", (unsigned long long)o->seed);
    prov_arg(cl, "--seed", num);
    prov_name(tokenizer, name, sizeof name);
    prov_arg(cl, "--tokenizer", name);
    return cl;
}

static int run(opts *o) {
    sq_err err = {0};
    int rc = EXIT_OK;
    sq_model *m = sq_model_open(o->model, &err);
    if (!m) return cli_fail(&err);
    sq_tokenizer *tk = NULL;
    int32_t *ids = NULL;
    uint64_t n_ids = 0, *starts = NULL;
    float *logits = NULL;
    sq_rt_model rt;
    int have_rt = 0;
    sq_calib_acc acc;
    memset(&acc, 0, sizeof acc);
    json_object *prov = json_object_new_object(), *texts = json_object_new_array();
    sq_sha256 tsh;
    sq_sha256_init(&tsh);

    const char *tkp = o->tokenizer ? o->tokenizer : m->tokenizer_path;
    if (!tkp) {
        sq_err_set(&err, SQ_EUSAGE, "%s: no tokenizer found beside the model; give --tokenizer FILE", o->model);
        rc = cli_fail(&err);
        goto out;
    }
    if (!(tk = sq_tokenizer_load_vocab(tkp, m->info.vocab_size, &err))) { rc = cli_fail(&err); goto out; }
    for (int i = 0; i < o->n_texts; i++) {
        char *text;
        size_t len;
        if (sq_read_file(o->texts[i], MAX_TEXT_BYTES, &text, &len, &err)) { rc = cli_fail(&err); goto out; }
        uint8_t d[32];
        char hex[65];
        sq_sha256 one;
        sq_sha256_init(&one);
        sq_sha256_update(&one, text, len);
        sq_sha256_final(&one, d);
        sq_hex32(d, hex);
        sq_sha256_update(&tsh, text, len);
        json_object *to = json_object_new_object();
        char name[256];
        prov_name(o->texts[i], name, sizeof name);
        json_object_object_add(to, "name", json_object_new_string(name));
        json_object_object_add(to, "bytes", json_object_new_int64((int64_t)len));
        json_object_object_add(to, "sha256", json_object_new_string(hex));
        json_object_array_add(texts, to);
        len = sq_text_newlines(text, len);
        int32_t *t_ids;
        uint64_t tn;
        sq_status st = sq_tokenize(tk, text, len, &t_ids, &tn, &err);
        free(text);
        if (st) {
            char msg[sizeof err.msg];
            snprintf(msg, sizeof msg, "%s", err.msg);
            sq_err_set(&err, st, "%s: %s", o->texts[i], msg);
            rc = cli_fail(&err);
            goto out;
        }
        int32_t *grown = realloc(ids, (size_t)(n_ids + tn + 1) * sizeof *ids);
        if (!grown) {
            free(t_ids);
            sq_err_set(&err, SQ_ENOMEM, "out of memory for %llu token ids", (unsigned long long)(n_ids + tn));
            rc = cli_fail(&err);
            goto out;
        }
        ids = grown;
        memcpy(ids + n_ids, t_ids, (size_t)tn * sizeof *ids);
        n_ids += tn;
        free(t_ids);
    }
    if (o->seqlen > m->max_seq) {
        sq_err_set(&err, SQ_EUSAGE, "--seqlen %u is longer than the model's context (%u)", o->seqlen, m->max_seq);
        rc = cli_fail(&err);
        goto out;
    }
    if (!(starts = malloc((size_t)o->samples * sizeof *starts))) {
        sq_err_set(&err, SQ_ENOMEM, "out of memory");
        rc = cli_fail(&err);
        goto out;
    }
    if (sq_calib_draw(n_ids, o->seqlen, o->samples, o->seed, starts, &err)) { rc = cli_fail(&err); goto out; }
    if (sq_rt_load_model_mapped(m, &rt, o->threads, &err)) { rc = cli_fail(&err); goto out; }
    have_rt = 1;
    uint32_t nl = rt.cfg.n_layers;
    if (o->shard_n) {
        if ((uint32_t)o->shard_n > nl) {
            sq_err_set(&err, SQ_EUSAGE, "--shard %d/%d: the model has only %u layers", o->shard_k, o->shard_n, nl);
            rc = cli_fail(&err);
            goto out;
        }
        sq_shard_layers((uint32_t)o->shard_k, (uint32_t)o->shard_n, nl, &o->layer0, &o->layer1);
    } else if (!o->have_layers) {
        o->layer0 = 0;
        o->layer1 = nl;
    }
    if (o->layer1 > nl || o->layer0 >= o->layer1) {
        sq_err_set(&err, SQ_EUSAGE, "--layers %u:%u is outside the model's %u layers", o->layer0, o->layer1, nl);
        rc = cli_fail(&err);
        goto out;
    }
    if (sq_calib_acc_init(&acc, &rt.cfg, o->layer0, o->layer1, o->threads, &err)) { rc = cli_fail(&err); goto out; }
    if (sq_model_identity(m, acc.info.model_sha256, &err)) { rc = cli_fail(&err); goto out; }
    uint8_t d[32];
    sq_sha256_final(&tsh, d);
    sq_hex32(d, acc.info.text_sha256);
    acc.info.samples = o->samples;
    acc.info.seqlen = o->seqlen;
    acc.info.seed = o->seed;
    json_object_object_add(prov, "tool", json_object_new_string("squish-calibrate"));
    json_object_object_add(prov, "version", json_object_new_string(SQUISH_VERSION));
    json_object_object_add(prov, "command_line", canonical_command(o, tkp));
    json_object_object_add(prov, "texts", json_object_get(texts));
    json_object *tko = prov_file(tkp, &err);
    if (!tko) { rc = cli_fail(&err); goto out; }
    json_object_object_add(prov, "tokenizer", tko);
    json_object_object_add(prov, "text_tokens", json_object_new_int64((int64_t)n_ids));
    acc.info.provenance = strdup(json_object_to_json_string_ext(prov, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    /* with the last layer: the logits too (the output layer's input is tapped, the vocabulary statistics summed) */
    if (acc.has_output && !(logits = malloc((size_t)o->seqlen * rt.cfg.vocab * sizeof *logits))) {
        sq_err_set(&err, SQ_ENOMEM, "out of memory for the logits of a window");
        rc = cli_fail(&err);
        goto out;
    }
    cli_progress_start("calibrating", o->samples, "windows");
    for (uint64_t i = 0; i < o->samples; i++) {
        /* with the last layer the whole pass (its logits feed the vocabulary
         * statistics); without it the pass stops after the last calibrated layer */
        sq_status fst = acc.has_output ? sq_rt_forward_tap(&rt, ids + starts[i], o->seqlen, logits, o->threads, sq_calib_tap, &acc, &err)
                                       : sq_rt_forward_tap_layers(&rt, ids + starts[i], o->seqlen, o->layer1, o->threads,
                                                                  sq_calib_tap, &acc, &err);
        if (fst || (acc.has_output && !acc.status && sq_calib_acc_window(&acc, ids + starts[i], logits, o->seqlen, &err))) {
            rc = cli_fail(&err);
            goto out;
        }
        if (acc.status) {
            char msg[sizeof err.msg];
            snprintf(msg, sizeof msg, "%s", acc.err.msg);
            sq_err_set(&err, acc.status, "%s: window %llu (token %llu): %s", o->model, (unsigned long long)i,
                       (unsigned long long)starts[i], msg);
            rc = cli_fail(&err);
            goto out;
        }
        cli_progress_update(i + 1);
    }
    cli_progress_done();
    sq_calib_acc_symmetrize(&acc);
    if (sq_calib_write(o->out, &acc, &err)) { rc = cli_fail(&err); goto out; }
    cli_note("%s: layers %u..%u, %llu windows of %u tokens (%llu tokens) from %llu text tokens\n", o->out, o->layer0,
             o->layer1 - 1, (unsigned long long)o->samples, o->seqlen, (unsigned long long)(o->samples * o->seqlen),
             (unsigned long long)n_ids);
out:
    cli_progress_done();
    json_object_put(prov);
    json_object_put(texts);
    sq_calib_acc_free(&acc);
    if (have_rt) sq_rt_free(&rt);
    free(starts);
    free(logits);
    free(ids);
    sq_tokenizer_free(tk);
    sq_model_close(m);
    return rc;
}

static int parse_u64(const char *s, uint64_t *v) {
    char *end;
    if (!*s || *s == '-') return -1;
    unsigned long long x = strtoull(s, &end, 10);
    if (*end) return -1;
    *v = x;
    return 0;
}

int main(int argc, char **argv) {
    cli_prog = "squish-calibrate";
    static const struct option lo[] = {
        {"text", required_argument, 0, 't'},  {"output", required_argument, 0, 'o'}, {"samples", required_argument, 0, 'n'},
        {"seqlen", required_argument, 0, 'L'}, {"seed", required_argument, 0, 1},     {"tokenizer", required_argument, 0, 2},
        {"layers", required_argument, 0, 3},  {"shard", required_argument, 0, 4},    {"merge", no_argument, 0, 5},
        {"threads", required_argument, 0, 'T'}, {"quiet", no_argument, 0, 'q'},      {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, 'V'},     {0, 0, 0, 0}};
    opts o;
    memset(&o, 0, sizeof o);
    o.threads = sq_default_threads();
    o.samples = 128;
    o.seqlen = 512;
    int c, merge = 0;
    uint64_t v;
    while ((c = getopt_long(argc, argv, "t:o:n:L:T:qhV", lo, NULL)) != -1) {
        switch (c) {
        case 't':
            if (o.n_texts == MAX_TEXTS) return cli_usage_error("at most %d --text files", MAX_TEXTS);
            o.texts[o.n_texts++] = optarg;
            break;
        case 'o': o.out = optarg; break;
        case 'n':
            if (parse_u64(optarg, &v) || !v || v > 1000000) return cli_usage_error("--samples needs 1..1000000");
            o.samples = v;
            break;
        case 'L':
            if (parse_u64(optarg, &v) || v < 2 || v > 1u << 20) return cli_usage_error("--seqlen needs 2..1048576");
            o.seqlen = (uint32_t)v;
            break;
        case 1:
            if (parse_u64(optarg, &v)) return cli_usage_error("--seed needs a non-negative integer");
            o.seed = v;
            break;
        case 2: o.tokenizer = optarg; break;
        case 3: {
            unsigned a, b;
            char tail;
            if (sscanf(optarg, "%u:%u%c", &a, &b, &tail) != 2 || a >= b) return cli_usage_error("--layers needs A:B with A < B");
            o.layer0 = a;
            o.layer1 = b;
            o.have_layers = 1;
            break;
        }
        case 4:
            if (cli_parse_shard(optarg, &o.shard_k, &o.shard_n)) return cli_usage_error("--shard needs K/N with 1 <= K <= N <= 4096");
            break;
        case 5: merge = 1; break;
        case 'T': if (cli_parse_threads(optarg, &o.threads)) return cli_usage_error("--threads needs 0..1024 (0: all cores)"); break;
        case 'q': cli_quiet = 1; break;
        case 'h': usage(stdout); return EXIT_OK;
        case 'V': printf("squish-calibrate %s\n", SQUISH_VERSION); return EXIT_OK;
        default: return cli_usage_error("invalid option");
        }
    }
    if (!o.out) return cli_usage_error("missing -o OUT.h5");
    sq_install_signal_cleanup();
    if (merge) {
        if (argc - optind < 2) return cli_usage_error("--merge needs at least two calibration files");
        if (o.n_texts || o.have_layers || o.shard_n) return cli_usage_error("--merge takes only files, -o, -q");
        sq_err err = {0};
        uint64_t repaired;
        if (sq_calib_merge((const char *const *)argv + optind, argc - optind, o.out, &repaired, &err)) return cli_fail(&err);
        if (repaired)
            fprintf(stderr, "%s: warning: XᵀX of %llu input sites was asymmetric by rounding (files of squish <= 0.1.0); "
                    "merged the mean of each pair\n", cli_prog, (unsigned long long)repaired);
        return EXIT_OK;
    }
    if (optind != argc - 1) return cli_usage_error("expected exactly one MODEL");
    if (!o.n_texts) return cli_usage_error("missing --text FILE");
    if (o.have_layers && o.shard_n) return cli_usage_error("--layers and --shard exclude each other");
    o.model = argv[optind];
    return run(&o);
}
