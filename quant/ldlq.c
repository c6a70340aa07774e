/* BlockLDLQ driver (see ldlq.h). */
#include "ldlq.h"

#include <stdlib.h>
#include <string.h>

#include "linalg.h"
#include "squish/codec.h" /* sq_parallel_for, sq_isa_active */

typedef struct ldlq_ctx {
    const float *w, *U;
    float *wq;
    uint64_t rows, cols, tile;
    uint32_t width, lazy;
    sq_vq_block_fn fn;
    void *fctx;
    sq_isa isa;
    sq_status st; /* first failure (written under no lock: any non-OK value is kept) */
} ldlq_ctx;

static void ldlq_tiles(void *p, uint64_t t0, uint64_t t1) {
    ldlq_ctx *x = p;
    const uint64_t K = x->cols, B = x->lazy, bw = x->width, T = x->tile;
    float *W = malloc(T * K * sizeof(float)), *E = malloc(T * B * sizeof(float)), *Q = malloc(T * bw * sizeof(float));
    if (!W || !E || !Q) {
        x->st = SQ_ENOMEM;
        goto out;
    }
    for (uint64_t tile = t0; tile < t1 && x->st == SQ_OK; tile++) {
        const uint64_t r0 = tile * T, R = x->rows - r0 < T ? x->rows - r0 : T;
        memcpy(W, x->w + r0 * K, R * K * sizeof(float));
        for (uint64_t i1 = 0; i1 < K; i1 += B) {
            const uint64_t i2 = i1 + B < K ? i1 + B : K, nb = i2 - i1;
            for (uint64_t c0 = i1; c0 < i2; c0 += bw) {
                sq_status st = x->fn(x->fctx, r0, R, c0, (uint32_t)bw, W + c0, K, Q, bw);
                if (st) {
                    x->st = st;
                    goto out;
                }
                for (uint64_t r = 0; r < R; r++) {
                    float *wr = W + r * K, *er = E + r * B + (c0 - i1);
                    const float *qr = Q + r * bw;
                    /* E' = (W_b - Q_b) · U_bb⁻¹: forward substitution over the block */
                    for (uint64_t j = 0; j < bw; j++) {
                        float e = wr[c0 + j] - qr[j];
                        for (uint64_t i = 0; i < j; i++) e -= er[i] * x->U[(c0 + i) * K + c0 + j];
                        er[j] = e / x->U[(c0 + j) * K + c0 + j];
                    }
                    if (x->wq) memcpy(x->wq + (r0 + r) * K + c0, qr, bw * sizeof(float));
                    /* rest of the batch at once: W[:, c0+bw:i2] -= E' · U[b, c0+bw:i2] */
                    for (uint64_t i = 0; i < bw; i++) {
                        const float *Ui = x->U + (c0 + i) * K;
                        const float e = er[i];
                        for (uint64_t j = c0 + bw; j < i2; j++) wr[j] -= e * Ui[j];
                    }
                }
            }
            if (i2 < K) /* lazy update of the remaining columns: W[:, i2:] -= E · U[i1:i2, i2:] */
                if (sq_la_matmul_f32(x->isa, 1, R, K - i2, nb, E, B, x->U + i1 * K + i2, K, W + i2, K)) {
                    x->st = SQ_ENOMEM;
                    goto out;
                }
        }
    }
out:
    free(W);
    free(E);
    free(Q);
}

sq_status sq_ldlq_run(const float *w, uint64_t rows, uint64_t cols, const float *U, const sq_ldlq_opts *o,
                      sq_vq_block_fn fn, void *ctx, float *wq, sq_err *err) {
    const uint32_t bw = o->width ? o->width : 8, lazy = o->lazy ? o->lazy : 128;
    if (cols % bw || lazy % bw)
        return sq_err_set(err, SQ_EUSAGE, "LDLQ: %llu columns (lazy batch %u) are not a multiple of the vector width %u",
                          (unsigned long long)cols, lazy, bw);
    ldlq_ctx x = {w, U, wq, rows, cols, o->row_tile ? o->row_tile : 64, bw, lazy, fn, ctx, sq_isa_active(), SQ_OK};
    sq_parallel_for(o->n_threads > 0 ? o->n_threads : 1, (rows + x.tile - 1) / x.tile, ldlq_tiles, &x);
    if (x.st == SQ_ENOMEM) return sq_err_set(err, SQ_ENOMEM, "LDLQ: out of memory (%llu x %llu)", (unsigned long long)rows,
                                             (unsigned long long)cols);
    if (x.st) return sq_err_set(err, x.st, "LDLQ: the block quantizer failed (%s)", sq_status_name(x.st));
    return SQ_OK;
}
