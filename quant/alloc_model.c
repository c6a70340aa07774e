/* The target-bpw allocation over a model (see alloc_model.h). */
#include "alloc_model.h"
#include "alloc_probe.h"

#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calib.h"
#include "codecs/spqr/spqr_params.h"
#include "encoders.h"
#include "rtn.h"
#include "squish/llama_names.h"
#include "stats.h"

/* The default ladder, about 2 to 8 bpw: QuIP# 2/3/4 bits, GPTQ int3 at
 * groups 128/64 and int4 at 128/64/32, SpQR's k-quant-like :mse family
 * (6-bit second-level statistics over 64 rows, importance-weighted scale
 * search, no outliers) at 3/4/5/6 bits in groups of 64/32/16 (3.3 to 6.9
 * bpw; on squish-lm-34m spqr:w4:b32 alone measured KLD 0.0168 at 4.5 bpw
 * against 0.0287 for GPTQ int4:g64 at 4.4), FP6 (E2M3) in groups of 32
 * (6.5 bpw), int8 per channel. Calibrated codecs apply to the linear
 * layers; SpQR also to the embeddings and the output layer with H = I (no
 * XᵀX is collected for them: GPTQ's feedback vanishes and :mse fits the
 * scales of least squared error), QuIP# to the embeddings with H = I and
 * rows apart (identity_ok), the other scalar ones by RTN there. AQLM
 * 2x8 is left out: on squish-lm-34m one down_proj took about a minute
 * against a few seconds for quip:2, and it came out dominated by quip:2
 * (more bytes, more loss) on the tiny model's layers; --candidates takes it. */
static const char *const default_ladder[] = {"quip:2",
                                             "int3:g128:asym",
                                             "int3:g64:asym",
                                             "quip:3",
                                             "spqr:w3:b64:r64:sb6:mse:t0",
                                             "spqr:w3:b32:r64:sb6:mse:t0",
                                             "spqr:w3:b16:r64:sb6:mse:t0",
                                             "int4:g128:asym",
                                             "int4:g64:asym",
                                             "int4:g32:asym",
                                             "quip:4",
                                             "spqr:w4:b64:r64:sb6:mse:t0",
                                             "spqr:w4:b32:r64:sb6:mse:t0",
                                             "spqr:w4:b16:r64:sb6:mse:t0",
                                             "spqr:w5:b64:r64:sb6:mse:t0",
                                             "spqr:w5:b32:r64:sb6:mse:t0",
                                             "spqr:w6:b64:r64:sb6:mse:t0",
                                             "spqr:w6:b32:r64:sb6:mse:t0",
                                             "fp6_e2m3:g32",
                                             "int8",
                                             NULL};

static sq_status add_cand(sq_alloc_opts *o, const char *s, sq_err *err) {
    if (o->n_cands == SQ_ALLOC_MAX_CANDS) return sq_err_set(err, SQ_EUSAGE, "--candidates: at most %d schemes", SQ_ALLOC_MAX_CANDS);
    sq_alloc_cand *c = &o->cands[o->n_cands];
    sq_err e2;
    if (sq_scheme_parse(s, &c->codec, c->params, &e2))
        return sq_err_set(err, SQ_EUSAGE, "--candidates: bad scheme '%s': %s", s, e2.msg);
    if (c->codec->lossless) return sq_err_set(err, SQ_EUSAGE, "--candidates: '%s' is not a quantizing scheme", s);
    for (int i = 0; i < o->n_cands; i++)
        if (o->cands[i].codec == c->codec && !memcmp(o->cands[i].params, c->params, sizeof c->params))
            return sq_err_set(err, SQ_EUSAGE, "--candidates: '%s' is given twice", s);
    o->n_cands++;
    return SQ_OK;
}

sq_status sq_alloc_parse_candidates(const char *list, sq_alloc_opts *o, sq_err *err) {
    o->n_cands = 0;
    const char *p = list;
    while (1) {
        const char *q = strchr(p, ',');
        size_t len = q ? (size_t)(q - p) : strlen(p);
        char s[64];
        if (!len || len >= sizeof s) return sq_err_set(err, SQ_EUSAGE, "--candidates: bad list '%s' (SCHEME,SCHEME,...)", list);
        memcpy(s, p, len);
        s[len] = 0;
        sq_status st = add_cand(o, s, err);
        if (st) return st;
        if (!q) break;
        p = q + 1;
    }
    return SQ_OK;
}

