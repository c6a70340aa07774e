/* The tokenizer embedded in a .squizd container (squish-pack bundle), so
 * that a bundle evaluates and generates text on its own, away from the model
 * directory it came from. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "squish/container.h"
#include "tokenizer.h"

/* In order of preference, with the loader kind of sq_tokenizer_load_mem. */
static const struct {
    const char *name;
    int kind;
} embedded_names[] = {{"tokenizer.json", 0}, {"tokenizer.model", 1}, {"tokenizer.bin", 2}};

sq_tokenizer *sq_tokenizer_embedded(const sq_file *f, uint32_t vocab, char *label, size_t label_cap, sq_err *err) {
    err->status = SQ_OK;
    for (size_t k = 0; k < sizeof embedded_names / sizeof embedded_names[0]; k++)
        for (uint32_t i = 0; i < sq_file_nappendix(f); i++) {
            const sq_appendix *a = sq_file_appendix(f, i);
            if (a->type != SQ_APPX_FILE) continue;
            const char *name;
            size_t nl;
            const uint8_t *data;
            uint64_t size;
            void *owned;
            if (sq_appendix_file(f, a, &name, &nl, &data, &size, &owned, err)) return NULL;
            if (nl == strlen(embedded_names[k].name) && !memcmp(name, embedded_names[k].name, nl)) {
                snprintf(label, label_cap, "%s (embedded %s)", sq_file_path(f), embedded_names[k].name);
                sq_tokenizer *t = sq_tokenizer_load_mem(data, (size_t)size, embedded_names[k].kind, vocab, label, err);
                free(owned);
                return t;
            }
            free(owned);
        }
    return NULL;
}
