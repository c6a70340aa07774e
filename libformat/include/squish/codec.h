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
/* Transforms (params[3]), for any codec: a typed chain, each link with its
 * own stored part (sq_xform_list() lists them; spec/codecs.md §2.1 defines
 * them). The codec's parts hold the matrix in *stored* order; the links map
 * it back, in this order:
 *   perm     u32 [cols]: stored column j is original input column perm[j]
 *                        (GPTQ act-order);
 *   in_scale f32 [cols]: stored column j was multiplied by in_scale[j]
 *                        (AWQ scales that could not be folded elsewhere).
 * Original weight W[r][perm[j]] = stored(r, j) / in_scale[j]. Equivalently
 * y = stored · x' with x'[j] = x[perm[j]] / in_scale[j]. The transform
 * parts follow the codec's own parts, in chain order. */
enum { SQ_XF_PERM = 1u << 0, SQ_XF_IN_SCALE = 1u << 1, SQ_XF_RHT_IN = 1u << 2, SQ_XF_RHT_OUT = 1u << 3 };
/* Randomized Hadamard links (QuIP#-style incoherence; spec/codecs.md §2.1):
 *   rht_in  u8 [ceil(cols/8)]: input signs s, stored W' = W·diag(s)·Ĥᵀ,
 *                              so y = W'·x' with x' = Ĥ·diag(s)·x;
 *   rht_out u8 [ceil(rows/8)]: output signs t, stored W' = Ĥ·diag(t)·W,
 *                              so y = diag(t)·Ĥᵀ·y'.
 * Ĥ is the normalized Hadamard transform of xform/hadamard.h (Sylvester
 * times a Paley factor, blocks for lengths with no construction); signs are
 * bit-packed, LSB first, a set bit meaning -1. */
typedef enum sq_xform_kind {
    SQ_XFORM_PERM = 0,
    SQ_XFORM_IN_SCALE = 1,
    SQ_XFORM_RHT_IN = 2,
    SQ_XFORM_RHT_OUT = 3,
    SQ_XFORM_KINDS
} sq_xform_kind;

/* Instruction-set paths for kernels. */
typedef enum sq_isa { SQ_ISA_PORTABLE = 0, SQ_ISA_AVX2 = 1, SQ_ISA_AVX512 = 2, SQ_ISA_COUNT } sq_isa;
const char *sq_isa_name(sq_isa isa);
/* Best path the CPU supports, lowered by SQUISH_ISA=portable|avx2|avx512
 * in the environment (SQUISH_ISA=portable forces the portable C code). Both
 * are read once, at the first call. */
sq_isa sq_isa_active(void);
int sq_isa_supported(sq_isa isa);
/* The AVX-512 level (sq_isa_supported) plus VBMI, resp. GFNI, which some
 * kernels need besides (not lowered by SQUISH_ISA: callers also check the
 * ISA they run at). */
int sq_isa_avx512_vbmi(void);
int sq_isa_avx512_gfni(void);

#define SQ_CODEC_MAX_PARTS 8
#define SQ_XFORM_MAX 4 /* links a transform chain can have */

/* One stored part of a tensor. Most parts have a size fixed by the codec,
 * its params and the matrix shape; a part flagged SQ_PART_DATA_DIM0 has a
 * first dimension the encoder chooses from the data (the nnz of a sparse
 * part): readers take it from the file and the codec's check() validates it. */
typedef struct sq_part_spec {
    const char *name;
    uint32_t dtype, ndim;
    uint64_t dims[4];
    uint32_t flags;
} sq_part_spec;
#define SQ_PART_DATA_DIM0 1u

/* A tensor whose parts are resolved to memory, ready to decode. Kernels
 * reach a part by name (sq_tview_part) or through the index constants the
 * codec's own source defines for its layout; transform parts are separate
 * (xf[], indexed by sq_xform_kind), so codec part indices never shift. */
typedef struct sq_tview {
    const struct sq_codec *codec;
    uint32_t params[SQ_NPARAMS];
    uint64_t rows, cols;
    int nparts;
    const void *part[SQ_CODEC_MAX_PARTS];  /* in the order of the codec's layout */
    uint64_t dim0[SQ_CODEC_MAX_PARTS];     /* each part's actual first dimension */
    const void *xf[SQ_XFORM_MAX];          /* transform parts by sq_xform_kind; NULL when absent */
} sq_tview;
const void *sq_tview_part(const sq_tview *t, const char *name);

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

