/* Sequential (block-by-block) quantization (see sequential.h). */
#include "sequential.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/big_alloc.h"
#include "runtime.h"
#include "squish/hash.h"
#include "squish/version.h"
#include "tokenizer.h"

/* A block tensor encoded ahead of the writer. */
typedef struct pending {
    uint32_t tensor; /* index into m->tensors */
    sq_encoded e;
    sq_method_note note;
    int taken;
} pending;

struct sq_seq {
    const sq_model *m;
    sq_method *q;
    sq_seq_opts o;
    sq_rt_model rt;
    int have_rt;
    uint64_t samples;
    uint32_t seqlen, hidden;
    int32_t *ids;
    uint64_t n_ids, *starts;
    float *hs;        /* [samples][seqlen][hidden]: the input of block hs_layer */
    int64_t hs_layer; /* -1: not made yet */
    float *work;      /* one window's copy for the partial passes */
    sq_rt_scratch scr;
    int have_scr;
    sq_calib_acc acc; /* block `block`'s sites, or every layer's with stats_out */
    int have_acc;
    int64_t block;    /* the block encoded last (-1: none) */
    int site_have[SQ_SITE_COUNT];
    pending *pend;
    int n_pend;
};

static size_t window_floats(const sq_seq *s) { return (size_t)s->seqlen * s->hidden; }

/* The tokenizer's SHA-256 recorded in the calibration provenance ("" when none). */
static void calib_tokenizer_sha(const sq_calib_info *ci, char out[65]) {
    out[0] = 0;
    json_object *root = ci->provenance ? json_tokener_parse(ci->provenance) : NULL, *tk, *sh;
    if (root && json_object_object_get_ex(root, "tokenizer", &tk) && json_object_object_get_ex(tk, "sha256", &sh) &&
        json_object_is_type(sh, json_type_string))
        snprintf(out, 65, "%s", json_object_get_string(sh));
    json_object_put(root);
}

