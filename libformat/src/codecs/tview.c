/* Tensor views: a stored or encoded tensor's parts resolved to memory and
 * checked against its codec's layout, and the decode / GEMV entry points
 * that apply the transform chain. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codecs/codecs.h"

const void *sq_tview_part(const sq_tview *t, const char *name) {
    sq_part_spec sp[SQ_CODEC_MAX_PARTS];
    int n = t->codec->layout(t->codec, t->params, t->rows, t->cols, sp);
    for (int i = 0; i < n; i++)
        if (!strcmp(sp[i].name, name)) return t->part[i];
    const sq_xform_desc *xf = sq_xform_list();
    for (int k = 0; k < SQ_XFORM_KINDS; k++)
        if (!strcmp(xf[k].part, name)) return t->xf[k];
    return NULL;
}

/* Puts a part found at layout position i into the view: a codec part or a transform link. */
static void view_put(sq_tview *v, int ncodec, int i, const char *name, const void *ptr, uint64_t dim0) {
    if (i < ncodec) {
        v->part[i] = ptr;
        v->dim0[i] = dim0;
        return;
    }
    const sq_xform_desc *xf = sq_xform_list();
    for (int k = 0; k < SQ_XFORM_KINDS; k++)
        if ((v->params[SQ_P_XFORM] & xf[k].flag) && !strcmp(xf[k].part, name)) v->xf[k] = ptr;
}

void sq_tview_from_encoded(const sq_encoded *e, sq_tview *v) {
    memset(v, 0, sizeof *v);
    v->codec = e->codec;
    memcpy(v->params, e->params, sizeof v->params);
    v->rows = e->rows;
    v->cols = e->cols;
    sq_part_spec sp[SQ_CODEC_MAX_PARTS];
    v->nparts = e->codec->layout(e->codec, e->params, e->rows, e->cols, sp);
    for (int i = 0; i < e->nparts; i++) view_put(v, v->nparts, i, e->spec[i].name, e->data[i], e->spec[i].dims[0]);
}

sq_status sq_codec_check_tensor(const sq_file *f, const sq_tensor *t, sq_err *err) {
    const char *path = sq_file_path(f);
    const sq_codec *c = sq_codec_by_id(t->codec);
    if (!c) return sq_err_set(err, SQ_EUNSUPPORTED, "%s: tensor %s: codec id %u is not known to this reader", path,
                              t->name, t->codec);
    char who[SQ_MAX_NAME + 256];
    snprintf(who, sizeof who, "%s: tensor %s (index byte %llu)", path, t->name, (unsigned long long)t->rec_offset);
    sq_status st = sq_codec_check_params(c, t->params, err, who);
    if (st) return st;
    uint64_t rows, cols;
    sq_tensor_matrix(t, &rows, &cols);
    if (!rows || !cols) return sq_err_set(err, SQ_ECORRUPT, "%s: zero-size shape", who);
    sq_part_spec sp[SQ_CODEC_MAX_PARTS];
    int n = sq_layout(c, t->params, rows, cols, sp);
    for (int i = 0; i < n; i++) {
        const sq_part *p = sq_tensor_part(t, sp[i].name);
        if (!p) return sq_err_set(err, SQ_ECORRUPT, "%s: codec %s needs part '%s', which is missing", who, c->name, sp[i].name);
        int same = p->dtype == sp[i].dtype && p->ndim == sp[i].ndim;
        for (uint32_t k = 0; same && k < p->ndim; k++)
            same = p->dims[k] == sp[i].dims[k] || (k == 0 && (sp[i].flags & SQ_PART_DATA_DIM0));
        if (!same)
            return sq_err_set(err, SQ_ECORRUPT, "%s: part '%s' (record at byte %llu) has dtype %s and a shape that do not match codec %s",
                              who, sp[i].name, (unsigned long long)p->rec_offset, sq_dtype_name(p->dtype), c->name);
    }
    if ((uint32_t)n != t->n_parts)
        return sq_err_set(err, SQ_ECORRUPT, "%s: %u parts stored but codec %s defines %d", who, t->n_parts, c->name, n);
    return SQ_OK;
}

void sq_tview_close(sq_tview *v, void *owned[SQ_CODEC_MAX_PARTS]) {
    for (int k = 0; k < SQ_CODEC_MAX_PARTS; k++) {
        free(owned[k]);
        owned[k] = NULL;
    }
    memset(v, 0, sizeof *v);
}

