/* Fuzz target: every codec's decoders and GEMV kernels on arbitrary part
 * bytes. Byte 0 picks the codec, bytes 1..4 the shape and parameters; the
 * rest fills the parts (repeated as needed). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "squish/codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 6) return 0;
    const sq_codec *const *list = sq_codec_list();
    int n = 0;
    while (list[n]) n++;
    const sq_codec *c = list[data[0] % n];
    static const char *const opts[] = {"", ":g32", ":g64:asym", ":pc:asym", ":g128:sbf16", ":pt", ":dq", ":g256:s32"};
    char scheme[64];
    snprintf(scheme, sizeof scheme, "%s%s", c->name, opts[data[1] % 8]);
    uint32_t p[SQ_NPARAMS];
    if (sq_scheme_parse(scheme, &c, p, NULL)) sq_scheme_parse(c->name, &c, p, NULL);
    uint64_t rows = 1 + data[2] % 9, cols = 1 + (uint64_t)(data[3] | data[4] << 8) % 700;
    sq_part_spec sp[SQ_CODEC_MAX_PARTS];
    int np = sq_layout(c, p, rows, cols, sp);
    sq_tview v;
    memset(&v, 0, sizeof v);
    v.codec = c;
    memcpy(v.params, p, sizeof p);
    v.rows = rows;
    v.cols = cols;
    void *bufs[SQ_CODEC_MAX_PARTS] = {0};
    const uint8_t *src = data + 5;
    size_t srclen = size - 5, k = 0;
    for (int i = 0; i < np; i++) {
        uint64_t b = sq_dtype_size(sp[i].dtype);
        for (uint32_t d = 0; d < sp[i].ndim; d++) b *= sp[i].dims[d];
        uint8_t *m = malloc(b ? b : 1);
        for (uint64_t j = 0; j < b; j++) m[j] = src[k++ % srclen];
        bufs[i] = m;
        v.part[i] = m;
    }
    float *out = malloc(rows * cols * sizeof(float)), *x = malloc(cols * sizeof(float)), *y = malloc(rows * sizeof(float));
    for (uint64_t i = 0; i < cols; i++) x[i] = (float)(src[i % srclen]) / 64.0f - 2.0f;
    for (int isa = 0; isa < SQ_ISA_COUNT; isa++) {
        if (!sq_isa_supported((sq_isa)isa)) continue;
        sq_decode_for(c, (sq_isa)isa)(&v, 0, rows, out);
        sq_gemv_for(c, (sq_isa)isa)(&v, x, y, 0, rows);
        sq_gemv_q8_fn q8 = sq_gemv_q8_for(c, (sq_isa)isa);
        sq_act_q8 a;
        if (q8 && !sq_act_q8_init(&a, x, cols, NULL)) {
            q8(&v, &a, y, 0, rows);
            sq_act_q8_free(&a);
        }
    }
    for (int i = 0; i < np; i++) free(bufs[i]);
    free(out);
    free(x);
    free(y);
    return 0;
}
