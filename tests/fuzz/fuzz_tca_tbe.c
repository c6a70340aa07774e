/* Fuzz target: TCA-TBE (spec/squizd.md §13). Byte 0 picks what the rest is:
 *   even: a coded stream, of as many values as its n_values field says (at
 *         most 2^20): sq_tbe_open must refuse it or every decoder path must
 *         give the same values, and the coded GEMV the bf16 GEMV's bits;
 *   odd:  bf16 values: they must code, pass the checks and decode back.
 * A difference aborts (a finding), as a sanitizer report does. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "squish/codec.h"
#include "squish/tca_tbe.h"

static const sq_isa isas[] = {SQ_ISA_PORTABLE, SQ_ISA_AVX2, SQ_ISA_AVX512};

static void finding(const char *what) {
    fprintf(stderr, "fuzz_tca_tbe: %s\n", what);
    abort();
}

/* decode on every path, then the GEMV as rows x cols against the bf16 GEMV */
static void exercise(const sq_tbe *t, const uint16_t *want) {
    uint64_t n = t->n;
    uint16_t *a = malloc(n * 2 + 256), *b = malloc(n * 2 + 256);
    if (!a || !b) goto out;
    sq_tbe_decode_for(SQ_ISA_PORTABLE)(t, 0, t->n_blocks, a);
    if (want && memcmp(a, want, n * 2)) finding("decode differs from the values coded");
    for (int k = 1; k < 3; k++) {
        sq_tbe_decode_for(isas[k])(t, 0, t->n_blocks, b);
        if (memcmp(a, b, n * 2)) finding("decoder paths differ");
    }
    uint64_t cols = n % 128 == 0 && n >= 256 ? 128 : n, rows = n ? n / cols : 0;
    float *x = malloc((cols ? cols : 1) * sizeof(float)), *y0 = malloc((rows ? rows : 1) * sizeof(float)),
          *y1 = malloc((rows ? rows : 1) * sizeof(float));
    if (x && y0 && y1 && rows) {
        for (uint64_t i = 0; i < cols; i++) x[i] = (float)((int)(i % 7) - 3) * 0.25f;
        const sq_codec *bf16 = sq_codec_by_name("bf16");
        sq_tview tv = {.codec = bf16, .rows = rows, .cols = cols, .nparts = 1};
        tv.part[0] = a;
        for (int k = 0; k < 3; k++) {
            sq_tbe_gemv_for(isas[k])(t, cols, x, y0, 0, rows);
            sq_gemv_for(bf16, sq_tbe_isa(isas[k]))(&tv, x, y1, 0, rows);
            for (uint64_t r = 0; r < rows; r++) /* the same bits; NaN payloads may differ */
                if (memcmp(&y0[r], &y1[r], sizeof(float)) && !(y0[r] != y0[r] && y1[r] != y1[r]))
                    finding("coded GEMV differs from the bf16 GEMV");
        }
    }
    free(x), free(y0), free(y1);
out:
    free(a), free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const uint8_t *p = data + 1;
    size_t len = size - 1;
    sq_tbe t;
    if (!(data[0] & 1)) {
        if (len < 16) return 0;
        uint64_t n = 0;
        for (int i = 7; i >= 0; i--) n = n << 8 | p[8 + i];
        if (n > (1u << 20)) return 0;
        if (sq_tbe_open(&t, p, len, n, NULL, 0) == 0) exercise(&t, NULL);
        return 0;
    }
    uint64_t n = len / 2;
    uint16_t *v = malloc(n * 2 + 2);
    if (!v) return 0;
    memcpy(v, p, n * 2);
    uint8_t *c;
    uint64_t csize;
    sq_err err;
    if (sq_tbe_encode(v, n, &c, &csize, &err) == SQ_OK) {
        char why[300];
        if (sq_tbe_open(&t, c, csize, n, why, sizeof why)) finding(why);
        exercise(&t, v);
        free(c);
    }
    free(v);
    return 0;
}