void sq_alloc_default_candidates(sq_alloc_opts *o) {
    o->n_cands = 0;
    /* Row-weighted mix for the embeddings and lm_head is not among them: on
     * squish-lm-34m at 4.5 bpw over all (417 windows) it gave KLD 0.0211
     * against 0.0193 without it; the probes, which read the calibration text
     * the row weights come from, rated it too well. */
    for (int i = 0; default_ladder[i]; i++) add_cand(o, default_ladder[i], NULL); /* known good */
}

static int role_of(const sq_model_tensor *t) {
    uint32_t l;
    int bias;
    sq_llama_role r = sq_llama_parse(t->name, &l, &bias);
    return bias ? SQ_LLAMA_NONE : (int)r;
}

sq_status sq_alloc_row_weights(sq_method *q, const sq_model_tensor *t, uint64_t rows, double **rw, sq_err *err) {
    return sq_method_row_weights(q, t, rows, rw, err);
}

/* Σ_r rw_r x_r H x_rᵀ per row (H NULL: I), rows in parallel, summed in row order. */
typedef struct rowq_ctx {
    const float *x, *y; /* y NULL: x itself, else x - y */
    const double *H, *rw;
    uint64_t cols;
    double *out;
    int failed;
} rowq_ctx;

static void rowq_rows(void *p, uint64_t r0, uint64_t r1) {
    rowq_ctx *c = p;
    const uint64_t n = c->cols;
    double *d = malloc(n * sizeof *d);
    if (!d) {
        c->failed = 1;
        return;
    }
    for (uint64_t r = r0; r < r1; r++) {
        for (uint64_t j = 0; j < n; j++) d[j] = (double)c->x[r * n + j] - (c->y ? (double)c->y[r * n + j] : 0.0);
        double q = 0;
        if (!c->H)
            for (uint64_t j = 0; j < n; j++) q += d[j] * d[j];
        else
            for (uint64_t i = 0; i < n; i++) {
                double a = 0;
                const double *Hi = c->H + i * n;
                for (uint64_t j = 0; j < n; j++) a += Hi[j] * d[j];
                q += d[i] * a;
            }
        c->out[r] = c->rw[r] * q;
    }
    free(d);
}

static sq_status row_quad(const float *x, const float *y, uint64_t rows, uint64_t cols, const double *H, const double *rw,
                          int threads, double *sum, sq_err *err) {
    double *out = malloc(rows * sizeof *out);
    if (!out) return sq_err_set(err, SQ_ENOMEM, "allocator: out of memory");
    rowq_ctx c = {x, y, H, rw, cols, out, 0};
    sq_parallel_for(threads > 0 ? threads : 1, rows, rowq_rows, &c);
    double s = 0;
    for (uint64_t r = 0; r < rows; r++) s += out[r];
    free(out);
    if (c.failed) return sq_err_set(err, SQ_ENOMEM, "allocator: out of memory");
    *sum = s;
    return SQ_OK;
}

sq_status sq_alloc_rows_loss(const float *w, const float *dec, uint64_t rows, uint64_t cols, const double *H,
                             const double *rw, int threads, double *loss, sq_err *err) {
    double num = 0, den = 0;
    sq_status st = row_quad(w, NULL, rows, cols, H, rw, threads, &den, err);
    if (!st) st = row_quad(dec, w, rows, cols, H, rw, threads, &num, err);
    if (!st) *loss = den > 0 ? num / den : 0;
    return st;
}