/* ---- CPU backend traits (ggml's split of type traits and CPU traits) ----
 * A GEMV kernel names the form of the activations it consumes (ggml's
 * vec_dot_type); the caller prepares x in that form once per vector with
 * sq_act_prepare and shares it between the matrices that read the same x. */
typedef enum sq_act_kind { SQ_ACT_F32 = 0, SQ_ACT_Q8 = 1, SQ_ACT_KINDS } sq_act_kind;
typedef struct sq_act {
    sq_act_kind kind;
    uint64_t n;
    const float *f32; /* SQ_ACT_F32: the caller's vector (not owned) */
    sq_act_q8 q8;     /* SQ_ACT_Q8 */
} sq_act;
const char *sq_act_kind_name(sq_act_kind k);
sq_status sq_act_prepare(sq_act_kind kind, const float *x, uint64_t n, sq_act *out, sq_err *err);
void sq_act_release(sq_act *a);

typedef struct sq_cpu_kernel {
    sq_act_kind act;
    union {
        sq_gemv_fn f32;
        sq_gemv_q8_fn q8;
    } fn;
} sq_cpu_kernel;
/* Batched products (prefill) with int8-block activations: for the T
 * prepared rows x[0..T) and weight rows [r0, r1), y[t * t->rows + r] =
 * sum over chunks c (in order) of fmaf((float)(dot_c - z * sum_c), s * d_c, .)
 * where dot_c is the exact integer dot of the row's codes with x[t]'s int8
 * block c, z and s the row's zero point and scale for c's group, d_c and
 * sum_c the block's scale and code sum: one rounding order, so every ISA's
 * kernel gives the same bits (tests/test_gemm_q8.c). */
typedef void (*sq_gemm_q8_fn)(const sq_tview *t, const sq_act_q8 *x, uint32_t T, float *y, uint64_t r0, uint64_t r1);
typedef struct sq_codec_cpu {
    sq_decode_fn decode[SQ_ISA_COUNT]; /* [PORTABLE] always set; others may be NULL */
    sq_gemv_fn gemv[SQ_ISA_COUNT];     /* exact: f32 activations; [PORTABLE] always set */
    sq_cpu_kernel fast[SQ_ISA_COUNT];  /* faster kernels with another activation form; fn NULL: none */
    /* NULL, or whether the fast kernel beats the exact one for this tensor
     * on this ISA's kernels (measured: the int kernels' q8 path loses on
     * groups of 32 without SIMD; quip's q8 path pays only with AVX-512 VBMI) */
    int (*fast_pays)(const sq_tview *t, sq_isa isa);
    sq_gemm_q8_fn gemm_q8[SQ_ISA_COUNT]; /* batched q8 products; NULL: none ([PORTABLE] = the reference) */
    /* NULL (the SIMD batched kernels always pay), or whether they do for t
     * on this ISA (quip's need AVX-512 VBMI and GFNI besides) */
    int (*gemm_pays)(const sq_tview *t, sq_isa isa);
} sq_codec_cpu;

/* ---- encoding ----
 * What an encoder sees: the weights, the calibration statistics when the
 * codec or method needs them, a seed for codecs that draw random numbers,
 * and its own scratch (allocated in prepare, freed in finalize). */
typedef struct sq_encode_ctx {
    const struct sq_codec *codec;
    const uint32_t *params;
    const float *w; /* rows x cols, row-major */
    uint64_t rows, cols;
    const double *xtx; /* cols x cols XᵀX of the layer's inputs, or NULL */
    uint64_t seed;
    int n_threads;
    uint32_t flags; /* SQ_ENC_*: ablations of a calibrated codec's own algorithm */
    void *scratch;
    /* [rows] importance of each row's error (e.g. how often an embedding row
     * is read), or NULL: all 1. Encoders that choose precision per block
     * (mix) weight the error of a row's blocks by it; others ignore it. */
    const double *row_weight;
} sq_encode_ctx;
/* sq_encode_ctx.flags (today QuIP#'s; other encoders ignore them) */
enum {
    SQ_ENC_NO_FEEDBACK = 1u << 0, /* nearest rounding without error feedback */
    SQ_ENC_NO_REFIT = 1u << 1,    /* keep the initial scales (no least-squares refit) */
    SQ_ENC_NO_RHT = 1u << 2,      /* no randomized Hadamard incoherence */
    SQ_ENC_ROWS_APART = 1u << 3,  /* no transform across rows (QuIP#'s rht_out): a row decodes on its own, as an
                                   * embedding lookup wants */
};

