/* spqr: SpQR's stored form as a codec (spec/codecs.md §13): dense codes in
 * small groups with quantized statistics, plus f16 outliers in CSR. The
 * act-order permutation is the transform chain's perm link, not a part of
 * the codec, so the runtime, the Vulkan host path and §10's checks treat it
 * as they do for GPTQ. The encoder needs XᵀX and lives in quant/
 * (quant/spqr_encode.c); this file is the decode side only. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "codecs/codecs.h"
#include "codecs/spqr/spqr_codec.h"
#include "codecs/spqr/spqr_decode.h"
#include "codecs/spqr/spqr_params.h"

/* The codec's parts in stored order (the sq_spqr_part order less perm). */
enum { P_CODES, P_SCALE_CODES, P_ZERO_CODES, P_STATS2, P_ROW_PTR, P_OUTLIER_COLS, P_OUTLIER_VALS, P_COUNT };

static int spqr_layout(const sq_codec *c, const uint32_t *params, uint64_t rows, uint64_t cols, sq_part_spec *out) {
    (void)c;
    sq_spqr_shape s = sq_spqr_shape_of(params, rows, cols, 0);
    if (!s.group || !s.stat_group) s.group = s.stat_group = 1; /* unchecked params: any shape, never a division by 0 */
    sq_spqr_part sp[SQ_SPQR_NPARTS];
    sq_spqr_parts(&s, sp);
    int n = 0;
    for (int i = 0; i < SQ_SPQR_NPARTS; i++) {
        if (i == SQ_SPQR_PERM) continue; /* the chain's perm link carries it */
        sq_part_spec *o = &out[n++];
        *o = (sq_part_spec){sp[i].name, sp[i].dtype, sp[i].ndim, {0}, 0};
        for (uint32_t k = 0; k < sp[i].ndim; k++) o->dims[k] = sp[i].dims[k];
        if (i == SQ_SPQR_OUTLIER_COLS || i == SQ_SPQR_OUTLIER_VALS) o->flags = SQ_PART_DATA_DIM0; /* nnz */
    }
    return n;
}

/* The view the reference decode reads; perm NULL: kernels work in stored order. */
void sq_spqr_view_from_tview(const sq_tview *t, sq_spqr_view *v) {
    v->shape = sq_spqr_shape_of(t->params, t->rows, t->cols, t->dim0[P_OUTLIER_COLS]);
    v->codes = t->part[P_CODES];
    v->scale_codes = t->part[P_SCALE_CODES];
    v->zero_codes = t->part[P_ZERO_CODES];
    v->stats2 = t->part[P_STATS2];
    v->perm = NULL;
    v->row_ptr = t->part[P_ROW_PTR];
    v->outlier_cols = t->part[P_OUTLIER_COLS];
    v->outlier_vals = t->part[P_OUTLIER_VALS];
}

/* Everything a decode relies on: the two outlier arrays agree on nnz, then
 * sq_spqr_validate (padding bits, finite statistics, CSR offsets and
 * columns, finite outliers). */
static int spqr_check(const sq_tview *t, char *why, size_t n) {
    if (t->dim0[P_OUTLIER_COLS] != t->dim0[P_OUTLIER_VALS]) {
        snprintf(why, n, "spqr: outlier_cols has %llu entries but outlier_vals %llu",
                 (unsigned long long)t->dim0[P_OUTLIER_COLS], (unsigned long long)t->dim0[P_OUTLIER_VALS]);
        return -1;
    }
    sq_spqr_view v;
    sq_spqr_view_from_tview(t, &v);
    sq_err err;
    if (sq_spqr_validate(&v, &err)) {
        snprintf(why, n, "%s", err.msg);
        return -1;
    }
    return 0;
}

static void spqr_decode(const sq_tview *t, uint64_t r0, uint64_t r1, float *out) {
    sq_spqr_view v;
    sq_spqr_view_from_tview(t, &v);
    sq_spqr_decode_rows(&v, r0, r1, out);
}

static void spqr_gemv(const sq_tview *t, const float *x, float *y, uint64_t r0, uint64_t r1) {
    sq_spqr_view v;
    sq_spqr_view_from_tview(t, &v);
    sq_spqr_gemv_portable(&v, x, y, r0, r1);
}

