/* A .squizd file into a Hugging Face GPTQ or AWQ directory (see
 * squish/hf_quant.h; the mapping: docs/hf-gptq-awq.md).
 *
 * Each tensor gets a plan: copied (floating point), packed (integer codes
 * the layout holds exactly), re-quantized or decoded to floating point (the
 * last two only when asked). The safetensors header needs every size
 * before any data, so planning reads each tensor's scales and zeros once
 * and writing reads the tensors again. 4-byte tensors (I32, F32) are
 * written first and 2-byte ones (F16, BF16) after them, from a spool file,
 * so every tensor starts aligned to its element size without holes. */
#include <errno.h>
#include <json-c/json.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "codecs/codecs.h"
#include "common/bytes.h"
#include "interop/hf_dir.h"
#include "interop/hf_pack.h"
#include "interop/safetensors_io.h"
#include "squish/codec.h"
#include "squish/hf_quant.h"
#include "squish/llama_names.h"
#include "squish/version.h"

typedef enum { P_COPY, P_PACK, P_REQUANT, P_DEQUANT } plan_kind;

typedef struct qscheme {
    int bits, sym;
    uint64_t group; /* 0: one group per row (group_size -1) */
} qscheme;

typedef struct plan {
    const sq_tensor *t;
    plan_kind kind;
    char module[SQ_MAX_NAME + 1]; /* the name without ".weight" (PACK, REQUANT) */
    uint64_t rows, cols;          /* N outputs, K inputs */
    qscheme qs;                   /* PACK, REQUANT */
    int perm;                     /* PACK: act-order (a perm link) */
    uint32_t out_dtype;           /* COPY, DEQUANT */
    int linear;                   /* a linear layer's weight */
    char why[200];                /* why its codes do not map (REQUANT, DEQUANT) */
} plan;

typedef struct exporter {
    sq_file *f;
    const sq_hf_export_opts *o;
    plan *p;
    uint32_t n;
    qscheme base;
    char msg[1024];
} exporter;

static const sq_hf_layout layouts[] = {SQ_HF_GPTQ, SQ_HF_GPTQ_V2, SQ_HF_AWQ};
static const char *const layout_names[] = {"hf-gptq", "hf-gptq-v2", "hf-awq"};

const char *sq_hf_layout_name(sq_hf_layout l) {
    for (int i = 0; i < 3; i++)
        if (layouts[i] == l) return layout_names[i];
    return "none";
}

sq_hf_layout sq_hf_layout_parse(const char *s) {
    for (int i = 0; i < 3; i++)
        if (!strcmp(s, layout_names[i])) return layouts[i];
    return SQ_HF_NONE;
}

