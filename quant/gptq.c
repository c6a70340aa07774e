/* GPTQ, following the reference implementation's steps (dead columns,
 * act-order, relative damping, inverse Cholesky factor, lazy block updates),
 * driving any codec through its error-feedback quantizer (sq_vq_ops): one
 * column at a time for scalar codecs, blocks of dim columns (BlockLDLQ) for
 * vector codecs. */
#include "gptq.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/big_alloc.h"
#include "descent.h"
#include "encoders.h"
#include "linalg.h"
#include "rtn.h"

#define ROW_TILE 64 /* rows per work unit: fixed, so results do not depend on the thread count */

static const double *sort_diag;
static int cmp_diag_desc(const void *a, const void *b) {
    uint32_t i = *(const uint32_t *)a, j = *(const uint32_t *)b;
    double x = sort_diag[i], y = sort_diag[j];
    if (x != y) return x > y ? -1 : 1;
    return i < j ? -1 : i > j; /* stable: ties keep column order */
}

sq_status sq_gptq_hinv(const double *H, uint64_t n, const uint32_t *perm, double damp, float *U, int n_threads,
                       sq_gptq_info *info, sq_err *err) {
    double *A = sq_big_alloc((size_t)n * n * sizeof(double)), *W = sq_big_alloc((size_t)n * n * sizeof(double));
    if (!A || !W) {
        free(A);
        free(W);
        return sq_err_set(err, SQ_ENOMEM, "GPTQ: out of memory for a %llu x %llu Hessian", (unsigned long long)n,
                          (unsigned long long)n);
    }
    double mean = 0;
    info->dead = 0;
    for (uint64_t i = 0; i < n; i++) {
        const uint64_t pi = perm ? perm[i] : i;
        if (H[pi * n + pi] == 0) info->dead++; /* an input never active: its weights do not matter */
        mean += H[pi * n + pi] == 0 ? 1.0 : H[pi * n + pi];
    }
    mean /= (double)n;
    const sq_isa isa = sq_isa_active();
    sq_status st = SQ_ECHECK;
    for (double d = damp; d <= 1.0 + 1e-12; d *= 10) {
        for (uint64_t i = 0; i < n; i++) { /* upper triangle of the permuted, damped Hessian */
            const uint64_t pi = perm ? perm[i] : i;
            for (uint64_t j = i; j < n; j++) A[i * n + j] = H[pi * n + (perm ? perm[j] : j)];
            if (A[i * n + i] == 0) A[i * n + i] = 1;
            A[i * n + i] += d * mean;
        }
        /* U = chol((H + damp)⁻¹) in upper form, in place of A */
        if (sq_la_chol_inv_upper(isa, A, n, A, W, n_threads) == 0) {
            for (uint64_t i = 0; i < n; i++)
                for (uint64_t j = 0; j < n; j++) U[i * n + j] = j < i ? 0.0f : (float)A[i * n + j];
            info->damp_used = d;
            info->damp_added = d * mean;
            st = SQ_OK;
            break;
        }
        info->retries++;
    }
    free(A);
    free(W);
    if (st) return sq_err_set(err, SQ_ECHECK, "GPTQ: the Hessian is not positive definite even at damping 1.0");
    return SQ_OK;
}

typedef struct gptq_ctx {
    sq_vq vq;
    const sq_vq_ops *ops;
    const float *w; /* original, row-major [rows][cols] */
    uint64_t rows, cols, gs;
    const uint32_t *perm;    /* processing order -> original column */
    const uint8_t *dead;     /* per original column */
    const float *U;          /* in processing order */
    const float *Up;         /* U's blocks right of the diagonal, packed (NULL: unpacked) */
    const uint64_t *up_off;  /* where block i1 / block starts in Up */
    uint32_t block;
    int store_perm, statik;  /* codes in processing order (perm part) / static groups */
    int failed;              /* allocation failure in a worker */
    sq_isa isa;
    const double *H;         /* original order, for the coordinate descent */
    double lam;              /* the damping added to H's diagonal, absolute */
    int refine;              /* passes of coordinate descent (0: none) */
    uint64_t *tile_moves;    /* codes it changed, per row tile (summed after the join) */
} gptq_ctx;

/* One row's quantization of the dim columns at i (processing order): the
 * codec's code and decoded values, then the error e with e·U_bb = w - deq
 * (U_bb the dim x dim diagonal block of U; for dim = 1, e = (w - q) / U_ii),
 * spread over the block's remaining columns. */
