/* quip: QuIP# without fine-tuning (spec/codecs.md §11): E8P12 lattice codes
 * for groups of 8 weights, a residual stage at 3 and 4 bits, f16 scales per
 * row and stage. The randomized Hadamard transforms on both sides are not
 * parts of this codec: the encoder stores its sign vectors as the
 * transform chain's rht_in / rht_out links, so the kernels here see
 * activations already in the transformed basis and return outputs in it
 * (xform/xform.c does the rest). The encoder is quant/quip.c (it needs
 * the layer's XᵀX). */
#include <stdio.h>
#include <string.h>

#include "codecs/codecs.h"
#include "codecs/quip/e8p.h"
#include "codecs/quip/quip_codec.h"
#include "codecs/quip/quip_decode.h"

uint32_t sq_quip_bits_of(const uint32_t *params) { return params[SQ_QUIP_P_BITS]; }

static int quip_layout(const sq_codec *c, const uint32_t *p, uint64_t rows, uint64_t cols, sq_part_spec *out) {
    (void)c;
    const uint32_t bits = p[SQ_QUIP_P_BITS], nested = p[SQ_QUIP_P_NESTED];
    const uint64_t G = cols / 8;
    int n = 0;
    out[n++] = (sq_part_spec){"codes", SQ_DT_U16, 2, {rows, G}, 0};
    if (bits > 2) out[n++] = (sq_part_spec){"codes2", bits == 4 && !nested ? SQ_DT_U16 : SQ_DT_U8, 2, {rows, G}, 0};
    if (bits == 4 && nested) out[n++] = (sq_part_spec){"codes3", SQ_DT_U8, 2, {rows, G}, 0};
    out[n++] = (sq_part_spec){"scales", SQ_DT_F16, 2, {sq_quip_stages(bits, nested), rows}, 0};
    return n;
}

void sq_quip_view_from_tview(const sq_tview *t, sq_quip_view *v) {
    const uint32_t bits = t->params[SQ_QUIP_P_BITS], nested = t->params[SQ_QUIP_P_NESTED];
    const uint32_t S = sq_quip_stages(bits, nested);
    *v = (sq_quip_view){.rows = t->rows,
                        .cols = t->cols,
                        .bits = bits,
                        .nested = nested,
                        .codes = t->part[0],
                        .codes2 = S > 1 ? t->part[1] : NULL,
                        .codes3 = S > 2 ? t->part[2] : NULL,
                        .su = NULL,
                        .sv = NULL,
                        .scales = t->part[S]};
}

static void quip_defaults(const sq_codec *c, uint32_t *p) {
    (void)c;
    p[SQ_QUIP_P_BITS] = 2;
}

/* "2", "3" or "4": bits per weight (3 and 4 take the nested stages);
 * "rvq" after 3 or 4: quip-sharp's residual stages instead. */
static int quip_scheme_opt(const sq_codec *c, const char *tok, uint32_t *p, char *why, size_t n) {
    (void)c;
    if (!strcmp(tok, "rvq")) {
        if (p[SQ_QUIP_P_BITS] < 3) {
            snprintf(why, n, "rvq (quip-sharp's residual stages) follows 3 or 4 bits: quip:3:rvq, quip:4:rvq");
            return -1;
        }
        p[SQ_QUIP_P_NESTED] = 0;
        return 1;
    }
    if (tok[0] < '0' || tok[0] > '9') return 0;
    if ((tok[0] == '2' || tok[0] == '3' || tok[0] == '4') && !tok[1]) {
        p[SQ_QUIP_P_BITS] = (uint32_t)(tok[0] - '0');
        p[SQ_QUIP_P_NESTED] = p[SQ_QUIP_P_BITS] > 2;
        return 1;
    }
    snprintf(why, n, "quip takes 2, 3 or 4 bits per weight");
    return -1;
}

static void quip_scheme_format(const sq_codec *c, const uint32_t *p, char *out, size_t n) {
    (void)c;
    snprintf(out, n, ":%u%s", p[SQ_QUIP_P_BITS], p[SQ_QUIP_P_BITS] > 2 && !p[SQ_QUIP_P_NESTED] ? ":rvq" : "");
}

static int quip_check_params(const sq_codec *c, const uint32_t *p, char *why, size_t n) {
    (void)c;
    if (p[SQ_P_GROUP]) {
        snprintf(why, n, "params[0] (group) is %u, must be 0", p[SQ_P_GROUP]);
        return -1;
    }
    const uint32_t bits = p[SQ_QUIP_P_BITS];
    if (bits < 2 || bits > 4) {
        snprintf(why, n, "params[4] (bits per weight) is %u, must be 2, 3 or 4", bits);
        return -1;
    }
    const uint32_t nested = p[SQ_QUIP_P_NESTED];
    if (nested > 1 || (nested && bits == 2)) {
        snprintf(why, n, "params[5] (nested stages) is %u, must be 0, or 1 at 3 and 4 bits", nested);
        return -1;
    }
    for (int i = SQ_QUIP_P_NESTED + 1; i < SQ_NPARAMS; i++)
        if (p[i]) {
            snprintf(why, n, "params[%d] is %u, must be 0", i, p[i]);
            return -1;
        }
    return 0;
}

/* Every code of both codebooks is valid, so what a decode relies on is the
 * shape (whole groups of 8) and finite scales. */