static void note(const exporter *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(const exporter *x, const char *fmt, ...) {
    if (!x->o->note) return;
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    x->o->note(x->o->note_ctx, text);
}

static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

static int is_gptq(sq_hf_layout l) { return l == SQ_HF_GPTQ || l == SQ_HF_GPTQ_V2; }

/* A 2-D ".weight" that is neither an embedding nor a norm: a linear layer,
 * which the layouts store as a quantized module. AWQ leaves lm_head alone. */
static int is_linear(const sq_tensor *t, sq_hf_layout l) {
    if (t->ndim != 2 || !ends_with(t->name, ".weight") || sq_llama_is_embedding(t->name) || sq_llama_is_norm(t->name)) return 0;
    return !(l == SQ_HF_AWQ && sq_llama_parse(t->name, NULL, NULL) == SQ_LLAMA_LM_HEAD);
}

static uint64_t group_len(const qscheme *q, uint64_t cols) { return q->group ? q->group : cols; }

/* Whether a matrix of rows x cols fits the layout with scheme q (whole
 * words along both packed dimensions; AWQ: whole groups, 4 bits). */
static int shape_fits(sq_hf_layout l, const qscheme *q, uint64_t rows, uint64_t cols, char *why, size_t n) {
    if (is_gptq(l)) {
        if (q->bits != 2 && q->bits != 3 && q->bits != 4 && q->bits != 8)
            return snprintf(why, n, "%d-bit codes (the GPTQ layout holds 2, 3, 4 or 8)", q->bits), 0;
        if (cols * (uint64_t)q->bits % 32 || rows * (uint64_t)q->bits % 32)
            return snprintf(why, n, "%llu x %llu does not pack %d-bit codes into whole 32-bit words along both dimensions",
                            (unsigned long long)rows, (unsigned long long)cols, q->bits), 0;
        return 1;
    }
    if (q->bits != 4) return snprintf(why, n, "%d-bit codes (the AWQ GEMM layout holds 4)", q->bits), 0;
    if (rows % 8) return snprintf(why, n, "%llu outputs are not a multiple of 8", (unsigned long long)rows), 0;
    if (cols % group_len(q, cols))
        return snprintf(why, n, "%llu inputs are not a whole number of groups of %llu (AWQ has no short last group)",
                        (unsigned long long)cols, (unsigned long long)group_len(q, cols)), 0;
    return 1;
}

static void scheme_text(const qscheme *q, int awq, char *out, size_t n) {
    char g[24];
    if (q->group) snprintf(g, sizeof g, "g%llu", (unsigned long long)q->group);
    else snprintf(g, sizeof g, "pc");
    snprintf(out, n, "int%d:%s:%s", q->bits, g, awq || !q->sym ? "asym" : "sym");
}

/* Whether t's stored codes map exactly onto the layout: codec, transforms,
 * shape, scales that f16 holds, and (GPTQ v1) zero points above 0. */
static sq_status check_packable(exporter *x, plan *p, int *ok, sq_err *err) {
    const sq_tensor *t = p->t;
    const sq_hf_layout l = x->o->layout;
    const sq_codec *c = sq_codec_by_id(t->codec);
    *ok = 0;
    if (!c || c->family != SQ_FAMILY_INT) {
        snprintf(p->why, sizeof p->why, "codec %s has no %s form", c ? c->name : "?", sq_hf_layout_name(l));
        return SQ_OK;
    }
    p->qs = (qscheme){(int)c->bits, !(t->params[SQ_P_FLAGS] & SQ_PF_ASYM), t->params[SQ_P_GROUP]};
    if (t->params[SQ_P_XFORM] & ~(uint32_t)SQ_XF_PERM) {
        snprintf(p->why, sizeof p->why, "%s", t->params[SQ_P_XFORM] & SQ_XF_IN_SCALE
                     ? "its in_scale link (AWQ scales not folded) has no place in the layout"
                     : "its Hadamard transform links have no place in the layout");
        return SQ_OK;
    }
    p->perm = (t->params[SQ_P_XFORM] & SQ_XF_PERM) != 0;
    if (p->perm && l == SQ_HF_AWQ) {
        snprintf(p->why, sizeof p->why, "its act-order perm link has no place in the AWQ layout (no g_idx)");
        return SQ_OK;
    }
    if (!shape_fits(l, &p->qs, p->rows, p->cols, p->why, sizeof p->why)) return SQ_OK;
    sq_tview v;
    void *owned[SQ_CODEC_MAX_PARTS];
    sq_status st = sq_tview_open(x->f, t, 1, &v, owned, err);
    if (st) return st;
    const uint64_t ng = sq_ngroups(t->params, p->cols);
    const uint32_t sdt = t->params[SQ_P_SCALE_DTYPE];
    const void *scales = sq_tview_part(&v, "scales");
    const uint8_t *zeros = p->qs.sym ? NULL : sq_tview_part(&v, "zeros");
    int good = 1;
    for (uint64_t i = 0; good && i < p->rows * ng; i++) {
        float s = sq_scale_load(sdt, scales, i);
        if (sdt != SQ_DT_F16 && sq_f16_to_f32(sq_f32_to_f16(s)) != s) {
            snprintf(p->why, sizeof p->why, "its %s scale %g (row %llu, group %llu) has no exact f16 value", sq_dtype_name(sdt),
                     (double)s, (unsigned long long)(i / ng), (unsigned long long)(i % ng));
            good = 0;
        } else if (zeros && l == SQ_HF_GPTQ && zeros[i] == 0 && s != 0) {
            snprintf(p->why, sizeof p->why, "zero point 0 (row %llu, group %llu), which the v1 format (zeros minus one) "
                     "cannot store; --to hf-gptq-v2 can", (unsigned long long)(i / ng), (unsigned long long)(i % ng));
            good = 0;
        }
    }
    sq_tview_close(&v, owned);
    *ok = good;
    return SQ_OK;
}

/* The most common (bits, group, sym) among the packed tensors: the
 * quantization_config's; the others become GPTQModel "dynamic" overrides.
 * AWQ stores zeros either way, so sym does not count there. */
static qscheme choose_base(const exporter *x) {
    const int awq = x->o->layout == SQ_HF_AWQ;
    qscheme best = {4, x->o->layout == SQ_HF_GPTQ, 128};
    uint32_t best_n = 0;
    for (uint32_t i = 0; i < x->n; i++) {
        if (x->p[i].kind != P_PACK) continue;
        uint32_t k = 0;
        for (uint32_t j = 0; j < x->n; j++) {
            const qscheme *a = &x->p[i].qs, *b = &x->p[j].qs;
            k += x->p[j].kind == P_PACK && a->bits == b->bits && a->group == b->group && (awq || a->sym == b->sym);
        }
        if (k > best_n) best_n = k, best = x->p[i].qs;
    }
    return best;
}

static sq_status unmappable(exporter *x, plan *p, sq_err *err) {
    if (!x->o->requantize)
        return sq_err_set(err, SQ_EUNSUPPORTED, "%s: tensor %s: %s; --requantize re-encodes such tensors (with their error printed)",
                          sq_file_path(x->f), p->t->name, p->why);
    return SQ_OK;
}

/* Where the codes do not map: RTN into the base scheme when the shape takes
 * it (symmetric for GPTQ v1, whose zeros cannot be 0), else floating point. */
static void requant_plan(exporter *x, plan *p) {
    char why[200];
    qscheme q = x->base;
    if (x->o->layout == SQ_HF_GPTQ) q.sym = 1;
    if (x->o->layout != SQ_HF_GPTQ) q.sym = 0;
    if (p->linear && shape_fits(x->o->layout, &q, p->rows, p->cols, why, sizeof why)) {
        p->kind = P_REQUANT;
        p->qs = q;
        p->perm = 0;
        return;
    }
    p->kind = P_DEQUANT;
    p->out_dtype = p->t->src_dtype == SQ_DT_F16 || p->t->src_dtype == SQ_DT_BF16 ? p->t->src_dtype : SQ_DT_F32;
}

static sq_status plan_all(exporter *x, sq_err *err) {
    const sq_hf_layout l = x->o->layout;
    x->n = sq_file_ntensors(x->f);
    if (!(x->p = calloc(x->n ? x->n : 1, sizeof *x->p))) return sq_err_set(err, SQ_ENOMEM, "out of memory");
    for (uint32_t i = 0; i < x->n; i++) {
        plan *p = &x->p[i];
        p->t = sq_file_tensor(x->f, i);
        sq_tensor_matrix(p->t, &p->rows, &p->cols);
        p->linear = is_linear(p->t, l);
        const sq_codec *c = sq_codec_by_id(p->t->codec);
        if (c && c->family == SQ_FAMILY_FLOAT && !p->t->params[SQ_P_XFORM]) {
            p->kind = P_COPY;
            p->out_dtype = c->value_dtype;
            continue;
        }
        int ok = 0;
        if (p->linear) {
            sq_status st = check_packable(x, p, &ok, err);
            if (st) return st;
        } else {
            snprintf(p->why, sizeof p->why, "it is no linear layer the %s layout quantizes, and codec %s is not floating point",
                     sq_hf_layout_name(l), c ? c->name : "?");
        }
        if (ok) {
            p->kind = P_PACK;
            snprintf(p->module, sizeof p->module, "%.*s", (int)(strlen(p->t->name) - 7), p->t->name);
        } else {
            sq_status st = unmappable(x, p, err);
            if (st) return st;
            p->kind = P_DEQUANT; /* decided below, once the base scheme is known */
        }
    }
    x->base = choose_base(x);
    for (uint32_t i = 0; i < x->n; i++) {
        plan *p = &x->p[i];
        if (l == SQ_HF_AWQ && p->kind == P_PACK && p->qs.group != x->base.group) { /* AWQ has one group size */
            snprintf(p->why, sizeof p->why, "its groups of %llu differ from the other tensors' %llu (AWQ has one group size)",
                     (unsigned long long)group_len(&p->qs, p->cols), (unsigned long long)group_len(&x->base, p->cols));
            sq_status st = unmappable(x, p, err);
            if (st) return st;
            p->kind = P_DEQUANT;
        }
        if (p->kind == P_DEQUANT) {
            requant_plan(x, p);
            if (p->kind == P_REQUANT)
                snprintf(p->module, sizeof p->module, "%.*s", (int)(strlen(p->t->name) - 7), p->t->name);
        }
    }
    return SQ_OK;
}

/* ---------------- the tensors' bytes ---------------- */

typedef struct packed {
    uint8_t *qweight, *qzeros, *scales, *g_idx;
    uint64_t qweight_n, qzeros_n, scales_n, g_idx_n; /* bytes */
} packed;

static void packed_free(packed *k) {
    free(k->qweight);
    free(k->qzeros);
    free(k->scales);
    free(k->g_idx);
    memset(k, 0, sizeof *k);
}

/* The layout's tensors of one module (names and shapes). */
static int module_descs(sq_hf_layout l, const plan *p, char names[4][SQ_MAX_NAME + 16], sq_st_desc *d) {
    const uint64_t N = p->rows, K = p->cols, ng = (K + group_len(&p->qs, K) - 1) / group_len(&p->qs, K);
    const uint64_t b = (uint64_t)p->qs.bits;
    static const char *const suf[] = {"qweight", "qzeros", "scales", "g_idx"};
    for (int i = 0; i < 4; i++) snprintf(names[i], SQ_MAX_NAME + 16, "%s.%s", p->module, suf[i]);
    if (is_gptq(l)) {
        d[0] = (sq_st_desc){names[0], "I32", 2, {K * b / 32, N}};
        d[1] = (sq_st_desc){names[1], "I32", 2, {ng, N * b / 32}};
        d[2] = (sq_st_desc){names[2], "F16", 2, {ng, N}};
        d[3] = (sq_st_desc){names[3], "I32", 1, {K}};
        return 4;
    }
    d[0] = (sq_st_desc){names[0], "I32", 2, {K, N / 8}};
    d[1] = (sq_st_desc){names[1], "I32", 2, {ng, N / 8}};
    d[2] = (sq_st_desc){names[2], "F16", 2, {ng, N}};
    return 3;
}

/* Codes, scales and zeros of an int-codec view into the layout. */
static sq_status pack_view(sq_hf_layout l, const sq_tview *v, packed *k, sq_err *err) {
    const int bits = (int)v->codec->bits, mid = 1 << (bits - 1);
    const uint64_t N = v->rows, K = v->cols, G = sq_group_cols(v->params, K), ng = sq_ngroups(v->params, K);
    const uint64_t rb = sq_row_bytes(K, bits), cb = (uint64_t)(SQ_CHUNK * bits / 8);
    const uint32_t sdt = v->params[SQ_P_SCALE_DTYPE];
    const uint8_t *codes = sq_tview_part(v, "codes"), *zeros = sq_tview_part(v, "zeros");
    const void *scales = sq_tview_part(v, "scales");
    const uint32_t *perm = sq_tview_perm(v);
    const int gptq = is_gptq(l);
    memset(k, 0, sizeof *k);
    k->qweight_n = gptq ? K * (uint64_t)bits / 32 * N * 4 : K * (N / 8) * 4;
    k->qzeros_n = gptq ? ng * (N * (uint64_t)bits / 32) * 4 : ng * (N / 8) * 4;
    k->scales_n = ng * N * 2;
    k->g_idx_n = gptq ? K * 4 : 0;
    k->qweight = calloc(1, k->qweight_n);
    k->qzeros = calloc(1, k->qzeros_n);
    k->scales = malloc(k->scales_n);
    k->g_idx = gptq ? malloc(k->g_idx_n) : NULL;
    uint8_t *row = malloc(K + SQ_CHUNK);
    if (!k->qweight || !k->qzeros || !k->scales || (gptq && !k->g_idx) || !row) {
        free(row);
        packed_free(k);
        return sq_err_set(err, SQ_ENOMEM, "out of memory for a %llu x %llu module", (unsigned long long)N, (unsigned long long)K);
    }
    const uint64_t zw = gptq ? N * (uint64_t)bits / 32 : N / 8; /* words per qzeros row */
    for (uint64_t r = 0; r < N; r++) {
        for (uint64_t c = 0; c < K; c += SQ_CHUNK) sq_unpack_chunk(bits, codes + r * rb + (c / SQ_CHUNK) * cb, row + c);
        for (uint64_t j = 0; j < K; j++) { /* stored column j holds input perm[j] */
            const uint64_t kk = perm ? perm[j] : j;
            if (gptq) sq_hf_stream_put(k->qweight, N, r, kk, bits, row[j]);
            else sq_awq_put(k->qweight + kk * (N / 8) * 4, r, row[j]);
        }
        for (uint64_t g = 0; g < ng; g++) {
            const float s = sq_scale_load(sdt, scales, r * ng + g);
            put16(k->scales + (g * N + r) * 2, sdt == SQ_DT_F16 ? ((const uint16_t *)scales)[r * ng + g] : sq_f32_to_f16(s));
            uint32_t z = zeros ? zeros[r * ng + g] : (uint32_t)mid;
            if (l == SQ_HF_GPTQ) z = z ? z - 1 : 0; /* v1 stores zero - 1; z = 0 reaches here only with scale 0 */
            if (gptq) sq_hf_stream_put(k->qzeros, 1, g * zw, r, bits, z);
            else sq_awq_put(k->qzeros + g * zw * 4, r, z);
        }
    }
    for (uint64_t j = 0; gptq && j < K; j++) put32(k->g_idx + (perm ? perm[j] : j) * 4, (uint32_t)(j / G));
    free(row);
    return SQ_OK;
}

static void errstats(const float *ref, const float *got, uint64_t n, double *rel_rmse, double *max_abs) {
    double se = 0, ss = 0, mx = 0;
    for (uint64_t i = 0; i < n; i++) {
        double d = (double)got[i] - (double)ref[i];
        se += d * d;
        ss += (double)ref[i] * (double)ref[i];
        if (fabs(d) > mx) mx = fabs(d);
    }
    *rel_rmse = ss > 0 ? sqrt(se / ss) : sqrt(se / (double)(n ? n : 1));
    *max_abs = mx;
}

static sq_status decode_tensor(exporter *x, const sq_tview *v, float **w, sq_err *err) {
    *w = malloc(v->rows * v->cols * sizeof(float));
    if (!*w) return sq_err_set(err, SQ_ENOMEM, "out of memory");
    sq_status st = sq_decode_mt(v, *w, x->o->n_threads > 0 ? x->o->n_threads : 1);
    if (st) {
        free(*w);
        *w = NULL;
        return sq_err_set(err, st, "cannot decode a tensor (out of memory)");
    }
    return SQ_OK;
}

/* REQUANT: the decoded weights (original column order) encoded with RTN. */
static sq_status requantize(exporter *x, const plan *p, const sq_tview *v, packed *k, sq_err *err) {
    float *w = NULL, *dec = NULL;
    sq_status st = decode_tensor(x, v, &w, err);
    if (st) return st;
    const sq_codec *c = p->qs.bits == 8 ? &sq_codec_int8 : p->qs.bits == 4 ? &sq_codec_int4 : p->qs.bits == 3 ? &sq_codec_int3
                                                                                                           : &sq_codec_int2;
    uint32_t params[SQ_NPARAMS] = {(uint32_t)p->qs.group, p->qs.sym ? 0u : SQ_PF_ASYM, SQ_DT_F16, 0, 0, 0, 0, 0};
    sq_encoded e;
    memset(&e, 0, sizeof e);
    st = sq_encode(c, params, w, p->rows, p->cols, x->o->n_threads > 0 ? x->o->n_threads : 1, &e, err);
    sq_tview ev;
    if (!st) {
        sq_tview_from_encoded(&e, &ev);
        st = decode_tensor(x, &ev, &dec, err);
    }
    if (!st) {
        double rel, mx;
        errstats(w, dec, p->rows * p->cols, &rel, &mx);
        char s[64], from[64];
        scheme_text(&p->qs, x->o->layout == SQ_HF_AWQ, s, sizeof s);
        sq_scheme_format(v->codec, p->t->params, from, sizeof from);
        note(x, "%s: %s: re-quantized from %s to %s with RTN: relative RMSE %.3e, max |error| %.3e against the squish decode",
             p->t->name, p->why, from, s, rel, mx);
        st = pack_view(x->o->layout, &ev, k, err);
    }
    sq_encoded_free(&e);
    free(w);
    free(dec);
    return st;
}

/* DEQUANT: the decoded weights rounded to out_dtype. */
static sq_status dequantize(exporter *x, const plan *p, const sq_tview *v, uint8_t **out, uint64_t *n, sq_err *err) {
    float *w = NULL;
    sq_status st = decode_tensor(x, v, &w, err);
    if (st) return st;
    const uint64_t e = p->rows * p->cols, es = sq_dtype_size(p->out_dtype);
    *n = e * es;
    *out = malloc(*n ? *n : 1);
    float *back = malloc(e * sizeof(float) + 1);
    if (!*out || !back) {
        free(w);
        free(back);
        free(*out);
        *out = NULL;
        return sq_err_set(err, SQ_ENOMEM, "out of memory");
    }
    for (uint64_t i = 0; i < e; i++) {
        if (p->out_dtype == SQ_DT_F32) {
            putf32(*out + 4 * i, w[i]);
            back[i] = w[i];
        } else {
            uint16_t h = p->out_dtype == SQ_DT_F16 ? sq_f32_to_f16(w[i]) : sq_f32_to_bf16(w[i]);
            put16(*out + 2 * i, h);
            back[i] = p->out_dtype == SQ_DT_F16 ? sq_f16_to_f32(h) : sq_bf16_to_f32(h);
        }
    }
    double rel, mx;
    errstats(w, back, e, &rel, &mx);
    char from[64];
    sq_scheme_format(v->codec, p->t->params, from, sizeof from);
    note(x, "%s: %s: stored decoded from %s as %s: relative RMSE %.3e, max |error| %.3e against the squish decode",
         p->t->name, p->why, from, sq_dtype_name(p->out_dtype), rel, mx);
    free(w);
    free(back);
    return SQ_OK;
}

static const char *st_dtype_name(uint32_t dt) { return dt == SQ_DT_F32 ? "F32" : dt == SQ_DT_F16 ? "F16" : "BF16"; }

/* Output order: every 4-byte tensor, then every 2-byte one, each in plan order. */
typedef struct out_list {
    sq_st_desc *d;
    char (*names)[SQ_MAX_NAME + 16];
    uint32_t n;
} out_list;

static sq_status describe_outputs(exporter *x, out_list *ol, sq_err *err) {
    ol->d = calloc((size_t)x->n * 4 + 1, sizeof *ol->d);
    ol->names = calloc((size_t)x->n * 4 + 1, sizeof *ol->names);
    if (!ol->d || !ol->names) return sq_err_set(err, SQ_ENOMEM, "out of memory");
    for (int pass = 0; pass < 2; pass++) {
        for (uint32_t i = 0; i < x->n; i++) {
            const plan *p = &x->p[i];
            sq_st_desc d[4];
            char names[4][SQ_MAX_NAME + 16];
            int nd;
            if (p->kind == P_PACK || p->kind == P_REQUANT) {
                nd = module_descs(x->o->layout, p, names, d);
            } else {
                nd = 1;
                snprintf(names[0], sizeof names[0], "%s", p->t->name);
                d[0] = (sq_st_desc){names[0], st_dtype_name(p->out_dtype), p->t->ndim, {0}};
                memcpy(d[0].dims, p->t->dims, p->t->ndim * sizeof d[0].dims[0]);
            }
            for (int k = 0; k < nd; k++) {
                int four = !strcmp(d[k].dtype_name, "I32") || !strcmp(d[k].dtype_name, "F32");
                if (four != (pass == 0)) continue;
                memcpy(ol->names[ol->n], names[k], sizeof names[k]);
                ol->d[ol->n] = d[k];
                ol->d[ol->n].name = ol->names[ol->n];
                ol->n++;
            }
        }
    }
    return SQ_OK;
}

static sq_status put_bytes(sq_st_out *main, FILE *spool, int four, const void *data, uint64_t n, sq_err *err) {
    if (four) return sq_st_out_write(main, data, n, err);
    if (n && fwrite(data, 1, (size_t)n, spool) != n) return sq_err_set(err, SQ_EIO, "cannot write a spool file: %s", strerror(errno));
    return SQ_OK;
}

static sq_status write_tensors(exporter *x, const char *path, sq_hf_export_result *r, sq_err *err) {
    out_list ol = {0};
    sq_st_out o = {0};
    FILE *spool = NULL;
    sq_status st = describe_outputs(x, &ol, err);
    static const char *const meta[] = {"format", "pt", "producer", ("squish " SQUISH_VERSION_STRING)};
    if (!st) st = sq_st_out_begin(&o, path, ol.d, ol.n, meta, 2, err);
    if (!st && !(spool = tmpfile())) st = sq_err_set(err, SQ_EIO, "cannot create a spool file: %s", strerror(errno));
    for (uint32_t i = 0; !st && i < x->n; i++) {
        const plan *p = &x->p[i];
        sq_tview v;
        void *owned[SQ_CODEC_MAX_PARTS];
        if ((st = sq_tview_open(x->f, p->t, 0, &v, owned, err))) break;
        if (p->kind == P_COPY) {
            const void *data = sq_tview_part(&v, "data");
            uint64_t n = p->rows * p->cols * sq_dtype_size(p->out_dtype);
            st = put_bytes(&o, spool, p->out_dtype == SQ_DT_F32, data, n, err);
            r->copied++;
        } else if (p->kind == P_DEQUANT) {
            uint8_t *data = NULL;
            uint64_t n = 0;
            st = dequantize(x, p, &v, &data, &n, err);
            if (!st) st = put_bytes(&o, spool, p->out_dtype == SQ_DT_F32, data, n, err);
            free(data);
            r->dequantized++;
        } else {
            packed k;
            memset(&k, 0, sizeof k);
            st = p->kind == P_PACK ? pack_view(x->o->layout, &v, &k, err) : requantize(x, p, &v, &k, err);
            if (!st) st = sq_st_out_write(&o, k.qweight, k.qweight_n, err);
            if (!st) st = sq_st_out_write(&o, k.qzeros, k.qzeros_n, err);
            if (!st && k.g_idx) st = sq_st_out_write(&o, k.g_idx, k.g_idx_n, err);
            if (!st) st = put_bytes(&o, spool, 0, k.scales, k.scales_n, err);
            packed_free(&k);
            if (p->kind == P_PACK) r->packed++;
            else r->requantized++;
        }
        sq_tview_close(&v, owned);
    }
    if (!st && fseek(spool, 0, SEEK_SET)) st = sq_err_set(err, SQ_EIO, "cannot read back the spool file");
    const size_t bufsize = 1 << 20;
    uint8_t *buf = st ? NULL : malloc(bufsize);
    if (!st && !buf) st = sq_err_set(err, SQ_ENOMEM, "out of memory");
    size_t got;
    while (!st && (got = fread(buf, 1, bufsize, spool)) > 0) st = sq_st_out_write(&o, buf, got, err);
    if (!st && ferror(spool)) st = sq_err_set(err, SQ_EIO, "cannot read back the spool file");
    free(buf);
    if (!st) {
        r->bytes = 8 + o.expect;
        st = sq_st_out_end(&o, err);
    } else {
        sq_st_out_abort(&o);
    }
    if (spool) fclose(spool);
    free(ol.d);
    free(ol.names);
    return st;
}

/* ---------------- config.json and the quantization_config ---------------- */

/* A regular expression matching exactly this module name (GPTQModel's
 * "dynamic" keys are Python re patterns). */
static void regex_exact(const char *name, char *out, size_t n) {
    size_t k = 0;
    if (k + 1 < n) out[k++] = '^';
    for (const char *s = name; *s && k + 3 < n; s++) {
        if (strchr(".^$*+?()[]{}|\\", *s)) out[k++] = '\\';
        out[k++] = *s;
    }
    if (k + 1 < n) out[k++] = '$';
    out[k] = 0;
}

static json_object *quant_config(exporter *x) {
    json_object *q = json_object_new_object();
    const sq_hf_layout l = x->o->layout;
    const int64_t gs = x->base.group ? (int64_t)x->base.group : -1;
    if (l == SQ_HF_AWQ) {
        json_object *skip = json_object_new_array();
        for (uint32_t i = 0; i < x->n; i++)
            if (x->p[i].linear && (x->p[i].kind == P_COPY || x->p[i].kind == P_DEQUANT))
                json_object_array_add(skip, json_object_new_string_len(x->p[i].t->name, (int)strlen(x->p[i].t->name) - 7));
        json_object_object_add(q, "quant_method", json_object_new_string("awq"));
        json_object_object_add(q, "bits", json_object_new_int(4));
        json_object_object_add(q, "group_size", json_object_new_int64(gs));
        json_object_object_add(q, "zero_point", json_object_new_boolean(1));
        json_object_object_add(q, "version", json_object_new_string("gemm"));
        if (json_object_array_length(skip)) json_object_object_add(q, "modules_to_not_convert", skip);
        else {
            json_object_put(skip);
            json_object_object_add(q, "modules_to_not_convert", NULL);
        }
        return q;
    }
    int desc_act = 0, lm_head = 0;
    json_object *dyn = json_object_new_object();
    for (uint32_t i = 0; i < x->n; i++) {
        const plan *p = &x->p[i];
        desc_act |= p->kind == P_PACK && p->perm;
        int quantized = p->kind == P_PACK || p->kind == P_REQUANT;
        if (quantized && sq_llama_parse(p->t->name, NULL, NULL) == SQ_LLAMA_LM_HEAD) lm_head = 1;
        char key[2 * SQ_MAX_NAME + 8];
        char re[2 * SQ_MAX_NAME + 4];
        if (quantized && (p->qs.bits != x->base.bits || p->qs.group != x->base.group || p->qs.sym != x->base.sym)) {
            regex_exact(p->module, re, sizeof re);
            snprintf(key, sizeof key, "+:%s", re);
            json_object *ov = json_object_new_object();
            json_object_object_add(ov, "bits", json_object_new_int(p->qs.bits));
            json_object_object_add(ov, "group_size", json_object_new_int64(p->qs.group ? (int64_t)p->qs.group : -1));
            json_object_object_add(ov, "sym", json_object_new_boolean(p->qs.sym));
            json_object_object_add(dyn, key, ov);
        } else if (!quantized && p->linear && sq_llama_parse(p->t->name, NULL, NULL) != SQ_LLAMA_LM_HEAD) {
            char module[SQ_MAX_NAME + 1];
            snprintf(module, sizeof module, "%.*s", (int)strlen(p->t->name) - 7, p->t->name);
            regex_exact(module, re, sizeof re);
            snprintf(key, sizeof key, "-:%s", re);
            json_object_object_add(dyn, key, json_object_new_object());
        }
    }
    json_object_object_add(q, "quant_method", json_object_new_string("gptq"));
    json_object_object_add(q, "checkpoint_format", json_object_new_string(l == SQ_HF_GPTQ ? "gptq" : "gptq_v2"));
    json_object_object_add(q, "bits", json_object_new_int(x->base.bits));
    json_object_object_add(q, "group_size", json_object_new_int64(gs));
    json_object_object_add(q, "desc_act", json_object_new_boolean(desc_act));
    json_object_object_add(q, "static_groups", json_object_new_boolean(0));
    json_object_object_add(q, "sym", json_object_new_boolean(x->base.sym));
    json_object_object_add(q, "true_sequential", json_object_new_boolean(1));
    json_object_object_add(q, "lm_head", json_object_new_boolean(lm_head));
    json_object_object_add(q, "pack_dtype", json_object_new_string("int32"));
    if (json_object_object_length(dyn)) json_object_object_add(q, "dynamic", dyn);
    else json_object_put(dyn);
    json_object *meta = json_object_new_object(), *who = json_object_new_array();
    json_object_array_add(who, json_object_new_string("squish:" SQUISH_VERSION_STRING));
    json_object_object_add(meta, "quantizer", who);
    json_object_object_add(q, "meta", meta);
    return q;
}

static sq_status write_json(const char *path, json_object *o, sq_err *err) {
    const char *text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                                                            JSON_C_TO_STRING_NOSLASHESCAPE);
    return sq_hf_write_file(path, text, strlen(text), 1, err);
}

