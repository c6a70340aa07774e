/* Codec traits table. A codec turns a 2-D weight matrix [rows = outputs,
 * cols = inputs] into a fixed list of named parts (codes, scales, zeros,
 * absmax, ...) and back; it also provides a fused decode+dot GEMV kernel.
 * Every per-row operation works on row ranges so callers can thread and
 * stream. Bit layouts: spec/codecs.md. */
#ifndef SQUISH_CODEC_H
#define SQUISH_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "squish/container.h"
#include "squish/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Codec ids as stored in the tensor index (u16). Gaps are reserved for the
 * families named in the comments. */
enum {
    SQ_CODEC_F32 = 1, SQ_CODEC_F16 = 2, SQ_CODEC_BF16 = 3,
    SQ_CODEC_INT8 = 16, SQ_CODEC_INT4 = 17, SQ_CODEC_INT3 = 18, SQ_CODEC_INT2 = 19,
    SQ_CODEC_NF4 = 32,
    SQ_CODEC_FP8_E4M3 = 48, SQ_CODEC_FP8_E5M2 = 49, SQ_CODEC_FP6_E3M2 = 50, SQ_CODEC_FP6_E2M3 = 51,
    SQ_CODEC_FP4_E2M1 = 52,
    SQ_CODEC_MXFP8_E4M3 = 64, SQ_CODEC_MXFP8_E5M2 = 65, SQ_CODEC_MXFP6_E3M2 = 66, SQ_CODEC_MXFP6_E2M3 = 67,
    SQ_CODEC_MXFP4 = 68,
    /* 80..95 AQLM, 96..111 QuIP#, 112..127 SpQR (reserved) */
};

/* Codec parameters (the u32 params[8] of a tensor record). */
enum { SQ_P_GROUP = 0, SQ_P_FLAGS = 1, SQ_P_SCALE_DTYPE = 2, SQ_P_XFORM = 3 };
#define SQ_GROUP_ROW 0u           /* one group per output row ("pc") */
#define SQ_GROUP_TENSOR 0xFFFFFFFFu /* one scale for the whole tensor ("pt") */
enum { SQ_PF_ASYM = 1u << 0, SQ_PF_DQ = 1u << 1 };
/* Input transforms (params[3]), for any codec. The codec's parts hold the
 * matrix in *stored* column order; two optional parts map it back:
 *   perm     u32 [cols]: stored column j is original input column perm[j]
 *                        (GPTQ act-order);
 *   in_scale f32 [cols]: stored column j was multiplied by in_scale[j]
 *                        (AWQ scales that could not be folded elsewhere).
 * Original weight W[r][perm[j]] = stored(r, j) / in_scale[j]. Equivalently
 * y = stored · x' with x'[j] = x[perm[j]] / in_scale[j]. The parts follow
 * the codec's own parts, perm first. */
enum { SQ_XF_PERM = 1u << 0, SQ_XF_IN_SCALE = 1u << 1 };

/* Instruction-set paths for kernels. */
typedef enum sq_isa { SQ_ISA_PORTABLE = 0, SQ_ISA_AVX2 = 1, SQ_ISA_AVX512 = 2, SQ_ISA_COUNT } sq_isa;
const char *sq_isa_name(sq_isa isa);
/* Best path the CPU supports, lowered by SQUISH_ISA=portable|avx2|avx512
 * in the environment (SQUISH_ISA=portable forces the portable C code). Both
 * are read once, at the first call. */
sq_isa sq_isa_active(void);
int sq_isa_supported(sq_isa isa);

#define SQ_CODEC_MAX_PARTS 8

typedef struct sq_part_spec {
    const char *name;
    uint32_t dtype, ndim;
    uint64_t dims[4];
    int scratch; /* working buffer for encode only, not stored */
} sq_part_spec;

/* A tensor whose parts are resolved to memory, ready to decode. */
typedef struct sq_tview {
    const struct sq_codec *codec;
    uint32_t params[SQ_NPARAMS];
    uint64_t rows, cols;
    const void *part[SQ_CODEC_MAX_PARTS]; /* in the order of the codec's layout */
    const uint32_t *perm;   /* input transform parts (NULL when absent) */
    const float *in_scale;
} sq_tview;

typedef void (*sq_decode_fn)(const sq_tview *t, uint64_t r0, uint64_t r1, float *out);
typedef void (*sq_gemv_fn)(const sq_tview *t, const float *x, float *y, uint64_t r0, uint64_t r1);

