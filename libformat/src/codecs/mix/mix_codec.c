/* mix: per-block mixed precision inside a tensor (spec/codecs.md §14). The
 * descriptor, its layout and check hook, the scheme options
 * (mix:BPW[:wABCD][:gN][:noao]) and the portable decode and GEMV. The
 * encoder needs XᵀX and lives in quant/ (quant/mix_encode.c). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "codecs/codecs.h"
#include "codecs/mix/mix_format.h"
#include "codecs/mix/mix_kernels.h"

static int mix_layout(const sq_codec *c, const uint32_t *p, uint64_t rows, uint64_t cols, sq_part_spec *out) {
    (void)c;
    const uint64_t B = p[SQ_P_GROUP] ? p[SQ_P_GROUP] : SQ_MIX_DEFAULT_BLOCK; /* unchecked params: never a division by 0 */
    const uint64_t nb = sq_mix_nblocks(cols, B);
    out[SQ_MIX_WIDTHS] = (sq_part_spec){"widths", SQ_DT_U8, 2, {rows, sq_mix_wbytes(nb)}, 0};
    out[SQ_MIX_SCALES] = (sq_part_spec){"scales", SQ_DT_F16, 2, {rows, nb}, 0};
    out[SQ_MIX_MINS] = (sq_part_spec){"mins", SQ_DT_F16, 2, {rows, nb}, 0};
    out[SQ_MIX_ROW_PTR] = (sq_part_spec){"row_ptr", SQ_DT_U32, 1, {rows + 1}, 0};
    out[SQ_MIX_CODES] = (sq_part_spec){"codes", SQ_DT_U8, 1, {0}, SQ_PART_DATA_DIM0}; /* row_ptr[rows] bytes */
    return SQ_MIX_NPARTS;
}

void sq_mix_view_of(const sq_tview *t, sq_mix_view *v) {
    v->rows = t->rows;
    v->cols = t->cols;
    v->B = t->params[SQ_P_GROUP];
    v->nb = sq_mix_nblocks(t->cols, v->B);
    v->wb = sq_mix_wbytes(v->nb);
    for (unsigned k = 0; k < 4; k++) v->width[k] = sq_mix_width(t->params, k);
    v->widths = t->part[SQ_MIX_WIDTHS];
    v->scales = t->part[SQ_MIX_SCALES];
    v->mins = t->part[SQ_MIX_MINS];
    v->row_ptr = t->part[SQ_MIX_ROW_PTR];
    v->codes = t->part[SQ_MIX_CODES];
    v->ncodes = t->dim0[SQ_MIX_CODES];
}

int sq_mix_validate(const sq_mix_view *v, char *why, size_t n) {
    if (v->row_ptr[0] != 0) return snprintf(why, n, "mix: row_ptr[0] = %u, must be 0", v->row_ptr[0]), -1;
    for (uint64_t r = 0; r < v->rows; r++) {
        const uint8_t *wr = v->widths + r * v->wb;
        uint64_t bytes = 0;
        for (uint64_t j = 0; j < v->nb; j++)
            bytes += sq_mix_block_bytes(sq_mix_block_len(v->cols, v->B, j), v->width[sq_mix_wcode(wr, j)]);
        if (v->nb & 3 && wr[v->wb - 1] >> (2 * (v->nb & 3)))
            return snprintf(why, n, "mix: row %llu: width padding bits are not zero", (unsigned long long)r), -1;
        if ((uint64_t)v->row_ptr[r + 1] < v->row_ptr[r] || v->row_ptr[r + 1] - v->row_ptr[r] != bytes)
            return snprintf(why, n, "mix: row %llu: row_ptr gives %lld code bytes but its block widths add up to %llu",
                            (unsigned long long)r, (long long)v->row_ptr[r + 1] - (long long)v->row_ptr[r],
                            (unsigned long long)bytes), -1;
        for (uint64_t j = 0; j < v->nb; j++) {
            const float s = sq_f16_to_f32(v->scales[r * v->nb + j]), m = sq_f16_to_f32(v->mins[r * v->nb + j]);
            if (!isfinite(s) || !isfinite(m))
                return snprintf(why, n, "mix: row %llu block %llu: scale %g / min %g not finite", (unsigned long long)r,
                                (unsigned long long)j, (double)s, (double)m), -1;
        }
    }
    if (v->row_ptr[v->rows] != v->ncodes)
        return snprintf(why, n, "mix: row_ptr ends at %u but the codes part holds %llu bytes", v->row_ptr[v->rows],
                        (unsigned long long)v->ncodes), -1;
    return 0;
}

static int mix_check(const sq_tview *t, char *why, size_t n) {
    sq_mix_view v;
    sq_mix_view_of(t, &v);
    return sq_mix_validate(&v, why, n);
}

