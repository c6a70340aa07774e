/* fp4_e2m1: OCP FP4 (E2M1) codes times a group scale (spec/codecs.md §6).
 * The smallest example of a codec in its own file: the family's layout,
 * encoder and portable kernels (codec_lut.c), plus what only FP4 has: an
 * exact integer-activation GEMV, since twice every E2M1 value is a small
 * integer. The descriptor below and one line in codecs/registry.c are all
 * that register it. */
#include "codecs/codecs.h"
#include "codecs/lut/lut.h"

const int8_t sq_e2m1_x2[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

/* y = sum over groups of scale/2 * sum over chunks of d_chunk * (E2M1x2[q] · xq). */
void sq_fp4_gemv_q8(const sq_tview *t, const sq_act_q8 *x, float *y, uint64_t r0, uint64_t r1) {
    const uint64_t cols = t->cols, gl = sq_codec_group_len(t->params, cols), ng = (cols + gl - 1) / gl;
    const uint64_t rb = sq_row_bytes(cols, 4);
    const uint8_t *codes = sq_tview_part(t, "codes");
    for (uint64_t r = r0; r < r1; r++) {
        float total = 0;
        uint8_t q[SQ_CHUNK];
        for (uint64_t g = 0; g < ng; g++) {
            uint64_t c0 = g * gl, c1 = c0 + gl < cols ? c0 + gl : cols;
            float acc = 0;
            for (uint64_t i = c0; i < c1; i += SQ_CHUNK) {
                sq_unpack_chunk(4, codes + r * rb + (i / SQ_CHUNK) * 16, q);
                int32_t dot = 0;
                for (int k = 0; k < SQ_CHUNK; k++) dot += sq_e2m1_x2[q[k]] * x->q[i + (uint64_t)k];
                acc += x->d[i / SQ_CHUNK] * (float)dot;
            }
            total += sq_lut_group_scale(t, r, g) * 0.5f * acc;
        }
        y[r] = total;
    }
}

static const sq_codec_cpu fp4_cpu = {
    .decode = {[SQ_ISA_PORTABLE] = sq_lut_decode},
    .gemv = {[SQ_ISA_PORTABLE] = sq_lut_gemv, [SQ_ISA_AVX2] = sq_lut4_gemv_avx2},
    .fast = {[SQ_ISA_PORTABLE] = {SQ_ACT_Q8, .fn.q8 = sq_fp4_gemv_q8}, [SQ_ISA_AVX2] = {SQ_ACT_Q8, .fn.q8 = sq_fp4_gemv_q8_avx2},
             [SQ_ISA_AVX512] = {SQ_ACT_Q8, .fn.q8 = sq_fp4_gemv_q8_avx512}},
};

const sq_codec sq_codec_fp4_e2m1 = {
    .id = SQ_CODEC_FP4_E2M1,
    .name = "fp4_e2m1",
    .family = SQ_FAMILY_LUT,
    .technique_flag = SQ_FLAG_FP4,
    .bits = 4,
    .minifloat = SQ_MF_E2M1 + 1,
    .default_group = 32,
    .group_ok = SQ_GROUPOK_ROW | SQ_GROUPOK_TENSOR | SQ_GROUPOK_32 | SQ_GROUPOK_64 | SQ_GROUPOK_128 | SQ_GROUPOK_256,
    .opts = SQ_OPT_SCALE_DTYPE,
    .layout = sq_lut_layout,
    .enc = &sq_lut_encoder,
    .cpu = &fp4_cpu,
};