sq_status sq_seq_open(sq_seq **out, const sq_model *m, sq_method *q, const sq_seq_opts *o, sq_err *err) {
    *out = NULL;
    const sq_calib_info *ci = sq_calib_file_info(q->calib);
    if (!o->n_texts)
        return sq_err_set(err, SQ_EUSAGE, "--sequential needs the calibration text to redraw %s's windows: give "
                          "--calib-text FILE for each --text squish-calibrate read, in the same order", o->calib_path);
    if (!ci->samples || !ci->seqlen)
        return sq_err_set(err, SQ_EUSAGE, "%s records no single window draw (a merge of different runs?); --sequential "
                          "needs the file of one squish-calibrate run", o->calib_path);
    if (ci->seqlen > m->max_seq)
        return sq_err_set(err, SQ_EUSAGE, "%s: windows of %u tokens are longer than the model's context (%u)", o->calib_path,
                          ci->seqlen, m->max_seq);
    sq_seq *s = calloc(1, sizeof *s);
    if (!s) return sq_err_set(err, SQ_ENOMEM, "out of memory");
    s->m = m;
    s->q = q;
    s->o = *o;
    s->samples = ci->samples;
    s->seqlen = ci->seqlen;
    s->hidden = m->info.hidden_size;
    s->hs_layer = s->block = -1;
    sq_status st = SQ_OK;
    const char *tkp = o->tokenizer ? o->tokenizer : m->tokenizer_path;
    sq_tokenizer *tk = NULL;
    char hex[65], want[65], text_sha[65];
    if (!tkp) {
        st = sq_err_set(err, SQ_EUSAGE, "%s: no tokenizer found beside the model for --calib-text", m->path);
        goto out;
    }
    calib_tokenizer_sha(ci, want);
    if (want[0]) { /* the ids depend on the tokenizer: the file's must be this one */
        if ((st = sq_sha256_file(tkp, hex, err))) goto out;
        if (strcmp(hex, want)) {
            st = sq_err_set(err, SQ_EUSAGE, "tokenizer %s (sha256 %.16s…) is not the one %s was made with (%.16s…)", tkp, hex,
                            o->calib_path, want);
            goto out;
        }
    }
    if (!(tk = sq_tokenizer_load_vocab(tkp, m->info.vocab_size, err))) {
        st = err && err->status ? err->status : SQ_EIO;
        goto out;
    }
    if ((st = sq_calib_text_ids(tk, o->texts, o->n_texts, &s->ids, &s->n_ids, text_sha, err))) goto out;
    if (strcmp(text_sha, ci->text_sha256)) {
        st = sq_err_set(err, SQ_EUSAGE, "--calib-text: the %d file(s) given (text_sha256 %.16s…) are not the text %s was "
                        "made from (%.16s…); give squish-calibrate's --text files in the same order", o->n_texts, text_sha,
                        o->calib_path, ci->text_sha256);
        goto out;
    }
    double hs_bytes = (double)s->samples * s->seqlen * s->hidden * sizeof(float);
    if (hs_bytes > (double)SIZE_MAX / 2 || !(s->hs = malloc((size_t)hs_bytes)) ||
        !(s->work = malloc(window_floats(s) * sizeof(float))) || !(s->starts = malloc(s->samples * sizeof *s->starts))) {
        st = sq_err_set(err, SQ_ENOMEM, "out of memory for the hidden states of %llu windows of %u tokens (%.1f MiB)",
                        (unsigned long long)s->samples, s->seqlen, hs_bytes / 1048576.0);
        goto out;
    }
    if ((st = sq_calib_draw(s->n_ids, s->seqlen, s->samples, ci->seed, s->starts, err))) goto out;
    if ((st = sq_rt_load_model(m, &s->rt, o->n_threads, err))) goto out;
    s->have_rt = 1; /* the exact path: the bits squish-calibrate computes */
    if ((st = sq_rt_scratch_init(&s->rt, s->seqlen, &s->scr, err))) goto out;
    s->have_scr = 1;
    if (o->stats_out) { /* every layer's statistics kept for the file */
        if ((st = sq_calib_acc_init(&s->acc, &s->rt.cfg, 0, s->rt.cfg.n_layers, o->n_threads, err))) goto out;
        s->have_acc = 1;
    }
out:
    sq_tokenizer_free(tk);
    if (st) sq_seq_free(s);
    else *out = s;
    return st;
}

void sq_seq_free(sq_seq *s) {
    if (!s) return;
    for (int i = 0; i < s->n_pend; i++) sq_encoded_free(&s->pend[i].e);
    free(s->pend);
    if (s->have_acc) sq_calib_acc_free(&s->acc);
    if (s->have_scr) sq_rt_scratch_free(&s->scr);
    if (s->have_rt) sq_rt_free(&s->rt);
    free(s->hs);
    free(s->work);
    free(s->starts);
    free(s->ids);
    free(s);
}

/* ---- the hidden states ---- */

typedef struct site_tap {
    sq_calib_acc *acc;
    sq_site site;
} site_tap;

/* Only the site being gathered (the others' inputs are not final yet). */
static void tap_one(void *ctx, uint32_t layer, sq_site site, const float *x, uint32_t T, uint32_t n) {
    site_tap *st = ctx;
    if (site == st->site || st->site == SQ_SITE_COUNT) sq_calib_tap(st->acc, layer, site, x, T, n);
}

/* One site of block l over every window, or with site SQ_SITE_COUNT all
 * four in one pass (block mode: the block as it is now). */