static int quip_check(const sq_tview *t, char *why, size_t n) {
    if (t->cols % 8) {
        snprintf(why, n, "%llu columns: quip stores whole groups of 8 (part codes)", (unsigned long long)t->cols);
        return -1;
    }
    sq_quip_view v;
    sq_quip_view_from_tview(t, &v);
    const uint64_t ns = sq_quip_stages(v.bits, v.nested) * v.rows;
    for (uint64_t i = 0; i < ns; i++)
        if ((v.scales[i] & 0x7c00) == 0x7c00) {
            snprintf(why, n, "part scales, value %llu (stage %llu, row %llu) is not finite", (unsigned long long)i,
                     (unsigned long long)(i / v.rows), (unsigned long long)(i % v.rows));
            return -1;
        }
    return 0;
}

static void quip_decode_rows(const sq_tview *t, uint64_t r0, uint64_t r1, float *out) {
    sq_quip_view v;
    sq_quip_view_from_tview(t, &v);
    sq_quip_decode_transformed(&v, r0, r1, out);
}

/* One E8P stage of one row: Σ_g (base[A] ⊙ sign[S] + shift[S]) · x_g, the
 * decode's values exactly, accumulated in 8 lanes. */
static float e8p_row_dot(const sq_e8p_tables *tb, const uint16_t *codes, const float *x, uint64_t G) {
    float acc[8] = {0};
    for (uint64_t g = 0; g < G; g++) {
        const unsigned A = codes[g] >> 8, S = codes[g] & 0xFF;
        const float *xg = x + 8 * g, sh = tb->shift[S];
        for (int i = 0; i < 8; i++) acc[i] += (tb->base[A][i] * tb->sign[S][i] + sh) * xg[i];
    }
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

/* One 8-bit stage (E81B or E8R table) of one row. */
static float tab_row_dot(const float (*tab)[8], const uint8_t *codes, const float *x, uint64_t G) {
    float acc[8] = {0};
    for (uint64_t g = 0; g < G; g++)
        for (int i = 0; i < 8; i++) acc[i] += tab[codes[g]][i] * x[8 * g + i];
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

/* y[r] = Σ_s scale[s][r] · (stage s of row r) · x, stage 0 first. */
void sq_quip_gemv_portable(const sq_tview *t, const float *x, float *y, uint64_t r0, uint64_t r1) {
    sq_quip_view v;
    sq_quip_view_from_tview(t, &v);
    const sq_e8p_tables *tb = sq_e8p_tables_get();
    const uint64_t G = v.cols / 8;
    const uint32_t S = sq_quip_stages(v.bits, v.nested);
    for (uint64_t r = r0; r < r1; r++) {
        float s = 0;
        for (uint32_t k = 0; k < S; k++) {
            const sq_quip_book book = sq_quip_stage_book(v.bits, v.nested, k);
            const void *codes = sq_quip_stage_codes(&v, k);
            const float d = book == SQ_QUIP_E8P ? e8p_row_dot(tb, (const uint16_t *)codes + r * G, x, G)
                                                : tab_row_dot(book == SQ_QUIP_E81B ? tb->e81b : tb->e8r,
                                                              (const uint8_t *)codes + r * G, x, G);
            s = k ? s + sq_f16_to_f32(v.scales[k * v.rows + r]) * d : sq_f16_to_f32(v.scales[r]) * d;
        }
        y[r] = s;
    }
}

/* The q8 kernels pay only in their SIMD form (AVX-512 with VBMI and GFNI);
 * the portable ones are the reference, slower than the exact kernels (and,
 * batched, than the runtime's decode-and-multiply GEMM). */
static int quip_fast_pays(const sq_tview *t, sq_isa isa) {
    (void)t;
    return isa >= SQ_ISA_AVX512 && sq_quip_q8_avx512_ok();
}

static const sq_codec_cpu quip_cpu = {
    .decode = {[SQ_ISA_PORTABLE] = quip_decode_rows},
    .gemv = {[SQ_ISA_PORTABLE] = sq_quip_gemv_portable,
#if defined(__x86_64__)
             [SQ_ISA_AVX2] = sq_quip_gemv_avx2,
             [SQ_ISA_AVX512] = sq_quip_gemv_avx512,
#endif
    },
    .fast = {[SQ_ISA_PORTABLE] = {SQ_ACT_Q8, .fn.q8 = sq_quip_gemv_q8_portable},
             [SQ_ISA_AVX512] = {SQ_ACT_Q8, .fn.q8 = sq_quip_gemv_q8_avx512}},
    .fast_pays = quip_fast_pays,
    .gemm_q8 = {[SQ_ISA_PORTABLE] = sq_quip_gemm_q8_portable, [SQ_ISA_AVX512] = sq_quip_gemm_q8_avx512},
    .gemm_pays = quip_fast_pays,
};

const sq_codec sq_codec_quip = {
    .id = SQ_CODEC_QUIP,
    .name = "quip",
    .family = SQ_FAMILY_LATTICE,
    .technique_flag = SQ_FLAG_QUIPSHARP,
    .bits = 2,
    .group_ok = SQ_GROUPOK_NONE,
    .layout = quip_layout,
    .check = quip_check,
    .defaults = quip_defaults,
    .scheme_opt = quip_scheme_opt,
    .scheme_format = quip_scheme_format,
    .check_params = quip_check_params,
    .enc = NULL, /* quant/quip.c: needs the layer's XᵀX */
    .cpu = &quip_cpu,
};
