/* From a tensor's codec and parameters to the shader family, its
 * specialization constants and part offsets (spec/codecs.md), and the upload
 * of the stored parts to device memory. */
#include <stdlib.h>
#include <string.h>

#include "vk_internal.h"
#include "vk_lattice.h"

#define SQ_CHUNK 32
#define PART_ALIGN 16 /* bytes; parts start on 16-byte boundaries in the tensor's buffer */

enum { SC_F32 = 0, SC_F16 = 1, SC_BF16 = 2, SC_E8M0 = 3, SC_NF4DQ = 4 };
enum { Z_NONE = 0, Z_SYM = 1, Z_PART = 2 };

static int scale_kind(uint32_t dtype) {
    return dtype == SQ_DT_F32 ? SC_F32 : dtype == SQ_DT_F16 ? SC_F16 : dtype == SQ_DT_BF16 ? SC_BF16 : -1;
}

/* Fills t's family, spec constants and group geometry. Returns 0 when the
 * backend has no kernel for this codec/parameters. */
static int describe(const sq_tview *v, sq_vk_tensor *t) {
    const sq_codec *c = v->codec;
    const uint32_t *p = v->params;
    const uint64_t cols = v->cols, nchunks = (cols + SQ_CHUNK - 1) / SQ_CHUNK;
    memset(t->spec, 0, sizeof t->spec);
    if (nchunks == 0 || v->rows == 0) return 0; /* empty matrices: nothing to run */
    t->push.nchunks = (uint32_t)nchunks;
    /* the backend's shader families: float data, and codes times a scale (int, LUT, MX) */
    if (c->family == SQ_FAMILY_FLOAT) {
        t->family = 1;
        t->spec[1] = (uint32_t)scale_kind(c->value_dtype);
        return 1;
    }
    if (c->family == SQ_FAMILY_LATTICE) return sq_vk_describe_lattice(v, t);
    if (c->family == SQ_FAMILY_CODEBOOK) return sq_vk_describe_codebook(v, t);
    if (c->family == SQ_FAMILY_SPARSE_DENSE) return sq_vk_describe_sparse(v, t);
    if (c->family == SQ_FAMILY_MIXED) return sq_vk_describe_mix(v, t);
    if (c->family != SQ_FAMILY_INT && c->family != SQ_FAMILY_LUT && c->family != SQ_FAMILY_MX) return 0;
    t->family = 0;
    int bits = sq_int_bits(c);
    uint64_t gcols; /* columns per scale */
    if (bits) {
        int sk = scale_kind(p[SQ_P_SCALE_DTYPE]);
        if (sk < 0) return 0;
        t->spec[2] = (uint32_t)sk;
        t->spec[3] = (p[SQ_P_FLAGS] & SQ_PF_ASYM) ? Z_PART : Z_SYM;
        gcols = sq_codec_group_len(p, cols);
    } else {
        t->lut_values = sq_codec_value_table(c, &bits);
        if (!t->lut_values) return 0;
        t->spec[4] = 1u << bits;
        t->spec[3] = Z_NONE;
        gcols = sq_codec_group_len(p, cols);
        if (c->table) { /* NF4: f32 block maxima, or double-quantized ones */
            t->spec[2] = (p[SQ_P_FLAGS] & SQ_PF_DQ) ? SC_NF4DQ : SC_F32;
        } else if (c->family == SQ_FAMILY_MX) {
            t->spec[2] = SC_E8M0;
        } else {
            int sk = scale_kind(p[SQ_P_SCALE_DTYPE]);
            if (sk < 0) return 0;
            t->spec[2] = (uint32_t)sk;
        }
    }
    /* groups of 1, 2, 4 or 8 chunks (the scale index shifts the chunk index); a
     * group as long as the row (shift 31) gives every chunk the row's scale */
    uint64_t gch = gcols / SQ_CHUNK;
    if (gcols < cols && (gcols % SQ_CHUNK || !gch || gch > 8 || (gch & (gch - 1)))) return 0;
    uint32_t shift = 0;
    while ((1ull << shift) < gch) shift++;
    t->push.gshift = gcols >= cols ? 31 : shift;
    t->spec[1] = (uint32_t)bits;
    t->push.crow = (uint32_t)(nchunks * (uint64_t)bits); /* words per row of codes (32 codes of bits bits a chunk) */
    uint64_t ngroups = gcols >= cols ? 1 : (cols + gcols - 1) / gcols;
    /* scales per row: one per group; a per-tensor scale ("pt") is shared by every row */
    t->push.srow = p[SQ_P_GROUP] == SQ_GROUP_TENSOR ? 0 : (uint32_t)ngroups;
    return bits == 2 || bits == 3 || bits == 4 || bits == 6 || bits == 8;
}