/* Σ_v rw_v Δw_v H Δw_vᵀ / Σ_v rw_v w_v H w_vᵀ of an encoding (H NULL: I). */
static sq_status rows_loss(const sq_encoded *e, const float *w, uint64_t rows, uint64_t cols, const double *H,
                           const double *rw, double den, int threads, double *loss, sq_err *err) {
    float *dec = malloc((size_t)(rows * cols) * sizeof *dec);
    if (!dec) return sq_err_set(err, SQ_ENOMEM, "allocator: out of memory");
    sq_tview v;
    sq_tview_from_encoded(e, &v);
    sq_status st = sq_decode_mt(&v, dec, threads);
    double num = 0;
    if (st) st = sq_err_set(err, st, "allocator: cannot decode what was encoded");
    else st = row_quad(dec, w, rows, cols, H, rw, threads, &num, err);
    free(dec);
    if (!st) *loss = den > 0 ? num / den : 0;
    return st;
}

/* The method names of encodings whose loss is row-weighted: a table entry
 * measured otherwise is stale for a tensor that now has row weights (and
 * the other way round). */
#define ROWS_TAG ", vocab-weighted"
#if defined(__GNUC__)
__attribute__((noinline)) /* inlined, -O3 warns that a shorter literal never equals a longer name: true, and the point */
#endif
static const char *rows_method(const char *m) {
    static const char *const names[][2] = {{"rtn", "rtn" ROWS_TAG},   {"gptq", "gptq" ROWS_TAG},
                                           {"spqr", "spqr" ROWS_TAG}, {"spqr (H = I)", "spqr (H = I)" ROWS_TAG},
                                           {"mix", "mix" ROWS_TAG},   {"mix (H = I)", "mix (H = I)" ROWS_TAG},
                                           {"quip", "quip" ROWS_TAG}, {"quip (H = I)", "quip (H = I)" ROWS_TAG},
                                           {"aqlm", "aqlm" ROWS_TAG},
                                           {"rtn (gptq fallback)", "rtn (gptq fallback)" ROWS_TAG}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(m, names[i][0])) return names[i][1];
    return "other" ROWS_TAG;
}

static int is_matrix(const sq_model_tensor *t) {
    uint32_t l;
    sq_site s;
    return sq_calib_site_of(t->name, &l, &s);
}

int sq_alloc_in_set(const sq_alloc_opts *o, const sq_model_tensor *t) { return o->over_all || is_matrix(t); }

int sq_alloc_allocated(const sq_alloc_opts *o, const sq_model_tensor *t) {
    return is_matrix(t) || (o->over_all && t->ndim >= 2 && !sq_llama_is_norm(t->name));
}

/* Whether a calibrated codec's encoder may run on a tensor without XᵀX
 * with H = I (the embeddings, the output layer): SpQR, whose sweep is then
 * RTN with its own group statistics, and QuIP# with the columns' transform
 * alone (SQ_ENC_ROWS_APART: a looked-up row decodes on its own), whose
 * feedback then vanishes but whose lattice still beats scalar grids at
 * equal bits. AQLM is left to the linear layers (its cost buys nothing
 * there). */
static int is_quip(const sq_codec *c) { return !strcmp(c->name, "quip"); }
static int identity_ok(const sq_codec *c) { return !strcmp(c->name, "spqr") || is_quip(c); }
static int is_mix(const sq_codec *c) { return !strcmp(c->name, "mix"); }

/* Whether t has row importance (sq_alloc_row_weights would give some). */
static int has_rows(const sq_method *q, const sq_model_tensor *t) {
    uint32_t l;
    sq_site s;
    const int r = role_of(t);
    return q->calib && t->ndim == 2 && sq_calib_has_output(q->calib) &&
           (r == SQ_LLAMA_EMBED || (r == SQ_LLAMA_LM_HEAD && sq_method_output_site(q, t, &l, &s)));
}

/* Whether candidate c can encode tensor t at all (before trying). */
static int applies(const sq_method *q, const sq_model_tensor *t, const sq_alloc_cand *c) {
    uint32_t l;
    sq_site s;
    if (!sq_quant_needs_xtx(c->codec)) return 1;
    if (is_matrix(t) || sq_method_output_site(q, t, &l, &s)) return q->calib != NULL;
    if (!strcmp(c->codec->name, "spqr") && sq_spqr_p_rht(c->params)) return 0; /* rotating H = I buys nothing */
    if (is_quip(c->codec) && role_of(t) != SQ_LLAMA_EMBED) return 0; /* rows apart: for lookups only */
    return (identity_ok(c->codec) || (is_mix(c->codec) && has_rows(q, t))) && q->kind != SQ_METHOD_AWQ;
}

