/* The values of a stored tensor that a decode must never turn into NaN or
 * inf (spec/codecs.md §10): NaN/inf codes, non-finite scales, an E8M0 scale
 * of 255, zero points outside the code range, padding codes, a scale whose
 * product with the largest code overflows, and input transforms that are not
 * a permutation or would overflow when divided out. Run by sq_tview_open,
 * so every decode (runtime, verify, re-quantize) is guarded, and by
 * squish-verify. Each refusal names the tensor, the part and the byte. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codecs/codecs.h"

/* "FILE: tensor T part P, byte K of the part (file offset O): WHAT" */
static sq_status refuse(const sq_file *f, const sq_tensor *t, const char *part, uint64_t byte, sq_err *err,
                        const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static sq_status refuse(const sq_file *f, const sq_tensor *t, const char *part, uint64_t byte, sq_err *err,
                        const char *fmt, ...) {
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    const sq_part *p = sq_tensor_part(t, part);
    char where[96] = "";
    if (p && p->compression == SQ_COMP_NONE)
        snprintf(where, sizeof where, "file offset %llu", (unsigned long long)(p->offset + byte));
    else if (p)
        snprintf(where, sizeof where, "in the %s data stored at %llu", sq_compression_name(p->compression),
                 (unsigned long long)p->offset);
    return sq_err_set(err, SQ_ECORRUPT, "%s: tensor %s part %s, byte %llu of the part (%s): %s", sq_file_path(f), t->name,
                      part, (unsigned long long)byte, where, what);
}

static int dtype_finite(uint32_t dt, const void *base, uint64_t i) {
    if (dt == SQ_DT_F16) return (((const uint16_t *)base)[i] & 0x7c00) != 0x7c00;
    if (dt == SQ_DT_BF16) return (((const uint16_t *)base)[i] & 0x7f80) != 0x7f80;
    return isfinite(((const float *)base)[i]);
}

/* Stored scales of a float dtype are finite. */
static sq_status check_finite(const sq_file *f, const sq_tensor *t, const char *part, uint32_t dt, const void *base,
                              uint64_t n, sq_err *err) {
    size_t ds = sq_dtype_size(dt);
    for (uint64_t i = 0; i < n; i++)
        if (!dtype_finite(dt, base, i))
            return refuse(f, t, part, i * ds, err, "value %llu is not finite (a %s NaN or infinity)", (unsigned long long)i,
                          sq_dtype_name(dt));
    return SQ_OK;
}

/* The codes after each row's last value (the last chunk's padding) are the padding code. */
static sq_status check_pad_codes(const sq_file *f, const sq_tensor *t, const sq_tview *v, int bits, uint8_t pad,
                                 sq_err *err) {
    const uint64_t used = v->cols % SQ_CHUNK, rb = sq_row_bytes(v->cols, bits), cb = (uint64_t)(SQ_CHUNK * bits / 8);
    if (!used) return SQ_OK;
    const uint8_t *codes = sq_tview_part(v, "codes");
    for (uint64_t r = 0; r < v->rows; r++) {
        uint64_t at = r * rb + rb - cb;
        uint8_t q[SQ_CHUNK];
        sq_unpack_chunk(bits, codes + at, q);
        for (uint64_t k = used; k < SQ_CHUNK; k++)
            if (q[k] != pad)
                return refuse(f, t, "codes", at, err, "row %llu: padding code %llu of its last chunk is %u, must be %u",
                              (unsigned long long)r, (unsigned long long)k, q[k], pad);
    }
    return SQ_OK;
}

/* Largest magnitude of a finite entry of a value table. */
static float table_max(const float *tab, int bits) {
    float m = 0;
    for (int i = 0; i < 1 << bits; i++)
        if (isfinite(tab[i]) && fabsf(tab[i]) > m) m = fabsf(tab[i]);
    return m;
}

/* The largest magnitude any code of column group g can decode to, per row,
 * folded into gmax[g] (for the in_scale check). Each must be finite. */
typedef struct bound_ctx {
    const sq_file *f;
    const sq_tensor *t;
    float *gmax; /* [groups per row] */
    sq_err *err;
} bound_ctx;

static sq_status note_bound(bound_ctx *b, const char *part, uint64_t byte, uint64_t r, uint64_t g, float s, float m) {
    float x = fabsf(s) * m;
    if (!isfinite(x))
        return refuse(b->f, b->t, part, byte, b->err,
                      "row %llu group %llu: scale %g times the largest code magnitude %g overflows float32",
                      (unsigned long long)r, (unsigned long long)g, (double)s, (double)m);
    if (x > b->gmax[g]) b->gmax[g] = x;
    return SQ_OK;
}

static sq_status check_int(const sq_tview *v, bound_ctx *b) {
    const int bits = sq_int_bits(v->codec), maxq = (1 << bits) - 1, mid = 1 << (bits - 1);
    const uint32_t dt = v->params[SQ_P_SCALE_DTYPE];
    const int asym = (v->params[SQ_P_FLAGS] & SQ_PF_ASYM) != 0;
    const uint64_t ng = sq_ngroups(v->params, v->cols), ds = sq_dtype_size(dt);
    const void *scales = sq_tview_part(v, "scales");
    const uint8_t *zeros = asym ? sq_tview_part(v, "zeros") : NULL;
    sq_status st = check_finite(b->f, b->t, "scales", dt, scales, v->rows * ng, b->err);
    for (uint64_t i = 0; !st && i < v->rows * ng; i++) {
        int z = asym ? zeros[i] : mid;
        if (z > maxq)
            return refuse(b->f, b->t, "zeros", i, b->err, "zero point %d is outside the %d-bit code range 0..%d", z, bits, maxq);
        int m = z > maxq - z ? z : maxq - z; /* largest |q - z| */
        st = note_bound(b, "scales", i * ds, i / ng, i % ng, sq_scale_load(dt, scales, i), (float)m);
    }
    return st ? st : check_pad_codes(b->f, b->t, v, bits, 0, b->err);
}

static sq_status check_lut(const sq_tview *v, bound_ctx *b) {
    int bits;
    const float *tab = sq_codec_value_table(v->codec, &bits);
    const float tmax = table_max(tab, bits);
    const uint64_t gl = sq_codec_group_len(v->params, v->cols), ng = (v->cols + gl - 1) / gl;
    /* a fixed table (NF4) has block maxima; MX has E8M0 scales; mini-floats have stored scales */
    const int nf4 = v->codec->table != NULL, mx = v->codec->family == SQ_FAMILY_MX;
    const int dq = nf4 && (v->params[SQ_P_FLAGS] & SQ_PF_DQ);
    const uint64_t n = v->rows * ng;
    sq_status st = SQ_OK;
    const void *scales = sq_tview_part(v, nf4 ? (dq ? "absmax_q" : "absmax") : "scales");
    /* stored scales first, for messages that name the stored byte */
    if (mx) {
        for (uint64_t i = 0; i < n; i++)
            if (((const uint8_t *)scales)[i] == 255)
                return refuse(b->f, b->t, "scales", i, b->err, "E8M0 scale 255 is NaN");
    } else if (!nf4) {
        uint32_t dt = v->params[SQ_P_SCALE_DTYPE];
        st = check_finite(b->f, b->t, "scales", dt, scales, v->params[SQ_P_GROUP] == SQ_GROUP_TENSOR ? 1 : n, b->err);
    } else if (!dq) {
        st = check_finite(b->f, b->t, "absmax", SQ_DT_F32, scales, n, b->err);
    } else {
        for (uint64_t i = 0; i < n; i++)
            if (((const int8_t *)scales)[i] == -128)
                return refuse(b->f, b->t, "absmax_q", i, b->err, "code -128 is outside the range -127..127");
        st = check_finite(b->f, b->t, "absmax_scale", SQ_DT_F32, sq_tview_part(v, "absmax_scale"), (n + 255) / 256, b->err);
        if (!st) st = check_finite(b->f, b->t, "absmax_offset", SQ_DT_F32, sq_tview_part(v, "absmax_offset"), 1, b->err);
    }
    /* the scale each group decodes with, times the largest value of the table */
    const char *spart = nf4 ? (dq ? "absmax_scale" : "absmax") : "scales";
    for (uint64_t i = 0; !st && i < n; i++) {
        uint64_t r = i / ng, g = i % ng;
        uint64_t byte = mx ? i : dq ? (i / 256) * 4 : v->params[SQ_P_GROUP] == SQ_GROUP_TENSOR ? 0 : i * (nf4 ? 4 : sq_dtype_size(v->params[SQ_P_SCALE_DTYPE]));
        st = note_bound(b, spart, byte, r, g, sq_lut_group_scale(v, r, g), tmax);
    }
    if (st) return st;
    /* codes whose value is NaN or infinite (FP8 E4M3 S.1111.111, E5M2 S.11111.xx), padding included */
    int specials = 0;
    for (int i = 0; i < 1 << bits; i++) specials += !isfinite(tab[i]);
    if (specials) {
        const uint8_t *codes = sq_tview_part(v, "codes");
        uint64_t nb = v->rows * sq_row_bytes(v->cols, bits);
        for (uint64_t k = 0; k < nb; k++) /* only 8-bit formats have specials: a byte is a code */
            if (!isfinite(tab[codes[k]]))
                return refuse(b->f, b->t, "codes", k, b->err, "code 0x%02x is %s in %s", codes[k],
                              isnan(tab[codes[k]]) ? "NaN" : "an infinity", v->codec->name);
    }
    return check_pad_codes(b->f, b->t, v, bits, nf4 ? 7 : 0, b->err);
}

/* f32/f16/bf16 data: every value finite; the per-column maxima feed the in_scale check. */
static sq_status check_float(const sq_tview *v, bound_ctx *b) {
    const uint32_t dt = v->codec->value_dtype;
    sq_status st = check_finite(b->f, b->t, "data", dt, sq_tview_part(v, "data"), v->rows * v->cols, b->err);
    if (st || !sq_tview_in_scale(v)) return st;
    float *row = malloc((size_t)v->cols * sizeof(float));
    if (!row) return sq_err_set(b->err, SQ_ENOMEM, "out of memory");
    for (uint64_t r = 0; r < v->rows; r++) {
        sq_decode_for(v->codec, SQ_ISA_PORTABLE)(v, r, r + 1, row);
        for (uint64_t j = 0; j < v->cols; j++)
            if (fabsf(row[j]) > b->gmax[j]) b->gmax[j] = fabsf(row[j]);
    }
    free(row);
    return SQ_OK;
}

/* perm is a permutation; in_scale is finite and non-zero, and dividing the
 * largest value a stored column can hold by it stays finite. */
static sq_status check_xform(const sq_tview *v, bound_ctx *b, uint64_t group_len) {
    const uint32_t *perm = sq_tview_perm(v);
    const float *in_scale = sq_tview_in_scale(v);
    if (perm) {
        uint8_t *seen = calloc((size_t)v->cols, 1);
        if (!seen) return sq_err_set(b->err, SQ_ENOMEM, "out of memory");
        for (uint64_t j = 0; j < v->cols; j++) {
            uint32_t q = perm[j];
            if (q >= v->cols || seen[q]) {
                free(seen);
                return refuse(b->f, b->t, "perm", j * 4, b->err, "entry %llu = %u: not a permutation of 0..%llu",
                              (unsigned long long)j, q, (unsigned long long)(v->cols - 1));
            }
            seen[q] = 1;
        }
        free(seen);
    }
    if (in_scale)
        for (uint64_t j = 0; j < v->cols; j++) {
            float s = in_scale[j], m = b->gmax[j / group_len];
            if (!isfinite(s) || s == 0)
                return refuse(b->f, b->t, "in_scale", j * 4, b->err, "entry %llu = %g: must be finite and non-zero",
                              (unsigned long long)j, (double)s);
            if (!isfinite(m / fabsf(s)))
                return refuse(b->f, b->t, "in_scale", j * 4, b->err,
                              "entry %llu = %g: column %llu's largest value %g divided by it overflows float32",
                              (unsigned long long)j, (double)s, (unsigned long long)j, (double)m);
        }
    return SQ_OK;
}

/* Packed sign links: the bits past the side's length are zero. */
static sq_status check_signs(const sq_tview *v, bound_ctx *b) {
    const sq_xform_desc *xf = sq_xform_list();
    for (int k = 0; k < SQ_XFORM_KINDS; k++) {
        if (!xf[k].packed_bits || !v->xf[k]) continue;
        uint64_t n = xf[k].side == SQ_XF_INPUT ? v->cols : v->rows, nb = (n + 7) / 8;
        uint8_t last = ((const uint8_t *)v->xf[k])[nb - 1];
        if (n % 8 && (last >> (n % 8)))
            return refuse(b->f, b->t, xf[k].part, nb - 1, b->err, "bits past entry %llu are set (0x%02x)",
                          (unsigned long long)n, last);
    }
    return SQ_OK;
}

sq_status sq_tview_check_values(const sq_file *f, const sq_tensor *t, const sq_tview *v, sq_err *err) {
    const sq_codec_family fam = v->codec->family;
    /* column groups: the unit the bounds are kept per (columns for float data) */
    uint64_t gl = fam == SQ_FAMILY_FLOAT ? 1 : sq_codec_group_len(v->params, v->cols);
    uint64_t ng = (v->cols + gl - 1) / gl;
    bound_ctx b = {f, t, calloc((size_t)ng, sizeof(float)), err};
    if (!b.gmax) return sq_err_set(err, SQ_ENOMEM, "out of memory");
    sq_status st;
    switch (fam) {
    case SQ_FAMILY_FLOAT: st = check_float(v, &b); break;
    case SQ_FAMILY_INT: st = check_int(v, &b); break;
    case SQ_FAMILY_LUT:
    case SQ_FAMILY_MX: st = check_lut(v, &b); break;
    default: st = SQ_OK; break; /* the vector families check themselves (c->check, below) */
    }
    char why[256] = "";
    if (!st && v->codec->check && v->codec->check(v, why, sizeof why))
        st = sq_err_set(err, SQ_ECORRUPT, "%s: tensor %s: %s", sq_file_path(f), t->name, why);
    if (!st) st = check_xform(v, &b, gl);
    if (!st) st = check_signs(v, &b);
    free(b.gmax);
    return st;
}
