/* squish-quantize: read a model, write every tensor in a chosen scheme. */
#include <getopt.h>
#include <json-c/json.h>
#include <math.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "method.h"
#include "provenance.h"
#include "rtn.h"
#include "squish/codec.h"
#include "squish/container.h"
#include "squish/hash.h"
#include "squish/model.h"
#include "stats.h"

#define MAX_RULES 64

typedef struct rule {
    char *text;
    regex_t re;
    const sq_codec *codec; /* NULL = keep source precision */
    uint32_t params[SQ_NPARAMS];
} rule;

typedef struct opts {
    const char *model, *out, *report;
    const sq_codec *codec;
    uint32_t params[SQ_NPARAMS];
    const sq_codec *out_codec; /* output layer; NULL = keep */
    uint32_t out_params[SQ_NPARAMS];
    rule rules[MAX_RULES];
    int n_rules, threads, zstd;
    const char *calib;
    int shard_k, shard_n; /* --shard K/N; 0 = whole model */
    sq_method_kind method;
    sq_gptq_opts gptq;
    sq_awq_opts awq;
} opts;

static void usage(FILE *o) {
    fprintf(o,
            "Usage: squish-quantize [OPTIONS] MODEL -o OUT.squizd --scheme SCHEME\n"
            "Quantize a model (Hugging Face directory, llama2.c .bin, .gguf, or a .squizd to re-quantize)\n"
            "into a .squizd file. The model is first checked against its configuration.\n\n"
            "  -o, --output FILE         output file ('-' = standard output); written atomically\n"
            "  -s, --scheme SCHEME       scheme for linear weights, e.g. int4:g128:asym (see below)\n"
            "  -r, --rule REGEX=SCHEME   scheme for tensors whose name matches REGEX (POSIX extended);\n"
            "                            first match wins; SCHEME 'keep' keeps source precision; a rule\n"
            "                            that selects no tensor is warned about\n"
            "      --output-scheme S     scheme for lm_head.weight (default: keep)\n"
            "      --method M            rtn (default), gptq or awq; gptq and awq need --calib\n"
            "      --calib FILE.h5       calibration statistics from squish-calibrate (same model); with\n"
            "                            rtn, only adds each linear layer's output error to the report\n"
            "      --damp X              GPTQ relative damping (default 0.01; raised x10 up to 1.0 when\n"
            "                            the Cholesky factorization fails, and reported)\n"
            "      --act-order           GPTQ: columns in order of decreasing Hessian diagonal\n"
            "      --static-groups       GPTQ with --act-order: group scales fitted before, original order\n"
            "      --awq-duo             AWQ: AutoAWQ's duo scaling (activation and weight means)\n"
            "      --awq-no-clip         AWQ: skip the clipping-range search\n"
            "      --shard K/N           only the K-th of N parts (blocks by layer ranges); 'squish-pack\n"
            "                            merge' joins the N partial files into the unsharded file\n"
            "      --report FILE.json    write the per-tensor error report as JSON ('-' = standard output)\n"
            "      --zstd LEVEL          zstd-compress every part (1..19; default: off)\n"
            "  -T, --threads N           worker threads (default or 0: all cores; output does not depend on it)\n"
            "  -q, --quiet               no report or progress on stderr\n"
            "      --list-schemes        list codecs and their options\n"
            "  -h, --help                this help\n"
            "  -V, --version             print the version\n\n"
            "SCHEME is CODEC[:gN|:pc|:pt][:sym|:asym][:dq][:s16|:sbf16|:s32].\n"
            "Embeddings, norms and other 1-D tensors keep their source precision unless a rule says otherwise.\n\n"
            "Exit status: 0 ok, 2 usage, 3 I/O error, 4 corrupt or non-finite input or tensors that do not\n"
            "match the model's configuration, 5 unsupported input, 6 out of memory.\n");
}

static void list_schemes(void) {
    const sq_codec *const *l = sq_codec_list();
    printf("%-12s %-9s %-24s %s\n", "CODEC", "ID", "DEFAULT", "BPW (4096x4096)");
    for (int i = 0; l[i]; i++) {
        uint32_t p[SQ_NPARAMS];
        const sq_codec *c;
        char s[64];
        sq_scheme_parse(l[i]->name, &c, p, NULL);
        sq_scheme_format(c, p, s, sizeof s);
        printf("%-12s %-9u %-24s %.4f\n", c->name, c->id, s, sq_layout_bpw(c, p, 4096, 4096));
    }
}