void sq_mix_decode_rows(const sq_mix_view *v, uint64_t r0, uint64_t r1, float *out) {
    for (uint64_t r = r0; r < r1; r++) {
        const uint8_t *wr = v->widths + r * v->wb, *blk = v->codes + v->row_ptr[r];
        float *o = out + (r - r0) * v->cols;
        for (uint64_t j = 0; j < v->nb; j++) {
            const uint32_t b = v->width[sq_mix_wcode(wr, j)];
            const uint64_t len = sq_mix_block_len(v->cols, v->B, j);
            const float s = sq_f16_to_f32(v->scales[r * v->nb + j]), m = sq_f16_to_f32(v->mins[r * v->nb + j]);
            for (uint64_t i = 0; i < len; i++) o[j * v->B + i] = s * (float)sq_mix_code(blk, b, i) + m;
            blk += sq_mix_block_bytes(len, b);
        }
    }
}

/* y = Σ_blocks s·Σq·x + m·Σx, in block order. */
void sq_mix_gemv_portable(const sq_mix_view *v, const float *x, float *y, uint64_t r0, uint64_t r1) {
    for (uint64_t r = r0; r < r1; r++) {
        const uint8_t *wr = v->widths + r * v->wb, *blk = v->codes + v->row_ptr[r];
        float acc = 0;
        for (uint64_t j = 0; j < v->nb; j++) {
            const uint32_t b = v->width[sq_mix_wcode(wr, j)];
            const uint64_t len = sq_mix_block_len(v->cols, v->B, j);
            const float *xb = x + j * v->B;
            float dq = 0, sx = 0;
            for (uint64_t i = 0; i < len; i++) {
                dq += (float)sq_mix_code(blk, b, i) * xb[i];
                sx += xb[i];
            }
            acc += sq_f16_to_f32(v->scales[r * v->nb + j]) * dq + sq_f16_to_f32(v->mins[r * v->nb + j]) * sx;
            blk += sq_mix_block_bytes(len, b);
        }
        y[r] = acc;
    }
}

static void mix_decode(const sq_tview *t, uint64_t r0, uint64_t r1, float *out) {
    sq_mix_view v;
    sq_mix_view_of(t, &v);
    sq_mix_decode_rows(&v, r0, r1, out);
}

static void mix_gemv(const sq_tview *t, const float *x, float *y, uint64_t r0, uint64_t r1) {
    sq_mix_view v;
    sq_mix_view_of(t, &v);
    sq_mix_gemv_portable(&v, x, y, r0, r1);
}

static void mix_gemv_avx2(const sq_tview *t, const float *x, float *y, uint64_t r0, uint64_t r1) {
    sq_mix_view v;
    sq_mix_view_of(t, &v);
    sq_mix_gemv_avx2(&v, x, y, r0, r1);
}

static void mix_gemv_avx512(const sq_tview *t, const float *x, float *y, uint64_t r0, uint64_t r1) {
    sq_mix_view v;
    sq_mix_view_of(t, &v);
    sq_mix_gemv_avx512(&v, x, y, r0, r1);
}

/* ---- scheme options: mix:BPW[:wABCD][:noao] (the block: the generic :g32/:g64/:g128) ---- */
static void mix_defaults(const sq_codec *c, uint32_t *p) {
    (void)c;
    p[SQ_MIX_P_TARGET] = SQ_MIX_DEFAULT_TARGET;
    p[SQ_MIX_P_WIDTHS] = SQ_MIX_DEFAULT_WIDTHS;
    p[SQ_MIX_P_ENC] = SQ_MIX_ENC_ACT_ORDER;
}

static int widths_ok(uint32_t w) {
    if (w >> 16) return 0;
    uint32_t prev = 0;
    for (unsigned k = 0; k < 4; k++) {
        uint32_t b = w >> (4 * k) & 15u;
        if (b <= prev || b > 8) return 0;
        prev = b;
    }
    return 1;
}

static int mix_scheme_opt(const sq_codec *c, const char *tok, uint32_t *p, char *why, size_t n) {
    (void)c;
    if ((tok[0] >= '0' && tok[0] <= '9') || tok[0] == '.') { /* the target bpw: digits and at most one point */
        int digits = 0, points = 0;
        for (const char *q = tok; *q; q++) {
            if (*q >= '0' && *q <= '9') digits++;
            else if (*q == '.') points++;
            else digits = -1000;
        }
        const double t = strtod(tok, NULL);
        if (digits <= 0 || points > 1 || !(t * 1000 >= SQ_MIX_MIN_TARGET - 0.5 && t * 1000 <= SQ_MIX_MAX_TARGET + 0.5))
            return snprintf(why, n, "the target bits per weight must be a number from 1 to 16 (e.g. mix:3.5)"), -1;
        p[SQ_MIX_P_TARGET] = (uint32_t)lround(t * 1000);
        return 1;
    }
    if (tok[0] == 'w' && tok[1] >= '0' && tok[1] <= '9') {
        if (strlen(tok) != 5) return snprintf(why, n, "the width set is four digits 1..8, increasing (e.g. w2348)"), -1;
        uint32_t w = 0;
        for (unsigned k = 0; k < 4; k++) w |= (uint32_t)(tok[1 + k] - '0') << (4 * k);
        for (unsigned k = 0; k < 4; k++)
            if (tok[1 + k] < '0' || tok[1 + k] > '9') w = 0;
        if (!widths_ok(w)) return snprintf(why, n, "the width set is four digits 1..8, increasing (e.g. w2348)"), -1;
        p[SQ_MIX_P_WIDTHS] = w;
        return 1;
    }
    if (!strcmp(tok, "noao")) {
        p[SQ_MIX_P_ENC] &= ~SQ_MIX_ENC_ACT_ORDER;
        return 1;
    }
    return 0;
}