static void spqr_gemv_avx2(const sq_tview *t, const float *x, float *y, uint64_t r0, uint64_t r1) {
    sq_spqr_view v;
    sq_spqr_view_from_tview(t, &v);
    sq_spqr_gemv_avx2(&v, x, y, r0, r1); /* the portable kernel where a group is not a multiple of 8 */
}

/* ---- scheme options: spqr[:wN][:bN][:rN][:sbN][:mse|:minmax][:rht][:cdN][:tX][:oX] ---- */
static void spqr_defaults(const sq_codec *c, uint32_t *p) {
    (void)c;
    p[SQ_SPQR_P_BITS] = SQ_SPQR_DEFAULT_WBITS | SQ_SPQR_DEFAULT_STAT_BITS << 8 | SQ_SPQR_SEARCH_BIT | /* :mse by default */
                        SQ_SPQR_DEFAULT_REFINE << SQ_SPQR_REFINE_SHIFT;
    p[SQ_SPQR_P_GROUPS] = SQ_SPQR_DEFAULT_GROUP | SQ_SPQR_DEFAULT_STAT_GROUP << 16;
    p[SQ_SPQR_P_TAU] = sq_spqr_f32_bits(SQ_SPQR_DEFAULT_TAU);
    p[SQ_SPQR_P_BUDGET] = 0;
}

/* A whole decimal integer in [lo, hi], or -1. */
static long int_in(const char *s, long lo, long hi) {
    if (*s < '0' || *s > '9') return -1;
    char *end;
    long v = strtol(s, &end, 10);
    return *end || v < lo || v > hi ? -1 : v;
}

/* A whole decimal number (no sign, no exponent games: digits and one point), or NaN. */
static float num(const char *s) {
    int digits = 0, points = 0;
    for (const char *q = s; *q; q++) {
        if (*q >= '0' && *q <= '9') digits++;
        else if (*q == '.') points++;
        else return NAN;
    }
    return digits && points <= 1 ? strtof(s, NULL) : NAN;
}

static int spqr_scheme_opt(const sq_codec *c, const char *tok, uint32_t *p, char *why, size_t n) {
    (void)c;
    long v;
    float f;
    if (tok[0] == 'w' && tok[1] >= '0' && tok[1] <= '9') {
        if ((v = int_in(tok + 1, 2, SQ_SPQR_MAX_WBITS)) < 0)
            return snprintf(why, n, "weight bits must be w2 .. w%u", SQ_SPQR_MAX_WBITS), -1;
        p[SQ_SPQR_P_BITS] = (p[SQ_SPQR_P_BITS] & ~0xffu) | (uint32_t)v;
    } else if (tok[0] == 's' && tok[1] == 'b' && tok[2] >= '0' && tok[2] <= '9') {
        if ((v = int_in(tok + 2, 1, 8)) < 0) return snprintf(why, n, "statistic bits must be sb1 .. sb8"), -1;
        p[SQ_SPQR_P_BITS] = (p[SQ_SPQR_P_BITS] & ~0xff00u) | (uint32_t)v << 8;
    } else if (tok[0] == 'b' && tok[1] >= '0' && tok[1] <= '9') {
        if ((v = int_in(tok + 1, 1, SQ_SPQR_MAX_GROUP)) < 0)
            return snprintf(why, n, "first-level group (beta1) must be b1 .. b%u weights", SQ_SPQR_MAX_GROUP), -1;
        p[SQ_SPQR_P_GROUPS] = (p[SQ_SPQR_P_GROUPS] & 0xffff0000u) | (uint32_t)v;
    } else if (tok[0] == 'r' && tok[1] >= '0' && tok[1] <= '9') {
        if ((v = int_in(tok + 1, 1, SQ_SPQR_MAX_GROUP)) < 0)
            return snprintf(why, n, "second-level group (beta2) must be r1 .. r%u rows", SQ_SPQR_MAX_GROUP), -1;
        p[SQ_SPQR_P_GROUPS] = (p[SQ_SPQR_P_GROUPS] & 0xffffu) | (uint32_t)v << 16;
    } else if (!strcmp(tok, "mse")) {
        p[SQ_SPQR_P_BITS] |= SQ_SPQR_SEARCH_BIT;
    } else if (!strcmp(tok, "minmax")) { /* the min-max statistics of files made before :mse was the default */
        p[SQ_SPQR_P_BITS] &= ~SQ_SPQR_SEARCH_BIT;
    } else if (!strcmp(tok, "rht")) {
        p[SQ_SPQR_P_BITS] |= SQ_SPQR_RHT_BIT;
    } else if (tok[0] == 'c' && tok[1] == 'd' && tok[2] >= '0' && tok[2] <= '9') {
        if ((v = int_in(tok + 2, 0, SQ_SPQR_MAX_REFINE)) < 0)
            return snprintf(why, n, "coordinate-descent passes must be cd0 .. cd%u", SQ_SPQR_MAX_REFINE), -1;
        p[SQ_SPQR_P_BITS] = (p[SQ_SPQR_P_BITS] & ~(0xfu << SQ_SPQR_REFINE_SHIFT)) | (uint32_t)v << SQ_SPQR_REFINE_SHIFT;
    } else if (tok[0] == 't' && ((tok[1] >= '0' && tok[1] <= '9') || tok[1] == '.')) {
        if (!((f = num(tok + 1)) >= 0) || !isfinite(f))
            return snprintf(why, n, "outlier threshold tau must be a number >= 0 (t0: no outliers)"), -1;
        p[SQ_SPQR_P_TAU] = f > 0 ? sq_spqr_f32_bits(f) : 0;
    } else if (tok[0] == 'o' && ((tok[1] >= '0' && tok[1] <= '9') || tok[1] == '.')) {
        if (!((f = num(tok + 1)) >= 0 && f < 100))
            return snprintf(why, n, "outlier budget must be a percentage in [0, 100) (o0: none)"), -1;
        p[SQ_SPQR_P_BUDGET] = f > 0 ? sq_spqr_f32_bits(f) : 0;
    } else {
        return 0;
    }
    return 1;
}