sq_status sq_alloc_encode(sq_method *q, const char *label, const sq_model_tensor *t, const sq_alloc_cand *c, const float *w,
                          uint64_t rows, uint64_t cols, sq_encoded *e, sq_method_note *note, sq_err *err) {
    uint32_t ol;
    sq_site os;
    double *rw = NULL;
    sq_status st = sq_alloc_row_weights(q, t, rows, &rw, err);
    if (st) return st;
    if (!sq_quant_needs_xtx(c->codec) || is_matrix(t) || sq_method_output_site(q, t, &ol, &os) ||
        !(identity_ok(c->codec) || (is_mix(c->codec) && rw))) {
        /* lm_head keeps QuIP#'s transform across rows: with its rows apart (weighted by how often their token
         * is predicted) quip:4 lowered the 3.5-bpw file's KLD by 0.3% (0.066227 -> 0.066031, 417 windows)
         * and took the place of spqr:w4:b64, whose GEMV is faster: decode 12-16% slower in all */
        q->row_weight = rw;
        st = sq_method_encode(q, label, t, c->codec, c->params, w, rows, cols, e, note, err);
        q->row_weight = NULL;
        if (!st && rw) note->method = rows_method(note->method);
        free(rw);
        return st;
    }
    memset(note, 0, sizeof *note);
    note->method = is_mix(c->codec) ? "mix (H = I)" : is_quip(c->codec) ? "quip (H = I)" : "spqr (H = I)";
    if (rw) note->method = rows_method(note->method);
    note->out_err = -1;
    if (cols > 65536) {
        free(rw);
        return sq_err_set(err, SQ_EUSAGE, "%s: %llu columns are too many for an identity XᵀX", label, (unsigned long long)cols);
    }
    double *eye = calloc(cols * cols, sizeof *eye);
    if (!eye) {
        free(rw);
        return sq_err_set(err, SQ_ENOMEM, "%s: out of memory for an identity XᵀX", label);
    }
    for (uint64_t i = 0; i < cols; i++) eye[i * cols + i] = 1;
    st = sq_check_finite(label, w, rows * cols, err);
    sq_encode_ctx x = {.codec = c->codec, .params = c->params, .w = w, .rows = rows, .cols = cols, .xtx = eye,
                       .seed = 0x5155495348ull ^ 0xe1e1ull, .n_threads = q->n_threads,
                       .flags = q->enc_flags | (is_quip(c->codec) ? SQ_ENC_ROWS_APART : 0u),
                       .row_weight = rw};
    if (!st) st = sq_quant_encode(&x, e, err);
    free(eye);
    free(rw);
    return st;
}

static uint64_t enc_bits(const sq_encoded *e) {
    uint64_t b = 0;
    for (int i = 0; i < e->nparts; i++) b += e->bytes[i];
    return 8 * b;
}

/* ||ΔW||² / ||W||² of an encoding: the weight-only proxy */
static sq_status weight_loss(const sq_encoded *e, const float *w, uint64_t n, int threads, double *loss, sq_err *err) {
    float *dec = malloc((size_t)n * sizeof *dec);
    if (!dec) return sq_err_set(err, SQ_ENOMEM, "allocator: out of memory");
    sq_tview v;
    sq_tview_from_encoded(e, &v);
    sq_status st = sq_decode_mt(&v, dec, threads);
    if (!st) {
        sq_errstats es = {0};
        sq_errstats_add(&es, w, dec, n);
        *loss = es.sum_sq_ref > 0 ? es.sum_sq_err / es.sum_sq_ref : 0;
    }
    free(dec);
    return st ? sq_err_set(err, st, "allocator: cannot decode what was encoded") : SQ_OK;
}

static int has_cand(const sq_alloc_entry *ae, int i) {
    for (int j = 0; j < ae->n; j++)
        if (ae->cand[j] == i) return 1;
    return 0;
}

/* Whether some candidate that applies to t is missing from ae (taken from
 * a table that lacks it). */
