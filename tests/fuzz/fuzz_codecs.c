/* Fuzz target: every codec's decoders and GEMV kernels on arbitrary part
 * bytes: each ISA slot its CPU traits fill that this CPU runs, and the fast
 * kernels with their activation forms (sq_fast_kernel_for, sq_act_prepare,
 * sq_kernel_run). Byte 0 picks the codec, byte 1 one of the variants its
 * descriptor admits (tests/codec_variants.h), bytes 2..4 the shape; the
 * rest fills the parts (repeated as needed). A part whose first dimension
 * depends on the data (SQ_PART_DATA_DIM0) takes it from the input, and the
 * kernels run only when the codec's check() accepts the parts, as
 * sq_tview_open would.
 *
 * The replay build (REPLAY_EVERY_CODEC, tests/CMakeLists.txt) runs every
 * input against every registered codec, so a codec added to the registry is
 * replayed over the whole corpus without a new seed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../codec_variants.h"
#include "squish/codec.h"

static void run_kernel(sq_cpu_kernel k, const sq_tview *v, const float *x, float *y) {
    sq_act a;
    if (sq_act_prepare(k.act, x, v->cols, &a, NULL)) return;
    sq_kernel_run(k, v, &a, y, 0, v->rows);
    sq_act_release(&a);
}

/* Spellings the generic variants do not reach (a codec's own options):
 * spqr's code widths other than its default, whose kernels read codes
 * differently (one 32-bit window for w <= 4, two for w5..w8), and the
 * encoder-record bits of params[4] (16: :mse / :minmax, 17: :rht); mix's
 * width sets other than {2,3,4,8} (1-bit and 5..7-bit blocks). */
static const char *const extra_variants[] = {"spqr:w2:b8", "spqr:w5:b8:sb6", "spqr:w6:b16:sb8", "spqr:w8:b5:r3",
                                             "spqr:w3:sb6:minmax:rht:t0", "mix:g32:3:w1248", "mix:g64:5:w5678", NULL};

static void run_codec(const sq_codec *c, const uint8_t *data, size_t size) {
    codec_variant vs[CODEC_MAX_VARIANTS];
    int nv = codec_variants(c, vs, CODEC_MAX_VARIANTS, NULL, 0);
    if (nv <= 0) return;
    const size_t nl = strlen(c->name);
    for (int i = 0; extra_variants[i]; i++)
        if (!strncmp(extra_variants[i], c->name, nl) && extra_variants[i][nl] == ':')
            variant_add(extra_variants[i], vs, &nv, CODEC_MAX_VARIANTS);
    const codec_variant *cv = &vs[data[1] % nv];
    const uint64_t rows = 1 + data[2] % 9, cols = 1 + (uint64_t)(data[3] | data[4] << 8) % 700;
    const uint8_t *src = data + 5;
    const size_t srclen = size - 5;
    sq_part_spec sp[SQ_CODEC_MAX_PARTS];
    int np = sq_layout(c, cv->params, rows, cols, sp);
    sq_tview v;
    memset(&v, 0, sizeof v);
    v.codec = c;
    memcpy(v.params, cv->params, sizeof v.params);
    v.rows = rows;
    v.cols = cols;
    v.nparts = np;
    void *bufs[SQ_CODEC_MAX_PARTS] = {0};
    size_t k = 0;
    int ok = 1;
    for (int i = 0; ok && i < np; i++) {
        if (sp[i].flags & SQ_PART_DATA_DIM0) sp[i].dims[0] = src[k++ % srclen] % (rows * cols + 1);
        uint64_t b = sq_part_spec_bytes(&sp[i]);
        uint8_t *m = malloc(b ? b : 1);
        ok = m != NULL;
        for (uint64_t j = 0; ok && j < b; j++) m[j] = src[k++ % srclen];
        bufs[i] = m;
        v.part[i] = m;
        v.dim0[i] = sp[i].dims[0];
    }
    char why[256];
    if (ok && c->check) ok = c->check(&v, why, sizeof why) == 0; /* refused, as a reader would */
    float *out = malloc(rows * cols * sizeof(float)), *x = malloc(cols * sizeof(float)), *y = malloc(rows * sizeof(float));
    if (ok && out && x && y) {
        for (uint64_t i = 0; i < cols; i++) x[i] = (float)(src[i % srclen]) / 64.0f - 2.0f;
        const sq_codec_cpu *cpu = c->cpu;
        for (int isa = 0; isa < SQ_ISA_COUNT; isa++) {
            if (!sq_isa_supported((sq_isa)isa)) continue;
            if (cpu->decode[isa]) cpu->decode[isa](&v, 0, rows, out);
            if (cpu->gemv[isa]) cpu->gemv[isa](&v, x, y, 0, rows);
            if (cpu->fast[isa].fn.f32) run_kernel(cpu->fast[isa], &v, x, y);
            sq_decode_for(c, (sq_isa)isa)(&v, 0, rows, out);
            sq_gemv_for(c, (sq_isa)isa)(&v, x, y, 0, rows);
            run_kernel(sq_fast_kernel_for(c, (sq_isa)isa), &v, x, y);
        }
    }
    free(out);
    free(x);
    free(y);
    for (int i = 0; i < np; i++) free(bufs[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 6) return 0;
    const sq_codec *const *list = sq_codec_list();
    int n = 0;
    while (list[n]) n++;
#ifdef REPLAY_EVERY_CODEC
    for (int i = 0; i < n; i++) run_codec(list[i], data, size);
#else
    run_codec(list[data[0] % n], data, size);
#endif
    return 0;
}
