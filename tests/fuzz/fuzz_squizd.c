/* Fuzz target: the .squizd reader, full verification and decoding. A file
 * that verifies must decode to finite values only (spec/codecs.md §10): a
 * NaN or infinity from one is a finding. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "squish/codec.h"
#include "squish/container.h"
#include "squish/model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    sq_err err;
    sq_file *f = sq_open_mem("fuzz.squizd", data, size, &err);
    if (!f) return 0;
    int valid = sq_verify(f, NULL, NULL, &err) == SQ_OK;
    sq_file_check_model(f, &err);
    sq_file_metadata(f, &err);
    for (uint32_t i = 0; i < sq_file_ntensors(f); i++) {
        sq_tview v;
        void *owned[SQ_CODEC_MAX_PARTS];
        if (sq_tview_open(f, sq_file_tensor(f, i), 1, &v, owned, &err)) continue;
        if (v.rows * v.cols <= (1u << 20)) { /* decode only what is small enough to be worth it */
            float *out = malloc((size_t)(v.rows * v.cols) * sizeof(float)), *x = calloc((size_t)v.cols, sizeof(float));
            float *y = malloc((size_t)v.rows * sizeof(float));
            if (out && x && y) {
                sq_decode_rows(&v, 0, v.rows, out);
                for (uint64_t k = 0; valid && k < v.rows * v.cols; k++)
                    if (!isfinite(out[k])) {
                        fprintf(stderr, "tensor %s verifies but decodes to %g at %llu\n", sq_file_tensor(f, i)->name,
                                (double)out[k], (unsigned long long)k);
                        abort();
                    }
                sq_gemv(&v, x, y, 0, v.rows);
            }
            free(out);
            free(x);
            free(y);
        }
        for (int k = 0; k < SQ_CODEC_MAX_PARTS; k++) free(owned[k]);
    }
    for (uint32_t i = 0; i < sq_file_nappendix(f); i++) {
        const void *p;
        void *owned;
        if (!sq_appendix_read(f, sq_file_appendix(f, i), &p, &owned, &err)) free(owned);
    }
    sq_close(f);
    return 0;
}