sq_status sq_tview_open(const sq_file *f, const sq_tensor *t, int skip_checksum, sq_tview *v,
                        void *owned[SQ_CODEC_MAX_PARTS], sq_err *err) {
    memset(v, 0, sizeof *v);
    for (int i = 0; i < SQ_CODEC_MAX_PARTS; i++) owned[i] = NULL;
    sq_status st = sq_codec_check_tensor(f, t, err);
    if (st) return st;
    const sq_codec *c = sq_codec_by_id(t->codec);
    v->codec = c;
    memcpy(v->params, t->params, sizeof v->params);
    sq_tensor_matrix(t, &v->rows, &v->cols);
    sq_part_spec sp[SQ_CODEC_MAX_PARTS];
    int n = sq_layout(c, t->params, v->rows, v->cols, sp);
    v->nparts = c->layout(c, t->params, v->rows, v->cols, sp);
    for (int i = 0; i < n; i++) {
        const void *ptr;
        const sq_part *p = sq_tensor_part(t, sp[i].name);
        st = sq_part_read(f, p, skip_checksum, &ptr, &owned[i], err);
        if (st) break;
        view_put(v, v->nparts, i, sp[i].name, ptr, p->dims[0]);
    }
    if (!st) st = sq_tview_check_values(f, t, v, err);
    if (st) sq_tview_close(v, owned);
    return st;
}

/* ---------------- decode and GEMV in the original order ---------------- */
static sq_status decode_full(const sq_tview *t, float *out, int n_threads);

sq_status sq_decode_rows(const sq_tview *t, uint64_t r0, uint64_t r1, float *out) {
    if (sq_tview_has_output_xform(t)) { /* output links mix rows: decode them all */
        float *all = malloc(t->rows * t->cols * sizeof(float));
        if (!all) return SQ_ENOMEM;
        sq_status st = decode_full(t, all, 1);
        if (!st) memcpy(out, all + r0 * t->cols, (r1 - r0) * t->cols * sizeof(float));
        free(all);
        return st;
    }
    sq_decode_for(t->codec, sq_isa_active())(t, r0, r1, out);
    if (!sq_tview_has_xform(t)) return SQ_OK;
    float *tmp = malloc(t->cols * sizeof(float));
    if (!tmp) return SQ_ENOMEM;
    sq_xform_unapply_rows(t, r1 - r0, out, tmp);
    free(tmp);
    return SQ_OK;
}

sq_status sq_gemv(const sq_tview *t, const float *x, float *y, uint64_t r0, uint64_t r1) {
    if (!sq_tview_has_xform(t)) {
        sq_gemv_for(t->codec, sq_isa_active())(t, x, y, r0, r1);
        return SQ_OK;
    }
    const int out = sq_tview_has_output_xform(t);
    float *xs = malloc(t->cols * sizeof(float)), *ys = out ? malloc(t->rows * sizeof(float)) : NULL;
    if (!xs || (out && !ys)) {
        free(xs);
        free(ys);
        return SQ_ENOMEM;
    }
    sq_xform_input(t, x, 1, xs);
    if (out) { /* every output mixes every stored row */
        sq_gemv_for(t->codec, sq_isa_active())(t, xs, ys, 0, t->rows);
        sq_xform_output(t, ys, 1);
        memcpy(y + r0, ys + r0, (r1 - r0) * sizeof(float));
    } else {
        sq_gemv_for(t->codec, sq_isa_active())(t, xs, y, r0, r1);
    }
    free(xs);
    free(ys);
    return SQ_OK;
}

typedef struct mt_ctx {
    const sq_tview *t;
    const float *x;
    float *y;
    sq_decode_fn dec;
    sq_gemv_fn gemv;
    int failed;
} mt_ctx;

static void dec_chunk(void *ctx, uint64_t r0, uint64_t r1) {
    mt_ctx *m = ctx;
    m->dec(m->t, r0, r1, m->y + r0 * m->t->cols);
    if (!sq_tview_has_xform(m->t)) return;
    float *tmp = malloc(m->t->cols * sizeof(float));
    if (!tmp) {
        m->failed = 1;
        return;
    }
    sq_xform_unapply_rows(m->t, r1 - r0, m->y + r0 * m->t->cols, tmp);
    free(tmp);
}

static void gemv_chunk(void *ctx, uint64_t r0, uint64_t r1) {
    mt_ctx *m = ctx;
    m->gemv(m->t, m->x, m->y, r0, r1);
}

static sq_status decode_full(const sq_tview *t, float *out, int n_threads) {
    mt_ctx m = {t, NULL, out, sq_decode_for(t->codec, sq_isa_active()), NULL, 0};
    sq_parallel_for(n_threads, t->rows, dec_chunk, &m);
    if (!m.failed && sq_xform_unapply_output(t, out)) m.failed = 1;
    return m.failed ? SQ_ENOMEM : SQ_OK;
}

sq_status sq_decode_mt(const sq_tview *t, float *out, int n_threads) { return decode_full(t, out, n_threads); }

sq_status sq_gemv_mt(const sq_tview *t, const float *x, float *y, int n_threads) {
    float *xs = NULL;
    if (sq_tview_has_xform(t)) {
        if (!(xs = malloc(t->cols * sizeof(float)))) return SQ_ENOMEM;
        sq_xform_input(t, x, 1, xs);
    }
    mt_ctx m = {t, xs ? xs : x, y, NULL, sq_gemv_for(t->codec, sq_isa_active()), 0};
    sq_parallel_for(n_threads, t->rows, gemv_chunk, &m);
    sq_xform_output(t, y, 1);
    free(xs);
    return SQ_OK;
}