/* A quantizer that error feedback (GPTQ, LDLQ) drives block by block: it
 * sees the current, error-updated weights of one row, dim columns at a
 * time, and returns the values it decodes to so the driver can spread the
 * error. Statistics (scales, zeros) are fitted per group of group_len
 * columns when the driver enters the group. Codes are kept per row in
 * stored column order (one u32 per block of dim columns) until pack_row. */
typedef struct sq_vq {
    const struct sq_codec *codec;
    const uint32_t *params;
    uint64_t rows, cols;
    void *const *parts;
} sq_vq;
#define SQ_VQ_MAX_STAT 4
typedef struct sq_vq_ops {
    uint32_t dim;
    /* NULL or whether these params can be driven (a scale shared by all
     * rows, say, cannot) */
    int (*supports)(const struct sq_codec *c, const uint32_t *params);
    uint64_t (*group_len)(const sq_vq *q);
    /* fits a group's statistics from n values and stores them in the parts */
    void (*fit)(const sq_vq *q, uint64_t row, uint64_t group, const float *v, uint64_t n, float stat[SQ_VQ_MAX_STAT]);
    /* dim values -> one code and the dim values it decodes to */
    uint32_t (*quant)(const sq_vq *q, const float stat[SQ_VQ_MAX_STAT], const float *v, float *deq);
    void (*pack_row)(const sq_vq *q, uint64_t row, const uint32_t *codes);
} sq_vq_ops;

struct sq_encoded;
typedef struct sq_codec_encoder {
    int needs_xtx; /* encode refuses to run without ctx->xtx */
    /* Fixed layouts: the driver allocates the layout's parts zeroed, then
     * prepare (whole tensor), encode_rows over row ranges on threads (0 or
     * an sq_status), finalize (also called when a step failed, to free the
     * scratch). Any may be NULL but encode_rows. */
    sq_status (*prepare)(sq_encode_ctx *x, void *const *parts, sq_err *err);
    int (*encode_rows)(const sq_encode_ctx *x, uint64_t r0, uint64_t r1, void *const *parts);
    sq_status (*finalize)(sq_encode_ctx *x, void *const *parts, int failed, sq_err *err);
    /* Data-dependent layouts instead: the whole encode, which sets out's
     * parts with sq_encoded_put_part. */
    sq_status (*encode)(const sq_encode_ctx *x, struct sq_encoded *out, sq_err *err);
    const sq_vq_ops *vq; /* NULL: no error-feedback method can drive this codec */
} sq_codec_encoder;

/* ---- the codec descriptor: the one source of truth about a codec ---- */
typedef enum sq_codec_family {
    SQ_FAMILY_FLOAT = 1,        /* f32/f16/bf16 values stored as they are */
    SQ_FAMILY_INT = 2,          /* integer codes times a group scale (minus a zero point) */
    SQ_FAMILY_LUT = 3,          /* codes index a value table (NF4, mini-floats) times a group scale */
    SQ_FAMILY_MX = 4,           /* OCP MX: mini-float codes times a power-of-two block scale */
    SQ_FAMILY_CODEBOOK = 5,     /* additive vector codebooks (AQLM) */
    SQ_FAMILY_LATTICE = 6,      /* lattice codebook after incoherence transforms (QuIP#) */
    SQ_FAMILY_SPARSE_DENSE = 7, /* dense small-group codes plus sparse outliers (SpQR) */
    SQ_FAMILY_MIXED = 8,        /* per-block code widths chosen under a bit budget (mix) */
} sq_codec_family;
const char *sq_codec_family_name(sq_codec_family f);

/* Scheme options a codec takes (sq_codec.opts). */
enum { SQ_OPT_ASYM = 1u << 0, SQ_OPT_DQ = 1u << 1, SQ_OPT_SCALE_DTYPE = 1u << 2 };

