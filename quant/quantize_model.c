/* A whole model into a .squizd file (see quantize_model.h). */
#include "quantize_model.h"

#include <json-c/json.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "provenance.h"
#include "rtn.h"
#include "sequential.h"
#include "squish/bundle.h"
#include "squish/container.h"
#include "squish/hash.h"
#include "squish/llama_names.h"
#include "squish/version.h"
#include "stats.h"

void sq_quantize_opts_init(sq_quantize_opts *o) {
    memset(o, 0, sizeof *o);
    o->method = SQ_METHOD_RTN;
    o->threads = sq_default_threads();
    o->gptq.damp = 0.01;
    o->gptq.block = 128;
    o->awq.n_grid = 20;
    o->awq.clip = 1;
}

/* A message to the sink (any length: paths and rules are the caller's). */
static void say(const sq_quantize_opts *o, sq_quantize_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void say(const sq_quantize_opts *o, sq_quantize_level level, const char *fmt, ...) {
    if (!o->sink.message) return;
    char small[512], *text = small;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n >= (int)sizeof small && (text = malloc((size_t)n + 1))) {
        va_start(ap, fmt);
        vsnprintf(text, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    o->sink.message(o->sink.ctx, level, text ? text : small); /* truncated only when out of memory */
    if (text != small) free(text);
}

int sq_quantize_shard_of(const char *name, uint32_t n_layers, int n) {
    uint32_t l;
    if (sq_llama_layer_of(name, &l) && n_layers) {
        for (int k = 1; k <= n; k++) {
            uint32_t l0, l1;
            sq_shard_layers((uint32_t)k, (uint32_t)n, n_layers, &l0, &l1);
            if (l < l1) return k;
        }
        return n;
    }
    return sq_llama_is_embedding(name) ? 1 : n;
}

static int in_shard(const sq_quantize_opts *o, const sq_model *m, const sq_model_tensor *t) {
    return !o->shard_n || sq_quantize_shard_of(t->name, m->info.n_layers, o->shard_n) == o->shard_k;
}

/* A rule that selects no tensor is almost always a mistake (a regex that
 * matches no name, or one whose tensors all go to earlier rules): a
 * warning. Not an error: one rule set may serve several models. */
static void warn_idle_rules(const sq_quantize_opts *o, const sq_model *m) {
    for (int i = 0; i < o->scheme.n_rules; i++) {
        uint32_t matched, chosen;
        sq_scheme_rule_use(&o->scheme, i, m, &matched, &chosen);
        if (!matched)
            say(o, SQ_QUANTIZE_WARNING, "--rule '%s' matches no tensor of %s", o->scheme.rules[i].text, o->model);
        else if (!chosen)
            say(o, SQ_QUANTIZE_WARNING, "--rule '%s' applies to no tensor of %s: the %u it matches go to earlier rules",
                o->scheme.rules[i].text, o->model, matched);
    }
}

static sq_status check_opts(const sq_quantize_opts *o, sq_err *err) {
    if (!o->model || !o->out) return sq_err_set(err, SQ_EUSAGE, "quantize: no %s given", o->model ? "output" : "model");
    if (!o->scheme.codec && !o->alloc.target_bpw) return sq_err_set(err, SQ_EUSAGE, "quantize: no scheme given");
    if (o->alloc.target_bpw) {
        if (!(o->alloc.target_bpw > 0 && o->alloc.target_bpw <= 32))
            return sq_err_set(err, SQ_EUSAGE, "quantize: --target-bpw %g is not in (0, 32]", o->alloc.target_bpw);
        if (!o->calib)
            return sq_err_set(err, SQ_EUSAGE, "quantize: --target-bpw needs --calib FILE.h5 (each candidate's loss is "
                              "measured with the layers' XᵀX)");
        if (o->method == SQ_METHOD_AWQ) return sq_err_set(err, SQ_EUSAGE, "quantize: --target-bpw takes --method gptq or rtn, not awq");
        if (o->shard_n) return sq_err_set(err, SQ_EUSAGE, "quantize: --target-bpw allocates over the whole model; it cannot take --shard");
        if (o->alloc.probe_windows && !o->alloc.probe_text == !o->alloc.probe_ids)
            return sq_err_set(err, SQ_EUSAGE, "quantize: --alloc-probe needs a probe text or token ids (one of them)");
    }
    if (o->sequential) {
        if (!o->calib) return sq_err_set(err, SQ_EUSAGE, "quantize: --sequential needs --calib FILE.h5 and --calib-text");
        if (o->method == SQ_METHOD_AWQ)
            return sq_err_set(err, SQ_EUSAGE, "quantize: --sequential takes --method gptq or rtn (with the calibrated codecs), "
                              "not awq (its scale search reads the calibration file block by block)");
        if (o->shard_n)
            return sq_err_set(err, SQ_EUSAGE, "quantize: --sequential cannot take --shard (a block's inputs come through "
                              "every block before it)");
    } else if (o->n_calib_texts || o->seq_stats) {
        return sq_err_set(err, SQ_EUSAGE, "quantize: --calib-text and --sequential-stats are read only with --sequential");
    }
    if (o->method != SQ_METHOD_RTN && !o->calib)
        return sq_err_set(err, SQ_EUSAGE, "quantize: method %s needs a calibration file", sq_method_name(o->method));
    if (o->zstd < 0 || o->zstd > 19) return sq_err_set(err, SQ_EUSAGE, "quantize: zstd level %d is not in 1..19", o->zstd);
    if (o->shard_n < 0 || o->shard_n > 4096 || (o->shard_n && (o->shard_k < 1 || o->shard_k > o->shard_n)))
        return sq_err_set(err, SQ_EUSAGE, "quantize: shard %d/%d is not K/N with 1 <= K <= N <= 4096", o->shard_k, o->shard_n);
    if (o->threads < 0) return sq_err_set(err, SQ_EUSAGE, "quantize: %d threads", o->threads);
    return SQ_OK;
}

/* ---- provenance ---- */

/* The command line as squish records it: the same for every way of typing
 * one job. The model and calibration file by name without directories,
 * then each option that changes the output, in this order and spelling,
 * defaults written out (-o, --report, --shard, -T and -q change where the
 * output goes or how fast it comes, not its bytes). A library caller's
 * output records the squish-quantize command that makes the same bytes. */
static json_object *canonical_command(const sq_quantize_opts *o) {
    const sq_scheme_rules *sc = &o->scheme;
    json_object *cl = prov_command("squish-quantize");
    char s[64], name[256], num[32];
    prov_name(o->model, name, sizeof name);
    json_object_array_add(cl, json_object_new_string(name));
    if (sc->codec) sq_scheme_format(sc->codec, sc->params, s, sizeof s);
    prov_arg(cl, "--scheme", sc->codec ? s : "keep");
    if (o->alloc.target_bpw) {
        prov_number(o->alloc.target_bpw, num, sizeof num);
        prov_arg(cl, "--target-bpw", num);
        prov_arg(cl, "--over", o->alloc.over_all ? "all" : "matrices");
        char list[SQ_ALLOC_MAX_CANDS * 64] = "";
        for (int i = 0; i < o->alloc.n_cands; i++) {
            sq_scheme_format(o->alloc.cands[i].codec, o->alloc.cands[i].params, s, sizeof s);
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? "," : "", s);
        }
        prov_arg(cl, "--candidates", list);
        for (int i = 0; i < o->alloc.n_weights; i++) prov_arg(cl, "--alloc-weight", o->alloc.weights[i].text);
        if (o->alloc.probe_windows) { /* the probes change the choice: recorded, the text by name */
            snprintf(num, sizeof num, "%u", o->alloc.probe_windows);
            prov_arg(cl, "--alloc-probe", num);
            prov_name(o->alloc.probe_text ? o->alloc.probe_text : o->alloc.probe_ids, name, sizeof name);
            prov_arg(cl, o->alloc.probe_text ? "--alloc-probe-text" : "--alloc-probe-ids", name);
        }
    }
    for (int i = 0; i < sc->n_rules; i++) {
        char text[1100];
        sq_scheme_rule_text(&sc->rules[i], text, sizeof text);
        prov_arg(cl, "--rule", text);
    }
    if (sc->out_codec) sq_scheme_format(sc->out_codec, sc->out_params, s, sizeof s);
    prov_arg(cl, "--output-scheme", sc->out_codec ? s : "keep");
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
        snprintf(num, sizeof num, "%d", o->gptq.refine < 0 ? 0 : o->gptq.refine ? o->gptq.refine : SQ_GPTQ_REFINE);
        prov_arg(cl, "--gptq-cd", num);
    }
    if (o->sequential) { /* the texts are the calibration file's (checked by its text_sha256): named for people */
        prov_arg(cl, o->sequential == SQ_SEQUENTIAL_BLOCK ? "--sequential=block" : "--sequential", NULL);
        for (int i = 0; i < o->n_calib_texts; i++) {
            prov_name(o->calib_texts[i], name, sizeof name);
            prov_arg(cl, "--calib-text", name);
        }
    }
    if (o->awq.duo) prov_arg(cl, "--awq-duo", NULL);
    if (!o->awq.clip) prov_arg(cl, "--awq-no-clip", NULL);
    if (o->zstd) {
        snprintf(num, sizeof num, "%d", o->zstd);
        prov_arg(cl, "--zstd", num);
    }
    if (o->no_bundle) prov_arg(cl, "--no-bundle", NULL);
    if (o->tca_tbe) prov_arg(cl, "--tca-tbe", NULL);
    return cl;
}