static int lacks_cand(const sq_alloc_opts *o, const sq_method *q, const sq_model_tensor *t, const sq_alloc_entry *ae) {
    for (int i = 0; i < o->n_cands; i++)
        if (applies(q, t, &o->cands[i]) && !has_cand(ae, i)) return 1;
    return 0;
}

/* ae's candidates in the order of the list (a table's and the newly
 * encoded ones merged): the order a run that encodes them all gets, so
 * that ties and probe points fall the same way. */
static void swap_at(void *arr, size_t size, int b) { /* elements b - 1 and b of arr */
    unsigned char tmp[4096], *x = (unsigned char *)arr + (size_t)(b - 1) * size;
    memcpy(tmp, x, size);
    memcpy(x, x + size, size);
    memcpy(x + size, tmp, size);
}

static void sort_entry(sq_alloc_entry *ae) {
    _Static_assert(sizeof ae->enc[0] <= 4096 && sizeof ae->note[0] <= 4096, "swap_at's buffer");
    for (int a = 1; a < ae->n; a++)
        for (int b = a; b > 0 && ae->cand[b - 1] > ae->cand[b]; b--) {
            swap_at(ae->cand, sizeof ae->cand[0], b);
            swap_at(ae->bits, sizeof ae->bits[0], b);
            swap_at(ae->loss, sizeof ae->loss[0], b);
            swap_at(ae->kld, sizeof ae->kld[0], b);
            swap_at(ae->note, sizeof ae->note[0], b);
            swap_at(ae->enc, sizeof ae->enc[0], b);
            swap_at(ae->cached, sizeof ae->cached[0], b);
        }
}

/* One tensor with every candidate that applies (those ae lacks). */
static sq_status measure_tensor(const sq_alloc_opts *o, sq_method *q, const sq_model *m, const sq_model_tensor *t,
                                sq_alloc_entry *ae, uint64_t *cache_bytes, sq_err *err) {
    uint64_t n = sq_model_tensor_elems(t), cols = t->dims[t->ndim - 1], rows = n / (cols ? cols : 1);
    float *w = malloc((size_t)n * sizeof *w);
    if (!w) return sq_err_set(err, SQ_ENOMEM, "out of memory for tensor %s", t->name);
    sq_status st = sq_method_weights(q, m, t, w, err);
    char label[4200];
    snprintf(label, sizeof label, "%s: tensor %s", m->path, t->name);
    /* row importance: the loss weighs each row's error by it (with the output layer's XᵀX for lm_head) */
    double *rw = NULL, den = 0;
    sq_calib_site hs = {0};
    uint32_t ol;
    sq_site os;
    if (!st) st = sq_alloc_row_weights(q, t, rows, &rw, err);
    if (!st && rw && sq_method_output_site(q, t, &ol, &os)) st = sq_calib_read_output(q->calib, &hs, err);
    if (!st && rw) st = row_quad(w, NULL, rows, cols, hs.xtx, rw, q->n_threads, &den, err);
    for (int i = 0; !st && i < o->n_cands; i++) {
        const sq_alloc_cand *c = &o->cands[i];
        if (!applies(q, t, c) || has_cand(ae, i)) continue;
        int j = ae->n;
        sq_encoded *e = &ae->enc[j];
        sq_err e2 = {0};
        sq_status s2 = sq_alloc_encode(q, label, t, c, w, rows, cols, e, &ae->note[j], &e2);
        if (s2 == SQ_EUSAGE || s2 == SQ_EUNSUPPORTED) continue; /* a shape the scheme cannot take: not a candidate here */
        if (s2) {
            st = s2;
            if (err) *err = e2;
            break;
        }
        double loss = ae->note[j].out_err;
        if (rw) st = rows_loss(e, w, rows, cols, hs.xtx, rw, den, q->n_threads, &loss, err);
        else if (!is_matrix(t) || loss < 0) st = weight_loss(e, w, n, q->n_threads, &loss, err);
        if (!st && !isfinite(loss)) st = sq_err_set(err, SQ_EUNSUPPORTED, "%s: scheme %s gives a non-finite error", label, c->codec->name);
        if (st) {
            sq_encoded_free(e);
            break;
        }
        ae->cand[j] = i;
        ae->bits[j] = enc_bits(e);
        ae->loss[j] = loss;
        ae->kld[j] = -1;
        if (*cache_bytes + ae->bits[j] / 8 <= SQ_ALLOC_CACHE_BYTES) {
            *cache_bytes += ae->bits[j] / 8;
            ae->cached[j] = 1;
        } else {
            sq_encoded_free(e);
        }
        ae->n++;
    }
    free(w);
    free(rw);
    sq_calib_site_free(&hs);
    if (!st && !ae->n) st = sq_err_set(err, SQ_EUSAGE, "%s: no candidate scheme applies to it (add one to --candidates)", label);
    return st;
}