static int parse_scheme_or_keep(const char *s, const sq_codec **c, uint32_t *p) {
    if (!strcmp(s, "keep")) {
        *c = NULL;
        memset(p, 0, sizeof(uint32_t) * SQ_NPARAMS);
        return 0;
    }
    sq_err err;
    if (sq_scheme_parse(s, c, p, &err)) {
        fprintf(stderr, "%s: %s\n", cli_prog, err.msg);
        return -1;
    }
    return 0;
}

/* Which of n shards (1..n) a tensor belongs to: a block's tensors by
 * contiguous layer ranges (layers floor((k-1)L/n) .. floor(kL/n)-1 go to
 * shard k), embeddings to the first shard, everything else to the last. */
static int shard_of(const char *name, uint32_t n_layers, int n) {
    unsigned l;
    if (sscanf(name, "model.layers.%u.", &l) == 1 && n_layers) {
        for (int k = 1; k <= n; k++) {
            uint32_t l0, l1;
            sq_shard_layers((uint32_t)k, (uint32_t)n, n_layers, &l0, &l1);
            if (l < l1) return k;
        }
        return n;
    }
    return strstr(name, "embed_tokens") ? 1 : n;
}


static const sq_codec *choose(const opts *o, const sq_model_tensor *t, uint32_t *params);
static const sq_codec *choose_cb(void *ctx, const sq_model_tensor *t, uint32_t *params) { return choose(ctx, t, params); }

static const sq_codec *keep_codec(uint32_t dtype) {
    return sq_codec_for_dtype(dtype);
}

/* Chooses the codec for a tensor: rules, then defaults. */
static const sq_codec *choose(const opts *o, const sq_model_tensor *t, uint32_t *params) {
    for (int i = 0; i < o->n_rules; i++)
        if (!regexec(&o->rules[i].re, t->name, 0, NULL, 0)) {
            memcpy(params, o->rules[i].params, sizeof(uint32_t) * SQ_NPARAMS);
            return o->rules[i].codec ? o->rules[i].codec : keep_codec(t->dtype); /* "keep" parsed to zero params */
        }
    memset(params, 0, sizeof(uint32_t) * SQ_NPARAMS);
    if (!strcmp(t->name, "lm_head.weight")) {
        if (!o->out_codec) return keep_codec(t->dtype);
        memcpy(params, o->out_params, sizeof(uint32_t) * SQ_NPARAMS);
        return o->out_codec;
    }
    if (t->ndim < 2 || strstr(t->name, "embed_tokens") || strstr(t->name, "norm")) return keep_codec(t->dtype);
    memcpy(params, o->params, sizeof(uint32_t) * SQ_NPARAMS);
    return o->codec;
}

/* A rule that selects no tensor is almost always a mistake (a regex that
 * matches no name, or one whose tensors all go to an earlier rule): warn,
 * even with -q. Not an error: one rule set may serve several models. */
static void warn_idle_rules(const opts *o, const sq_model *m) {
    for (int i = 0; i < o->n_rules; i++) {
        uint32_t matched = 0, chosen = 0;
        for (uint32_t k = 0; k < m->n_tensors; k++) {
            const char *name = m->tensors[k].name;
            if (regexec(&o->rules[i].re, name, 0, NULL, 0)) continue;
            matched++;
            int earlier = 0;
            for (int j = 0; j < i && !earlier; j++) earlier = !regexec(&o->rules[j].re, name, 0, NULL, 0);
            chosen += !earlier;
        }
        if (!matched)
            fprintf(stderr, "%s: warning: --rule '%s' matches no tensor of %s\n", cli_prog, o->rules[i].text, o->model);
        else if (!chosen)
            fprintf(stderr, "%s: warning: --rule '%s' applies to no tensor of %s: the %u it matches go to earlier rules\n",
                    cli_prog, o->rules[i].text, o->model, matched);
    }
}

/* A rule as REGEX=SCHEME with the scheme in canonical form ("int8" is "int8:pc:sym"). */
static void rule_text(const rule *r, char *out, size_t n) {
    const char *eq = strrchr(r->text, '=');
    char s[64];
    if (r->codec) sq_scheme_format(r->codec, r->params, s, sizeof s);
    snprintf(out, n, "%.*s=%s", (int)(eq - r->text), r->text, r->codec ? s : "keep");
}