static sq_status gather_site(sq_seq *s, uint32_t l, sq_site site, sq_err *err) {
    site_tap tp = {&s->acc, site};
    const size_t wf = window_floats(s);
    const int stop = site == SQ_SITE_COUNT ? SQ_SITE_MLP_ACT : (int)site;
    for (uint64_t i = 0; i < s->samples; i++) {
        memcpy(s->work, s->hs + i * wf, wf * sizeof(float));
        sq_status st = sq_rt_block(&s->rt, l, s->work, &s->scr, stop, s->o.n_threads, tap_one, &tp, err);
        if (st) return st;
        if (s->acc.status)
            return sq_err_set(err, s->acc.status, "%s: sequential pass, window %llu (token %llu): %s", s->m->path,
                              (unsigned long long)i, (unsigned long long)s->starts[i], s->acc.err.msg);
    }
    for (int k = 0; k < SQ_SITE_COUNT; k++)
        if (site == SQ_SITE_COUNT || k == (int)site) s->site_have[k] = 1;
    return SQ_OK;
}

/* The hidden states to the input of block l (the blocks before it final). */
static sq_status advance_to(sq_seq *s, uint32_t l, sq_err *err) {
    const size_t wf = window_floats(s);
    sq_status st;
    if (s->hs_layer < 0) {
        for (uint64_t i = 0; i < s->samples; i++)
            if ((st = sq_rt_embed(&s->rt, s->ids + s->starts[i], s->seqlen, s->hs + i * wf, err))) return st;
        s->hs_layer = 0;
    }
    if (s->hs_layer > (int64_t)l)
        return sq_err_set(err, SQ_EINTERNAL, "sequential pass: block %u requested after block %lld", l, (long long)s->hs_layer);
    for (; s->hs_layer < (int64_t)l; s->hs_layer++)
        for (uint64_t i = 0; i < s->samples; i++)
            if ((st = sq_rt_block(&s->rt, (uint32_t)s->hs_layer, s->hs + i * wf, &s->scr, SQ_SITE_COUNT, s->o.n_threads, NULL,
                                  NULL, err)))
                return st;
    return SQ_OK;
}

/* ---- the reference model's weights replaced by decoded ones ---- */

static float *f32_data_of(sq_rt_model *rt, const sq_tview *v) {
    for (uint32_t i = 0; i < rt->n_encoded; i++)
        if (rt->encoded[i].data[0] == v->part[0]) return rt->encoded[i].data[0];
    return NULL;
}

static sq_status apply(sq_seq *s, const sq_model_tensor *t, const sq_encoded *e, sq_err *err) {
    uint32_t layer = 0;
    int bias = 0;
    sq_llama_role r = sq_llama_parse(t->name, &layer, &bias);
    float *dst = NULL;
    if (r == SQ_LLAMA_EMBED && !bias) {
        dst = f32_data_of(&s->rt, &s->rt.embed);
    } else if (sq_llama_role_in_block(r) && layer < s->rt.cfg.n_layers) {
        sq_rt_layer *L = &s->rt.layers[layer];
        int li = sq_llama_linear_index(r);
        if (bias) dst = li >= 0 ? L->bias[li] : NULL;
        else if (r == SQ_LLAMA_ATTN_NORM) dst = L->attn_norm;
        else if (r == SQ_LLAMA_FFN_NORM) dst = L->ffn_norm;
        else if (li >= 0) dst = f32_data_of(&s->rt, sq_rt_linear_view(L, li));
    } else {
        return SQ_OK; /* the final norm and the output layer: no hidden state reads them */
    }
    if (!dst) return sq_err_set(err, SQ_EINTERNAL, "sequential pass: no place for %s in the reference model", t->name);
    sq_tview v;
    sq_tview_from_encoded(e, &v);
    sq_decode_mt(&v, dst, s->o.n_threads); /* the shapes are the model's (sq_model_check) */
    return SQ_OK;
}

sq_status sq_seq_after(sq_seq *s, const sq_model_tensor *t, const sq_encoded *e, sq_err *err) {
    uint32_t l;
    if (sq_llama_layer_of(t->name, &l)) return SQ_OK; /* a block's: applied by sq_seq_before */
    if (s->hs_layer >= 0 && sq_llama_is_embedding(t->name))
        return sq_err_set(err, SQ_EINTERNAL, "sequential pass: the embedding came after the first block");
    return apply(s, t, e, err);
}