/* Tensor t's entry from an earlier report's allocation table (tensors in
 * the same order; candidates by scheme, each one of the current list). */
static sq_status table_tensor(const sq_alloc_opts *o, const sq_method *q, json_object *tab, uint32_t i,
                              const sq_model_tensor *t, sq_alloc_entry *ae, sq_err *err) {
    const int rows = has_rows(q, t);
    json_object *ts, *to, *v, *cs;
    if (!json_object_object_get_ex(tab, "tensors", &ts) || !(to = json_object_array_get_idx(ts, i)) ||
        !json_object_object_get_ex(to, "name", &v) || strcmp(json_object_get_string(v), t->name))
        return sq_err_set(err, SQ_EUSAGE, "%s: its allocation table has no entry %u for tensor %s (another model or --over?)",
                          o->table, i, t->name);
    if (!json_object_object_get_ex(to, "candidates", &cs) || !json_object_is_type(cs, json_type_array))
        return sq_err_set(err, SQ_EUSAGE, "%s: tensor %s has no candidates", o->table, t->name);
    for (size_t k = 0; k < json_object_array_length(cs); k++) {
        json_object *co = json_object_array_get_idx(cs, k), *sv, *bv, *lv, *mv;
        if (!json_object_object_get_ex(co, "scheme", &sv) || !json_object_object_get_ex(co, "bytes", &bv) ||
            !json_object_object_get_ex(co, "loss", &lv) || !json_object_object_get_ex(co, "method", &mv))
            return sq_err_set(err, SQ_EUSAGE, "%s: tensor %s: a candidate lacks scheme, bytes, loss or method", o->table, t->name);
        int i_c = -1;
        for (int c = 0; c < o->n_cands && i_c < 0; c++) {
            char s[64];
            sq_scheme_format(o->cands[c].codec, o->cands[c].params, s, sizeof s);
            if (!strcmp(s, json_object_get_string(sv))) i_c = c;
        }
        if (i_c < 0) continue; /* not among this run's candidates */
        /* measured with row weights or without, as this run's calibration file asks? else encoded again */
        if ((strstr(json_object_get_string(mv), ROWS_TAG) != NULL) != rows) continue;
        if (ae->n == SQ_ALLOC_MAX_CANDS) return sq_err_set(err, SQ_EUSAGE, "%s: too many candidates", o->table);
        int j = ae->n++;
        int64_t bytes = json_object_get_int64(bv);
        ae->cand[j] = i_c;
        ae->bits[j] = 8 * (uint64_t)(bytes > 0 ? bytes : 0);
        ae->loss[j] = json_object_get_double(lv);
        ae->note[j].method = json_object_get_string(mv);
        json_object *kv; /* a probe's measurement (sq_alloc_probe keeps it only under the same probe setting) */
        ae->kld[j] = json_object_object_get_ex(co, "kld", &kv) ? json_object_get_double(kv) : -1;
        if (!(ae->kld[j] >= -1) || !isfinite(ae->kld[j]))
            return sq_err_set(err, SQ_EUSAGE, "%s: tensor %s, %s: bad kld", o->table, t->name, json_object_get_string(sv));
        if (bytes <= 0 || !(ae->loss[j] >= 0) || !isfinite(ae->loss[j]))
            return sq_err_set(err, SQ_EUSAGE, "%s: tensor %s, %s: bad bytes or loss", o->table, t->name, json_object_get_string(sv));
    }
    return SQ_OK; /* the candidates it lacks are encoded (sq_alloc_model_plan) */
}

/* The bits a tensor outside the allocation takes as written (its scheme by
 * the rules; norms keep source precision). */