typedef struct sq_codec {
    uint16_t id;
    const char *name;
    sq_codec_family family;
    uint64_t technique_flag;
    int lossless;        /* decode(encode(w)) == w for inputs of the source dtype */
    uint32_t bits;       /* bits per code (float family: bits per stored value) */
    uint32_t value_dtype; /* float family: the stored dtype */
    int minifloat;       /* LUT/MX over a mini-float: sq_minifloat + 1; 0 otherwise */
    const float *table;  /* LUT codecs with a fixed table of 2^bits values (NF4); else NULL */
    uint32_t default_group;
    uint32_t group_ok;   /* allowed groupings: bit set of SQ_GROUPOK_* */
    uint32_t opts;       /* SQ_OPT_* the scheme grammar accepts */
    /* Part list for a tensor; returns the count (<= SQ_CODEC_MAX_PARTS). */
    int (*layout)(const struct sq_codec *c, const uint32_t *params, uint64_t rows, uint64_t cols, sq_part_spec *out);
    /* Optional checks of stored values beyond the family's (spec/codecs.md
     * §10), e.g. a sparse part's offsets; writes a message into why. */
    int (*check)(const sq_tview *v, char *why, size_t n);
    /* Codec-specific scheme options and params (e.g. SpQR's "w3" bits, an
     * outlier threshold), for codecs whose params go beyond the generic
     * grouping/asym/dq/scale-dtype grammar. All optional:
     *   defaults: set the codec's own params after the generic defaults;
     *   scheme_opt: one ':'-separated token: 1 taken (params set), 0 not
     *     this codec's, -1 a bad value (message in why);
     *   scheme_format: append the codec's own options to a scheme string;
     *   check_params: 0 when params (its own included) are valid, else -1
     *     with a message in why; params[4..7] must be 0 unless it accepts them. */
    void (*defaults)(const struct sq_codec *c, uint32_t *params);
    int (*scheme_opt)(const struct sq_codec *c, const char *tok, uint32_t *params, char *why, size_t n);
    void (*scheme_format)(const struct sq_codec *c, const uint32_t *params, char *out, size_t n);
    int (*check_params)(const struct sq_codec *c, const uint32_t *params, char *why, size_t n);
    const sq_codec_encoder *enc;
    const sq_codec_cpu *cpu;
} sq_codec;

enum { SQ_GROUPOK_ROW = 1, SQ_GROUPOK_TENSOR = 2, SQ_GROUPOK_32 = 4, SQ_GROUPOK_64 = 8, SQ_GROUPOK_128 = 16,
       SQ_GROUPOK_256 = 32, SQ_GROUPOK_NONE = 64 /* codec has no groups */ };

/* Columns per group for params (a row group or the tensor: cols). */
uint64_t sq_codec_group_len(const uint32_t *params, uint64_t cols);

const sq_codec *sq_codec_by_id(uint32_t id);
const sq_codec *sq_codec_by_name(const char *name);
/* The lossless codec storing a source dtype as it is (f16, bf16; f32 for any other dtype). */
const sq_codec *sq_codec_for_dtype(uint32_t dtype);
/* All registered codecs, NULL-terminated. */
const sq_codec *const *sq_codec_list(void);
uint64_t sq_codec_technique_flags(uint32_t id);

/* Scheme string CODEC[:gN|:pc|:pt][:sym|:asym][:dq][:s16|:sbf16|:s32] -> codec + params. */
sq_status sq_scheme_parse(const char *s, const sq_codec **codec, uint32_t params[SQ_NPARAMS], sq_err *err);
/* Canonical text of a codec + params, e.g. "int4:g128:asym". */
void sq_scheme_format(const sq_codec *c, const uint32_t params[SQ_NPARAMS], char *out, size_t n);

/* Full part list of a tensor: the codec's layout followed by the transform
 * parts params[3] asks for. Use this, not c->layout. */
int sq_layout(const sq_codec *c, const uint32_t params[SQ_NPARAMS], uint64_t rows, uint64_t cols, sq_part_spec *out);

/* rows/cols of a tensor as the codecs see it: cols = last dim, rows = rest. */
void sq_tensor_matrix(const sq_tensor *t, uint64_t *rows, uint64_t *cols);
/* Checks that a stored tensor's parts match its codec's layout exactly. */
sq_status sq_codec_check_tensor(const sq_file *f, const sq_tensor *t, sq_err *err);
/* Resolves a stored tensor's parts (decompressing if needed; owned buffers
 * are returned in owned[] and must be freed, e.g. by sq_tview_close). */