int sq_vk_supported(const sq_tview *v) {
    sq_vk_tensor t;
    memset(&t, 0, sizeof t);
    return v->codec && describe(v, &t);
}

/* Copies n bytes from host memory to buf at off: directly when the device
 * memory is mapped, else through the staging buffer in pieces. */
static sq_status copy_in(sq_vk *vk, vk_buf *buf, uint64_t off, const void *src, uint64_t n, sq_err *err) {
    if (buf->map) {
        memcpy((char *)buf->map + off, src, n);
        return SQ_OK;
    }
    const uint64_t piece = 64ull << 20;
    sq_status st = sq_vk_buf_reserve(vk, &vk->staging, n < piece ? n : piece, 1, err);
    for (uint64_t done = 0; !st && done < n;) {
        uint64_t k = n - done < vk->staging.size ? n - done : vk->staging.size;
        memcpy(vk->staging.map, (const char *)src + done, k);
        st = sq_vk_begin(vk, err);
        if (st) break;
        VkBufferCopy reg = {0, off + done, k};
        vk->f.vkCmdCopyBuffer(vk->cmd, vk->staging.buf, buf->buf, 1, &reg);
        st = sq_vk_submit_wait(vk, err);
        done += k;
    }
    return st;
}

sq_status sq_vk_copy_in(sq_vk *vk, vk_buf *buf, uint64_t off, const void *src, uint64_t n, sq_err *err) {
    return copy_in(vk, buf, off, src, n, err);
}

/* Bytes of padding after each row of codes of the codes-family kernels
 * (SQUISH_VULKAN_ROWPAD, a multiple of 16 up to 4096; default 0): rows then
 * start a non-power-of-two distance apart in device memory. Same results. */
static uint64_t row_pad(void) {
    const char *e = getenv("SQUISH_VULKAN_ROWPAD");
    long v = e && *e ? atol(e) : 0;
    return v > 0 && v <= 4096 && v % 16 == 0 ? (uint64_t)v : 0;
}

/* The codes part with pad bytes (zero) after each row of rb bytes. */
static void *pad_rows(const uint8_t *src, uint64_t rows, uint64_t rb, uint64_t pad) {
    uint8_t *o = calloc(rows, rb + pad);
    for (uint64_t r = 0; o && r < rows; r++) memcpy(o + r * (rb + pad), src + r * rb, rb);
    return o;
}

