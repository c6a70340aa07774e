/* RTN / GPTQ / AWQ over a model (see method.h). */
#include "method.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "encoders.h"
#include "rtn.h"

const char *sq_method_name(sq_method_kind k) {
    return k == SQ_METHOD_GPTQ ? "gptq" : k == SQ_METHOD_AWQ ? "awq" : "rtn";
}

/* The role of a block weight (norm or linear) and its layer; SQ_LLAMA_NONE
 * for any other tensor (biases included). */
static sq_llama_role block_role(const char *name, uint32_t *layer) {
    int bias;
    sq_llama_role r = sq_llama_parse(name, layer, &bias);
    return bias || !sq_llama_role_in_block(r) ? SQ_LLAMA_NONE : r;
}

sq_status sq_method_check_calib(const sq_method *q, const sq_model *m, const char *calib_path, uint32_t layer0, uint32_t layer1,
                                sq_err *err) {
    const sq_calib_info *ci = sq_calib_file_info(q->calib);
    char id[65];
    sq_status st = sq_model_identity(m, id, err);
    if (st) return st;
    if (strcmp(id, ci->model_sha256))
        return sq_err_set(err, SQ_EUSAGE, "%s was made for another model (model_sha256 %.16s…; %s is %.16s…)", calib_path,
                          ci->model_sha256, m->path, id);
    if (ci->n_layers != m->info.n_layers || ci->hidden != m->info.hidden_size || ci->inter != m->info.intermediate_size)
        return sq_err_set(err, SQ_EUSAGE, "%s: its shapes (%u layers, hidden %u, MLP %u) do not match %s", calib_path,
                          ci->n_layers, ci->hidden, ci->inter, m->path);
    for (uint32_t l = layer0; l < layer1 && l < ci->n_layers; l++)
        if (!sq_calib_has_layer(q->calib, l))
            return sq_err_set(err, SQ_EUSAGE, "%s has no statistics for layer %u (a shard? merge with squish-calibrate --merge)",
                              calib_path, l);
    return SQ_OK;
}

const sq_codec *sq_method_codec(const sq_method *q, const sq_model_tensor *t, uint32_t params[SQ_NPARAMS]) {
    const sq_codec *chosen = sq_scheme_rules_choose(q->scheme, t, params);
    uint32_t layer;
    sq_llama_role r = block_role(t->name, &layer);
    if (q->kind == SQ_METHOD_AWQ && (r == SQ_LLAMA_ATTN_NORM || r == SQ_LLAMA_FFN_NORM)) {
        memset(params, 0, sizeof(uint32_t) * SQ_NPARAMS);
        return sq_codec_by_id(SQ_CODEC_F32);
    }
    return chosen;
}

static void awq_drop(sq_method *q) {
    for (int i = 0; i < SQ_LLAMA_BLOCK_COUNT; i++) {
        free(q->awq_w[i]);
        q->awq_w[i] = NULL;
    }
    free(q->awq_block.o_in_scale);
    memset(&q->awq_block, 0, sizeof q->awq_block);
    q->awq_layer = -1;
}