static void quant_cols(const gptq_ctx *x, float *wr, const float *stat, uint64_t i, uint64_t i1, uint64_t i2, float *er,
                       uint32_t *code, float *dq) {
    const uint64_t K = x->cols, D = x->ops->dim;
    float deq[16], e[16];
    *code = x->ops->quant(&x->vq, stat, wr + i, deq);
    for (uint64_t k = 0; k < D; k++) dq[i + k] = deq[k];
    for (uint64_t k = 0; k < D; k++) {
        float r = wr[i + k] - deq[k];
        for (uint64_t m = 0; m < k; m++) r -= e[m] * x->U[(i + m) * K + i + k];
        e[k] = r / x->U[(i + k) * K + i + k];
        er[i + k - i1] = e[k];
    }
    for (uint64_t k = 0; k < D; k++) {
        const float *Ui = x->U + (i + k) * K;
        if (i + D < i2) sq_la_sub_scaled_f32(x->isa, wr + i + D, e[k], Ui + i + D, i2 - i - D);
    }
}

/* Coordinate descent after the sweep (descent.h), for scalar codecs: with
 * the group statistics fixed, each code in turn moves to the level nearest
 * its exact optimum given all the others, whenever that lowers the row's
 * e (H + lam I) eᵀ (e = w - deq, in original column order, H the layer's
 * XᵀX): never worse than GPTQ on its own objective. Every row's arithmetic
 * has one order, so the bytes do not depend on the thread count. Returns
 * the codes moved. */
static uint64_t descend_tile(const gptq_ctx *x, uint64_t r0, uint64_t R, const float *S, uint32_t *Q, float *DQ, double *E,
                             double *G) {
    const uint64_t K = x->cols, gs = x->gs, ng = (K + gs - 1) / gs;
    uint64_t moves = 0;
    for (uint64_t r = 0; r < R; r++)
        for (uint64_t i = 0; i < K; i++) {
            const uint32_t oc = x->perm[i];
            E[r * K + oc] = x->dead[oc] ? 0.0 : (double)x->w[(r0 + r) * K + oc] - DQ[r * K + i];
        }
    sq_descent_gradient(x->isa, E, R, K, x->H, x->lam, G);
    for (uint64_t r = 0; r < R; r++) {
        double *g = G + r * K;
        float *dq = DQ + r * K;
        for (int pass = 0; pass < x->refine; pass++) {
            uint64_t moved = 0;
            for (uint64_t i = 0; i < K; i++) {
                const uint32_t oc = x->perm[i];
                if (x->dead[oc]) continue;
                const uint64_t grp = x->statik ? oc / gs : i / gs, qpos = x->store_perm ? i : oc;
                const float t = (float)sq_descent_optimum(x->H, K, x->lam, g, oc, dq[i]);
                float v;
                const uint32_t code = x->ops->quant(&x->vq, &S[(r * ng + grp) * SQ_VQ_MAX_STAT], &t, &v);
                if (code == Q[r * K + qpos] || !sq_descent_move(x->isa, x->H, K, x->lam, g, oc, (double)v - dq[i])) continue;
                dq[i] = v;
                Q[r * K + qpos] = code;
                moved++;
            }
            moves += moved;
            if (!moved) break;
        }
    }
    return moves;
}