/* The model's config.json: the embedded file when there is one, else the
 * metadata's "config" (what squish-quantize read from the source). */
static sq_status read_config(exporter *x, json_object **cfg, sq_err *err) {
    *cfg = NULL;
    for (uint32_t i = 0; i < sq_file_nappendix(x->f); i++) {
        const sq_appendix *a = sq_file_appendix(x->f, i);
        if (a->type != SQ_APPX_FILE) continue;
        const char *name;
        size_t nl;
        const uint8_t *data;
        uint64_t size;
        void *owned;
        sq_status st = sq_appendix_file(x->f, a, &name, &nl, &data, &size, &owned, err);
        if (st) return st;
        if (nl == 11 && !memcmp(name, "config.json", 11)) {
            json_tokener *tok = json_tokener_new();
            *cfg = tok ? json_tokener_parse_ex(tok, (const char *)data, (int)size) : NULL;
            if (tok) json_tokener_free(tok);
        }
        free(owned);
        if (*cfg) break;
    }
    if (!*cfg) {
        const char *meta = sq_file_metadata(x->f, err);
        if (!meta) return err->status;
        json_object *root = json_tokener_parse(meta), *c;
        if (root && json_object_object_get_ex(root, "config", &c)) *cfg = json_object_get(c);
        json_object_put(root);
    }
    if (!*cfg || !json_object_is_type(*cfg, json_type_object)) {
        json_object_put(*cfg);
        *cfg = NULL;
        return sq_err_set(err, SQ_EUSAGE, "%s has no model configuration (no embedded config.json, no \"config\" metadata)",
                          sq_file_path(x->f));
    }
    return SQ_OK;
}

