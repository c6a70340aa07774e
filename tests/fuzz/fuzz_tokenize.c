/* Fuzz target: encoding arbitrary bytes as text with a small byte-level BPE
 * tokenizer built here (every byte has a token, plus a few merges): UTF-8
 * validation, the GPT-2 pre-tokenizer, BPE merging, added tokens. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer.h"

static sq_tokenizer *tok;

/* GPT-2 bytes_to_unicode, written to JSON as \\u escapes */
static void build(void) {
    static char json[65536];
    size_t k = (size_t)snprintf(json, sizeof json, "{\"added_tokens\":[{\"id\":300,\"content\":\"<|endoftext|>\"}],"
                                                   "\"pre_tokenizer\":{\"type\":\"ByteLevel\"},\"model\":{\"type\":\"BPE\",\"vocab\":{");
    unsigned next = 256;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174);
        unsigned c = printable ? (unsigned)b : next++;
        k += (size_t)snprintf(json + k, sizeof json - k, "%s\"\\u%04x\":%d", b ? "," : "", c, b);
    }
    k += (size_t)snprintf(json + k, sizeof json - k,
                          ",\"\\u0120t\":256,\"he\":257,\"\\u0120the\":258,\"in\":259},\"merges\":[[\"\\u0120\",\"t\"],[\"h\",\"e\"],"
                          "[\"\\u0120t\",\"he\"],\"i n\"]}}");
    sq_err err;
    tok = sq_tokenizer_load_mem((const uint8_t *)json, k, 0, 0, "built-in", &err);
    if (!tok) {
        fprintf(stderr, "fuzz_tokenize: %s\n", err.msg);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!tok) build();
    int32_t *ids;
    uint64_t n;
    sq_err err;
    if (!sq_tokenize(tok, (const char *)data, size, &ids, &n, &err)) {
        for (uint64_t i = 0; i < n; i++)
            if (ids[i] < 0 || ids[i] > 300) abort(); /* every id must be one the tokenizer has */
        free(ids);
    }
    return 0;
}
