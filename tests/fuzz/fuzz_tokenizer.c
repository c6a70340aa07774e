/* Fuzz targets: tokenizer file parsers (built with -DKIND=0 tokenizer.json,
 * 1 SentencePiece tokenizer.model, 2 llama2.c tokenizer.bin); an accepted
 * tokenizer must then encode and decode a sample text in bounds. */
#include <stdint.h>
#include <stdlib.h>

#include "tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    sq_err err;
    sq_tokenizer *t = sq_tokenizer_load_mem(data, size, KIND, 512, "fuzz", &err);
    if (!t) return 0;
    static const char text[] = "Once upon a time, it's 2026:\n\tcaf\xc3\xa9  na\xc3\xafve \xe2\x96\x81 <|endoftext|> end ";
    int32_t *ids;
    uint64_t n;
    if (!sq_tokenize(t, text, sizeof text - 1, &ids, &n, &err)) {
        char buf[64];
        for (uint64_t i = 0; i < n; i++) sq_detokenize_one(t, ids[i], buf, sizeof buf);
        free(ids);
    }
    sq_tokenizer_free(t);
    return 0;
}