/* An activation vector quantized to int8 in blocks of 32 with one f32 scale
 * per block (like llama.cpp's Q8_0). Integer GEMV kernels use it to run at
 * memory speed; their result differs from the f32 GEMV by this rounding of
 * x (about 0.2-0.5% relative), so exact paths keep using sq_gemv. */
typedef struct sq_act_q8 {
    uint64_t n, nblocks;
    int8_t *q;    /* nblocks * 32 values, zero padded */
    float *d;     /* scale of each block: x ~ d * q */
    int32_t *sum; /* sum of q over each block */
} sq_act_q8;
sq_status sq_act_q8_init(sq_act_q8 *a, const float *x, uint64_t n, sq_err *err);
void sq_act_q8_free(sq_act_q8 *a);
typedef void (*sq_gemv_q8_fn)(const sq_tview *t, const sq_act_q8 *x, float *y, uint64_t r0, uint64_t r1);

typedef struct sq_codec {
    uint16_t id;
    const char *name;
    uint64_t technique_flag;
    int lossless;        /* decode(encode(w)) == w for inputs of the source dtype */
    uint32_t default_group;
    /* Which group sizes are allowed: bit set of SQ_GROUPOK_* */
    uint32_t group_ok;
    /* Part list for a tensor; returns the count (<= SQ_CODEC_MAX_PARTS). */
    int (*layout)(const uint32_t *params, uint64_t rows, uint64_t cols, sq_part_spec *out);
    /* Optional whole-tensor pass before encode_rows (e.g. per-tensor scale). */
    void (*prepare)(const uint32_t *params, const float *w, uint64_t rows, uint64_t cols, void *const *parts);
    /* Encodes rows [r0, r1); w is the whole tensor, row-major. */
    void (*encode_rows)(const uint32_t *params, const float *w, uint64_t rows, uint64_t cols, uint64_t r0, uint64_t r1,
                        void *const *parts);
    /* Optional whole-tensor pass after all rows are encoded. */
    void (*finalize)(const uint32_t *params, uint64_t rows, uint64_t cols, void *const *parts);
    sq_decode_fn decode[SQ_ISA_COUNT]; /* [PORTABLE] always set; others may be NULL */
    sq_gemv_fn gemv[SQ_ISA_COUNT];
    sq_gemv_q8_fn gemv_q8[SQ_ISA_COUNT]; /* integer-activation GEMV; all NULL if the codec has none */
} sq_codec;

enum { SQ_GROUPOK_ROW = 1, SQ_GROUPOK_TENSOR = 2, SQ_GROUPOK_32 = 4, SQ_GROUPOK_64 = 8, SQ_GROUPOK_128 = 16,
       SQ_GROUPOK_256 = 32, SQ_GROUPOK_NONE = 64 /* codec has no groups */ };

const sq_codec *sq_codec_by_id(uint32_t id);
const sq_codec *sq_codec_by_name(const char *name);
/* All registered codecs, NULL-terminated. */
const sq_codec *const *sq_codec_list(void);
uint64_t sq_codec_technique_flags(uint32_t id);

/* Scheme string CODEC[:gN|:pc|:pt][:sym|:asym][:dq][:s16|:sbf16|:s32] -> codec + params. */
sq_status sq_scheme_parse(const char *s, const sq_codec **codec, uint32_t params[SQ_NPARAMS], sq_err *err);
/* Canonical text of a codec + params, e.g. "int4:g128:asym". */
void sq_scheme_format(const sq_codec *c, const uint32_t params[SQ_NPARAMS], char *out, size_t n);

/* Full part list of a tensor: the codec's layout followed by the input
 * transform parts params[3] asks for. Use this, not c->layout. */
int sq_layout(const sq_codec *c, const uint32_t params[SQ_NPARAMS], uint64_t rows, uint64_t cols, sq_part_spec *out);

/* rows/cols of a tensor as the codecs see it: cols = last dim, rows = rest. */
void sq_tensor_matrix(const sq_tensor *t, uint64_t *rows, uint64_t *cols);
/* Checks that a stored tensor's parts match its codec's layout exactly. */
sq_status sq_codec_check_tensor(const sq_file *f, const sq_tensor *t, sq_err *err);
/* Resolves a stored tensor's parts (decompressing if needed; owned buffers
 * are returned in owned[] and must be freed). */
sq_status sq_tview_open(const sq_file *f, const sq_tensor *t, int skip_checksum, sq_tview *v,
                        void *owned[SQ_CODEC_MAX_PARTS], sq_err *err);