static void gptq_tiles(void *p, uint64_t t0, uint64_t t1) {
    gptq_ctx *x = p;
    const uint64_t K = x->cols, gs = x->gs, ng = (K + gs - 1) / gs, B = x->block, D = x->ops->dim;
    float *W = malloc(ROW_TILE * K * sizeof(float)), *E = malloc(ROW_TILE * B * sizeof(float));
    float *S = malloc(ROW_TILE * ng * SQ_VQ_MAX_STAT * sizeof(float));
    uint32_t *Q = malloc(ROW_TILE * (K / D) * sizeof(uint32_t));
    float *DQ = malloc(ROW_TILE * K * sizeof(float));
    double *CE = x->refine ? malloc(ROW_TILE * K * sizeof(double)) : NULL, *CG = x->refine ? malloc(ROW_TILE * K * sizeof(double)) : NULL;
    if (!W || !E || !S || !Q || !DQ || (x->refine && (!CE || !CG))) {
        x->failed = 1;
        goto out;
    }
    for (uint64_t tile = t0; tile < t1; tile++) {
        const uint64_t r0 = tile * ROW_TILE, R = x->rows - r0 < ROW_TILE ? x->rows - r0 : ROW_TILE;
        for (uint64_t r = 0; r < R; r++)
            for (uint64_t i = 0; i < K; i++) {
                uint32_t oc = x->perm[i];
                W[r * K + i] = x->dead[oc] ? 0.0f : x->w[(r0 + r) * K + oc];
            }
        if (x->statik) /* groups of the original order, fitted on the original weights */
            for (uint64_t r = 0; r < R; r++)
                for (uint64_t g = 0; g < ng; g++) {
                    uint64_t c0 = g * gs, c1 = c0 + gs < K ? c0 + gs : K;
                    x->ops->fit(&x->vq, r0 + r, g, x->w + (r0 + r) * K + c0, c1 - c0, &S[(r * ng + g) * SQ_VQ_MAX_STAT]);
                }
        for (uint64_t i1 = 0; i1 < K; i1 += B) {
            const uint64_t i2 = i1 + B < K ? i1 + B : K, nb = i2 - i1;
            for (uint64_t i = i1; i < i2; i += D) {
                if (!x->statik && i % gs == 0) /* refit on the current, error-updated weights */
                    for (uint64_t r = 0; r < R; r++) {
                        uint64_t g = i / gs, c1 = i + gs < K ? i + gs : K;
                        x->ops->fit(&x->vq, r0 + r, g, W + r * K + i, c1 - i, &S[(r * ng + g) * SQ_VQ_MAX_STAT]);
                    }
                const uint32_t oc = x->perm[i];
                const uint64_t g = x->statik ? oc / gs : i / gs, qpos = (x->store_perm ? i : oc) / D;
                for (uint64_t r = 0; r < R; r++)
                    quant_cols(x, W + r * K, &S[(r * ng + g) * SQ_VQ_MAX_STAT], i, i1, i2, E + r * B, &Q[r * (K / D) + qpos],
                               DQ + r * K);
            }
            if (i2 < K) /* lazy update of the remaining columns: W[:, i2:] -= E · U[i1:i2, i2:] */
                if (x->Up ? sq_la_matmul_packed_f32(x->isa, 1, R, K - i2, nb, E, B, x->Up + x->up_off[i1 / B], W + i2, K)
                          : sq_la_matmul_f32(x->isa, 1, R, K - i2, nb, E, B, x->U + i1 * K + i2, K, W + i2, K)) {
                    x->failed = 1;
                    goto out;
                }
        }
        if (x->refine) x->tile_moves[tile] = descend_tile(x, r0, R, S, Q, DQ, CE, CG);
        for (uint64_t r = 0; r < R; r++) x->ops->pack_row(&x->vq, r0 + r, Q + r * (K / D));
    }
out:
    free(W);
    free(E);
    free(S);
    free(Q);
    free(DQ);
    free(CE);
    free(CG);
}

/* U's blocks right of the diagonal, U[i1:i2, i2:], packed once for every
 * row tile's lazy updates (same bits as the unpacked product). Without
 * memory, or for blocks wider than the packed product takes, the row tiles
 * multiply unpacked. */
static void pack_block(void *p, uint64_t b0, uint64_t b1) {
    gptq_ctx *x = p;
    const uint64_t K = x->cols, B = x->block;
    for (uint64_t b = b0; b < b1; b++) {
        const uint64_t i1 = b * B, i2 = i1 + B < K ? i1 + B : K;
        if (i2 < K) sq_la_pack_f32(x->isa, i2 - i1, K - i2, x->U + i1 * K + i2, K, (float *)x->Up + x->up_off[b]);
    }
}

static uint64_t *pack_u(gptq_ctx *x, int n_threads, float **up) {
    const uint64_t K = x->cols, B = x->block, nblk = (K + B - 1) / B;
    if (B > SQ_LA_PACKED_MAX_K) return NULL;
    uint64_t *off = malloc((nblk + 1) * sizeof *off);
    if (!off) return NULL;
    off[0] = 0;
    for (uint64_t b = 0; b < nblk; b++) {
        const uint64_t i1 = b * B, i2 = i1 + B < K ? i1 + B : K;
        off[b + 1] = off[b] + (i2 < K ? sq_la_packed_floats(x->isa, i2 - i1, K - i2) : 0);
    }
    *up = sq_big_alloc((off[nblk] + 1) * sizeof(float));
    if (!*up) {
        free(off);
        return NULL;
    }
    x->Up = *up;
    x->up_off = off;
    sq_parallel_for(n_threads, nblk, pack_block, x);
    return off;
}

int sq_gptq_supports(const sq_codec *c, const uint32_t params[SQ_NPARAMS]) {
    const sq_codec_encoder *e = sq_quant_encoder(c); /* the quantization library's encoders too (QuIP#) */
    const sq_vq_ops *ops = e ? e->vq : NULL;
    return ops && (!ops->supports || ops->supports(c, params));
}

