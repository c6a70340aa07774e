/* The tests' encode of a generated codec variant (test_codecs, test_vulkan). */
#ifndef SQUISH_CODEC_ENCODE_H
#define SQUISH_CODEC_ENCODE_H

#include <stdlib.h>

#include "encoders.h"
#include "squish/codec.h"

/* The XᵀX of 4·cols fixed pseudo-random activation rows; it depends on cols
 * alone, so the last few are kept for the process (a test encodes many
 * codecs at one width; the sums cost 4·cols³ multiply-adds). NULL: no memory. */
static inline const double *codec_encode_xtx(uint64_t cols) {
    static struct {
        uint64_t cols;
        double *xtx;
    } memo[4];
    static unsigned next;
    for (int k = 0; k < 4; k++)
        if (memo[k].xtx && memo[k].cols == cols) return memo[k].xtx;
    const uint64_t n = 4 * cols;
    double *x = malloc(n * cols * sizeof(double)), *xtx = calloc(cols * cols, sizeof(double));
    if (!x || !xtx) {
        free(x);
        free(xtx);
        return NULL;
    }
    uint64_t s = 0x9e3779b97f4a7c15ull;
    for (uint64_t i = 0; i < n * cols; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = (double)(s >> 11) / 9007199254740992.0 - 0.5;
    }
    /* the upper triangle in 64x64 tiles that stay in cache (each element still sums
     * t in ascending order, so the values are those of the plain triple loop), then
     * mirrored: the product is commutative, so the lower triangle is the same */
    const uint64_t B = 64;
    for (uint64_t ib = 0; ib < cols; ib += B)
        for (uint64_t jb = ib; jb < cols; jb += B) {
            const uint64_t ie = ib + B < cols ? ib + B : cols, je = jb + B < cols ? jb + B : cols;
            for (uint64_t t = 0; t < n; t++) {
                const double *xt = x + t * cols;
                for (uint64_t i = ib; i < ie; i++) {
                    const double xi = xt[i];
                    double *row = xtx + i * cols;
                    for (uint64_t j = jb > i ? jb : i; j < je; j++) row[j] += xi * xt[j];
                }
            }
        }
    for (uint64_t i = 0; i < cols; i++)
        for (uint64_t j = i + 1; j < cols; j++) xtx[j * cols + i] = xtx[i * cols + j];
    free(x);
    unsigned k = next++ % 4;
    free(memo[k].xtx);
    memo[k].cols = cols;
    memo[k].xtx = xtx;
    return xtx;
}

/* Encodes w with c/params as a method would, with the quantization
 * library's encoders too (quant/encoders.c: codecs whose descriptor leaves
 * enc NULL): codecs that need calibration statistics get codec_encode_xtx(cols),
 * and every codec the same seed. */
static inline sq_status codec_encode(const sq_codec *c, const uint32_t *params, const float *w, uint64_t rows,
                                     uint64_t cols, int n_threads, sq_encoded *out, sq_err *err) {
    const double *xtx = NULL;
    if (sq_quant_needs_xtx(c) && !(xtx = codec_encode_xtx(cols)))
        return sq_err_set(err, SQ_ENOMEM, "test: out of memory for XᵀX");
    sq_encode_ctx ctx = {.codec = c, .params = params, .w = w, .rows = rows, .cols = cols, .xtx = xtx,
                         .seed = 1, .n_threads = n_threads};
    return sq_quant_encode(&ctx, out, err);
}

#endif