/* ---- a block ---- */

static sq_status encode_one(sq_seq *s, uint32_t k, sq_seq_encode_fn enc, void *ctx, sq_err *err) {
    pending *p = &s->pend[s->n_pend];
    memset(p, 0, sizeof *p);
    p->tensor = k;
    sq_status st = enc(ctx, &s->m->tensors[k], &p->e, &p->note, err);
    if (st) return st;
    s->n_pend++;
    return apply(s, &s->m->tensors[k], &p->e, err);
}

sq_status sq_seq_before(sq_seq *s, const sq_model_tensor *t, sq_seq_encode_fn enc, void *enc_ctx, sq_err *err) {
    uint32_t l;
    if (!sq_llama_layer_of(t->name, &l) || (int64_t)l == s->block) return SQ_OK;
    for (int i = 0; i < s->n_pend; i++)
        if (!s->pend[i].taken)
            return sq_err_set(err, SQ_EINTERNAL, "sequential pass: %s was not written before block %u",
                              s->m->tensors[s->pend[i].tensor].name, l);
    for (int i = 0; i < s->n_pend; i++) sq_encoded_free(&s->pend[i].e);
    s->n_pend = 0;
    sq_status st = advance_to(s, l, err);
    if (st) return st;
    if (!s->o.stats_out) { /* this block's sites only */
        if (s->have_acc) sq_calib_acc_free(&s->acc);
        s->have_acc = 0;
        if ((st = sq_calib_acc_init(&s->acc, &s->rt.cfg, l, l + 1, s->o.n_threads, err))) return st;
        s->have_acc = 1;
    }
    memset(s->site_have, 0, sizeof s->site_have);
    sq_calib_site_free(&s->q->h); /* a site read before (the allocator's, from the file) is not this pass's */
    s->q->h_layer = -1;
    s->block = l;
    free(s->pend);
    s->pend = calloc(s->m->n_tensors, sizeof *s->pend);
    if (!s->pend) return sq_err_set(err, SQ_ENOMEM, "out of memory");
    /* norms, biases and anything else of the block first (they shape every site), in the model's order */
    int lin[SQ_LLAMA_LINEAR_COUNT];
    for (int i = 0; i < SQ_LLAMA_LINEAR_COUNT; i++) lin[i] = -1;
    for (uint32_t k = 0; k < s->m->n_tensors; k++) {
        uint32_t tl;
        if (!sq_llama_layer_of(s->m->tensors[k].name, &tl) || tl != l) continue;
        int bias, li = sq_llama_linear_index(sq_llama_parse(s->m->tensors[k].name, NULL, &bias));
        if (li >= 0 && !bias) lin[li] = (int)k;
        else if ((st = encode_one(s, k, enc, enc_ctx, err))) return st;
    }
    /* then q, k, v, o, gate, up, down, each site gathered with the layers
     * before it quantized (true sequential), or all four sites at once
     * before any of them is (block mode) */
    if (s->o.block_mode && (st = gather_site(s, l, SQ_SITE_COUNT, err))) return st;
    for (int i = 0; i < SQ_LLAMA_LINEAR_COUNT; i++) {
        if (lin[i] < 0) continue;
        uint32_t tl;
        sq_site site;
        sq_calib_site_of(s->m->tensors[lin[i]].name, &tl, &site);
        if (!s->site_have[site] && (st = gather_site(s, l, site, err))) return st;
        if ((st = encode_one(s, (uint32_t)lin[i], enc, enc_ctx, err))) return st;
    }
    return SQ_OK;
}

int sq_seq_take(sq_seq *s, const sq_model_tensor *t, sq_encoded *e, sq_method_note *note) {
    const uint32_t k = (uint32_t)(t - s->m->tensors);
    for (int i = 0; i < s->n_pend; i++)
        if (s->pend[i].tensor == k && !s->pend[i].taken) {
            *e = s->pend[i].e;
            *note = s->pend[i].note;
            memset(&s->pend[i].e, 0, sizeof s->pend[i].e);
            s->pend[i].taken = 1;
            return 1;
        }
    return 0;
}

