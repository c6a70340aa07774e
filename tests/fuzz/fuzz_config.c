/* Fuzz target: config.json parsing. */
#include <stdint.h>

#include "squish/model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    sq_err err;
    sq_model *m = sq_model_new("fuzz", &err);
    if (!m) return 0;
    sq_model_parse_config(m, "config.json", (const char *)data, size, &err);
    sq_model_close(m);
    return 0;
}