static void mix_scheme_format(const sq_codec *c, const uint32_t *p, char *out, size_t n) {
    (void)c;
    char buf[64];
    const uint32_t t = p[SQ_MIX_P_TARGET];
    size_t k = (size_t)snprintf(buf, sizeof buf, ":%u", t / 1000);
    if (t % 1000) {
        char frac[8];
        snprintf(frac, sizeof frac, "%03u", t % 1000);
        for (int i = 2; i > 0 && frac[i] == '0'; i--) frac[i] = 0;
        k += (size_t)snprintf(buf + k, sizeof buf - k, ".%s", frac);
    }
    if (p[SQ_MIX_P_WIDTHS] != SQ_MIX_DEFAULT_WIDTHS)
        k += (size_t)snprintf(buf + k, sizeof buf - k, ":w%u%u%u%u", sq_mix_width(p, 0), sq_mix_width(p, 1),
                              sq_mix_width(p, 2), sq_mix_width(p, 3));
    if (!(p[SQ_MIX_P_ENC] & SQ_MIX_ENC_ACT_ORDER)) k += (size_t)snprintf(buf + k, sizeof buf - k, ":noao");
    snprintf(out, n, "%s", buf);
}

static int mix_check_params(const sq_codec *c, const uint32_t *p, char *why, size_t n) {
    (void)c;
    if (p[SQ_P_GROUP] != 32 && p[SQ_P_GROUP] != 64 && p[SQ_P_GROUP] != 128)
        return snprintf(why, n, "params[0] = %u: the mix block is 32, 64 or 128 weights", p[SQ_P_GROUP]), -1;
    if (p[SQ_P_FLAGS] || p[SQ_P_SCALE_DTYPE])
        return snprintf(why, n, "params[1] and params[2] must be 0 for mix (its scales are f16)"), -1;
    if (p[SQ_P_XFORM] & ~(uint32_t)SQ_XF_PERM)
        return snprintf(why, n, "params[3] = 0x%x: mix takes only the perm link", p[SQ_P_XFORM]), -1;
    if (p[SQ_MIX_P_TARGET] < SQ_MIX_MIN_TARGET || p[SQ_MIX_P_TARGET] > SQ_MIX_MAX_TARGET)
        return snprintf(why, n, "params[4] = %u: the target bpw (thousandths) must be 1000..16000", p[SQ_MIX_P_TARGET]), -1;
    if (!widths_ok(p[SQ_MIX_P_WIDTHS]))
        return snprintf(why, n, "params[5] = 0x%x: the width set must be four increasing widths 1..8",
                        p[SQ_MIX_P_WIDTHS]), -1;
    if (p[SQ_MIX_P_ENC] & ~SQ_MIX_ENC_ACT_ORDER || p[7])
        return snprintf(why, n, "params[6] = 0x%x / params[7] = 0x%x: unknown mix settings", p[SQ_MIX_P_ENC], p[7]), -1;
    return 0;
}

static const sq_codec_cpu mix_cpu = {
    .decode = {[SQ_ISA_PORTABLE] = mix_decode},
    .gemv = {[SQ_ISA_PORTABLE] = mix_gemv, [SQ_ISA_AVX2] = mix_gemv_avx2, [SQ_ISA_AVX512] = mix_gemv_avx512},
};

const sq_codec sq_codec_mix = {
    .id = SQ_CODEC_MIX,
    .name = "mix",
    .family = SQ_FAMILY_MIXED,
    .technique_flag = SQ_FLAG_MIXED,
    .bits = 4,
    .default_group = SQ_MIX_DEFAULT_BLOCK,
    .group_ok = SQ_GROUPOK_32 | SQ_GROUPOK_64 | SQ_GROUPOK_128,
    .layout = mix_layout,
    .check = mix_check,
    .defaults = mix_defaults,
    .scheme_opt = mix_scheme_opt,
    .scheme_format = mix_scheme_format,
    .check_params = mix_check_params,
    .enc = NULL, /* quant/mix_encode.c, through quant/encoders.c: it needs XᵀX */
    .cpu = &mix_cpu,
};