sq_status sq_seq_site(void *ctx, uint32_t layer, sq_site site, sq_calib_site *out, sq_err *err) {
    sq_seq *s = ctx;
    memset(out, 0, sizeof *out);
    if ((int64_t)layer != s->block || !s->site_have[site])
        return sq_err_set(err, SQ_EINTERNAL, "sequential pass: statistics of layer %u %s asked for out of order", layer,
                          sq_site_name(site));
    const sq_calib_site *a = &s->acc.sites[(layer - s->acc.layer0) * SQ_SITE_COUNT + site];
    const uint64_t n = a->n;
    out->n = a->n;
    out->tokens = a->tokens;
    out->xtx = sq_big_alloc(n * n * sizeof(double));
    out->abs_mean = malloc(n * sizeof(double));
    out->abs_max = malloc(n * sizeof(float));
    if (!out->xtx || !out->abs_mean || !out->abs_max) {
        sq_calib_site_free(out);
        return sq_err_set(err, SQ_ENOMEM, "out of memory for the statistics of layer %u %s", layer, sq_site_name(site));
    }
    /* as the file holds them: the upper triangle mirrored, means of |x| */
    for (uint64_t i = 0; i < n; i++)
        for (uint64_t j = 0; j < n; j++) out->xtx[i * n + j] = j >= i ? a->xtx[i * n + j] : a->xtx[j * n + i];
    for (uint64_t j = 0; j < n; j++) out->abs_mean[j] = a->tokens ? a->abs_mean[j] / (double)a->tokens : 0;
    memcpy(out->abs_max, a->abs_max, n * sizeof(float));
    return SQ_OK;
}

sq_status sq_seq_finish(sq_seq *s, sq_err *err) {
    for (int i = 0; i < s->n_pend; i++)
        if (!s->pend[i].taken)
            return sq_err_set(err, SQ_EINTERNAL, "sequential pass: %s was never written", s->m->tensors[s->pend[i].tensor].name);
    if (!s->o.stats_out) return SQ_OK;
    if (s->block != (int64_t)s->rt.cfg.n_layers - 1)
        return sq_err_set(err, SQ_EINTERNAL, "sequential pass: %s: the last block was not reached", s->o.stats_out);
    const sq_calib_info *ci = sq_calib_file_info(s->q->calib);
    sq_calib_info *in = &s->acc.info;
    memcpy(in->model_sha256, ci->model_sha256, sizeof in->model_sha256);
    memcpy(in->text_sha256, ci->text_sha256, sizeof in->text_sha256);
    in->samples = ci->samples;
    in->seqlen = ci->seqlen;
    in->seed = ci->seed;
    /* what made it: this pass over the windows of the calibration file named here */
    json_object *prov = json_object_new_object(), *src = ci->provenance ? json_tokener_parse(ci->provenance) : NULL;
    char name[256];
    const char *base = strrchr(s->o.calib_path, '/');
    snprintf(name, sizeof name, "%s", base ? base + 1 : s->o.calib_path);
    json_object_object_add(prov, "tool", json_object_new_string("squish-quantize --sequential"));
    json_object_object_add(prov, "version", json_object_new_string(SQUISH_VERSION_STRING));
    json_object_object_add(prov, "windows_of", json_object_new_string(name));
    json_object_object_add(prov, "calibration", src);
    free(in->provenance);
    in->provenance = strdup(json_object_to_json_string_ext(prov, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(prov);
    if (!in->provenance) return sq_err_set(err, SQ_ENOMEM, "out of memory");
    sq_calib_acc_symmetrize(&s->acc);
    return sq_calib_write(s->o.stats_out, &s->acc, err);
}