/* The shortest decimal that reads back as the same float. */
static void put_float(char *out, size_t n, const char *pre, float f) {
    for (int prec = 1; prec <= 9; prec++) {
        snprintf(out, n, "%s%.*g", pre, prec, (double)f);
        if (strtof(out + strlen(pre), NULL) == f) return;
    }
}

static void spqr_scheme_format(const sq_codec *c, const uint32_t *p, char *out, size_t n) {
    (void)c;
    char buf[96], f[24];
    size_t k = (size_t)snprintf(buf, sizeof buf, ":w%u", sq_spqr_p_wbits(p));
    if (sq_spqr_p_group(p) != SQ_SPQR_DEFAULT_GROUP) k += (size_t)snprintf(buf + k, sizeof buf - k, ":b%u", sq_spqr_p_group(p));
    if (sq_spqr_p_stat_group(p) != SQ_SPQR_DEFAULT_STAT_GROUP)
        k += (size_t)snprintf(buf + k, sizeof buf - k, ":r%u", sq_spqr_p_stat_group(p));
    if (sq_spqr_p_stat_bits(p) != SQ_SPQR_DEFAULT_STAT_BITS)
        k += (size_t)snprintf(buf + k, sizeof buf - k, ":sb%u", sq_spqr_p_stat_bits(p));
    if (!sq_spqr_p_search(p)) k += (size_t)snprintf(buf + k, sizeof buf - k, ":minmax");
    if (sq_spqr_p_rht(p)) k += (size_t)snprintf(buf + k, sizeof buf - k, ":rht");
    if (sq_spqr_p_refine(p) != SQ_SPQR_DEFAULT_REFINE) k += (size_t)snprintf(buf + k, sizeof buf - k, ":cd%u", sq_spqr_p_refine(p));
    if (p[SQ_SPQR_P_TAU] != sq_spqr_f32_bits(SQ_SPQR_DEFAULT_TAU)) {
        put_float(f, sizeof f, ":t", sq_spqr_p_tau(p));
        k += (size_t)snprintf(buf + k, sizeof buf - k, "%s", f);
    }
    if (p[SQ_SPQR_P_BUDGET]) {
        put_float(f, sizeof f, ":o", sq_spqr_p_budget(p));
        k += (size_t)snprintf(buf + k, sizeof buf - k, "%s", f);
    }
    snprintf(out, n, "%s", buf);
}

