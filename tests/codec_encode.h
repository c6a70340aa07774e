/* The tests' encode of a generated codec variant (test_codecs, test_vulkan). */
#ifndef SQUISH_CODEC_ENCODE_H
#define SQUISH_CODEC_ENCODE_H

#include <stdlib.h>

#include "encoders.h"
#include "squish/codec.h"

/* Encodes w with c/params as a method would, with the quantization
 * library's encoders too (quant/encoders.c: codecs whose descriptor leaves
 * enc NULL): codecs that need calibration statistics get the XᵀX of 4·cols
 * fixed pseudo-random activation rows, and every codec the same seed. */
static inline sq_status codec_encode(const sq_codec *c, const uint32_t *params, const float *w, uint64_t rows,
                                     uint64_t cols, int n_threads, sq_encoded *out, sq_err *err) {
    double *xtx = NULL;
    if (sq_quant_needs_xtx(c)) {
        const uint64_t n = 4 * cols;
        double *x = malloc(n * cols * sizeof(double));
        xtx = calloc(cols * cols, sizeof(double));
        if (!x || !xtx) {
            free(x);
            free(xtx);
            return sq_err_set(err, SQ_ENOMEM, "test: out of memory for XᵀX");
        }
        uint64_t s = 0x9e3779b97f4a7c15ull;
        for (uint64_t i = 0; i < n * cols; i++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            x[i] = (double)(s >> 11) / 9007199254740992.0 - 0.5;
        }
        for (uint64_t t = 0; t < n; t++)
            for (uint64_t i = 0; i < cols; i++)
                for (uint64_t j = 0; j < cols; j++) xtx[i * cols + j] += x[t * cols + i] * x[t * cols + j];
        free(x);
    }
    sq_encode_ctx ctx = {.codec = c, .params = params, .w = w, .rows = rows, .cols = cols, .xtx = xtx,
                         .seed = 1, .n_threads = n_threads};
    sq_status st = sq_quant_encode(&ctx, out, err);
    free(xtx);
    return st;
}

#endif