/* f's embedded files other than those written here, as they are. */
static sq_status write_side_files(exporter *x, const char *dir, uint32_t *count, sq_err *err) {
    static const char *const ours[] = {"config.json", "model.safetensors", "model.safetensors.index.json",
                                       "quantize_config.json", "quant_config.json"};
    for (uint32_t i = 0; i < sq_file_nappendix(x->f); i++) {
        const sq_appendix *a = sq_file_appendix(x->f, i);
        if (a->type != SQ_APPX_FILE) continue;
        const char *name;
        size_t nl;
        const uint8_t *data;
        uint64_t size;
        void *owned;
        sq_status st = sq_appendix_file(x->f, a, &name, &nl, &data, &size, &owned, err);
        if (st) return st;
        char fname[1100];
        snprintf(fname, sizeof fname, "%.*s", (int)(nl < 1024 ? nl : 1024), name);
        int skip = !sq_hf_safe_name(fname);
        for (size_t k = 0; k < sizeof ours / sizeof ours[0]; k++) skip |= !strcmp(fname, ours[k]);
        if (!skip) {
            char path[4300];
            snprintf(path, sizeof path, "%s/%s", dir, fname);
            st = sq_hf_write_file(path, data, size, 0, err);
            (*count)++;
        } else if (strcmp(fname, "config.json")) {
            note(x, "embedded file '%s' not written: the export writes its own or the name is not a plain file name", fname);
        }
        free(owned);
        if (st) return st;
    }
    return SQ_OK;
}

