/* Synthetic tensors of the calibrated codecs whose encoders are too slow
 * for a kernel benchmark (see bench_synth.h): random parts that pass the
 * codec's checks, made through sq_encode_using with an encoder of their own. */
#include <stdlib.h>
#include <string.h>

#include "bench_synth.h"
#include "squish/fp.h"

static uint64_t rng_state;
static uint32_t rnd(void) {
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng_state >> 33);
}
static float unit(void) { return (float)rnd() / 2147483648.0f - 1.0f; } /* [-1, 1) */

static sq_status put(sq_encoded *e, const char *name, void *data, uint64_t dim0, sq_err *err) {
    if (!data) return sq_err_set(err, SQ_ENOMEM, "bench: out of memory for part %s", name);
    sq_status st = sq_encoded_put_part(e, name, data, dim0, err);
    if (st) free(data);
    return st;
}

/* b-bit codes, LSB first, n per row of stride bytes (the padding bits zero). */
static uint8_t *packed_rows(uint64_t rows, uint64_t n, uint32_t b, uint64_t stride) {
    uint8_t *d = calloc(rows * stride > 0 ? rows * stride : 1, 1);
    for (uint64_t r = 0; d && r < rows; r++)
        for (uint64_t k = 0; k < n; k++) {
            uint32_t q = rnd() & ((1u << b) - 1);
            for (uint32_t i = 0; i < b; i++)
                if (q >> i & 1) d[r * stride + (k * b + i) / 8] |= (uint8_t)(1u << ((k * b + i) % 8));
        }
    return d;
}

/* AQLM (spec §12): random codes, codebook entries in (-1, 1), scales 1/8..1/4. */
static sq_status synth_aqlm(const sq_encode_ctx *x, sq_encoded *out, sq_err *err) {
    const uint32_t M = x->params[4], B = x->params[5];
    const uint64_t G = (x->cols + 7) / 8, ncode = x->rows * G * M, cb = (uint64_t)M << B << 3;
    /* the stream as one row of ncode codes: its padding bits are zero */
    sq_status st = put(out, "codes", packed_rows(1, ncode, B, (ncode * B + 7) / 8), (ncode * B + 7) / 8, err);
    uint16_t *c = malloc(cb * 2), *s = malloc(x->rows * 2);
    for (uint64_t i = 0; c && i < cb; i++) c[i] = sq_f32_to_f16(unit());
    for (uint64_t r = 0; s && r < x->rows; r++) s[r] = sq_f32_to_f16(0.125f + 0.0625f * (unit() + 1));
    if (!st) st = put(out, "codebooks", c, M, err);
    else free(c);
    if (!st) st = put(out, "scales", s, x->rows, err);
    else free(s);
    return st;
}

/* SpQR (spec §13): random codes and statistic codes, second-level stats
 * giving scales near 0.01 and zeros near the middle of the code range,
 * 1% outliers at random columns, a random permutation. */
