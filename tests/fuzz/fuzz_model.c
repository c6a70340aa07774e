/* Fuzz targets: the model readers over one in-memory file. Built once per
 * parser with -DPARSER=sq_model_parse_safetensors|..._gguf|..._llama2c. */
#include <stdint.h>
#include <stdlib.h>

#include "squish/model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    sq_err err;
    sq_model *m = sq_model_new("fuzz", &err);
    if (!m) return 0;
    int fi = sq_model_add_buffer(m, "fuzz.bin", data, size, &err);
    if (fi >= 0 && PARSER(m, fi, &err) == SQ_OK) {
        sq_model_check(m, &err); /* any accepted model: shapes and byte ranges compared in bounds */
        for (uint32_t i = 0; i < m->n_tensors; i++) { /* every accepted tensor must convert in bounds */
            uint64_t n = sq_model_tensor_elems(&m->tensors[i]);
            if (n > (1u << 22)) continue;
            float *w = malloc((size_t)(n ? n : 1) * sizeof(float));
            if (w) sq_model_tensor_f32(m, &m->tensors[i], w, &err);
            free(w);
        }
    }
    sq_model_close(m);
    return 0;
}