/* Provenance and model configuration for the metadata section; model_sha256
 * is the model's content hash, computed while its tensors were read. */
static char *build_metadata(const sq_quantize_opts *o, const sq_model *m, const sq_bundle *bundle,
                            const char *model_sha256, const char *calib_sha256, sq_err *err) {
    const sq_scheme_rules *sc = &o->scheme;
    json_object *root = json_object_new_object();
    json_object *prov = json_object_new_object();
    json_object_object_add(prov, "tool", json_object_new_string("squish-quantize"));
    json_object_object_add(prov, "version", json_object_new_string(SQUISH_VERSION_STRING));
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
    const struct sq_vfile *btk = sq_bundle_tokenizer(bundle, NULL);
    if (btk) { /* the tokenizer travels in the file: its name and hash as embedded */
        json_object *tk = json_object_new_object();
        uint8_t d[32];
        char hex[65];
        sq_sha256 sh;
        sq_sha256_init(&sh);
        sq_sha256_update(&sh, btk->data, (size_t)btk->size);
        sq_sha256_final(&sh, d);
        sq_hex32(d, hex);
        json_object_object_add(tk, "file", json_object_new_string(btk->name));
        json_object_object_add(tk, "sha256", json_object_new_string(hex));
        json_object_object_add(tk, "embedded", json_object_new_boolean(1));
        json_object_object_add(root, "tokenizer", tk);
    } else if (m->tokenizer_path) {
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
    if (sc->codec) sq_scheme_format(sc->codec, sc->params, s, sizeof s);
    json_object_object_add(q, "scheme", json_object_new_string(sc->codec ? s : "keep"));
    if (o->alloc.target_bpw) { /* what the allocator was asked; the choice per tensor is in the tensor table */
        json_object *ao = json_object_new_object();
        json_object_object_add(ao, "target_bpw", json_object_new_double(o->alloc.target_bpw));
        json_object_object_add(ao, "over", json_object_new_string(o->alloc.over_all ? "all" : "matrices"));
        json_object *cl = json_object_new_array();
        for (int i = 0; i < o->alloc.n_cands; i++) {
            sq_scheme_format(o->alloc.cands[i].codec, o->alloc.cands[i].params, s, sizeof s);
            json_object_array_add(cl, json_object_new_string(s));
        }
        json_object_object_add(ao, "candidates", cl);
        json_object_object_add(q, "allocation", ao);
    }
    if (sc->out_codec) sq_scheme_format(sc->out_codec, sc->out_params, s, sizeof s);
    json_object_object_add(q, "output_scheme", json_object_new_string(sc->out_codec ? s : "keep"));
    json_object *rules = json_object_new_array();
    for (int i = 0; i < sc->n_rules; i++) {
        char text[1100];
        sq_scheme_rule_text(&sc->rules[i], text, sizeof text);
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

/* ---- one tensor ---- */

/* The error statistics of e against w, the weights as encoded. A per-input
 * scale (AWQ's in_scale) is stored as a transform the decoder undoes, so
 * the comparison is with w divided by it: the weights the model computes
 * with. w is modified. */
static sq_status measure(const sq_quantize_opts *o, const sq_encoded *e, const sq_codec *c, const char *name, float *w,
                         float *dec, uint64_t rows, uint64_t cols, sq_errstats *es, sq_err *err) {
    sq_tview v;
    sq_tview_from_encoded(e, &v);
    sq_status st = sq_decode_mt(&v, dec, o->threads);
    if (st) return sq_err_set(err, st, "tensor %s: cannot decode what was encoded (%s)", name, sq_status_name(st));
    const float *in_scale = sq_tview_in_scale(&v);
    if (in_scale)
        for (uint64_t r = 0; r < rows; r++)
            for (uint64_t j = 0; j < cols; j++) w[r * cols + j] /= in_scale[j];
    sq_errstats_add(es, w, dec, rows * cols);
    if (!isfinite(es->sum_sq_err)) return sq_err_set(err, SQ_EUNSUPPORTED, "tensor %s: values overflow scheme %s", name, c->name);
    return SQ_OK;
}

/* The encoded parts, in order, as the tensor's parts in the file. */
static sq_status write_tensor(sq_writer *w, const sq_model_tensor *t, const sq_codec *c, const sq_encoded *e,
                              const sq_quantize_opts *o, sq_err *err) {
    sq_status st = sq_writer_begin_tensor(w, t->name, t->ndim, t->dims, t->dtype, c->id, e->params, err);
    for (int i = 0; !st && i < e->nparts; i++) {
        uint32_t comp = o->tca_tbe && e->spec[i].dtype == SQ_DT_BF16 ? SQ_COMP_TCA_TBE
                        : o->zstd                                    ? SQ_COMP_ZSTD
                                                                     : SQ_COMP_NONE;
        st = sq_writer_add_part(w, e->spec[i].name, e->spec[i].dtype, e->spec[i].ndim, e->spec[i].dims, e->data[i],
                                e->bytes[i], comp, err);
    }
    if (!st) st = sq_writer_end_tensor(w, err);
    return st;
}

static json_object *report_entry(const sq_quantize_tensor_report *r) {
    const sq_method_note *note = r->note;
    json_object *ro = json_object_new_object();
    json_object_object_add(ro, "name", json_object_new_string(r->name));
    json_object_object_add(ro, "scheme", json_object_new_string(r->scheme));
    json_object_object_add(ro, "elements", json_object_new_int64((int64_t)r->elements));
    json_object_object_add(ro, "bpw", json_object_new_double(r->bpw));
    json_object_object_add(ro, "rmse", json_object_new_double(r->rmse));
    json_object_object_add(ro, "max_abs", json_object_new_double(r->max_abs));
    json_object_object_add(ro, "cosine", json_object_new_double(r->cosine));
    json_object_object_add(ro, "snr_db", isinf(r->snr_db) ? NULL : json_object_new_double(r->snr_db));
    json_object_object_add(ro, "bytes", json_object_new_int64((int64_t)r->bytes));
    json_object_object_add(ro, "method", json_object_new_string(note->method));
    if (r->alloc_loss >= 0) json_object_object_add(ro, "predicted_loss", json_object_new_double(r->alloc_loss));
    if (note->out_err >= 0) json_object_object_add(ro, "out_err", json_object_new_double(note->out_err));
    if (!strcmp(note->method, "gptq")) {
        json_object_object_add(ro, "damp", json_object_new_double(note->gptq.damp_used));
        json_object_object_add(ro, "damp_retries", json_object_new_int(note->gptq.retries));
        json_object_object_add(ro, "dead_inputs", json_object_new_int((int)note->gptq.dead));
        json_object_object_add(ro, "permuted", json_object_new_boolean(note->gptq.permuted));
        json_object_object_add(ro, "cd_moves", json_object_new_int64((int64_t)note->gptq.refine_moves));
    }
    if (!strcmp(note->method, "awq")) {
        json_object_object_add(ro, "awq_ratio", json_object_new_double(note->awq_ratio));
        json_object_object_add(ro, "awq_err_ratio", json_object_new_double(note->awq_gain));
        json_object_object_add(ro, "in_scale", json_object_new_boolean(note->awq_in_scale));
    }
    return ro;
}

/* Quantizes, measures and writes tensor t; fills r (its note in *note).
 * ae: the allocator's entry for t (its chosen candidate, perhaps already
 * encoded), or NULL. */
static sq_status quantize_tensor(const sq_quantize_opts *o, sq_method *q, const sq_model *m, sq_writer *w,
                                 const sq_model_tensor *t, sq_alloc_entry *ae, const sq_alloc_cand *cands, sq_seq *seq,
                                 sq_quantize_tensor_report *r, sq_method_note *note, sq_err *err) {
    uint32_t params[SQ_NPARAMS];
    const sq_codec *c;
    if (ae) {
        c = cands[ae->cand[ae->pick]].codec;
        memcpy(params, cands[ae->cand[ae->pick]].params, sizeof params);
    } else {
        c = sq_method_codec(q, t, params);
    }
    uint64_t n = sq_model_tensor_elems(t), cols = t->dims[t->ndim - 1], rows = n / (cols ? cols : 1);
    if (!n) return sq_err_set(err, SQ_EUNSUPPORTED, "%s: tensor %s has zero elements", o->model, t->name);
    float *wf = malloc((size_t)n * sizeof(float)), *dec = malloc((size_t)n * sizeof(float));
    sq_encoded e = {0};
    sq_status st = (!wf || !dec) ? sq_err_set(err, SQ_ENOMEM, "out of memory for tensor %s (%llu elements)", t->name,
                                              (unsigned long long)n)
                                 : sq_method_weights(q, m, t, wf, err);
    char label[4200];
    snprintf(label, sizeof label, "%s: tensor %s", o->model, t->name);
    if (!st && seq && sq_seq_take(seq, t, &e, note)) {
        /* a block's tensor, encoded by the sequential pass */
    } else if (!st && ae && ae->cached[ae->pick] && !seq) { /* encoded in the allocator's pass: taken over, not encoded again */
        e = ae->enc[ae->pick];
        ae->cached[ae->pick] = 0;
        *note = ae->note[ae->pick];
    } else if (!st) {
        st = ae ? sq_alloc_encode(q, label, t, &cands[ae->cand[ae->pick]], wf, rows, cols, &e, note, err)
                : sq_method_encode(q, label, t, c, params, wf, rows, cols, &e, note, err);
        if (!st && seq) st = sq_seq_after(seq, t, &e, err);
    }
    uint64_t bytes = 0;
    for (int i = 0; !st && i < e.nparts; i++) bytes += e.bytes[i];
    /* the plan's sizes must be the file's; under --sequential the calibrated
     * candidates are encoded again with other statistics (SpQR's outliers vary) */
    if (!st && ae && !seq && 8 * bytes != ae->bits[ae->pick])
        st = sq_err_set(err, SQ_EUNSUPPORTED, "%s: encoded again, %s took %llu bits, not the %llu the allocator measured",
                        label, c->name, (unsigned long long)(8 * bytes), (unsigned long long)ae->bits[ae->pick]);
    sq_errstats es = {0};
    if (!st) st = measure(o, &e, c, t->name, wf, dec, rows, cols, &es, err);
    if (!st) st = write_tensor(w, t, c, &e, o, err);
    if (!st) {
        memset(r, 0, sizeof *r);
        r->name = t->name;
        sq_scheme_format(c, e.params, r->scheme, sizeof r->scheme);
        r->elements = n;
        r->bpw = sq_encoded_bpw(&e);
        r->bytes = bytes;
        r->alloc_loss = ae ? ae->wloss[ae->pick] : -1;
        r->rmse = sq_errstats_rmse(&es);
        r->max_abs = es.max_abs;
        r->cosine = sq_errstats_cosine(&es);
        r->snr_db = sq_errstats_snr_db(&es);
        r->note = note;
    }
    sq_encoded_free(&e);
    free(wf);
    free(dec);
    return st;
}

/* ---- the sequential pass's encoder ---- */

typedef struct seq_enc_ctx {
    const sq_quantize_opts *o;
    sq_method *q;
    const sq_model *m;
    sq_alloc_plan *plan;
} seq_enc_ctx;

/* Tensor t encoded as quantize_tensor would encode it (its allocated
 * candidate, else the method's codec), with the pass's statistics. */
static sq_status seq_encode(void *ctx, const sq_model_tensor *t, sq_encoded *e, sq_method_note *note, sq_err *err) {
    seq_enc_ctx *x = ctx;
    sq_alloc_entry *ae = x->o->alloc.target_bpw ? sq_alloc_plan_find(x->plan, (uint32_t)(t - x->m->tensors)) : NULL;
    uint32_t params[SQ_NPARAMS];
    const sq_codec *c = ae ? NULL : sq_method_codec(x->q, t, params);
    uint64_t n = sq_model_tensor_elems(t), cols = t->dims[t->ndim - 1], rows = n / (cols ? cols : 1);
    if (!n) return sq_err_set(err, SQ_EUNSUPPORTED, "%s: tensor %s has zero elements", x->o->model, t->name);
    float *wf = malloc((size_t)n * sizeof(float));
    if (!wf) return sq_err_set(err, SQ_ENOMEM, "out of memory for tensor %s (%llu elements)", t->name, (unsigned long long)n);
    char label[4200];
    snprintf(label, sizeof label, "%s: tensor %s", x->o->model, t->name);
    sq_status st = sq_method_weights(x->q, x->m, t, wf, err);
    if (!st)
        st = ae ? sq_alloc_encode(x->q, label, t, &x->plan->cands[ae->cand[ae->pick]], wf, rows, cols, e, note, err)
                : sq_method_encode(x->q, label, t, c, params, wf, rows, cols, e, note, err);
    free(wf);
    return st;
}

/* ---- the allocation ---- */

static void alloc_note(void *ctx, const char *what, const char *tensor, int done, int total) {
    if (!strcmp(what, "identity"))
        say(ctx, SQ_QUANTIZE_NOTE, "allocation: %s is weighed with H = I: the calibration file has no /output/lm_head_in "
            "and /vocab (made by an older squish-calibrate; run it again for the output layer's XᵀX and the vocabulary "
            "statistics)", tensor);
    else if (!strcmp(what, "probing"))
        say(ctx, SQ_QUANTIZE_NOTE, "allocation: probing the KL-divergence of %s (%d of %d)", tensor, done, total);
    else
        say(ctx, SQ_QUANTIZE_NOTE, "allocation: %s %s with every candidate (%d of %d)", what, tensor, done, total);
}

/* The report's "allocation": the target, the predicted and achieved bpw,
 * and every tensor's candidates as measured, the chosen one marked. */
static json_object *alloc_report(const sq_quantize_opts *o, const sq_model *m, const sq_alloc_plan *p, double pred,
                                 double got) {
    json_object *ao = json_object_new_object();
    json_object_object_add(ao, "target_bpw", json_object_new_double(o->alloc.target_bpw));
    json_object_object_add(ao, "over", json_object_new_string(o->alloc.over_all ? "all" : "matrices"));
    json_object_object_add(ao, "elements", json_object_new_int64((int64_t)p->elements));
    json_object_object_add(ao, "predicted_bpw", json_object_new_double(pred));
    json_object_object_add(ao, "achieved_bpw", json_object_new_double(got));
    json_object_object_add(ao, "predicted_loss", json_object_new_double(p->res.loss));
    json_object_object_add(ao, "lagrangian_bpw",
                           json_object_new_double((double)(p->res.lagr_bits + p->fixed_bits) / (double)p->elements));
    json_object_object_add(ao, "lagrangian_loss", json_object_new_double(p->res.lagr_loss));
    json_object_object_add(ao, "lambda", json_object_new_double(p->res.lambda));
    json_object_object_add(ao, "widened", json_object_new_boolean(p->res.widened));
    json_object_object_add(ao, "from_hull", json_object_new_boolean(p->res.from_hull));
    json_object_object_add(ao, "fixed_bytes", json_object_new_int64((int64_t)(p->fixed_bits / 8)));
    if (o->alloc.probe_windows) { /* what identifies the probes, so that a later --alloc-table reuses them */
        json_object *po = json_object_new_object();
        json_object_object_add(po, "windows", json_object_new_int64(p->probe_windows));
        json_object_object_add(po, "ctx", json_object_new_int64(p->probe_ctx));
        json_object_object_add(po, "ids_sha256", json_object_new_string(p->probe_ids_sha256));
        json_object_object_add(po, "baseline_kld", json_object_new_double(p->probe_baseline));
        json_object_object_add(po, "probes_run", json_object_new_int64(p->probes_run));
        json_object_object_add(ao, "probe", po);
    }
    json_object *ts = json_object_new_array();
    for (uint32_t i = 0; i < p->n; i++) {
        const sq_alloc_entry *e = &p->e[i];
        json_object *to = json_object_new_object();
        char s[64];
        const sq_alloc_cand *pc = &p->cands[e->cand[e->pick]];
        sq_scheme_format(pc->codec, pc->params, s, sizeof s);
        json_object_object_add(to, "name", json_object_new_string(m->tensors[e->tensor].name));
        json_object_object_add(to, "chosen", json_object_new_string(s));
        json_object_object_add(to, "bytes", json_object_new_int64((int64_t)(e->bits[e->pick] / 8)));
        json_object_object_add(to, "predicted_loss", json_object_new_double(e->wloss[e->pick]));
        json_object_object_add(to, "weight", json_object_new_double(e->weight));
        json_object *cs = json_object_new_array();
        for (int j = 0; j < e->n; j++) {
            json_object *co = json_object_new_object();
            const sq_alloc_cand *c = &p->cands[e->cand[j]];
            sq_scheme_format(c->codec, c->params, s, sizeof s);
            json_object_object_add(co, "scheme", json_object_new_string(s));
            json_object_object_add(co, "method", json_object_new_string(e->note[j].method));
            json_object_object_add(co, "bytes", json_object_new_int64((int64_t)(e->bits[j] / 8)));
            json_object_object_add(co, "loss", json_object_new_double(e->loss[j]));
            if (e->kld[j] >= 0) json_object_object_add(co, "kld", json_object_new_double(e->kld[j]));
            if (o->alloc.probe_windows) json_object_object_add(co, "predicted", json_object_new_double(e->pred[j]));
            json_object_array_add(cs, co);
        }
        json_object_object_add(to, "candidates", cs);
        json_object_array_add(ts, to);
    }
    json_object_object_add(ao, "tensors", ts);
    return ao;
}

/* ---- the report file ---- */

static sq_status write_report(const char *path, json_object *tensors, json_object *alloc, sq_err *err) {
    json_object *root = json_object_new_object();
    json_object_object_add(root, "schema", json_object_new_string("squish-quantize-report/1"));
    if (alloc) json_object_object_add(root, "allocation", json_object_get(alloc));
    json_object_object_add(root, "tensors", json_object_get(tensors));
    const int jflags = JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE;
    int bad = !strcmp(path, "-") ? printf("%s\n", json_object_to_json_string_ext(root, jflags)) < 0 || fflush(stdout)
                                 : json_object_to_file_ext(path, root, jflags);
    json_object_put(root);
    return bad ? sq_err_set(err, SQ_EIO, "%s: cannot write the report", path) : SQ_OK;
}

/* ---- the model ---- */

sq_status sq_quantize_model(const sq_quantize_opts *o, sq_quantize_result *res, sq_err *err) {
    sq_quantize_result rs;
    memset(&rs, 0, sizeof rs);
    sq_quantize_opts with_ladder;
    if (o->alloc.target_bpw && !o->alloc.n_cands) { /* no candidates given: the default ladder */
        with_ladder = *o;
        sq_alloc_default_candidates(&with_ladder.alloc);
        o = &with_ladder;
    }
    sq_status st = check_opts(o, err);
    if (st) return st;
    const int threads = o->threads ? o->threads : sq_default_threads();
    sq_model *m = sq_model_open(o->model, err);
    if (!m) return err && err->status ? err->status : SQ_EIO;
    if ((st = sq_model_check(m, err))) { /* a model the runtime cannot load: refused before any work */
        sq_model_close(m);
        return st;
    }
    warn_idle_rules(o, m);
    sq_writer *w = NULL;
    sq_method q;
    memset(&q, 0, sizeof q);
    q.kind = o->method;
    q.scheme = &o->scheme;
    q.gptq = o->gptq;
    q.awq = o->awq;
    q.enc_flags = o->enc_flags;
    q.hessian_diag = o->hessian_diag;
    q.awq.n_threads = q.n_threads = threads;
    q.awq_layer = q.h_layer = -1;
    json_object *report = NULL, *alloc_json = NULL;
    sq_alloc_plan plan;
    memset(&plan, 0, sizeof plan);
    uint64_t set_bytes = 0; /* written, over the set --target-bpw counts */
    char *meta = NULL;
    uint32_t *order = NULL;
    sq_seq *seq = NULL;
    sq_bundle bundle = {0};
    if (!o->no_bundle && (st = sq_bundle_from_model(m, &bundle, err))) goto out;
    if (o->calib) {
        if (!(q.calib = sq_calib_open(o->calib, err))) {
            st = err && err->status ? err->status : SQ_EIO;
            goto out;
        }
        uint32_t need0 = 0, need1 = m->info.n_layers; /* a shard needs the statistics of its own layers */
        if (o->shard_n) sq_shard_layers((uint32_t)o->shard_k, (uint32_t)o->shard_n, m->info.n_layers, &need0, &need1);
        if ((st = sq_method_check_calib(&q, m, o->calib, need0, need1, err))) goto out;
    }
    if (o->sequential) { /* the text checked and the reference loaded before any work */
        sq_seq_opts so = {o->calib, o->calib_texts, o->n_calib_texts, NULL, o->seq_stats, threads,
                          o->sequential == SQ_SEQUENTIAL_BLOCK};
        if ((st = sq_seq_open(&seq, m, &q, &so, err))) goto out;
    }
    report = json_object_new_array();
    if (!(order = sq_model_order(m))) {
        st = sq_err_set(err, SQ_ENOMEM, "out of memory");
        goto out;
    }
    if (o->alloc.target_bpw) { /* every candidate measured and the choice made before anything is written */
        if ((st = sq_alloc_model_plan(&o->alloc, &q, m, order, alloc_note, (void *)o, &plan, err))) goto out;
        say(o, SQ_QUANTIZE_NOTE, "allocation: %u tensors, target %.4f bpw over %s; predicted %.4f bpw, loss %.6g "
            "(Lagrangian hull solution %.4f bpw, loss %.6g)%s", plan.n, o->alloc.target_bpw,
            o->alloc.over_all ? "all tensors" : "the linear matrices",
            (double)(plan.res.bits + plan.fixed_bits) / (double)plan.elements, plan.res.loss,
            (double)(plan.res.lagr_bits + plan.fixed_bits) / (double)plan.elements, plan.res.lagr_loss,
            plan.res.widened ? "; no mix within the target came within 0.02, so the tolerance was taken both ways" : "");
    }
    sq_model_hash mh; /* the model's content hash, fed as the tensors are read */
    sq_model_hash_init(&mh, m);
    if (seq) { /* from here on: the allocator chose on the file's (full-precision) statistics */
        q.site_src = sq_seq_site;
        q.site_ctx = seq;
    }
    seq_enc_ctx sctx = {o, &q, m, &plan};
    sq_writer_opts wo = {0, o->zstd, o->zstd != 0};
    if (!(w = sq_writer_open(o->out, &wo, err))) {
        st = err && err->status ? err->status : SQ_EIO;
        goto out;
    }
    sq_model_info info = m->info;
    char calib_sha256[65] = "";
    if (o->calib) { /* the header names the calibration file by its SHA-256 */
        if ((st = sq_sha256_file(o->calib, calib_sha256, err))) goto out;
        sq_unhex32(calib_sha256, info.calib_hash);
    }
    sq_writer_set_model(w, &info);
    if (o->method == SQ_METHOD_GPTQ) sq_writer_add_flags(w, SQ_FLAG_GPTQ);
    if (o->method == SQ_METHOD_AWQ) sq_writer_add_flags(w, SQ_FLAG_AWQ);
    uint64_t todo = 0, done = 0; /* progress in weights: tensors differ in size */
    for (uint32_t k = 0; k < m->n_tensors; k++)
        if (in_shard(o, m, &m->tensors[k])) todo += sq_model_tensor_elems(&m->tensors[k]);
    if (o->sink.begin) o->sink.begin(o->sink.ctx, todo);
    sq_quantize_opts ot = *o;
    ot.threads = threads;
    for (uint32_t k = 0; k < m->n_tensors; k++) {
        const sq_model_tensor *t = &m->tensors[order[k]];
        if (!in_shard(o, m, t)) {
            sq_model_hash_tensor(&mh, m, t); /* every shard records the whole model's hash */
            sq_model_release(m, t);
            continue;
        }
        sq_quantize_tensor_report r;
        sq_method_note note;
        memset(&note, 0, sizeof note);
        sq_alloc_entry *ae = o->alloc.target_bpw ? sq_alloc_plan_find(&plan, order[k]) : NULL;
        if (seq && (st = sq_seq_before(seq, t, seq_encode, &sctx, err))) goto out;
        st = quantize_tensor(&ot, &q, m, w, t, ae, plan.cands, seq, &r, &note, err);
        if (!st && o->alloc.target_bpw && sq_alloc_in_set(&o->alloc, t)) set_bytes += r.bytes;
        if (!st) sq_model_hash_tensor(&mh, m, t);
        sq_model_release(m, t);
        if (st) goto out;
        if (note.gptq.retries)
            say(o, SQ_QUANTIZE_NOTE, "%s: Cholesky failed; damping raised to %g", t->name, note.gptq.damp_used);
        if (note.gptq.fell_back)
            say(o, SQ_QUANTIZE_WARNING, "%s: Hessian singular even at damping 1.0; quantized with RTN", t->name);
        if (o->sink.tensor) o->sink.tensor(o->sink.ctx, &r);
        json_object_array_add(report, report_entry(&r));
        rs.tensors++;
        rs.weights += r.elements;
        done += r.elements;
        if (o->sink.progress) o->sink.progress(o->sink.ctx, done, todo);
    }
    if (o->sink.end) o->sink.end(o->sink.ctx);
    if (seq && (st = sq_seq_finish(seq, err))) goto out;
    if (o->alloc.target_bpw) {
        double pred = (double)(plan.res.bits + plan.fixed_bits) / (double)plan.elements,
               got = 8.0 * (double)set_bytes / (double)plan.elements;
        say(o, SQ_QUANTIZE_NOTE, "allocation: target %.4f bpw, predicted %.4f, achieved %.4f bpw over %s (%llu weights)",
            o->alloc.target_bpw, pred, got, o->alloc.over_all ? "all tensors" : "the linear matrices",
            (unsigned long long)plan.elements);
        alloc_json = alloc_report(o, m, &plan, pred, got);
    }
    /* every shard carries the bundle, so that merging the parts gives the unsharded file */
    if ((st = sq_bundle_write(w, &bundle, o->zstd ? SQ_COMP_ZSTD : SQ_COMP_NONE, err))) goto out;
    if (q.calib) {
        double worst;
        rs.calib_repairs = sq_calib_file_repairs(q.calib, &worst);
        if (rs.calib_repairs)
            say(o, SQ_QUANTIZE_WARNING, "%s: XᵀX of %llu sites was asymmetric by rounding (largest pair difference "
                "%.2g of its bound; a file of squish <= 0.1.0); used the mean of each pair",
                o->calib, (unsigned long long)rs.calib_repairs, worst);
    }
    sq_model_hash_final(&mh, rs.model_sha256);
    if (!(meta = build_metadata(o, m, &bundle, rs.model_sha256, calib_sha256, err))) {
        st = SQ_ENOMEM;
        goto out;
    }
    if ((st = sq_writer_set_metadata(w, meta, err))) goto out;
    sq_writer *wc = w;
    w = NULL;
    if ((st = sq_writer_commit(wc, err))) goto out;
    if (o->report) st = write_report(o->report, report, alloc_json, err);
out:
    sq_seq_free(seq);
    json_object_put(alloc_json);
    sq_alloc_plan_free(&plan);
    sq_method_free(&q);
    if (w) sq_writer_abort(w);
    json_object_put(report);
    free(order);
    free(meta);
    sq_bundle_free(&bundle);
    sq_model_close(m);
    if (res) *res = rs;
    return st;
}