sq_status sq_vk_upload(sq_vk *vk, const sq_tview *v, sq_vk_tensor **out, sq_err *err) {
    *out = NULL;
    sq_vk_tensor *t = calloc(1, sizeof *t);
    if (!t) return sq_err_set(err, SQ_ENOMEM, "out of memory");
    char scheme[96];
    sq_scheme_format(v->codec, v->params, scheme, sizeof scheme);
    if (!describe(v, t)) {
        free(t);
        return sq_err_set(err, SQ_EUNSUPPORTED, "vulkan: no kernel for scheme %s", scheme);
    }
    if (v->rows > UINT32_MAX || v->cols > UINT32_MAX) {
        free(t);
        return sq_err_set(err, SQ_ENOMEM, "vulkan: a %llu x %llu matrix is too large", (unsigned long long)v->rows,
                          (unsigned long long)v->cols);
    }
    t->codec = v->codec;
    t->rows = v->rows;
    t->cols = v->cols;
    t->xform.cols = v->cols;
    t->xform.rows = v->rows;
    memcpy(t->xform.xf, v->xf, sizeof t->xform.xf);
    memcpy(t->xform.params, v->params, sizeof t->xform.params);
    t->push.rows = (uint32_t)v->rows;
    t->push.cols = (uint32_t)v->cols;
    /* the codec's own parts (input transforms are applied on the host) */
    sq_part_spec sp[SQ_CODEC_MAX_PARTS];
    int n = v->codec->layout(v->codec, v->params, v->rows, v->cols, sp);
    uint64_t off[SQ_CODEC_MAX_PARTS] = {0}, bytes[SQ_CODEC_MAX_PARTS] = {0}, total = 0;
    /* the codes part of the codes family, rows padded where SQUISH_VULKAN_ROWPAD asks */
    const uint64_t rb = (uint64_t)t->push.crow * 4, pad = t->family == 0 ? row_pad() : 0;
    int padded = -1;
    for (int i = 0; i < n; i++) {
        if (sp[i].flags & SQ_PART_DATA_DIM0) sp[i].dims[0] = v->dim0[i]; /* data-sized (spqr's outliers) */
        bytes[i] = sq_part_spec_bytes(&sp[i]);
        uint64_t dev = bytes[i];
        if (pad && !strcmp(sp[i].name, "codes") && bytes[i] == v->rows * rb) {
            padded = i;
            dev = v->rows * (rb + pad);
        }
        off[i] = total;
        total += (dev + PART_ALIGN - 1) / PART_ALIGN * PART_ALIGN;
    }
    if (padded >= 0) t->push.crow = (uint32_t)((rb + pad) / 4);
    /* word offsets by part name: codes, scales (or absmax / absmax_q), zeros (or absmax_offset), aux (absmax_scale) */
    for (int i = 0; i < n; i++) {
        const char *nm = sp[i].name;
        uint32_t w = (uint32_t)(off[i] / 4);
        if (!strcmp(nm, "codes") || !strcmp(nm, "data")) t->push.codes = w;
        else if (!strcmp(nm, "scales") || !strcmp(nm, "absmax") || !strcmp(nm, "absmax_q")) t->push.scales = w;
        else if (!strcmp(nm, "zeros") || !strcmp(nm, "absmax_offset")) t->push.zeros = w;
        else if (!strcmp(nm, "absmax_scale")) t->push.aux = w;
        else if (!strcmp(nm, "codes2")) t->push.zeros = w; /* lattice: the second stage's codes */
        else if (!strcmp(nm, "codes3")) t->push.pad0 = w;  /* lattice: the third stage's codes (quip:4 nested) */
    }
    sq_status st = sq_vk_buf_create(vk, total, 0, &t->buf, err);
    if (!st && t->lut_values) {
        st = sq_vk_buf_create(vk, t->spec[4] * sizeof(float), 1, &t->lut, err);
        if (!st) memcpy(t->lut.map, t->lut_values, t->spec[4] * sizeof(float));
    }
    for (int i = 0; !st && i < n; i++) {
        if (!bytes[i]) continue;
        if (i != padded) {
            st = copy_in(vk, &t->buf, off[i], v->part[i], bytes[i], err);
            continue;
        }
        void *rows = pad_rows(v->part[i], v->rows, rb, pad);
        st = rows ? copy_in(vk, &t->buf, off[i], rows, v->rows * (rb + pad), err) : sq_err_set(err, SQ_ENOMEM, "out of memory");
        free(rows);
    }
    if (!st && t->family == SQ_VK_FAMILY_LATTICE) st = sq_vk_lattice_upload(vk, v, t, err);
    if (!st && t->upload) st = t->upload(vk, v, t, off, err);
    if (st) {
        sq_vk_tensor_free(vk, t);
        return st;
    }
    *out = t;
    return SQ_OK;
}

uint64_t sq_vk_tensor_device_bytes(const sq_vk_tensor *t) { return t->buf.size; }

void sq_vk_tensor_free(sq_vk *vk, sq_vk_tensor *t) {
    if (!t) return;
    sq_vk_buf_free(vk, &t->buf);
    sq_vk_buf_free(vk, &t->lut);
    sq_vk_buf_free(vk, &t->extra);
    free(t);
}