static sq_status awq_load_block(sq_method *q, const sq_model *m, uint32_t layer, sq_err *err) {
    awq_drop(q);
    uint32_t(*params)[SQ_NPARAMS] = q->awq_params;
    const sq_model_tensor *ts[SQ_LLAMA_BLOCK_COUNT];
    const sq_codec *cs[SQ_LLAMA_BLOCK_COUNT];
    sq_status st = SQ_OK;
    for (int i = 0; i < SQ_LLAMA_BLOCK_COUNT && !st; i++) {
        char name[SQ_LLAMA_NAME_MAX];
        sq_llama_name(name, sizeof name, sq_llama_block_role(i), layer);
        ts[i] = sq_model_find(m, name);
        if (!ts[i]) {
            st = sq_err_set(err, SQ_EUNSUPPORTED, "%s: AWQ needs tensor %s, which the model lacks", m->path, name);
            break;
        }
        cs[i] = sq_scheme_rules_choose(q->scheme, ts[i], params[i]);
        uint64_t n = sq_model_tensor_elems(ts[i]);
        if (!(q->awq_w[i] = malloc(n * sizeof(float)))) st = sq_err_set(err, SQ_ENOMEM, "out of memory for %s", name);
        else st = sq_model_tensor_f32(m, ts[i], q->awq_w[i], err);
        if (!st) {
            char label[200];
            snprintf(label, sizeof label, "%s: tensor %s", m->path, name);
            st = sq_check_finite(label, q->awq_w[i], n, err);
        }
        sq_model_release(m, ts[i]);
    }
    if (st) {
        awq_drop(q);
        return st;
    }
    /* folding 1/s into up_proj's (or v_proj's) rows would have to scale their bias too */
    char bname[SQ_LLAMA_NAME_MAX];
    sq_llama_bias_name(bname, sizeof bname, SQ_LLAMA_UP, layer);
    int up_bias = sq_model_find(m, bname) != NULL;
    sq_llama_bias_name(bname, sizeof bname, SQ_LLAMA_V, layer);
    if (up_bias || (sq_model_find(m, bname) && m->info.n_heads == m->info.n_kv_heads)) {
        awq_drop(q);
        return sq_err_set(err, SQ_EUNSUPPORTED, "%s: AWQ does not yet fold scales into layers with biases (%s)", m->path, bname);
    }
    sq_awq_block *b = &q->awq_block;
    b->attn_norm = q->awq_w[sq_llama_block_index(SQ_LLAMA_ATTN_NORM)];
    b->ffn_norm = q->awq_w[sq_llama_block_index(SQ_LLAMA_FFN_NORM)];
    sq_awq_linear *lin[SQ_LLAMA_LINEAR_COUNT] = {&b->q, &b->k, &b->v, &b->o, &b->gate, &b->up, &b->down};
    for (int i = 0; i < SQ_LLAMA_LINEAR_COUNT; i++) {
        int k = sq_llama_block_index(sq_llama_linear_role(i));
        const sq_model_tensor *t = ts[k];
        *lin[i] = (sq_awq_linear){t->name, q->awq_w[k], sq_model_tensor_elems(t) / t->dims[t->ndim - 1],
                                  t->dims[t->ndim - 1], cs[k], params[k]};
    }
    b->n_heads = m->info.n_heads;
    b->n_kv_heads = m->info.n_kv_heads;
    if (!(b->o_in_scale = malloc(b->o.cols * sizeof(float)))) {
        awq_drop(q);
        return sq_err_set(err, SQ_ENOMEM, "out of memory");
    }
    st = sq_awq_block_run(b, q->calib, layer, &q->awq, err);
    if (st) {
        awq_drop(q);
        return st;
    }
    q->awq_layer = layer;
    return SQ_OK;
}

sq_status sq_method_weights(sq_method *q, const sq_model *m, const sq_model_tensor *t, float *w, sq_err *err) {
    uint32_t layer;
    int bi = q->kind == SQ_METHOD_AWQ ? sq_llama_block_index(block_role(t->name, &layer)) : -1;
    if (bi < 0) return sq_model_tensor_f32(m, t, w, err);
    if (q->awq_layer != (int64_t)layer) {
        sq_status st = awq_load_block(q, m, layer, err);
        if (st) return st;
    }
    memcpy(w, q->awq_w[bi], sq_model_tensor_elems(t) * sizeof(float));
    return SQ_OK;
}

int sq_method_output_site(const sq_method *q, const sq_model_tensor *t, uint32_t *layer, sq_site *site) {
    uint32_t l;
    int bias;
    if (!q->calib || sq_llama_parse(t->name, &l, &bias) != SQ_LLAMA_LM_HEAD || bias || t->ndim != 2 ||
        t->dims[1] != sq_calib_file_info(q->calib)->hidden || !sq_calib_has_output(q->calib))
        return 0;
    *layer = sq_calib_file_info(q->calib)->n_layers;
    *site = SQ_SITE_ATTN_IN;
    return 1;
}

sq_status sq_method_row_weights(sq_method *q, const sq_model_tensor *t, uint64_t rows, double **rw, sq_err *err) {
    *rw = NULL;
    uint32_t l, ol;
    int bias;
    sq_site os;
    const sq_llama_role r = sq_llama_parse(t->name, &l, &bias);
    if (!q->calib || bias || t->ndim != 2 || !sq_calib_has_output(q->calib)) return SQ_OK;
    if (r != SQ_LLAMA_EMBED && !(r == SQ_LLAMA_LM_HEAD && sq_method_output_site(q, t, &ol, &os))) return SQ_OK;
    sq_calib_vocab v;
    sq_status st = sq_calib_read_vocab(q->calib, &v, err);
    if (st) return st;
    if (v.n != rows) {
        sq_calib_vocab_free(&v);
        return SQ_OK; /* another vocabulary: no weights */
    }
    double *w = malloc(rows * sizeof *w);
    if (!w) st = sq_err_set(err, SQ_ENOMEM, "out of memory for row weights");
    for (uint64_t i = 0; w && i < rows; i++)
        w[i] = r == SQ_LLAMA_EMBED ? (double)v.count[i] + SQ_METHOD_COUNT_PRIOR : v.mean_prob[i];
    sq_calib_vocab_free(&v);
    *rw = w;
    return st;
}

