/* mix's encoder (spec/codecs.md §14 gives the stored form; this is one way
 * to fill it):
 *  1. act-order (params[6] bit 0): columns sorted by XᵀX diagonal, largest
 *     first, so the inputs that matter share blocks and the budget can buy
 *     them wide codes (the perm link records the order);
 *  2. every block's error at every width of the set, as round to nearest
 *     with that width's min/max statistics, weighted by the diagonal of XᵀX;
 *  3. widths chosen under the budget (target bpw x weights, less every
 *     other part's bits) by sq_mix_allocate;
 *  4. a GPTQ sweep with the widths and statistics fixed, rows independent
 *     (tiles of rows share the inverse-Hessian rows they stream), so the
 *     output is the same for any thread count. */
#include "mix_encode.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/big_alloc.h"
#include "codecs/mix/mix_format.h"
#include "gptq.h"
#include "squish/fp.h"

#define ROW_TILE 16

/* ---- the allocation ---- */
typedef struct seg {
    double slope; /* error decrease per bit */
    uint64_t block;
    uint8_t from, to;
} seg;

static int cmp_seg(const void *a, const void *b) {
    const seg *x = a, *y = b;
    if (x->slope != y->slope) return x->slope > y->slope ? -1 : 1;
    if (x->block != y->block) return x->block < y->block ? -1 : 1;
    return x->from < y->from ? -1 : x->from > y->from;
}

uint64_t sq_mix_allocate(uint64_t n, const uint64_t *bits, const double *err, uint64_t budget, uint8_t *code) {
    seg *s = malloc((size_t)(n ? n : 1) * 3 * sizeof(seg));
    if (!s) return UINT64_MAX;
    uint64_t ns = 0, used = 0;
    for (uint64_t i = 0; i < n; i++) {
        const uint64_t *bi = bits + 4 * i;
        const double *ei = err + 4 * i;
        /* the start: the cheapest option, the least error among equally cheap ones */
        unsigned cur = 0;
        for (unsigned k = 1; k < 4 && bi[k] == bi[0]; k++)
            if (ei[k] < ei[cur]) cur = k;
        code[i] = (uint8_t)cur;
        used += bi[cur];
        /* lower convex hull from cur over the options that cost more and err less */
        while (1) {
            unsigned best = 4;
            double bs = 0;
            for (unsigned k = 0; k < 4; k++) {
                if (bi[k] <= bi[cur] || !(ei[k] < ei[cur])) continue;
                const double sl = (ei[cur] - ei[k]) / (double)(bi[k] - bi[cur]);
                if (best == 4 || sl > bs || (sl == bs && bi[k] > bi[best])) best = k, bs = sl;
            }
            if (best == 4) break;
            s[ns++] = (seg){bs, i, (uint8_t)cur, (uint8_t)best};
            cur = best;
        }
    }
    qsort(s, (size_t)ns, sizeof(seg), cmp_seg);
    for (uint64_t k = 0; k < ns; k++) {
        const uint64_t i = s[k].block;
        if (code[i] != s[k].from) continue; /* an earlier segment of this block did not fit */
        const uint64_t d = bits[4 * i + s[k].to] - bits[4 * i + s[k].from];
        if (used + d > budget) continue; /* its later segments now never apply */
        used += d;
        code[i] = s[k].to;
    }
    free(s);
    return used;
}

/* ---- block statistics ---- */
static inline uint32_t quant1(float v, float s, float m, uint32_t qmax) {
    if (!(s > 0)) return 0;
    float q = nearbyintf((v - m) / s);
    return q <= 0 ? 0 : q >= (float)qmax ? qmax : (uint32_t)q;
}

/* The wt-weighted squared error of v[0..n) rounded to nearest with f16 stats (hm, hs). */
static double block_err(const float *v, const double *wt, uint64_t n, uint32_t qmax, uint16_t hm, uint16_t hs) {
    const float m = sq_f16_to_f32(hm), s = sq_f16_to_f32(hs);
    double e = 0;
    for (uint64_t i = 0; i < n; i++) {
        const double r = (double)v[i] - (double)(s * (float)quant1(v[i], s, m, qmax) + m);
        e += wt[i] * r * r;
    }
    return e;
}

/* The f16 min and scale of values v[0..n) at width b, and their weighted
 * error: the min/max fit (the range split in 2^b - 1 steps), or a better
 * one of the importance-weighted search llama.cpp's k-quants use
 * (make_qkx2_quants): for 21 grid densities around 2^b - 1 steps per range,
 * round, then refit scale and min by weighted least squares. */
