/* aqlm: additive multi-codebook quantization (spec/codecs.md §12). The
 * descriptor: scheme options MxB (params[4] = M codebooks, params[5] = B
 * bits per code), the three parts, their validation on every open, and
 * the CPU kernels of aqlm_decode.c. The encoder needs XᵀX and lives in
 * quant/aqlm_encode.c (quant/encoders.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aqlm_decode.h"
#include "codecs/codecs.h"

enum { P_M = 4, P_B = 5 };
enum { PART_CODES = 0, PART_CODEBOOKS = 1, PART_SCALES = 2 };

static void view_of(const sq_tview *t, sq_aqlm_view *v) {
    const uint32_t M = t->params[P_M], B = t->params[P_B];
    *v = (sq_aqlm_view){.rows = t->rows,
                        .cols = t->cols,
                        .M = M,
                        .B = B,
                        .codes = t->part[PART_CODES],
                        .codes_bytes = sq_aqlm_codes_bytes(t->rows, t->cols, M, B),
                        .codebooks = t->part[PART_CODEBOOKS],
                        .codebooks_bytes = sq_aqlm_codebooks_bytes(M, B),
                        .scales = t->part[PART_SCALES],
                        .scales_bytes = sq_aqlm_scales_bytes(t->rows)};
}

static int layout(const sq_codec *c, const uint32_t *p, uint64_t rows, uint64_t cols, sq_part_spec *out) {
    (void)c;
    /* params out of range (refused by check_params) give empty parts, never a shift past 31 */
    const int ok = p[P_M] >= 1 && p[P_M] <= SQ_AQLM_MAX_M && p[P_B] >= 1 && p[P_B] <= SQ_AQLM_MAX_B;
    const uint32_t M = ok ? p[P_M] : 0, B = ok ? p[P_B] : 0;
    out[PART_CODES] = (sq_part_spec){"codes", SQ_DT_U8, 1, {sq_aqlm_codes_bytes(rows, cols, M, B)}, 0};
    out[PART_CODEBOOKS] = (sq_part_spec){"codebooks", SQ_DT_F16, 3, {M, ok ? (uint64_t)1 << B : 0, SQ_AQLM_G}, 0};
    out[PART_SCALES] = (sq_part_spec){"scales", SQ_DT_F16, 1, {rows}, 0};
    return 3;
}

static int check(const sq_tview *t, char *why, size_t n) {
    sq_aqlm_view v;
    view_of(t, &v);
    sq_err err;
    if (!sq_aqlm_validate(&v, "aqlm", &err)) return 0;
    snprintf(why, n, "%s", err.msg);
    return -1;
}

static void defaults(const sq_codec *c, uint32_t *p) {
    (void)c;
    p[P_M] = 2;
    p[P_B] = 8;
}

/* "MxB", e.g. 2x8 or 1x16: M codebooks of 2^B codewords. */
static int scheme_opt(const sq_codec *c, const char *tok, uint32_t *p, char *why, size_t n) {
    (void)c;
    if (tok[0] < '0' || tok[0] > '9') return 0;
    char *end;
    unsigned long M = strtoul(tok, &end, 10), B;
    if (*end != 'x' || end[1] < '0' || end[1] > '9') return 0;
    B = strtoul(end + 1, &end, 10);
    if (*end || M < 1 || M > SQ_AQLM_MAX_M || B < 1 || B > SQ_AQLM_MAX_B) {
        snprintf(why, n, "codebooks x bits must be MxB with M in 1..%d and B in 1..%d", SQ_AQLM_MAX_M, SQ_AQLM_MAX_B);
        return -1;
    }
    p[P_M] = (uint32_t)M;
    p[P_B] = (uint32_t)B;
    return 1;
}

static void scheme_format(const sq_codec *c, const uint32_t *p, char *out, size_t n) {
    (void)c;
    snprintf(out, n, ":%ux%u", p[P_M], p[P_B]);
}

static int check_params(const sq_codec *c, const uint32_t *p, char *why, size_t n) {
    (void)c;
    if (p[SQ_P_GROUP])
        return snprintf(why, n, "params[0] (group) must be 0: the group of 8 inputs is fixed"), -1;
    if (p[P_M] < 1 || p[P_M] > SQ_AQLM_MAX_M || p[P_B] < 1 || p[P_B] > SQ_AQLM_MAX_B)
        return snprintf(why, n, "%u codebooks of %u bits: need 1..%d codebooks of 1..%d bits", p[P_M], p[P_B],
                        SQ_AQLM_MAX_M, SQ_AQLM_MAX_B),
               -1;
    if (p[6] || p[7]) return snprintf(why, n, "params[6] and params[7] must be 0"), -1;
    return 0;
}

static void decode(const sq_tview *t, uint64_t r0, uint64_t r1, float *out) {
    sq_aqlm_view v;
    view_of(t, &v);
    sq_aqlm_decode_rows(&v, r0, r1, out);
}

static void gemv_portable(const sq_tview *t, const float *x, float *y, uint64_t r0, uint64_t r1) {
    sq_aqlm_view v;
    view_of(t, &v);
    sq_aqlm_gemv_rows(SQ_ISA_PORTABLE, &v, x, y + r0, r0, r1);
}

static void gemv_avx2(const sq_tview *t, const float *x, float *y, uint64_t r0, uint64_t r1) {
    sq_aqlm_view v;
    view_of(t, &v);
    sq_aqlm_gemv_rows(SQ_ISA_AVX2, &v, x, y + r0, r0, r1);
}

static const sq_codec_cpu aqlm_cpu = {
    .decode = {[SQ_ISA_PORTABLE] = decode},
    .gemv = {[SQ_ISA_PORTABLE] = gemv_portable, [SQ_ISA_AVX2] = gemv_avx2},
};

const sq_codec sq_codec_aqlm = {
    .id = SQ_CODEC_AQLM,
    .name = "aqlm",
    .family = SQ_FAMILY_CODEBOOK,
    .technique_flag = SQ_FLAG_AQLM,
    .bits = 2,
    .group_ok = SQ_GROUPOK_NONE,
    .layout = layout,
    .check = check,
    .defaults = defaults,
    .scheme_opt = scheme_opt,
    .scheme_format = scheme_format,
    .check_params = check_params,
    .enc = NULL, /* quant/aqlm_encode.c: needs XᵀX */
    .cpu = &aqlm_cpu,
};
