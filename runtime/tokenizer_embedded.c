/* The tokenizer embedded in a .squizd container (squish-quantize embeds it
 * by default; squish-pack bundle adds it), so that the file evaluates and
 * generates text on its own, away from the model directory it came from. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "squish/bundle.h"
#include "squish/container.h"
#include "tokenizer.h"

sq_tokenizer *sq_tokenizer_embedded(const sq_file *f, uint32_t vocab, char *label, size_t label_cap, sq_err *err) {
    err->status = SQ_OK;
    /* the preferred one (sq_bundle_tokenizer_rank: tokenizer.json, .model, .bin, tok<N>.bin) */
    int best = -1, best_rank = 99;
    for (uint32_t i = 0; i < sq_file_nappendix(f); i++) {
        const sq_appendix *a = sq_file_appendix(f, i);
        if (a->type != SQ_APPX_FILE) continue;
        const char *name;
        size_t nl;
        const uint8_t *data;
        uint64_t size;
        void *owned;
        if (sq_appendix_file(f, a, &name, &nl, &data, &size, &owned, err)) return NULL;
        int r = sq_bundle_tokenizer_rank(name, nl, NULL);
        if (r >= 0 && r < best_rank) {
            best = (int)i;
            best_rank = r;
        }
        free(owned);
    }
    if (best < 0) return NULL;
    const char *name;
    size_t nl;
    const uint8_t *data;
    uint64_t size;
    void *owned;
    int kind;
    if (sq_appendix_file(f, sq_file_appendix(f, (uint32_t)best), &name, &nl, &data, &size, &owned, err)) return NULL;
    sq_bundle_tokenizer_rank(name, nl, &kind);
    snprintf(label, label_cap, "%s (embedded %.*s)", sq_file_path(f), (int)nl, name);
    sq_tokenizer *t = sq_tokenizer_load_mem(data, (size_t)size, kind, vocab, label, err);
    free(owned);
    return t;
}