static double block_stats(const float *v, const double *wt, uint64_t n, uint32_t b, uint16_t *hm, uint16_t *hs) {
    const uint32_t qmax = (1u << b) - 1;
    float lo = v[0], hi = v[0];
    for (uint64_t i = 1; i < n; i++) {
        lo = fminf(lo, v[i]);
        hi = fmaxf(hi, v[i]);
    }
    *hm = sq_f32_to_f16(lo);
    *hs = sq_f32_to_f16((hi - sq_f16_to_f32(*hm)) / (float)qmax);
    double best = block_err(v, wt, n, qmax, *hm, *hs);
    if (!(hi > lo) || best == 0) return best;
    for (int is = 0; is <= 20; is++) {
        const double iscale = ((double)qmax - 1.0 + 0.1 * is) / ((double)hi - lo);
        double sw = 0, sl = 0, sl2 = 0, sx = 0, sxl = 0;
        for (uint64_t i = 0; i < n; i++) {
            double l = nearbyint(iscale * ((double)v[i] - lo));
            l = l < 0 ? 0 : l > qmax ? qmax : l;
            sw += wt[i], sl += wt[i] * l, sl2 += wt[i] * l * l, sx += wt[i] * v[i], sxl += wt[i] * l * v[i];
        }
        const double D = sw * sl2 - sl * sl;
        if (!(D > 0)) continue;
        const double sc = (sw * sxl - sx * sl) / D, mn = (sl2 * sx - sl * sxl) / D;
        if (!(sc > 0) || !isfinite(sc) || !isfinite(mn)) continue;
        const uint16_t cm = sq_f32_to_f16((float)mn), cs = sq_f32_to_f16((float)sc);
        if (!isfinite(sq_f16_to_f32(cm)) || !isfinite(sq_f16_to_f32(cs))) continue;
        const double e = block_err(v, wt, n, qmax, cm, cs);
        if (e < best) best = e, *hm = cm, *hs = cs;
    }
    return best;
}

/* ---- the GPTQ sweep ---- */
typedef struct sweep {
    const float *wp; /* permuted weights [rows][cols] */
    const float *U;  /* chol((H + damp)^-1), upper, processing order */
    uint64_t rows, cols, B, nb;
    const uint32_t *width;
    sq_mix_result *res;
    float *recon;
    int failed;
} sweep;

static void sweep_tiles(void *ctx, uint64_t t0, uint64_t t1) {
    sweep *S = ctx;
    const uint64_t cols = S->cols;
    float *w = malloc((size_t)ROW_TILE * cols * sizeof(float));
    if (!w) {
        S->failed = 1;
        return;
    }
    for (uint64_t t = t0; t < t1; t++) {
        const uint64_t r0 = t * ROW_TILE, r1 = r0 + ROW_TILE < S->rows ? r0 + ROW_TILE : S->rows;
        memcpy(w, S->wp + r0 * cols, (size_t)((r1 - r0) * cols) * sizeof(float));
        uint8_t *blk[ROW_TILE];
        for (uint64_t r = r0; r < r1; r++) blk[r - r0] = S->res->codes + S->res->row_ptr[r];
        for (uint64_t j = 0; j < cols; j++) {
            const uint64_t jb = j / S->B, i = j - jb * S->B, len = sq_mix_block_len(cols, S->B, jb);
            const float *Uj = S->U + j * cols;
            for (uint64_t r = r0; r < r1; r++) {
                float *wr = w + (r - r0) * cols;
                const uint32_t b = S->width[sq_mix_wcode(S->res->widths + r * S->res->wb, jb)];
                const float s = sq_f16_to_f32(S->res->scales[r * S->nb + jb]), m = sq_f16_to_f32(S->res->mins[r * S->nb + jb]);
                const uint32_t q = quant1(wr[j], s, m, (1u << b) - 1);
                const float deq = s * (float)q + m;
                sq_mix_put_code(blk[r - r0], b, i, q);
                if (S->recon) S->recon[r * cols + j] = deq;
                if (i + 1 == len) blk[r - r0] += sq_mix_block_bytes(len, b);
                const float e = (wr[j] - deq) / Uj[j];
                for (uint64_t k = j + 1; k < cols; k++) wr[k] -= e * Uj[k];
            }
        }
    }
    free(w);
}

void sq_mix_result_free(sq_mix_result *r) {
    free(r->widths);
    free(r->scales);
    free(r->mins);
    free(r->row_ptr);
    free(r->codes);
    free(r->perm);
    memset(r, 0, sizeof *r);
}