/* Encoded tensor in memory: the codec's parts, allocated. */
typedef struct sq_encoded {
    const sq_codec *codec;
    uint32_t params[SQ_NPARAMS];
    uint64_t rows, cols;
    int nparts;
    sq_part_spec spec[SQ_CODEC_MAX_PARTS];
    void *data[SQ_CODEC_MAX_PARTS];
    uint64_t bytes[SQ_CODEC_MAX_PARTS];
} sq_encoded;

/* Encodes w [rows x cols] with n_threads threads (output does not depend on it). */
sq_status sq_encode(const sq_codec *c, const uint32_t params[SQ_NPARAMS], const float *w, uint64_t rows, uint64_t cols,
                    int n_threads, sq_encoded *out, sq_err *err);
void sq_encoded_free(sq_encoded *e);
/* Allocates zeroed parts for c/params (input transform parts included) for
 * callers that fill the parts themselves (GPTQ). */
sq_status sq_encoded_alloc(const sq_codec *c, const uint32_t params[SQ_NPARAMS], uint64_t rows, uint64_t cols,
                           sq_encoded *out, sq_err *err);
/* Appends input transform parts to an encoded tensor (perm and/or in_scale
 * may be NULL; each given one is copied) and sets params[3]. */
sq_status sq_encoded_set_xform(sq_encoded *e, const uint32_t *perm, const float *in_scale, sq_err *err);
void sq_tview_from_encoded(const sq_encoded *e, sq_tview *v);
/* Bytes of one part (dtype size times its dims). */
uint64_t sq_part_spec_bytes(const sq_part_spec *s);
/* Table-driven codecs (nf4, fp*, mxfp*): the value of every code (2^bits
 * entries) and the code width; NULL for other codecs. Decode is
 * table[code] * group scale. */
const float *sq_codec_value_table(const sq_codec *c, int *bits);
/* Bits per weight of the stored parts (scratch excluded). */
double sq_layout_bpw(const sq_codec *c, const uint32_t params[SQ_NPARAMS], uint64_t rows, uint64_t cols);

/* Kernels through the active ISA (or a chosen one). sq_decode_rows,
 * sq_gemv and the _mt helpers apply the input transform (original column
 * order); the raw per-ISA functions below work in stored column order, so
 * their callers map activations with sq_xform_input first. */
void sq_decode_rows(const sq_tview *t, uint64_t r0, uint64_t r1, float *out);
void sq_gemv(const sq_tview *t, const float *x, float *y, uint64_t r0, uint64_t r1);
/* xs[j] = x[perm[j]] / in_scale[j] for T rows of t->cols values (a copy when t has no transform). */
void sq_xform_input(const sq_tview *t, const float *x, uint64_t T, float *xs);
static inline int sq_tview_has_xform(const sq_tview *t) { return t->perm || t->in_scale; }
sq_decode_fn sq_decode_for(const sq_codec *c, sq_isa isa); /* falls back to lower ISAs */
sq_gemv_fn sq_gemv_for(const sq_codec *c, sq_isa isa);
sq_gemv_q8_fn sq_gemv_q8_for(const sq_codec *c, sq_isa isa); /* NULL if the codec has no q8 path */
/* Multi-threaded helpers over row ranges. */
void sq_decode_mt(const sq_tview *t, float *out, int n_threads);
void sq_gemv_mt(const sq_tview *t, const float *x, float *y, int n_threads);

/* Integer codecs' quantizer, for algorithms that choose codes themselves
 * (GPTQ). sq_int_bits is 0 for other codecs. sq_int_fit derives a group's
 * (scale, zero) from its values exactly as the encoder does (scale rounded
 * to the scale dtype); sq_int_quant rounds one value to a code; sq_int_store
 * writes a group's scale/zero into the parts; sq_int_pack_row packs one
 * row's codes (cols values, stored column order). */
int sq_int_bits(const sq_codec *c);
void sq_int_fit(const sq_codec *c, const uint32_t *params, const float *v, uint64_t n, float *scale, int *zero);
int sq_int_quant(const sq_codec *c, float v, float scale, int zero);
void sq_int_store(const sq_codec *c, const uint32_t *params, uint64_t cols, void *const *parts, uint64_t row,
                  uint64_t group, float scale, int zero);
void sq_int_pack_row(const sq_codec *c, const uint8_t *q, uint64_t cols, void *const *parts, uint64_t row);

/* Runs fn(ctx, i0, i1) over [0, n) split into contiguous chunks on up to
 * n_threads threads. */
void sq_parallel_for(int n_threads, uint64_t n, void (*fn)(void *ctx, uint64_t i0, uint64_t i1), void *ctx);
int sq_default_threads(void);

#ifdef __cplusplus
}
#endif
#endif