sq_status sq_hf_export(sq_file *f, const char *dir, const sq_hf_export_opts *o, sq_hf_export_result *r, sq_err *err) {
    sq_hf_export_result rs;
    memset(&rs, 0, sizeof rs);
    if (o->layout != SQ_HF_GPTQ && o->layout != SQ_HF_GPTQ_V2 && o->layout != SQ_HF_AWQ)
        return sq_err_set(err, SQ_EUSAGE, "unknown Hugging Face layout");
    exporter x = {f, o, NULL, 0, {4, 1, 128}, ""};
    json_object *cfg = NULL;
    char *tmp = NULL;
    const char *meta = sq_file_metadata(f, err);
    if (!meta) return err->status;
    if (strstr(meta, "\"shard\"")) { /* a part of squish-quantize --shard: half a checkpoint is no checkpoint */
        json_object *root = json_tokener_parse(meta);
        int partial = root && json_object_object_get_ex(root, "shard", NULL);
        json_object_put(root);
        if (partial)
            return sq_err_set(err, SQ_EUSAGE, "%s is a partial file (squish-quantize --shard); join the parts with squish-pack "
                              "merge first", sq_file_path(f));
    }
    sq_status st = read_config(&x, &cfg, err);
    if (!st) st = plan_all(&x, err);
    if (!st && !(tmp = sq_hf_dir_begin(dir, err))) st = err->status;
    char path[4300];
    if (!st) {
        snprintf(path, sizeof path, "%s/model.safetensors", tmp);
        st = write_tensors(&x, path, &rs, err);
    }
    if (!st) {
        json_object *q = quant_config(&x);
        json_object_object_del(cfg, "quantization_config");
        json_object_object_add(cfg, "quantization_config", json_object_get(q));
        snprintf(path, sizeof path, "%s/config.json", tmp);
        st = write_json(path, cfg, err);
        if (!st && is_gptq(o->layout)) {
            snprintf(path, sizeof path, "%s/quantize_config.json", tmp);
            st = write_json(path, q, err);
        }
        json_object_put(q);
    }
    if (!st) st = write_side_files(&x, tmp, &rs.files, err);
    if (!st) st = sq_hf_dir_commit(tmp, dir, err);
    else if (tmp) sq_hf_dir_abort(tmp);
    scheme_text(&x.base, o->layout == SQ_HF_AWQ, rs.scheme, sizeof rs.scheme);
    json_object_put(cfg);
    free(tmp);
    free(x.p);
    if (r) *r = rs;
    return st;
}