/* XᵀX of a site, cached across the tensors that share it (layer n_layers:
 * the output layer's input). */
static sq_status site_for(sq_method *q, uint32_t layer, sq_site site, sq_err *err) {
    if (q->h_layer == (int64_t)layer && q->h_site == (int)site) return SQ_OK;
    sq_calib_site_free(&q->h);
    q->h_layer = -1;
    /* the output layer's input (layer n_layers) always comes from the file:
     * the sequential pass ends with the last block */
    sq_status st = layer == sq_calib_file_info(q->calib)->n_layers ? sq_calib_read_output(q->calib, &q->h, err)
                   : q->site_src                                     ? q->site_src(q->site_ctx, layer, site, &q->h, err)
                                                                     : sq_calib_read_site(q->calib, layer, site, &q->h, err);
    if (st) return st;
    q->h_layer = layer;
    q->h_site = site;
    return SQ_OK;
}

static double rel_out_err(const sq_calib_site *s, const float *w, const float *dec, uint64_t rows, uint64_t cols) {
    float *H = sq_calib_site_hessian(s, NULL), *zero = calloc(rows * cols, sizeof(float));
    double r = -1;
    if (H && zero) {
        double den = sq_hessian_err(w, zero, rows, cols, H);
        r = den > 0 ? sq_hessian_err(dec, w, rows, cols, H) / den : 0;
    }
    free(H);
    free(zero);
    return r;
}

/* The XᵀX the encoders get: the site's, or with hessian_diag a copy of its
 * diagonal (*tmp, freed by the caller); NULL when out of memory. */
static const double *encoder_xtx(const sq_method *q, uint64_t cols, double **tmp) {
    *tmp = NULL;
    if (!q->hessian_diag) return q->h.xtx;
    if (!(*tmp = calloc(cols * cols, sizeof(double)))) return NULL;
    for (uint64_t i = 0; i < cols; i++) (*tmp)[i * cols + i] = q->h.xtx[i * cols + i];
    return *tmp;
}

