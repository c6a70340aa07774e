/* Fuzz target: AQLM parts (libformat/src/codecs/aqlm) from arbitrary bytes.
 * Bytes 0..3 pick M (1..3), B (1..16), rows (1..9) and groups (1..8);
 * byte 4 may shift a part's size by one byte (validation must refuse it);
 * the rest fills the parts. What validates is decoded and multiplied on
 * every ISA path, which must agree bit for bit. */
#include <stdlib.h>
#include <string.h>

#include "../../libformat/src/codecs/aqlm/aqlm_decode.h"
#include "squish/codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 6) return 0;
    sq_aqlm_view v = {0};
    v.M = 1 + data[0] % 3;
    v.B = 1 + data[1] % 16;
    v.rows = 1 + data[2] % 9;
    v.cols = SQ_AQLM_G * (1 + data[3] % 8);
    uint64_t sz[3] = {sq_aqlm_codes_bytes(v.rows, v.cols, v.M, v.B), sq_aqlm_codebooks_bytes(v.M, v.B),
                      sq_aqlm_scales_bytes(v.rows)};
    if (data[4] % 8 < 3) sz[data[4] % 8] += 1;
    else if (data[4] % 8 < 6 && sz[data[4] % 8 - 3] > 1) sz[data[4] % 8 - 3] -= 1;
    const uint8_t *src = data + 5;
    size_t srclen = size - 5, k = 0;
    uint8_t *p[3];
    for (int i = 0; i < 3; i++) {
        p[i] = malloc(sz[i]);
        for (uint64_t j = 0; j < sz[i]; j++) p[i][j] = src[k++ % srclen];
    }
    v.codes = p[0];
    v.codes_bytes = sz[0];
    v.codebooks = p[1];
    v.codebooks_bytes = sz[1];
    v.scales = p[2];
    v.scales_bytes = sz[2];
    sq_err err;
    if (sq_aqlm_validate(&v, "fuzz", &err) == SQ_OK) {
        float *out = malloc(v.rows * v.cols * sizeof(float)), *x = malloc(v.cols * sizeof(float)),
              *y0 = malloc(v.rows * sizeof(float)), *y = malloc(v.rows * sizeof(float));
        for (uint64_t i = 0; i < v.cols; i++) x[i] = (float)(src[i % srclen]) / 64.0f - 2.0f;
        sq_aqlm_decode_rows(&v, 0, v.rows, out);
        if (sq_aqlm_gemv_isa(SQ_ISA_PORTABLE, &v, x, y0, 0, v.rows, &err) == SQ_OK)
            for (int isa = 1; isa < SQ_ISA_COUNT; isa++)
                if (sq_isa_supported((sq_isa)isa) && sq_aqlm_gemv_isa(isa, &v, x, y, 0, v.rows, &err) == SQ_OK &&
                    memcmp(y, y0, v.rows * sizeof(float)))
                    abort(); /* the ISA paths must give the same bits (NaN patterns included) */
        free(out);
        free(x);
        free(y0);
        free(y);
    }
    for (int i = 0; i < 3; i++) free(p[i]);
    return 0;
}
