/* Layouts and the encode driver: parts allocated from the codec's layout,
 * prepare / encode_rows on threads / finalize, or the codec's own encode
 * for layouts that depend on the data; transform parts appended after. */
#include <stdlib.h>
#include <string.h>

#include "codecs/codecs.h"

void sq_tensor_matrix(const sq_tensor *t, uint64_t *rows, uint64_t *cols) {
    uint64_t r = 1;
    for (uint32_t i = 0; i + 1 < t->ndim; i++) r *= t->dims[i];
    *rows = r;
    *cols = t->dims[t->ndim - 1];
}

uint64_t sq_part_spec_bytes(const sq_part_spec *s) {
    uint64_t b = sq_dtype_size(s->dtype);
    for (uint32_t i = 0; i < s->ndim; i++) b *= s->dims[i];
    return b;
}

int sq_layout(const sq_codec *c, const uint32_t params[SQ_NPARAMS], uint64_t rows, uint64_t cols, sq_part_spec *out) {
    int n = c->layout(c, params, rows, cols, out);
    const sq_xform_desc *xf = sq_xform_list();
    for (int i = 0; i < SQ_XFORM_KINDS; i++)
        if (params[SQ_P_XFORM] & xf[i].flag)
            out[n++] = (sq_part_spec){xf[i].part, xf[i].dtype, 1, {sq_xform_part_len(&xf[i], rows, cols)}, 0};
    return n;
}

double sq_layout_bpw(const sq_codec *c, const uint32_t params[SQ_NPARAMS], uint64_t rows, uint64_t cols) {
    sq_part_spec sp[SQ_CODEC_MAX_PARTS];
    int n = sq_layout(c, params, rows, cols, sp);
    double bits = 0;
    for (int i = 0; i < n; i++) bits += 8.0 * (double)sq_part_spec_bytes(&sp[i]);
    return rows && cols ? bits / ((double)rows * (double)cols) : 0.0;
}

double sq_encoded_bpw(const sq_encoded *e) {
    double bits = 0;
    for (int i = 0; i < e->nparts; i++) bits += 8.0 * (double)e->bytes[i];
    return e->rows && e->cols ? bits / ((double)e->rows * (double)e->cols) : 0.0;
}

void sq_encoded_free(sq_encoded *e) {
    for (int i = 0; i < SQ_CODEC_MAX_PARTS; i++) {
        free(e->data[i]);
        e->data[i] = NULL;
    }
}

/* Shapes the codec's parts; data-dependent parts get no buffer yet. */
static sq_status encoded_init(const sq_codec *c, const uint32_t params[SQ_NPARAMS], uint64_t rows, uint64_t cols,
                              sq_encoded *out, sq_err *err) {
    memset(out, 0, sizeof *out);
    sq_err perr;
    if (sq_codec_check_params(c, params, &perr, "encode")) return sq_err_set(err, SQ_EUSAGE, "%s", perr.msg);
    if (params[SQ_P_XFORM])
        return sq_err_set(err, SQ_EUSAGE, "encode: transforms come from sq_encoded_set_xform, not the encoder");
    if (!rows || !cols) return sq_err_set(err, SQ_EUSAGE, "encode: zero-size tensor (%llu x %llu)",
                                          (unsigned long long)rows, (unsigned long long)cols);
    out->codec = c;
    memcpy(out->params, params, sizeof out->params);
    out->rows = rows;
    out->cols = cols;
    out->nparts = c->layout(c, params, rows, cols, out->spec);
    return SQ_OK;
}

sq_status sq_encoded_alloc(const sq_codec *c, const uint32_t params[SQ_NPARAMS], uint64_t rows, uint64_t cols,
                           sq_encoded *out, sq_err *err) {
    sq_status st = encoded_init(c, params, rows, cols, out, err);
    if (st) return st;
    for (int i = 0; i < out->nparts; i++) {
        if (out->spec[i].flags & SQ_PART_DATA_DIM0) {
            sq_encoded_free(out);
            return sq_err_set(err, SQ_EUSAGE, "encode: codec %s has data-dependent parts; it encodes them itself", c->name);
        }
        out->bytes[i] = sq_part_spec_bytes(&out->spec[i]);
        out->data[i] = calloc(out->bytes[i] ? (size_t)out->bytes[i] : 1, 1);
        if (!out->data[i]) {
            sq_encoded_free(out);
            return sq_err_set(err, SQ_ENOMEM, "encode: cannot allocate %llu bytes for part %s",
                              (unsigned long long)out->bytes[i], out->spec[i].name);
        }
    }
    return SQ_OK;
}

sq_status sq_encoded_put_part(sq_encoded *e, const char *name, void *data, uint64_t dim0, sq_err *err) {
    for (int i = 0; i < e->nparts; i++) {
        if (strcmp(e->spec[i].name, name)) continue;
        if (!(e->spec[i].flags & SQ_PART_DATA_DIM0) && dim0 != e->spec[i].dims[0])
            return sq_err_set(err, SQ_EUSAGE, "encode: part %s has %llu rows, the layout says %llu", name,
                              (unsigned long long)dim0, (unsigned long long)e->spec[i].dims[0]);
        free(e->data[i]);
        e->spec[i].dims[0] = dim0;
        e->data[i] = data;
        e->bytes[i] = sq_part_spec_bytes(&e->spec[i]);
        return SQ_OK;
    }
    return sq_err_set(err, SQ_EUSAGE, "encode: codec %s has no part named %s", e->codec->name, name);
}