sq_status sq_gptq_quantize(const char *name, const sq_codec *c, const uint32_t params[SQ_NPARAMS], const float *w,
                           uint64_t rows, uint64_t cols, const double *H, const sq_gptq_opts *o, sq_encoded *out,
                           sq_gptq_info *info, sq_err *err) {
    memset(info, 0, sizeof *info);
    memset(out, 0, sizeof *out);
    const sq_vq_ops *ops = sq_gptq_supports(c, params) ? sq_quant_encoder(c)->vq : NULL;
    if (!sq_gptq_supports(c, params))
        return sq_err_set(err, SQ_EUSAGE, "%s: GPTQ cannot drive %s with these options (its codec has no error-feedback quantizer for them)",
                          name, c->name);
    if (ops->dim > 16 || cols % ops->dim || (ops->dim > 1 && o->act_order && o->static_groups))
        return sq_err_set(err, SQ_EUSAGE, "%s: GPTQ: %s quantizes %u columns together, which %llu columns%s do not allow",
                          name, c->name, ops->dim, (unsigned long long)cols, o->static_groups ? " with static groups" : "");
    sq_status st = sq_check_finite(name, w, rows * cols, err);
    if (st) return st;
    uint32_t *perm = malloc(cols * sizeof *perm);
    uint8_t *dead = calloc(cols, 1);
    float *U = sq_big_alloc((size_t)cols * cols * sizeof(float)), *up = NULL;
    uint64_t *up_offsets = NULL;
    double *diag = malloc(cols * sizeof *diag);
    if (!perm || !dead || !U || !diag) {
        st = sq_err_set(err, SQ_ENOMEM, "%s: out of memory for GPTQ", name);
        goto out;
    }
    for (uint64_t i = 0; i < cols; i++) {
        perm[i] = (uint32_t)i;
        diag[i] = H[i * cols + i];
        dead[i] = diag[i] == 0;
    }
    if (o->act_order) {
        sort_diag = diag; /* qsort has no context argument; callers are single-threaded here */
        qsort(perm, cols, sizeof *perm, cmp_diag_desc);
    }
    sq_err herr;
    if (sq_gptq_hinv(H, cols, perm, o->damp > 0 ? o->damp : 0.01, U, o->n_threads, info, &herr)) {
        /* documented fallback: round to nearest, reported by the caller */
        info->fell_back = 1;
        st = sq_rtn_quantize(name, c, params, w, rows, cols, o->n_threads, out, err);
        goto out;
    }
    int store_perm = o->act_order && !o->static_groups;
    uint32_t p[SQ_NPARAMS];
    memcpy(p, params, sizeof p);
    if ((st = sq_encoded_alloc(c, p, rows, cols, out, err))) goto out;
    sq_vq vq = {c, out->params, rows, cols, out->data};
    uint64_t gl = ops->group_len(&vq), blk = o->block ? o->block : 128;
    if (gl % ops->dim || blk % ops->dim) {
        sq_encoded_free(out);
        st = sq_err_set(err, SQ_EUSAGE, "%s: GPTQ: groups of %llu columns do not split into blocks of %u", name,
                        (unsigned long long)gl, ops->dim);
        goto out;
    }
    const uint64_t ntiles = (rows + ROW_TILE - 1) / ROW_TILE;
    const int refine = ops->dim == 1 ? (o->refine < 0 ? 0 : o->refine ? o->refine : SQ_GPTQ_REFINE) : 0;
    gptq_ctx x = {vq, ops, w, rows, cols, gl, perm, dead, U, NULL, NULL, (uint32_t)blk, store_perm,
                  o->act_order && o->static_groups, 0, sq_isa_active(), H, info->damp_added, refine,
                  refine ? calloc(ntiles, sizeof(uint64_t)) : NULL};
    if (refine && !x.tile_moves) {
        sq_encoded_free(out);
        st = sq_err_set(err, SQ_ENOMEM, "%s: out of memory in GPTQ", name);
        goto out;
    }
    up_offsets = pack_u(&x, o->n_threads, &up);
    sq_parallel_for(o->n_threads, ntiles, gptq_tiles, &x);
    for (uint64_t t = 0; refine && t < ntiles; t++) info->refine_moves += x.tile_moves[t];
    free(x.tile_moves);
    if (x.failed) {
        sq_encoded_free(out);
        st = sq_err_set(err, SQ_ENOMEM, "%s: out of memory in GPTQ", name);
        goto out;
    }
    if (store_perm) {
        int identity = 1;
        for (uint64_t i = 0; i < cols && identity; i++) identity = perm[i] == i;
        if (!identity) {
            if ((st = sq_encoded_set_xform(out, perm, NULL, err))) {
                sq_encoded_free(out);
                goto out;
            }
            info->permuted = 1;
        }
    }
out:
    free(perm);
    free(dead);
    free(U);
    free(up);
    free(up_offsets);
    free(diag);
    return st;
}