static int spqr_check_params(const sq_codec *c, const uint32_t *p, char *why, size_t n) {
    (void)c;
    const uint32_t wb = sq_spqr_p_wbits(p), sb = sq_spqr_p_stat_bits(p), g = sq_spqr_p_group(p), r = sq_spqr_p_stat_group(p);
    const float tau = sq_spqr_p_tau(p), bud = sq_spqr_p_budget(p);
    if (p[SQ_P_GROUP]) return snprintf(why, n, "params[0] must be 0 (spqr's groups are in params[5])"), -1;
    if (p[SQ_P_XFORM] != 0 && p[SQ_P_XFORM] != SQ_XF_PERM && p[SQ_P_XFORM] != SQ_XF_RHT_IN)
        /* also keeps sq_layout within SQ_CODEC_MAX_PARTS entries */
        return snprintf(why, n, "params[3] = 0x%x: spqr takes one link, perm or rht_in (its 7 parts and one link are "
                        "the 8 a tensor can have)", p[SQ_P_XFORM]), -1;
    if (p[SQ_SPQR_P_BITS] >> 22 || wb < 2 || wb > SQ_SPQR_MAX_WBITS || sb < 1 || sb > 8)
        return snprintf(why, n, "params[4] = 0x%x: weight bits %u (2..%u) / statistic bits %u (1..8)",
                        p[SQ_SPQR_P_BITS], wb, SQ_SPQR_MAX_WBITS, sb), -1;
    if (g < 1 || g > SQ_SPQR_MAX_GROUP || r < 1 || r > SQ_SPQR_MAX_GROUP)
        return snprintf(why, n, "params[5] = 0x%x: group %u / statistics group %u out of 1..%u", p[SQ_SPQR_P_GROUPS], g,
                        r, SQ_SPQR_MAX_GROUP), -1;
    if (p[SQ_SPQR_P_TAU] && !(isfinite(tau) && tau > 0))
        return snprintf(why, n, "params[6] = 0x%08x: tau must be 0 or a finite positive float", p[SQ_SPQR_P_TAU]), -1;
    if (p[SQ_SPQR_P_BUDGET] && !(bud > 0 && bud < 100))
        return snprintf(why, n, "params[7] = 0x%08x: the outlier budget must be 0 or a percentage in (0, 100)",
                        p[SQ_SPQR_P_BUDGET]), -1;
    if (p[SQ_SPQR_P_BUDGET] && !p[SQ_SPQR_P_TAU])
        return snprintf(why, n, "an outlier budget (o) with tau 0 (no outliers) contradicts itself"), -1;
    return 0;
}

/* The q8 kernel pays in its AVX-512 VBMI form (groups of 16, 32 or a
 * multiple of 64); the portable one is the reference, slower than the
 * exact kernels. */
static int spqr_fast_pays(const sq_tview *t, sq_isa isa) { return isa >= SQ_ISA_AVX512 && sq_spqr_q8_avx512_ok(t); }

static const sq_codec_cpu spqr_cpu = {
    .decode = {[SQ_ISA_PORTABLE] = spqr_decode},
    .gemv = {[SQ_ISA_PORTABLE] = spqr_gemv, [SQ_ISA_AVX2] = spqr_gemv_avx2},
    .fast = {[SQ_ISA_PORTABLE] = {SQ_ACT_Q8, .fn.q8 = sq_spqr_gemv_q8_portable},
             [SQ_ISA_AVX512] = {SQ_ACT_Q8, .fn.q8 = sq_spqr_gemv_q8_avx512}},
    .fast_pays = spqr_fast_pays,
};

const sq_codec sq_codec_spqr = {
    .id = SQ_CODEC_SPQR,
    .name = "spqr",
    .family = SQ_FAMILY_SPARSE_DENSE,
    .technique_flag = SQ_FLAG_SPQR,
    .bits = SQ_SPQR_DEFAULT_WBITS,
    .group_ok = SQ_GROUPOK_NONE,
    .layout = spqr_layout,
    .check = spqr_check,
    .defaults = spqr_defaults,
    .scheme_opt = spqr_scheme_opt,
    .scheme_format = spqr_scheme_format,
    .check_params = spqr_check_params,
    .enc = NULL, /* quant/spqr_encode.c, through quant/encoders.c: it needs XᵀX */
    .cpu = &spqr_cpu,
};