sq_status sq_encoded_add_xform(sq_encoded *e, sq_xform_kind kind, const void *data, sq_err *err) {
    if (kind >= SQ_XFORM_KINDS) return sq_err_set(err, SQ_EUSAGE, "encode: transform %d is not known", (int)kind);
    const sq_xform_desc *d = &sq_xform_list()[kind];
    if (e->params[SQ_P_XFORM] & ~(d->flag - 1))
        return sq_err_set(err, SQ_EUSAGE, "encode: transform %s added out of chain order", d->part);
    if (e->nparts >= SQ_CODEC_MAX_PARTS) return sq_err_set(err, SQ_EUSAGE, "encode: too many parts");
    sq_part_spec sp = {d->part, d->dtype, 1, {sq_xform_part_len(d, e->rows, e->cols)}, 0};
    uint64_t b = sq_part_spec_bytes(&sp);
    void *copy = malloc((size_t)b);
    if (!copy) return sq_err_set(err, SQ_ENOMEM, "encode: out of memory for part %s", sp.name);
    memcpy(copy, data, (size_t)b);
    e->spec[e->nparts] = sp;
    e->data[e->nparts] = copy;
    e->bytes[e->nparts] = b;
    e->nparts++;
    e->params[SQ_P_XFORM] |= d->flag;
    return SQ_OK;
}

sq_status sq_encoded_set_xform(sq_encoded *e, const uint32_t *perm, const float *in_scale, sq_err *err) {
    if (e->params[SQ_P_XFORM]) return sq_err_set(err, SQ_EUSAGE, "encode: tensor already has a transform");
    sq_status st = perm ? sq_encoded_add_xform(e, SQ_XFORM_PERM, perm, err) : SQ_OK;
    if (!st && in_scale) st = sq_encoded_add_xform(e, SQ_XFORM_IN_SCALE, in_scale, err);
    return st;
}

typedef struct enc_job {
    const sq_encode_ctx *x;
    void *const *parts;
    int failed;
} enc_job;

static void enc_chunk(void *ctx, uint64_t r0, uint64_t r1) {
    enc_job *j = ctx;
    if (j->x->codec->enc->encode_rows(j->x, r0, r1, j->parts)) j->failed = 1;
}

sq_status sq_encode_with(const sq_encode_ctx *in, sq_encoded *out, sq_err *err) {
    return sq_encode_using(in->codec->enc, in, out, err);
}

sq_status sq_encode_using(const sq_codec_encoder *enc, const sq_encode_ctx *in, sq_encoded *out, sq_err *err) {
    const sq_codec *c = in->codec;
    memset(out, 0, sizeof *out);
    if (!enc)
        return sq_err_set(err, SQ_EUNSUPPORTED,
                          "encode: codec %s is encoded by the quantization library (squish-quantize with --calib)", c->name);
    if (enc->needs_xtx && !in->xtx)
        return sq_err_set(err, SQ_EUSAGE, "encode: codec %s needs calibration statistics (--calib)", c->name);
    sq_encode_ctx x = *in;
    x.scratch = NULL;
    if (enc->encode) {
        sq_status st = encoded_init(c, x.params, x.rows, x.cols, out, err);
        if (!st) st = enc->encode(&x, out, err);
        for (int i = 0; !st && i < out->nparts; i++)
            if (!out->data[i]) st = sq_err_set(err, SQ_EUSAGE, "encode: codec %s left part %s unset", c->name, out->spec[i].name);
        if (st) sq_encoded_free(out);
        return st;
    }
    sq_status st = sq_encoded_alloc(c, x.params, x.rows, x.cols, out, err);
    if (st) return st;
    if (enc->prepare) st = enc->prepare(&x, out->data, err);
    int failed = st != SQ_OK;
    if (!failed) {
        enc_job j = {&x, out->data, 0};
        sq_parallel_for(x.n_threads, x.rows, enc_chunk, &j);
        failed = j.failed;
        if (failed) st = sq_err_set(err, SQ_ENOMEM, "encode: out of memory while encoding rows (%s)", c->name);
    }
    if (enc->finalize) {
        sq_err ferr;
        sq_status fs = enc->finalize(&x, out->data, failed, &ferr);
        if (!st && fs) {
            st = fs;
            *err = ferr;
        }
    }
    if (st) sq_encoded_free(out);
    return st;
}

sq_status sq_encode(const sq_codec *c, const uint32_t params[SQ_NPARAMS], const float *w, uint64_t rows, uint64_t cols,
                    int n_threads, sq_encoded *out, sq_err *err) {
    sq_encode_ctx x = {.codec = c, .params = params, .w = w, .rows = rows, .cols = cols, .n_threads = n_threads};
    return sq_encode_with(&x, out, err);
}
