/* Codec entries and helpers shared by the codec implementations (internal). */
#ifndef SQUISH_CODECS_H
#define SQUISH_CODECS_H

#include "squish/codec.h"
#include "squish/fp.h"

extern const sq_codec sq_codec_f32, sq_codec_f16, sq_codec_bf16;
extern const sq_codec sq_codec_int8, sq_codec_int4, sq_codec_int3, sq_codec_int2;
extern const sq_codec sq_codec_nf4;
extern const sq_codec sq_codec_fp8_e4m3, sq_codec_fp8_e5m2, sq_codec_fp6_e3m2, sq_codec_fp6_e2m3, sq_codec_fp4_e2m1;
extern const sq_codec sq_codec_mxfp8_e4m3, sq_codec_mxfp8_e5m2, sq_codec_mxfp6_e3m2, sq_codec_mxfp6_e2m3, sq_codec_mxfp4;
extern const sq_codec sq_codec_quip; /* codecs/quip/quip.c */
extern const sq_codec sq_codec_aqlm;
extern const sq_codec sq_codec_spqr;
extern const sq_codec sq_codec_mix; /* codecs/mix/mix_codec.c */

/* Codes are stored in chunks of 32 values per row; the last chunk of a row
 * is zero-padded. bits = 2, 3, 4, 6 or 8. */
#define SQ_CHUNK 32
static inline uint64_t sq_nchunks(uint64_t cols) { return (cols + SQ_CHUNK - 1) / SQ_CHUNK; }
static inline uint64_t sq_row_bytes(uint64_t cols, int bits) { return sq_nchunks(cols) * (uint64_t)(SQ_CHUNK * bits / 8); }

/* Packs/unpacks one chunk of 32 codes (values < 2^bits) in the layouts of spec/codecs.md. */
void sq_pack_chunk(int bits, const uint8_t q[SQ_CHUNK], uint8_t *out);
void sq_unpack_chunk(int bits, const uint8_t *in, uint8_t q[SQ_CHUNK]);

/* Scale storage in f16, bf16 or f32: store rounds, load is exact. */
static inline float sq_scale_round(uint32_t dt, float v) {
    if (dt == SQ_DT_F16) return sq_f16_to_f32(sq_f32_to_f16(v));
    if (dt == SQ_DT_BF16) return sq_bf16_to_f32(sq_f32_to_bf16(v));
    return v;
}
static inline void sq_scale_store(uint32_t dt, void *base, uint64_t i, float v) {
    if (dt == SQ_DT_F16) ((uint16_t *)base)[i] = sq_f32_to_f16(v);
    else if (dt == SQ_DT_BF16) ((uint16_t *)base)[i] = sq_f32_to_bf16(v);
    else ((float *)base)[i] = v;
}
static inline float sq_scale_load(uint32_t dt, const void *base, uint64_t i) {
    if (dt == SQ_DT_F16) return sq_f16_to_f32(((const uint16_t *)base)[i]);
    if (dt == SQ_DT_BF16) return sq_bf16_to_f32(((const uint16_t *)base)[i]);
    return ((const float *)base)[i];
}

/* Group size in columns for params (row grouping -> cols; tensor -> cols). */
static inline uint64_t sq_group_cols(const uint32_t *p, uint64_t cols) { return sq_codec_group_len(p, cols); }
static inline uint64_t sq_ngroups(const uint32_t *p, uint64_t cols) {
    uint64_t g = sq_group_cols(p, cols);
    return (cols + g - 1) / g;
}

/* 2^e as a float for e in [-149, 127], exactly, without libm. */
static inline float sq_pow2f(int e) {
    if (e >= -126) return sq_bits_f32((uint32_t)(e + 127) << 23);
    return sq_bits_f32(1u << (e + 149));
}

/* Round half to even, as a float (for codes; inputs are bounded). */
static inline float sq_rne(float v) { return nearbyintf(v); }

/* AVX2/AVX-512 kernels (kernels_x86.c); NULL-safe to reference when built without x86. */
void sq_int_gemv_avx2(const sq_tview *t, const float *x, float *y, uint64_t r0, uint64_t r1);
void sq_int_gemv_avx512(const sq_tview *t, const float *x, float *y, uint64_t r0, uint64_t r1);
void sq_int_gemv_q8_avx512(const sq_tview *t, const sq_act_q8 *x, float *y, uint64_t r0, uint64_t r1);
void sq_int_gemv_q8_avx2(const sq_tview *t, const sq_act_q8 *x, float *y, uint64_t r0, uint64_t r1);
void sq_int_gemm_q8_avx512(const sq_tview *t, const sq_act_q8 *x, uint32_t T, float *y, uint64_t r0, uint64_t r1);
void sq_act_q8_blocks_avx512(const float *x, uint64_t nblocks, int8_t *q, float *d, int32_t *sum);
void sq_act_q8_blocks_avx2(const float *x, uint64_t nblocks, int8_t *q, float *d, int32_t *sum);
void sq_int_gemm_q8_avx2(const sq_tview *t, const sq_act_q8 *x, uint32_t T, float *y, uint64_t r0, uint64_t r1);
void sq_int_gemm_q8_portable(const sq_tview *t, const sq_act_q8 *x, uint32_t T, float *y, uint64_t r0, uint64_t r1);
void sq_lut4_gemv_avx2(const sq_tview *t, const float *x, float *y, uint64_t r0, uint64_t r1);
void sq_lut8_gemv_avx2(const sq_tview *t, const float *x, float *y, uint64_t r0, uint64_t r1);
void sq_f16_gemv_avx2(const sq_tview *t, const float *x, float *y, uint64_t r0, uint64_t r1);
/* bf16 (float/bf16_x86.c): the summation order of float/bf16_dot.h */
void sq_bf16_gemv_avx2(const sq_tview *t, const float *x, float *y, uint64_t r0, uint64_t r1);
void sq_bf16_gemv_avx512(const sq_tview *t, const float *x, float *y, uint64_t r0, uint64_t r1);

extern const int8_t sq_e2m1_x2[16];
void sq_fp4_gemv_q8_avx2(const sq_tview *t, const sq_act_q8 *x, float *y, uint64_t r0, uint64_t r1);
void sq_fp4_gemv_q8_avx512(const sq_tview *t, const sq_act_q8 *x, float *y, uint64_t r0, uint64_t r1); /* the same bits */

/* Group scales of the table-driven codecs (codec_lut.c). */
float sq_lut_group_scale(const sq_tview *t, uint64_t r, uint64_t g);

/* Validates params for a codec (shared by encode and by reading files);
 * who prefixes the message. */
sq_status sq_codec_check_params(const sq_codec *c, const uint32_t *p, sq_err *err, const char *who);

/* Refuses stored values a decode would turn into NaN or inf (codec_check.c,
 * spec/codecs.md §10); run by sq_tview_open on every tensor it opens. */
sq_status sq_tview_check_values(const sq_file *f, const sq_tensor *t, const sq_tview *v, sq_err *err);
/* Sum of 16 float lanes in one fixed order (j + j+8, then j + j+4, j + j+2,
 * 0 + 1): the q8 kernels that keep one lane per q8 block (quip, spqr) end
 * with it, portable and SIMD alike (codecs/lanes16_avx512.h), so both give
 * the same bits. */
float sq_lanes16_sum(const float l[16]);
#endif