typedef struct keyed {
    double d;
    uint32_t i;
} keyed;
static int cmp_keyed(const void *a, const void *b) { /* diagonal descending, ties in column order */
    const keyed *x = a, *y = b;
    if (x->d != y->d) return x->d > y->d ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

static inline uint64_t nz(uint64_t v) { return v ? v : 1; } /* malloc(0) may return NULL */

#define FAIL(code, ...) do { st = sq_err_set(err, code, __VA_ARGS__); goto done; } while (0)

sq_status sq_mix_quantize(const float *w, uint64_t rows, uint64_t cols, const double *H, const uint32_t *p,
                          int n_threads, sq_mix_result *res, float *recon, sq_err *err) {
    return sq_mix_quantize_rw(w, rows, cols, H, NULL, p, n_threads, res, recon, err);
}

sq_status sq_mix_quantize_rw(const float *w, uint64_t rows, uint64_t cols, const double *H, const double *row_weight,
                             const uint32_t *p, int n_threads, sq_mix_result *res, float *recon, sq_err *err) {
    memset(res, 0, sizeof *res);
    sq_status st = SQ_OK;
    const uint64_t B = p[SQ_P_GROUP], nb = sq_mix_nblocks(cols, B), wb = sq_mix_wbytes(nb), n = rows * nb;
    uint32_t width[4];
    for (unsigned k = 0; k < 4; k++) width[k] = sq_mix_width(p, k);
    const int ao = (p[SQ_MIX_P_ENC] & SQ_MIX_ENC_ACT_ORDER) != 0;
    float *wp = NULL, *U = NULL;
    double *d = NULL, *berr = NULL;
    uint64_t *bbits = NULL;
    uint8_t *code = NULL;
    keyed *ks = NULL;
    if (rows > UINT32_MAX / 16 || cols > UINT32_MAX / 16)
        return sq_err_set(err, SQ_EUSAGE, "mix: a %llu x %llu tensor is beyond the u32 row offsets", (unsigned long long)rows,
                          (unsigned long long)cols);
    res->rows = rows, res->cols = cols, res->nb = nb, res->wb = wb;
    res->widths = calloc((size_t)nz(rows * wb), 1);
    res->scales = malloc((size_t)(n ? n : 1) * 2);
    res->mins = malloc((size_t)(n ? n : 1) * 2);
    res->row_ptr = malloc((size_t)(rows + 1) * 4);
    wp = malloc((size_t)nz(rows * cols) * sizeof(float));
    d = malloc((size_t)cols * sizeof(double));
    berr = malloc((size_t)(n ? n : 1) * 4 * sizeof(double));
    bbits = malloc((size_t)(n ? n : 1) * 4 * sizeof(uint64_t));
    code = malloc((size_t)(n ? n : 1));
    if (ao) res->perm = malloc((size_t)cols * sizeof(uint32_t)), ks = malloc((size_t)cols * sizeof(keyed));
    if (!res->widths || !res->scales || !res->mins || !res->row_ptr || !wp || !d || !berr || !bbits || !code ||
        (ao && (!res->perm || !ks)))
        FAIL(SQ_ENOMEM, "mix: out of memory for a %llu x %llu tensor", (unsigned long long)rows, (unsigned long long)cols);
    for (uint64_t i = 0; i < rows * cols; i++)
        if (!isfinite(w[i]) || fabsf(w[i]) > 32768.0f)
            FAIL(SQ_EUSAGE, "mix: weight %llu is %g: mix stores f16 statistics, so weights must be finite and within "
                 "+-32768", (unsigned long long)i, (double)w[i]);
    /* 1. act-order; dead inputs (zero diagonal) get zero weights, as GPTQ does */
    if (ao) {
        for (uint64_t j = 0; j < cols; j++) ks[j] = (keyed){H[j * cols + j], (uint32_t)j};
        qsort(ks, (size_t)cols, sizeof(keyed), cmp_keyed);
        for (uint64_t j = 0; j < cols; j++) res->perm[j] = ks[j].i;
    }
    for (uint64_t j = 0; j < cols; j++) {
        const uint64_t o = ao ? res->perm[j] : j;
        d[j] = H[o * cols + o];
        for (uint64_t r = 0; r < rows; r++) wp[r * cols + j] = d[j] == 0 ? 0.0f : w[r * cols + o];
    }
    /* 2. every block's weighted round-to-nearest error and bits at every width */
    for (uint64_t r = 0; r < rows; r++)
        for (uint64_t jb = 0; jb < nb; jb++) {
            const uint64_t len = sq_mix_block_len(cols, B, jb), c0 = jb * B, k4 = 4 * (r * nb + jb);
            const float *v = wp + r * cols + c0;
            for (unsigned k = 0; k < 4; k++) {
                uint16_t hm, hs;
                berr[k4 + k] = block_stats(v, d + c0, len, width[k], &hm, &hs) * (row_weight ? row_weight[r] : 1.0);
                bbits[k4 + k] = 8 * sq_mix_block_bytes(len, width[k]);
            }
        }
    /* 3. the budget: the target's bits less every part but the codes */
    const uint64_t fixed = 8 * rows * wb + 32 * n + 32 * (rows + 1) + (ao ? 32 * cols : 0);
    res->budget_bits = (uint64_t)floor((double)p[SQ_MIX_P_TARGET] / 1000.0 * (double)(rows * cols));
    const uint64_t code_budget = res->budget_bits > fixed ? res->budget_bits - fixed : 0;
    const uint64_t cbits = sq_mix_allocate(n, bbits, berr, code_budget, code);
    if (cbits == UINT64_MAX) FAIL(SQ_ENOMEM, "mix: out of memory for the width allocation");
    res->used_bits = fixed + cbits;
    uint64_t off = 0;
    for (uint64_t r = 0; r < rows; r++) {
        res->row_ptr[r] = (uint32_t)off;
        for (uint64_t jb = 0; jb < nb; jb++) {
            const uint64_t len = sq_mix_block_len(cols, B, jb), i = r * nb + jb;
            res->widths[r * wb + jb / 4] |= (uint8_t)(code[i] << (2 * (jb & 3)));
            res->hist[code[i]]++;
            block_stats(wp + r * cols + jb * B, d + jb * B, len, width[code[i]], &res->mins[i], &res->scales[i]);
            off += sq_mix_block_bytes(len, width[code[i]]);
        }
    }
    res->row_ptr[rows] = (uint32_t)off;
    res->ncodes = off;
    if (!(res->codes = calloc((size_t)(off ? off : 1), 1))) FAIL(SQ_ENOMEM, "mix: out of memory for %llu code bytes", (unsigned long long)off);
    /* 4. GPTQ with everything but the codes fixed */
    if (!(U = sq_big_alloc((size_t)cols * cols * sizeof(float)))) FAIL(SQ_ENOMEM, "mix: out of memory for the inverse Hessian");
    sq_gptq_info info = {0};
    if ((st = sq_gptq_hinv(H, cols, res->perm, 0.01, U, n_threads, &info, err))) goto done;
    sweep S = {wp, U, rows, cols, B, nb, width, res, recon, 0};
    sq_parallel_for(n_threads > 0 ? n_threads : 1, (rows + ROW_TILE - 1) / ROW_TILE, sweep_tiles, &S);
    if (S.failed) FAIL(SQ_ENOMEM, "mix: out of memory in the GPTQ sweep");
done:
    free(wp);
    free(U);
    free(d);
    free(berr);
    free(bbits);
    free(code);
    free(ks);
    if (st) sq_mix_result_free(res);
    return st;
}

static sq_status mix_encode(const sq_encode_ctx *x, sq_encoded *out, sq_err *err) {
    sq_mix_result r;
    for (uint64_t i = 0; x->row_weight && i < x->rows; i++)
        if (!isfinite(x->row_weight[i]) || x->row_weight[i] < 0)
            return sq_err_set(err, SQ_EUSAGE, "mix: row weight %llu is %g (needs finite and >= 0)", (unsigned long long)i,
                              x->row_weight[i]);
    sq_status st = sq_mix_quantize_rw(x->w, x->rows, x->cols, x->xtx, x->row_weight, x->params, x->n_threads, &r, NULL, err);
    if (st) return st;
    struct { const char *name; void **data; uint64_t dim0; } parts[] = {
        {"widths", (void **)&r.widths, x->rows}, {"scales", (void **)&r.scales, x->rows},
        {"mins", (void **)&r.mins, x->rows},     {"row_ptr", (void **)&r.row_ptr, x->rows + 1},
        {"codes", (void **)&r.codes, r.ncodes}};
    for (size_t i = 0; !st && i < sizeof parts / sizeof parts[0]; i++) {
        st = sq_encoded_put_part(out, parts[i].name, *parts[i].data, parts[i].dim0, err);
        if (!st) *parts[i].data = NULL;
    }
    if (!st && r.perm) st = sq_encoded_add_xform(out, SQ_XFORM_PERM, r.perm, err);
    sq_mix_result_free(&r);
    return st;
}

const sq_codec_encoder sq_mix_encoder = {.needs_xtx = 1, .encode = mix_encode};
