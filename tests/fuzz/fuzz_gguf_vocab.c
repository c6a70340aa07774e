/* Fuzz target: a tokenizer file as a GGUF vocabulary (gguf_vocab.c: the
 * tokenizer.json, SentencePiece protobuf and llama2.c parsers of the GGUF
 * export). The first byte picks the kind (mod 3), the rest is the file. */
#include <stdint.h>
#include <stdlib.h>

#include "writers/gguf_vocab.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    sq_gguf_writer *w = sq_gguf_writer_new();
    if (!w) return 0;
    sq_gguf_vocab_src src = {"fuzz", data + 1, size - 1, data[0] % 3, NULL, NULL, 0, 512};
    const char *model;
    sq_err err;
    sq_gguf_add_vocab(w, &src, &model, &err);
    sq_gguf_writer_free(w);
    return 0;
}