static sq_status synth_spqr(const sq_encode_ctx *x, sq_encoded *out, sq_err *err) {
    const uint32_t *p = x->params, w = p[4] & 0xff, sb = p[4] >> 8 & 0xff, g1 = p[5] & 0xffff, g2 = p[5] >> 16;
    const uint64_t rows = x->rows, cols = x->cols, ng = (cols + g1 - 1) / g1, nrb = (rows + g2 - 1) / g2;
    const uint64_t cs = (cols * w + 7) / 8, ss = (ng * sb + 7) / 8;
    sq_status st = put(out, "codes", packed_rows(rows, cols, w, cs), rows, err);
    if (!st) st = put(out, "scale_codes", packed_rows(rows, ng, sb, ss), rows, err);
    if (!st) st = put(out, "zero_codes", packed_rows(rows, ng, sb, ss), rows, err);
    uint16_t *s2 = st ? NULL : malloc(nrb * ng * 4 * 2);
    const float zmax = (float)((1u << sb) - 1);
    for (uint64_t i = 0; s2 && i < nrb * ng; i++) {
        s2[4 * i] = sq_f32_to_f16(0.01f / zmax * (1.5f + 0.5f * unit())); /* S = ss (s - 0) */
        s2[4 * i + 1] = 0;
        s2[4 * i + 2] = sq_f32_to_f16((float)((1u << w) - 1) / zmax);    /* Z = zs (z - 0): 0 .. 2^w - 1 */
        s2[4 * i + 3] = 0;
    }
    if (!st) st = put(out, "stats2", s2, nrb, err);
    uint32_t *rp = st ? NULL : malloc((rows + 1) * 4);
    uint16_t *oc = st ? NULL : malloc((rows * cols / 50 + 1) * 2), *ov = st ? NULL : malloc((rows * cols / 50 + 1) * 2);
    uint64_t nnz = 0;
    if (rp && oc && ov) {
        rp[0] = 0;
        for (uint64_t r = 0; r < rows; r++) {
            for (uint64_t j = 0; j < cols; j++)
                if (rnd() % 100 == 0 && nnz < rows * cols / 50) {
                    oc[nnz] = (uint16_t)j;
                    ov[nnz++] = sq_f32_to_f16(0.2f * unit());
                }
            rp[r + 1] = (uint32_t)nnz;
        }
    }
    if (!st) st = put(out, "row_ptr", rp, rows + 1, err);
    else free(rp);
    if (!st) st = put(out, "outlier_cols", oc, nnz, err);
    else free(oc);
    if (!st) st = put(out, "outlier_vals", ov, nnz, err);
    else free(ov);
    uint32_t *perm = st ? NULL : malloc(cols * 4);
    if (!st && !perm) st = sq_err_set(err, SQ_ENOMEM, "bench: out of memory for perm");
    for (uint64_t j = 0; perm && j < cols; j++) perm[j] = (uint32_t)j;
    for (uint64_t j = cols; perm && j > 1; j--) {
        uint64_t k = rnd() % j;
        uint32_t t = perm[j - 1];
        perm[j - 1] = perm[k];
        perm[k] = t;
    }
    if (!st) st = sq_encoded_add_xform(out, SQ_XFORM_PERM, perm, err);
    free(perm);
    return st;
}

int bench_synthetic_for(const sq_codec *c) {
    return c->family == SQ_FAMILY_CODEBOOK || c->family == SQ_FAMILY_SPARSE_DENSE;
}

sq_status bench_synthetic(const sq_codec *c, const uint32_t *params, uint64_t rows, uint64_t cols, sq_encoded *out,
                          sq_err *err) {
    if (!bench_synthetic_for(c)) return sq_err_set(err, SQ_EUNSUPPORTED, "bench: no synthetic tensors of codec %s", c->name);
    if (c->family == SQ_FAMILY_SPARSE_DENSE && cols > 65536)
        return sq_err_set(err, SQ_EUSAGE, "bench: %s takes at most 65536 columns", c->name);
    rng_state = 0x9E3779B97F4A7C15ull ^ rows ^ (cols << 32);
    const sq_codec_encoder enc = {.encode = c->family == SQ_FAMILY_CODEBOOK ? synth_aqlm : synth_spqr};
    sq_encode_ctx x = {.codec = c, .params = params, .rows = rows, .cols = cols, .seed = 1, .n_threads = 1};
    sq_status st = sq_encode_using(&enc, &x, out, err);
    if (st) return st;
    /* what a reader checks before a kernel runs */
    sq_tview v;
    char why[256];
    sq_tview_from_encoded(out, &v);
    if (c->check && c->check(&v, why, sizeof why)) {
        sq_encoded_free(out);
        return sq_err_set(err, SQ_EINTERNAL, "bench: synthetic %s tensor does not validate: %s", c->name, why);
    }
    return SQ_OK;
}