sq_status sq_tview_open(const sq_file *f, const sq_tensor *t, int skip_checksum, sq_tview *v,
                        void *owned[SQ_CODEC_MAX_PARTS], sq_err *err);
void sq_tview_close(sq_tview *v, void *owned[SQ_CODEC_MAX_PARTS]);

/* Encoded tensor in memory: the codec's parts, then the transform parts. */
typedef struct sq_encoded {
    const sq_codec *codec;
    uint32_t params[SQ_NPARAMS];
    uint64_t rows, cols;
    int nparts;
    sq_part_spec spec[SQ_CODEC_MAX_PARTS];
    void *data[SQ_CODEC_MAX_PARTS];
    uint64_t bytes[SQ_CODEC_MAX_PARTS];
} sq_encoded;

/* Encodes w [rows x cols] with n_threads threads (output does not depend on
 * it). sq_encode_with also passes calibration statistics and a seed. */
sq_status sq_encode(const sq_codec *c, const uint32_t params[SQ_NPARAMS], const float *w, uint64_t rows, uint64_t cols,
                    int n_threads, sq_encoded *out, sq_err *err);
sq_status sq_encode_with(const sq_encode_ctx *x, sq_encoded *out, sq_err *err);
/* The same driver with an encoder the descriptor does not carry: codecs
 * whose encoder needs the quantization library (calibration statistics,
 * dense algebra) leave enc NULL so that the decode library links alone;
 * quant/encoders.c supplies theirs. */
sq_status sq_encode_using(const sq_codec_encoder *enc, const sq_encode_ctx *x, sq_encoded *out, sq_err *err);
void sq_encoded_free(sq_encoded *e);
/* Allocates zeroed parts for c/params (codec parts only) for callers that
 * fill the parts themselves (GPTQ through the codec's vq ops). */
sq_status sq_encoded_alloc(const sq_codec *c, const uint32_t params[SQ_NPARAMS], uint64_t rows, uint64_t cols,
                           sq_encoded *out, sq_err *err);
/* Data-dependent layouts: sets the codec part named in the layout to data
 * (taken over: freed with e) with first dimension dim0. */
sq_status sq_encoded_put_part(sq_encoded *e, const char *name, void *data, uint64_t dim0, sq_err *err);
/* Appends input transform parts to an encoded tensor (perm and/or in_scale
 * may be NULL; each given one is copied) and sets params[3]. */
sq_status sq_encoded_set_xform(sq_encoded *e, const uint32_t *perm, const float *in_scale, sq_err *err);
/* Appends one link (data copied, sq_xform_part_len entries); links must be
 * added in chain order. */
sq_status sq_encoded_add_xform(sq_encoded *e, sq_xform_kind kind, const void *data, sq_err *err);
void sq_tview_from_encoded(const sq_encoded *e, sq_tview *v);
/* Bytes of one part (dtype size times its dims). */
uint64_t sq_part_spec_bytes(const sq_part_spec *s);
/* Table-driven codecs (nf4, fp*, mxfp*): the value of every code (2^bits
 * entries) and the code width; NULL for other codecs. Decode is
 * table[code] * group scale. */
const float *sq_codec_value_table(const sq_codec *c, int *bits);
/* Bits per weight of an encoded tensor's parts (transforms included). */
double sq_encoded_bpw(const sq_encoded *e);
/* Bits per weight of the stored parts of a fixed layout. */
double sq_layout_bpw(const sq_codec *c, const uint32_t params[SQ_NPARAMS], uint64_t rows, uint64_t cols);

/* ---- transforms: one typed chain, applied here for every CPU caller ---- */
typedef enum sq_xform_side { SQ_XF_INPUT = 0, SQ_XF_OUTPUT = 1 } sq_xform_side;
typedef struct sq_xform_desc {
    sq_xform_kind kind;
    uint32_t flag;     /* its bit in params[3] */
    const char *part;  /* the stored part: 1-D, dtype below, n = cols (input side) or rows (output side) */
    uint32_t dtype;
    sq_xform_side side;
    int packed_bits;   /* 1: one bit per entry, ceil(n/8) bytes; 0: n entries */
} sq_xform_desc;
/* Length of a link's part for a rows x cols matrix. */
uint64_t sq_xform_part_len(const sq_xform_desc *d, uint64_t rows, uint64_t cols);
/* The links in chain order; NULL-free array of SQ_XFORM_KINDS. */
const sq_xform_desc *sq_xform_list(void);
/* Maps T activation rows (t->cols values each) into the stored column order
 * and scale: xs = the chain's input links applied to x (a copy when none). */