static uint64_t fixed_bits(const sq_method *q, const sq_model_tensor *t) {
    uint32_t params[SQ_NPARAMS];
    const sq_codec *c = sq_method_codec(q, t, params);
    uint64_t n = sq_model_tensor_elems(t), cols = t->dims[t->ndim - 1], rows = n / (cols ? cols : 1);
    sq_part_spec sp[SQ_CODEC_MAX_PARTS];
    int np = sq_layout(c, params, rows, cols, sp);
    uint64_t b = 0;
    for (int k = 0; k < np; k++) {
        uint64_t e = 1;
        for (uint32_t d = 0; d < (uint32_t)sp[k].ndim; d++) e *= sp[k].dims[d];
        b += e * sq_dtype_size(sp[k].dtype);
    }
    return 8 * b;
}

sq_status sq_alloc_model_plan(const sq_alloc_opts *o, sq_method *q, const sq_model *m, const uint32_t *order,
                              sq_alloc_note_fn note, void *note_ctx, sq_alloc_plan *p, sq_err *err) {
    memset(p, 0, sizeof *p);
    p->cands = o->cands;
    p->n_cands = o->n_cands;
    uint32_t n_alloc = 0;
    for (uint32_t k = 0; k < m->n_tensors; k++) n_alloc += sq_alloc_allocated(o, &m->tensors[k]);
    if (!n_alloc) return sq_err_set(err, SQ_EUSAGE, "%s: no tensor to allocate", m->path);
    if (!(p->e = calloc(n_alloc, sizeof *p->e)) || !(p->picks = calloc(n_alloc, sizeof *p->picks)))
        return sq_err_set(err, SQ_ENOMEM, "allocator: out of memory");
    uint64_t cache = 0;
    sq_status st = SQ_OK;
    json_object *tab = NULL, *root = NULL;
    if (o->table) {
        json_object *ov;
        if (!(root = json_object_from_file(o->table)))
            return sq_err_set(err, SQ_EUSAGE, "%s: cannot read it as JSON (a squish-quantize --report)", o->table);
        p->table_json = root;
        if (!json_object_object_get_ex(root, "allocation", &tab) || !json_object_object_get_ex(tab, "over", &ov))
            return sq_err_set(err, SQ_EUSAGE, "%s: no allocation in it (a --report of a --target-bpw run)", o->table);
        if (strcmp(json_object_get_string(ov), o->over_all ? "all" : "matrices"))
            return sq_err_set(err, SQ_EUSAGE, "%s: its allocation was over %s, not %s", o->table, json_object_get_string(ov),
                              o->over_all ? "all" : "matrices");
        json_object *pv, *x; /* its probes' setting, if it has probes */
        if (json_object_object_get_ex(tab, "probe", &pv)) {
            if (json_object_object_get_ex(pv, "windows", &x)) p->probe_windows = (uint32_t)json_object_get_int64(x);
            if (json_object_object_get_ex(pv, "ctx", &x)) p->probe_ctx = (uint32_t)json_object_get_int64(x);
            if (json_object_object_get_ex(pv, "baseline_kld", &x)) p->probe_baseline = json_object_get_double(x);
            if (json_object_object_get_ex(pv, "ids_sha256", &x))
                snprintf(p->probe_ids_sha256, sizeof p->probe_ids_sha256, "%s", json_object_get_string(x));
        }
    }
    for (uint32_t k = 0; k < m->n_tensors && !st; k++) {
        const sq_model_tensor *t = &m->tensors[order[k]];
        if (!sq_alloc_in_set(o, t)) continue;
        p->elements += sq_model_tensor_elems(t);
        if (!sq_alloc_allocated(o, t)) {
            p->fixed_bits += fixed_bits(q, t);
            continue;
        }
        sq_alloc_entry *ae = &p->e[p->n++];
        ae->tensor = order[k];
        const int r = role_of(t);
        if (note && (r == SQ_LLAMA_EMBED || r == SQ_LLAMA_LM_HEAD) && !has_rows(q, t)) note(note_ctx, "identity", t->name, 0, 0);
        if (tab && (st = table_tensor(o, q, tab, p->n - 1, t, ae, err))) break;
        if (!tab || lacks_cand(o, q, t, ae)) {
            if (note) note(note_ctx, "encoding", t->name, (int)p->n, (int)n_alloc);
            st = measure_tensor(o, q, m, t, ae, &cache, err);
            sq_model_release(m, t);
        }
        sort_entry(ae);
    }
    if (st) return st;
    /* the budget in bits over the set, less what the tensors outside the allocation take */
    double target = o->target_bpw * (double)p->elements, tol = 0.02 * (double)p->elements;
    uint64_t lo = p->fixed_bits, hi = p->fixed_bits;
    for (uint32_t i = 0; i < p->n; i++) {
        uint64_t mn = UINT64_MAX, mx = 0;
        for (int j = 0; j < p->e[i].n; j++) {
            if (p->e[i].bits[j] < mn) mn = p->e[i].bits[j];
            if (p->e[i].bits[j] > mx) mx = p->e[i].bits[j];
        }
        lo += mn;
        hi += mx;
    }
    const char *over = o->over_all ? "all tensors" : "the linear matrices";
    if ((double)lo > target + tol)
        return sq_err_set(err, SQ_EUSAGE, "--target-bpw %g is below the cheapest mix of the candidates, %.4f bpw over %s",
                          o->target_bpw, (double)lo / (double)p->elements, over);
    if ((double)hi < target - tol)
        return sq_err_set(err, SQ_EUSAGE, "--target-bpw %g is above the dearest mix of the candidates, %.4f bpw over %s",
                          o->target_bpw, (double)hi / (double)p->elements, over);
    if (o->probe_windows) { /* measured sensitivity: every candidate's loss fitted to the probes */
        if ((st = sq_alloc_probe(o, q, m, p, note, note_ctx, err))) return st;
    } else {
        for (uint32_t i = 0; i < p->n; i++)
            for (int j = 0; j < p->e[i].n; j++) p->e[i].pred[j] = p->e[i].loss[j];
    }
    p->tol = (uint64_t)floor(tol);
    p->budget = target > (double)p->fixed_bits ? (uint64_t)floor(target) - p->fixed_bits : 0;
    sq_alloc_item *items = malloc(p->n * sizeof *items);
    if (!items) return sq_err_set(err, SQ_ENOMEM, "allocator: out of memory");
    for (uint32_t i = 0; i < p->n; i++) {
        sq_alloc_entry *ae = &p->e[i];
        ae->weight = 1;
        for (int r = 0; r < o->n_weights; r++)
            if (!regexec(&o->weights[r].re, m->tensors[ae->tensor].name, 0, NULL, 0)) {
                ae->weight = o->weights[r].w;
                break;
            }
        for (int j = 0; j < ae->n; j++) ae->wloss[j] = ae->weight * ae->pred[j];
        items[i] = (sq_alloc_item){ae->n, ae->bits, ae->wloss};
    }
    p->res.pick = p->picks;
    st = sq_alloc_solve(items, (int)p->n, p->budget, p->tol, &p->res, err);
    free(items);
    if (st) return st;
    for (uint32_t i = 0; i < p->n; i++) { /* the encodings not chosen are not needed any more */
        p->e[i].pick = p->picks[i];
        for (int j = 0; j < p->e[i].n; j++)
            if (j != p->e[i].pick && p->e[i].cached[j]) {
                sq_encoded_free(&p->e[i].enc[j]);
                p->e[i].cached[j] = 0;
            }
    }
    return SQ_OK;
}

sq_alloc_entry *sq_alloc_plan_find(sq_alloc_plan *p, uint32_t ti) {
    for (uint32_t i = 0; i < p->n; i++)
        if (p->e[i].tensor == ti) return &p->e[i];
    return NULL;
}

void sq_alloc_plan_free(sq_alloc_plan *p) {
    for (uint32_t i = 0; p->e && i < p->n; i++)
        for (int j = 0; j < p->e[i].n; j++)
            if (p->e[i].cached[j]) sq_encoded_free(&p->e[i].enc[j]);
    free(p->e);
    free(p->picks);
    json_object_put(p->table_json);
    memset(p, 0, sizeof *p);
}