sq_status sq_method_encode(sq_method *q, const char *label, const sq_model_tensor *t, const sq_codec *c,
                           const uint32_t params[SQ_NPARAMS], const float *w, uint64_t rows, uint64_t cols,
                           sq_encoded *e, sq_method_note *note, sq_err *err) {
    memset(note, 0, sizeof *note);
    note->method = c->lossless ? "keep" : "rtn";
    note->out_err = -1;
    uint32_t layer;
    sq_site site;
    int linear = sq_calib_site_of(t->name, &layer, &site) && q->calib && cols == (site == SQ_SITE_ATTN_OUT
                                                                                     ? sq_calib_file_info(q->calib)->attn_out
                                                                                 : site == SQ_SITE_MLP_ACT
                                                                                     ? sq_calib_file_info(q->calib)->inter
                                                                                     : sq_calib_file_info(q->calib)->hidden);
    if (!linear) linear = sq_method_output_site(q, t, &layer, &site); /* the output layer, with its input's XᵀX */
    sq_status st;
    if (!strcmp(c->name, "mix") && !q->row_weight && q->kind != SQ_METHOD_AWQ) { /* rows by importance, when known */
        double *rw;
        if ((st = sq_method_row_weights(q, t, rows, &rw, err))) return st;
        if (rw) {
            q->row_weight = rw;
            double *eye = NULL;
            if (!linear) { /* the embeddings: H = I */
                if (!(eye = calloc(cols * cols, sizeof *eye))) st = sq_err_set(err, SQ_ENOMEM, "%s: out of memory", label);
                for (uint64_t i = 0; eye && i < cols; i++) eye[i * cols + i] = 1;
                if (!st) st = sq_check_finite(label, w, rows * cols, err);
                sq_encode_ctx x = {.codec = c, .params = params, .w = w, .rows = rows, .cols = cols, .xtx = eye,
                                   .seed = 0x5155495348ull ^ 0xe1e1ull, .n_threads = q->n_threads, .flags = q->enc_flags,
                                   .row_weight = rw};
                if (!st) st = sq_quant_encode(&x, e, err);
                if (!st) note->method = "mix (H = I)";
            } else {
                st = sq_method_encode(q, label, t, c, params, w, rows, cols, e, note, err);
            }
            q->row_weight = NULL;
            free(rw);
            free(eye);
            return st;
        }
    }
    if (sq_quant_needs_xtx(c)) { /* the codec's own calibrated algorithm (SpQR, AQLM, QuIP#) */
        if (!q->calib)
            return sq_err_set(err, SQ_EUSAGE, "%s: scheme %s needs calibration statistics: give --calib FILE.h5 (squish-calibrate)",
                              label, c->name);
        if (!linear)
            return sq_err_set(err, SQ_EUSAGE,
                              "%s: scheme %s needs the layer's calibration statistics, which exist for the blocks' linear "
                              "layers and, in files that hold /output/lm_head_in, the output layer only; give this "
                              "tensor another scheme (--rule, --output-scheme)", label, c->name);
        if (q->kind == SQ_METHOD_AWQ)
            return sq_err_set(err, SQ_EUSAGE, "%s: scheme %s brings its own calibrated algorithm; use --method rtn or gptq, not awq",
                              label, c->name);
        if ((st = site_for(q, layer, site, err))) return st;
        if ((st = sq_check_finite(label, w, rows * cols, err))) return st;
        double *diag;
        const double *xtx = encoder_xtx(q, cols, &diag);
        if (!xtx) return sq_err_set(err, SQ_ENOMEM, "%s: out of memory for the diagonal of XᵀX", label);
        sq_encode_ctx x = {.codec = c, .params = params, .w = w, .rows = rows, .cols = cols, .xtx = xtx,
                           .seed = 0x5155495348ull ^ ((uint64_t)layer << 8 | (uint64_t)site), .n_threads = q->n_threads,
                           .flags = q->enc_flags, .row_weight = q->row_weight};
        st = sq_quant_encode(&x, e, err);
        free(diag);
        if (st) return st;
        note->method = c->name;
    } else if (q->kind == SQ_METHOD_GPTQ && linear && sq_gptq_supports(c, params)) {
        if ((st = site_for(q, layer, site, err))) return st;
        sq_gptq_opts go = q->gptq;
        go.n_threads = q->n_threads;
        double *diag;
        const double *xtx = encoder_xtx(q, cols, &diag);
        if (!xtx) return sq_err_set(err, SQ_ENOMEM, "%s: out of memory for the diagonal of XᵀX", label);
        st = sq_gptq_quantize(label, c, params, w, rows, cols, xtx, &go, e, &note->gptq, err);
        free(diag);
        if (st) return st;
        note->method = note->gptq.fell_back ? "rtn (gptq fallback)" : "gptq";
    } else {
        if ((st = sq_rtn_quantize(label, c, params, w, rows, cols, q->n_threads, e, err))) return st;
        uint32_t bl;
        sq_llama_role r = block_role(t->name, &bl);
        if (q->kind == SQ_METHOD_AWQ && sq_llama_role_is_linear(r) && (int64_t)bl == q->awq_layer) {
            note->method = c->lossless ? "keep (awq-scaled)" : "awq";
            note->awq_ratio = q->awq_block.ratio[site];
            note->awq_gain = q->awq_block.gain[site];
            if (r == SQ_LLAMA_O && q->awq_block.o_has_in_scale) {
                if ((st = sq_encoded_set_xform(e, NULL, q->awq_block.o_in_scale, err))) {
                    sq_encoded_free(e);
                    return st;
                }
                note->awq_in_scale = 1;
            }
        }
    }
    if (linear && q->kind != SQ_METHOD_AWQ) {
        float *dec = malloc(rows * cols * sizeof(float));
        if (dec && !(st = site_for(q, layer, site, err))) {
            sq_tview v;
            sq_tview_from_encoded(e, &v);
            sq_decode_mt(&v, dec, q->n_threads);
            note->out_err = rel_out_err(&q->h, w, dec, rows, cols);
        }
        free(dec);
        if (st) {
            sq_encoded_free(e);
            return st;
        }
    }
    return SQ_OK;
}

void sq_method_free(sq_method *q) {
    awq_drop(q);
    sq_calib_site_free(&q->h);
    sq_calib_close(q->calib);
    q->calib = NULL;
}