void sq_xform_input(const sq_tview *t, const float *x, uint64_t T, float *xs);
/* Maps T rows of stored outputs (t->rows values each) to the layer's
 * outputs, in place: the output links (nothing when there are none). */
void sq_xform_output(const sq_tview *t, float *y, uint64_t T);
/* Maps n decoded rows (stored order) back to original columns, in place,
 * undoing the input links; tmp holds t->cols floats. */
void sq_xform_unapply_rows(const sq_tview *t, uint64_t n, float *rows, float *tmp);
/* Undoes the output links on a whole decoded matrix (t->rows x t->cols),
 * column by column; 0, or -1 when its buffer cannot be had. */
int sq_xform_unapply_output(const sq_tview *t, float *m);
static inline int sq_tview_has_output_xform(const sq_tview *t) { return t->xf[SQ_XFORM_RHT_OUT] != NULL; }
static inline int sq_tview_has_xform(const sq_tview *t) {
    for (int k = 0; k < SQ_XFORM_MAX; k++)
        if (t->xf[k]) return 1;
    return 0;
}
static inline const uint32_t *sq_tview_perm(const sq_tview *t) { return (const uint32_t *)t->xf[SQ_XFORM_PERM]; }
static inline const float *sq_tview_in_scale(const sq_tview *t) { return (const float *)t->xf[SQ_XFORM_IN_SCALE]; }

/* Kernels through the active ISA (or a chosen one). sq_decode_rows,
 * sq_gemv and the _mt helpers apply the transforms (original column
 * order) and return SQ_ENOMEM when a one-row buffer cannot be had; the raw
 * per-ISA functions below work in stored column order, so their callers
 * map activations with sq_xform_input first. */
sq_status sq_decode_rows(const sq_tview *t, uint64_t r0, uint64_t r1, float *out);
sq_status sq_gemv(const sq_tview *t, const float *x, float *y, uint64_t r0, uint64_t r1);
sq_decode_fn sq_decode_for(const sq_codec *c, sq_isa isa); /* falls back to lower ISAs */
sq_gemv_fn sq_gemv_for(const sq_codec *c, sq_isa isa);
/* The fastest kernel for an ISA (falling back to lower ones): a q8 kernel
 * where the codec has one, else the exact f32 GEMV. */
sq_cpu_kernel sq_fast_kernel_for(const sq_codec *c, sq_isa isa);
sq_gemv_q8_fn sq_gemv_q8_for(const sq_codec *c, sq_isa isa); /* NULL if the codec has no q8 path */
/* The kernel a caller that wants speed should run on t: the fast kernel
 * where the codec has one and it pays for t (fast_pays), else the exact GEMV. */
sq_cpu_kernel sq_best_kernel(const sq_tview *t, sq_isa isa);
/* The batched q8 kernel for an ISA (falling back to lower ones, down to the
 * portable reference); NULL if the codec has none. */
sq_gemm_q8_fn sq_gemm_q8_for(const sq_codec *c, sq_isa isa);
/* Runs kernel k on activations a (prepared in k.act's form, in stored order). */
void sq_kernel_run(sq_cpu_kernel k, const sq_tview *t, const sq_act *a, float *y, uint64_t r0, uint64_t r1);
/* Multi-threaded helpers over row ranges. */
sq_status sq_decode_mt(const sq_tview *t, float *out, int n_threads);
sq_status sq_gemv_mt(const sq_tview *t, const float *x, float *y, int n_threads);

/* Integer codecs' bits (0 for other codecs). */
int sq_int_bits(const sq_codec *c);

/* Runs fn(ctx, i0, i1) over [0, n) split into contiguous chunks on up to
 * n_threads threads. */
void sq_parallel_for(int n_threads, uint64_t n, void (*fn)(void *ctx, uint64_t i0, uint64_t i1), void *ctx);
int sq_default_threads(void);

#ifdef __cplusplus
}
#endif
#endif
