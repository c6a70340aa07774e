/* A synthetic SentencePiece BPE vocabulary of any size, as the
 * tokenizer.model protobuf Llama-2 ships, so that the big model can be
 * calibrated on real text and exported to GGUF (both need a tokenizer of
 * the model's vocabulary size). Layout as Llama's: <unk>, <s>, </s>, the
 * 256 byte pieces <0x00>..<0xFF> (byte fallback: every text encodes), then
 * the printable ASCII characters, then lowercase strings of 2, 3, 4...
 * letters, optionally after a leading space (U+2581), in English letter
 * frequency order until the vocabulary is full. Every piece of length L > 1
 * has its first L-1 characters as a piece, so BPE merges can reach it;
 * scores fall with the index, so shorter and more frequent pieces merge
 * first. Identity normalization, a dummy prefix, whitespace kept (as
 * Llama's). Deterministic: the same bytes on every machine. */
#include "big_tokenizer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { PIECE_NORMAL = 1, PIECE_UNKNOWN = 2, PIECE_CONTROL = 3, PIECE_BYTE = 6 };

static const char letters[] = "etaoinsrhldcumfpgwybvkxjqz"; /* English frequency order */

typedef struct pbuf {
    uint8_t *p;
    size_t n, cap;
    int bad;
} pbuf;

static void put(pbuf *b, const void *s, size_t n) {
    if (b->bad) return;
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 1 << 16;
        while (cap < b->n + n) cap *= 2;
        uint8_t *p = realloc(b->p, cap);
        if (!p) { b->bad = 1; return; }
        b->p = p, b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
}

static void varint(pbuf *b, uint64_t v) {
    uint8_t t[10];
    size_t k = 0;
    do {
        t[k] = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v) t[k] |= 0x80;
        k++;
    } while (v);
    put(b, t, k);
}

/* ModelProto.pieces (field 1): SentencePiece { piece = 1, score = 2, type = 3 } */
static void piece(pbuf *b, const char *s, size_t len, float score, int type) {
    uint8_t f[4];
    uint32_t u;
    memcpy(&u, &score, 4);
    for (int i = 0; i < 4; i++) f[i] = (uint8_t)(u >> (8 * i)); /* fixed32, little-endian */
    const size_t body = 1 + (len < 128 ? 1 : 2) + len + 1 + 4 + 1 + 1;
    varint(b, 1 << 3 | 2);
    varint(b, body);
    varint(b, 1 << 3 | 2);
    varint(b, len);
    put(b, s, len);
    varint(b, 2 << 3 | 5);
    put(b, f, 4);
    varint(b, 3 << 3 | 0);
    varint(b, (uint64_t)type);
}

/* A normal piece: a leading ' ' written as U+2581 */
static void text_piece(pbuf *b, const char *s, size_t len, float score) {
    char t[16];
    size_t k = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == ' ') memcpy(t + k, "\xe2\x96\x81", 3), k += 3;
        else t[k++] = s[i];
    }
    piece(b, t, k, score, PIECE_NORMAL);
}

int write_big_tokenizer(const char *path, uint32_t vocab) {
    if (vocab < 3 + 256 + 95) {
        errno = EINVAL;
        return -1;
    }
    pbuf b = {0};
    piece(&b, "<unk>", 5, 0.0f, PIECE_UNKNOWN);
    piece(&b, "<s>", 3, 0.0f, PIECE_CONTROL);
    piece(&b, "</s>", 4, 0.0f, PIECE_CONTROL);
    char s[16];
    for (int c = 0; c < 256; c++) {
        snprintf(s, sizeof s, "<0x%02X>", c);
        piece(&b, s, 6, 0.0f, PIECE_BYTE);
    }
    uint32_t id = 3 + 256, k = 0; /* k: index among the normal pieces, for the score */
    for (int c = 0x20; c < 0x7f; c++, id++, k++) {
        s[0] = (char)c;
        text_piece(&b, s, 1, -(float)k);
    }
    /* Length L: a first character from " " + letters, then L-1 letters; the
     * digits of idx (base 26, the first one base 27) name the characters. */
    for (int L = 2; id < vocab && L <= 5; L++) {
        uint64_t count = 27;
        for (int i = 1; i < L; i++) count *= 26;
        for (uint64_t idx = 0; idx < count && id < vocab; idx++, id++, k++) {
            uint64_t x = idx;
            for (int i = L - 1; i >= 1; i--, x /= 26) s[i] = letters[x % 26];
            s[0] = x == 0 ? ' ' : letters[x - 1];
            text_piece(&b, s, (size_t)L, -(float)k);
        }
    }
    /* TrainerSpec (field 2): model_type = 3 (2: BPE), byte_fallback = 35 */
    static const uint8_t trainer[] = {2 << 3 | 2, 5, 3 << 3 | 0, 2, 0x98, 0x02, 1};
    put(&b, trainer, sizeof trainer);
    /* NormalizerSpec (field 3): name = 1 "identity", add_dummy_prefix = 3, remove_extra_whitespaces = 4 */
    static const uint8_t norm[] = {3 << 3 | 2, 14, 1 << 3 | 2, 8, 'i', 'd', 'e', 'n', 't', 'i', 't', 'y', 3 << 3 | 0, 1, 4 << 3 | 0, 0};
    put(&b, norm, sizeof norm);
    if (id < vocab || b.bad) { /* more than 27 * 26^4 pieces: not a vocabulary anyone uses */
        free(b.p);
        errno = b.bad ? ENOMEM : EINVAL;
        return -1;
    }
    FILE *f = fopen(path, "wb");
    if (!f) { free(b.p); return -1; }
    int bad = fwrite(b.p, 1, b.n, f) != b.n;
    if (fclose(f)) bad = 1;
    free(b.p);
    if (bad) remove(path);
    return bad ? -1 : 0;
}
