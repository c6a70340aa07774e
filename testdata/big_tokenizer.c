/* A synthetic SentencePiece-style vocabulary of any size, as a llama2.c
 * tokenizer.bin, so the big model can be calibrated on real text and
 * exported to GGUF (both need a tokenizer of the model's vocabulary size).
 * Layout as Llama's: <unk>, <s>, </s>, the 256 byte pieces <0x00>..<0xFF>
 * (byte fallback makes every text encodable), then the printable ASCII
 * characters, then lowercase strings of 2, 3, 4... letters, optionally
 * after a leading space (U+2581 in SentencePiece), in English letter
 * frequency order until the vocabulary is full. Every piece of length L > 1
 * has its first L-1 characters as a piece, so BPE merges can reach it;
 * scores fall with the index, so shorter and more frequent pieces merge
 * first. Deterministic: the same bytes on every machine. */
#include "big_tokenizer.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const char letters[] = "etaoinsrhldcumfpgwybvkxjqz"; /* English frequency order */

static int put_piece(FILE *f, float score, const char *s, int32_t len) {
    return fwrite(&score, 4, 1, f) != 1 || fwrite(&len, 4, 1, f) != 1 || (len && fwrite(s, 1, (size_t)len, f) != (size_t)len);
}

int write_big_tokenizer(const char *path, uint32_t vocab) {
    if (vocab < 3 + 256 + 95) {
        errno = EINVAL;
        return -1;
    }
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    const uint32_t max_len = 6; /* "\n</s>\n"; letter pieces stop far below that in any 32-bit vocabulary */
    int bad = fwrite(&max_len, 4, 1, f) != 1;
    bad |= put_piece(f, 0.0f, "<unk>", 5) | put_piece(f, 0.0f, "\n<s>\n", 5) | put_piece(f, 0.0f, "\n</s>\n", 6);
    char s[16];
    for (int b = 0; b < 256; b++) {
        snprintf(s, sizeof s, "<0x%02X>", b);
        bad |= put_piece(f, 0.0f, s, 6);
    }
    uint32_t id = 3 + 256, k = 0; /* k: index among the normal pieces, for the score */
    for (int c = 0x20; c < 0x7f; c++, id++, k++) {
        s[0] = (char)c;
        bad |= put_piece(f, -(float)k, s, 1);
    }
    /* Length L: a first character from " " + letters, then L-1 letters; the
     * digits of idx (base 26, first digit base 27) name the characters. */
    for (int L = 2; id < vocab && L < 6; L++) {
        uint64_t count = 27;
        for (int i = 1; i < L; i++) count *= 26;
        for (uint64_t idx = 0; idx < count && id < vocab; idx++, id++, k++) {
            uint64_t x = idx;
            for (int i = L - 1; i >= 1; i--, x /= 26) s[i] = letters[x % 26];
            s[0] = x == 0 ? ' ' : letters[x - 1];
            bad |= put_piece(f, -(float)k, s, L);
        }
    }
    if (id < vocab) bad = 1, errno = EINVAL; /* more than 27 * 26^4 pieces: not a vocabulary anyone uses */
    if (fclose(f)) bad = 1;
    if (bad) remove(path);
    return bad ? -1 : 0;
}