/* The command line as squish records it: the same for every way of typing
 * one job. The model and calibration file by name without directories,
 * then each option that changes the output, in this order and spelling,
 * defaults written out (-o, --report, --shard, -T and -q change where the
 * output goes or how fast it comes, not its bytes). */
static json_object *canonical_command(const opts *o) {
    json_object *cl = prov_command("squish-quantize");
    char s[64], name[256], num[32];
    prov_name(o->model, name, sizeof name);
    json_object_array_add(cl, json_object_new_string(name));
    sq_scheme_format(o->codec, o->params, s, sizeof s);
    prov_arg(cl, "--scheme", s);
    for (int i = 0; i < o->n_rules; i++) {
        char text[1100];
        rule_text(&o->rules[i], text, sizeof text);
        prov_arg(cl, "--rule", text);
    }
    if (o->out_codec) sq_scheme_format(o->out_codec, o->out_params, s, sizeof s);
    prov_arg(cl, "--output-scheme", o->out_codec ? s : "keep");
    prov_arg(cl, "--method", sq_method_name(o->method));
    if (o->calib) {
        prov_name(o->calib, name, sizeof name);
        prov_arg(cl, "--calib", name);
    }
    if (o->method == SQ_METHOD_GPTQ) {
        prov_number(o->gptq.damp, num, sizeof num);
        prov_arg(cl, "--damp", num);
        if (o->gptq.act_order) prov_arg(cl, "--act-order", NULL);
        if (o->gptq.static_groups) prov_arg(cl, "--static-groups", NULL);
    }
    if (o->awq.duo) prov_arg(cl, "--awq-duo", NULL);
    if (!o->awq.clip) prov_arg(cl, "--awq-no-clip", NULL);
    if (o->zstd) {
        snprintf(num, sizeof num, "%d", o->zstd);
        prov_arg(cl, "--zstd", num);
    }
    return cl;
}

/* Provenance and model configuration for the metadata section; model_sha256
 * is the model's content hash, computed while its tensors were read. */
static char *build_metadata(const opts *o, const sq_model *m, const char *model_sha256, const char *calib_sha256,
                            sq_err *err) {
    json_object *root = json_object_new_object();
    json_object *prov = json_object_new_object();
    json_object_object_add(prov, "tool", json_object_new_string("squish-quantize"));
    json_object_object_add(prov, "version", json_object_new_string(SQUISH_VERSION));
    json_object_object_add(prov, "command_line", canonical_command(o));
    json_object_object_add(prov, "method", json_object_new_string(sq_method_name(o->method)));
    if (o->calib) {
        char name[256];
        prov_name(o->calib, name, sizeof name);
        json_object *co = json_object_new_object();
        json_object_object_add(co, "name", json_object_new_string(name));
        json_object_object_add(co, "sha256", json_object_new_string(calib_sha256));
        json_object_object_add(prov, "calibration", co);
    }
    json_object_object_add(prov, "model_content_sha256", json_object_new_string(model_sha256));
    static const char *const fmt[] = {"", "huggingface", "llama2c", "gguf", "squizd"};
    json_object_object_add(prov, "source_format", json_object_new_string(fmt[m->format]));
    json_object *files = json_object_new_array();
    for (uint32_t i = 0; i < m->n_files; i++) {
        char name[256];
        prov_name(m->files[i].path, name, sizeof name);
        json_object *fo = json_object_new_object();
        json_object_object_add(fo, "name", json_object_new_string(name));
        json_object_object_add(fo, "bytes", json_object_new_int64((int64_t)m->files[i].size));
        json_object_array_add(files, fo);
    }
    json_object_object_add(prov, "source_files", files);
    json_object_object_add(root, "provenance", prov);
    json_object *cfg = json_tokener_parse(m->config_json);
    json_object_object_add(root, "config", cfg ? cfg : json_object_new_object());
    if (m->tokenizer_path) {
        json_object *tk = json_object_new_object();
        char hex[65], name[256];
        prov_name(m->tokenizer_path, name, sizeof name);
        json_object_object_add(tk, "file", json_object_new_string(name));
        if (!sq_sha256_file(m->tokenizer_path, hex, NULL)) json_object_object_add(tk, "sha256", json_object_new_string(hex));
        json_object_object_add(tk, "embedded", json_object_new_boolean(0));
        json_object_object_add(root, "tokenizer", tk);
    }
    char s[64];
    json_object *q = json_object_new_object();
    sq_scheme_format(o->codec, o->params, s, sizeof s);
    json_object_object_add(q, "scheme", json_object_new_string(s));
    if (o->out_codec) sq_scheme_format(o->out_codec, o->out_params, s, sizeof s);
    json_object_object_add(q, "output_scheme", json_object_new_string(o->out_codec ? s : "keep"));
    json_object *rules = json_object_new_array();
    for (int i = 0; i < o->n_rules; i++) {
        char text[1100];
        rule_text(&o->rules[i], text, sizeof text);
        json_object_array_add(rules, json_object_new_string(text));
    }
    json_object_object_add(q, "rules", rules);
    if (o->zstd) json_object_object_add(q, "zstd_level", json_object_new_int(o->zstd));
    json_object_object_add(root, "quantization", q);
    if (o->shard_n) { /* a partial file: squish-pack merge joins the N of them */
        json_object *sh = json_object_new_object();
        json_object_object_add(sh, "index", json_object_new_int(o->shard_k));
        json_object_object_add(sh, "count", json_object_new_int(o->shard_n));
        json_object_object_add(sh, "tensors", json_object_new_int64((int64_t)m->n_tensors));
        json_object_object_add(root, "shard", sh);
    }
    char *text = strdup(json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(root);
    if (!text) sq_err_set(err, SQ_ENOMEM, "out of memory");
    return text;
}

static int run(opts *o) {
    sq_err err = {0};
    sq_model *m = sq_model_open(o->model, &err);
    if (!m) return cli_fail(&err);
    if (sq_model_check(m, &err)) { /* a model the runtime cannot load: refused before any work */
        sq_model_close(m);
        return cli_fail(&err);
    }
    warn_idle_rules(o, m);
    int rc = EXIT_OK;
    sq_writer *w = NULL;
    sq_method q;
    memset(&q, 0, sizeof q);
    q.kind = o->method;
    q.gptq = o->gptq;
    q.awq = o->awq;
    q.awq.n_threads = q.n_threads = o->threads;
    q.awq_layer = q.h_layer = -1;
    if (o->calib) {
        if (!(q.calib = sq_calib_open(o->calib, &err)) || sq_method_check_calib(&q, m, o->calib, &err)) {
            sq_method_free(&q);
            sq_model_close(m);
            return cli_fail(&err);
        }
    }
    json_object *report = json_object_new_array();
    char *meta = NULL;
    uint32_t *order = sq_model_order(m);
    if (!order) {
        sq_err_set(&err, SQ_ENOMEM, "out of memory");
        rc = cli_fail(&err);
        goto out;
    }
    sq_model_hash mh; /* the model's content hash, fed as the tensors are read */
    sq_model_hash_init(&mh, m);
    sq_writer_opts wo = {0, o->zstd, o->zstd != 0};
    if (!(w = sq_writer_open(o->out, &wo, &err))) { rc = cli_fail(&err); goto out; }
    sq_model_info info = m->info;
    char calib_sha256[65] = "";
    if (o->calib) { /* the header names the calibration file by its SHA-256 */
        if (sq_sha256_file(o->calib, calib_sha256, &err)) { rc = cli_fail(&err); goto out; }
        sq_unhex32(calib_sha256, info.calib_hash);
    }
    sq_writer_set_model(w, &info);
    if (o->method == SQ_METHOD_GPTQ) sq_writer_add_flags(w, SQ_FLAG_GPTQ);
    if (o->method == SQ_METHOD_AWQ) sq_writer_add_flags(w, SQ_FLAG_AWQ);
    if (!cli_quiet)
        fprintf(stderr, "%-48s %-22s %7s %11s %11s %9s %8s\n", "TENSOR", "SCHEME", "BPW", "RMSE", "MAX_ABS", "COSINE", "SNR_DB");
    uint64_t todo = 0, done = 0; /* progress in weights: tensors differ in size */
    for (uint32_t k = 0; k < m->n_tensors; k++)
        if (!o->shard_n || shard_of(m->tensors[k].name, m->info.n_layers, o->shard_n) == o->shard_k)
            todo += sq_model_tensor_elems(&m->tensors[k]);
    cli_progress_start("quantizing", todo, NULL);
    for (uint32_t k = 0; k < m->n_tensors; k++) {
        const sq_model_tensor *t = &m->tensors[order[k]];
        if (o->shard_n && shard_of(t->name, m->info.n_layers, o->shard_n) != o->shard_k) {
            sq_model_hash_tensor(&mh, m, t); /* every shard records the whole model's hash */
            sq_model_release(m, t);
            continue;
        }
        uint32_t params[SQ_NPARAMS];
        const sq_codec *c = sq_method_codec(&q, t, choose(o, t, params), params);
        uint64_t n = sq_model_tensor_elems(t), cols = t->dims[t->ndim - 1], rows = n / (cols ? cols : 1);
        if (!n) {
            sq_err_set(&err, SQ_EUNSUPPORTED, "%s: tensor %s has zero elements", o->model, t->name);
            rc = cli_fail(&err);
            goto out;
        }
        float *wf = malloc((size_t)n * sizeof(float)), *dec = malloc((size_t)n * sizeof(float));
        sq_encoded e = {0};
        sq_status st = (!wf || !dec) ? sq_err_set(&err, SQ_ENOMEM, "out of memory for tensor %s (%llu elements)", t->name,
                                                  (unsigned long long)n)
                                     : sq_method_weights(&q, m, t, choose_cb, o, wf, &err);
        char label[4200];
        snprintf(label, sizeof label, "%s: tensor %s", o->model, t->name);
        sq_method_note note;
        if (!st) st = sq_method_encode(&q, label, t, c, params, wf, rows, cols, &e, &note, &err);
        sq_errstats es = {0};
        if (!st) {
            sq_tview v;
            sq_tview_from_encoded(&e, &v);
            sq_decode_mt(&v, dec, o->threads);
            const float *in_scale = sq_tview_in_scale(&v);
            if (in_scale) /* compare with the weights before the AWQ scale the decoder undoes */
                for (uint64_t r = 0; r < rows; r++)
                    for (uint64_t j = 0; j < cols; j++) wf[r * cols + j] /= in_scale[j];
            sq_errstats_add(&es, wf, dec, n);
            if (!isfinite(es.sum_sq_err))
                st = sq_err_set(&err, SQ_EUNSUPPORTED, "tensor %s: values overflow scheme %s", t->name, c->name);
        }
        if (!st) st = sq_writer_begin_tensor(w, t->name, t->ndim, t->dims, t->dtype, c->id, e.params, &err);
        for (int i = 0; !st && i < e.nparts; i++)
            st = sq_writer_add_part(w, e.spec[i].name, e.spec[i].dtype, e.spec[i].ndim, e.spec[i].dims, e.data[i],
                                    e.bytes[i], o->zstd ? SQ_COMP_ZSTD : SQ_COMP_NONE, &err);
        if (!st) st = sq_writer_end_tensor(w, &err);
        double bpw = st ? 0 : sq_encoded_bpw(&e);
        sq_encoded_free(&e);
        free(wf);
        free(dec);
        if (!st) sq_model_hash_tensor(&mh, m, t);
        sq_model_release(m, t);
        if (st) {
            rc = cli_fail(&err);
            goto out;
        }
        char s[64];
        sq_scheme_format(c, e.params, s, sizeof s);
        cli_progress_clear(); /* notes and the report line go where the progress line is */
        if (note.gptq.retries && !cli_quiet)
            fprintf(stderr, "%s: note: %s: Cholesky failed; damping raised to %g\n", cli_prog, t->name, note.gptq.damp_used);
        if (note.gptq.fell_back)
            fprintf(stderr, "%s: warning: %s: Hessian singular even at damping 1.0; quantized with RTN\n", cli_prog, t->name);
        double rmse = sq_errstats_rmse(&es), cosv = sq_errstats_cosine(&es), snr = sq_errstats_snr_db(&es);
        if (!cli_quiet) {
            fprintf(stderr, "%-48s %-22s %7.3f %11.4e %11.4e %9.6f %8.2f\n", t->name, s, bpw, rmse, es.max_abs, cosv,
                    isinf(snr) ? 999.99 : snr);
        }
        json_object *ro = json_object_new_object();
        json_object_object_add(ro, "name", json_object_new_string(t->name));
        json_object_object_add(ro, "scheme", json_object_new_string(s));
        json_object_object_add(ro, "elements", json_object_new_int64((int64_t)n));
        json_object_object_add(ro, "bpw", json_object_new_double(bpw));
        json_object_object_add(ro, "rmse", json_object_new_double(rmse));
        json_object_object_add(ro, "max_abs", json_object_new_double(es.max_abs));
        json_object_object_add(ro, "cosine", json_object_new_double(cosv));
        json_object_object_add(ro, "snr_db", isinf(snr) ? NULL : json_object_new_double(snr));
        json_object_object_add(ro, "method", json_object_new_string(note.method));
        if (note.out_err >= 0) json_object_object_add(ro, "out_err", json_object_new_double(note.out_err));
        if (!strcmp(note.method, "gptq")) {
            json_object_object_add(ro, "damp", json_object_new_double(note.gptq.damp_used));
            json_object_object_add(ro, "damp_retries", json_object_new_int(note.gptq.retries));
            json_object_object_add(ro, "dead_inputs", json_object_new_int((int)note.gptq.dead));
            json_object_object_add(ro, "permuted", json_object_new_boolean(note.gptq.permuted));
        }
        if (!strcmp(note.method, "awq")) {
            json_object_object_add(ro, "awq_ratio", json_object_new_double(note.awq_ratio));
            json_object_object_add(ro, "awq_err_ratio", json_object_new_double(note.awq_gain));
            json_object_object_add(ro, "in_scale", json_object_new_boolean(note.awq_in_scale));
        }
        json_object_array_add(report, ro);
        cli_progress_update(done += n);
    }
    cli_progress_done();
    if (q.calib) {
        double worst;
        uint64_t n = sq_calib_file_repairs(q.calib, &worst);
        if (n)
            fprintf(stderr, "%s: warning: %s: XᵀX of %llu sites was asymmetric by rounding (largest pair difference "
                    "%.2g of its bound; a file of squish <= 0.1.0); used the mean of each pair\n",
                    cli_prog, o->calib, (unsigned long long)n, worst);
    }
    char model_sha256[65];
    sq_model_hash_final(&mh, model_sha256);
    if (!(meta = build_metadata(o, m, model_sha256, calib_sha256, &err)) || sq_writer_set_metadata(w, meta, &err)) {
        rc = cli_fail(&err);
        goto out;
    }
    sq_writer *wc = w;
    w = NULL;
    if (sq_writer_commit(wc, &err)) { rc = cli_fail(&err); goto out; }
    if (o->report) {
        json_object *root = json_object_new_object();
        json_object_object_add(root, "schema", json_object_new_string("squish-quantize-report/1"));
        json_object_object_add(root, "tensors", json_object_get(report));
        const int jflags = JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE;
        if (!strcmp(o->report, "-") ? printf("%s\n", json_object_to_json_string_ext(root, jflags)) < 0 || fflush(stdout)
                                    : json_object_to_file_ext(o->report, root, jflags)) {
            fprintf(stderr, "%s: error: %s: cannot write the report\n", cli_prog, o->report);
            rc = EXIT_IO;
        }
        json_object_put(root);
    }
out:
    sq_method_free(&q);
    if (w) sq_writer_abort(w);
    json_object_put(report);
    free(order);
    free(meta);
    sq_model_close(m);
    return rc;
}

int main(int argc, char **argv) {
    cli_prog = "squish-quantize";
    static const struct option lo[] = {{"output", required_argument, 0, 'o'},  {"scheme", required_argument, 0, 's'},
                                       {"rule", required_argument, 0, 'r'},    {"output-scheme", required_argument, 0, 1},
                                       {"report", required_argument, 0, 2},    {"zstd", required_argument, 0, 3},
                                       {"list-schemes", no_argument, 0, 4},    {"threads", required_argument, 0, 'T'},
                                       {"quiet", no_argument, 0, 'q'},         {"help", no_argument, 0, 'h'},
                                       {"version", no_argument, 0, 'V'},       {"method", required_argument, 0, 5},
                                       {"calib", required_argument, 0, 6},     {"damp", required_argument, 0, 7},
                                       {"act-order", no_argument, 0, 8},       {"static-groups", no_argument, 0, 9},
                                       {"awq-duo", no_argument, 0, 10},        {"awq-no-clip", no_argument, 0, 11},
                                       {"shard", required_argument, 0, 12},
                                       {0, 0, 0, 0}};
    opts o;
    memset(&o, 0, sizeof o);
    o.threads = sq_default_threads();
    o.gptq.damp = 0.01;
    o.gptq.block = 128;
    o.awq.n_grid = 20;
    o.awq.clip = 1;
    int c, rc = EXIT_OK;
    while ((c = getopt_long(argc, argv, "o:s:r:T:qhV", lo, NULL)) != -1) {
        switch (c) {
        case 'o': o.out = optarg; break;
        case 's':
            if (parse_scheme_or_keep(optarg, &o.codec, o.params) || !o.codec) return cli_usage_error("bad --scheme '%s'", optarg);
            break;
        case 'r': {
            char *eq = strrchr(optarg, '=');
            if (!eq || eq == optarg) return cli_usage_error("--rule needs REGEX=SCHEME, got '%s'", optarg);
            if (o.n_rules == MAX_RULES) return cli_usage_error("at most %d rules", MAX_RULES);
            rule *r = &o.rules[o.n_rules];
            r->text = optarg;
            *eq = 0;
            int e = regcomp(&r->re, optarg, REG_EXTENDED | REG_NOSUB);
            if (e) {
                char msg[256];
                regerror(e, &r->re, msg, sizeof msg);
                return cli_usage_error("--rule: bad regex '%s': %s", optarg, msg);
            }
            if (parse_scheme_or_keep(eq + 1, &r->codec, r->params)) return cli_usage_error("bad scheme in --rule");
            *eq = '=';
            o.n_rules++;
            break;
        }
        case 1:
            if (parse_scheme_or_keep(optarg, &o.out_codec, o.out_params)) return cli_usage_error("bad --output-scheme");
            break;
        case 2: o.report = optarg; break;
        case 3: {
            double z;
            if (cli_parse_double(optarg, &z) || z < 1 || z > 19 || z != (int)z) return cli_usage_error("--zstd needs 1..19");
            o.zstd = (int)z;
            break;
        }
        case 4: list_schemes(); return EXIT_OK;
        case 5:
            if (!strcmp(optarg, "rtn")) o.method = SQ_METHOD_RTN;
            else if (!strcmp(optarg, "gptq")) o.method = SQ_METHOD_GPTQ;
            else if (!strcmp(optarg, "awq")) o.method = SQ_METHOD_AWQ;
            else return cli_usage_error("--method needs rtn, gptq or awq");
            break;
        case 6: o.calib = optarg; break;
        case 7:
            if (cli_parse_double(optarg, &o.gptq.damp) || !(o.gptq.damp > 0) || o.gptq.damp > 1)
                return cli_usage_error("--damp needs a number in (0, 1]");
            break;
        case 8: o.gptq.act_order = 1; break;
        case 9: o.gptq.static_groups = 1; break;
        case 10: o.awq.duo = 1; break;
        case 11: o.awq.clip = 0; break;
        case 12: {
            if (cli_parse_shard(optarg, &o.shard_k, &o.shard_n)) return cli_usage_error("--shard needs K/N with 1 <= K <= N <= 4096");
            break;
        }
        case 'T': if (cli_parse_threads(optarg, &o.threads)) return cli_usage_error("--threads needs 0..1024 (0: all cores)"); break;
        case 'q': cli_quiet = 1; break;
        case 'h': usage(stdout); return EXIT_OK;
        case 'V': printf("squish-quantize %s\n", SQUISH_VERSION); return EXIT_OK;
        default: return cli_usage_error("invalid option");
        }
    }
    if (optind != argc - 1) return cli_usage_error("expected exactly one MODEL");
    if (!o.out) return cli_usage_error("missing -o OUT");
    if (!strcmp(o.out, "-") && isatty(STDOUT_FILENO))
        return cli_usage_error("refusing to write a binary .squizd to a terminal (redirect standard output)");
    if (o.report && !strcmp(o.report, "-") && !strcmp(o.out, "-"))
        return cli_usage_error("-o - and --report - cannot share standard output; name a file for one of them");
    if (!o.codec) return cli_usage_error("missing --scheme");
    if (o.method != SQ_METHOD_RTN && !o.calib) return cli_usage_error("--method %s needs --calib FILE.h5", sq_method_name(o.method));
    if ((o.gptq.act_order || o.gptq.static_groups) && o.method != SQ_METHOD_GPTQ)
        return cli_usage_error("--act-order and --static-groups apply to --method gptq");
    if (o.gptq.static_groups && !o.gptq.act_order) return cli_usage_error("--static-groups needs --act-order");
    if ((o.awq.duo || !o.awq.clip) && o.method != SQ_METHOD_AWQ) return cli_usage_error("--awq-* options apply to --method awq");
    o.model = argv[optind];
    sq_install_signal_cleanup();
    rc = run(&o);
    for (int i = 0; i < o.n_rules; i++) regfree(&o.rules[i].re);
    return rc;
}
