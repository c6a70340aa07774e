/* The spqr codec's encoder (quant/encoders.c): params -> sq_spqr_opts, the
 * SpQR sweep of spqr.c on the layer's XᵀX, its parts handed to the
 * sq_encoded (the CSR arrays sized by the data), and its act-order
 * permutation appended as the chain's perm link (u32).
 * With :rht (incoherence processing, as QuIP#'s input side) the sweep runs
 * on W' = W·Vᵀ and H' = V·H·Vᵀ, V = Ĥ·diag(s), signs s drawn from the
 * encode seed, in column order (act-order after a rotation could not be
 * expressed: the chain applies perm before rht_in), and s becomes the
 * chain's rht_in link in place of perm. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "spqr.h"
#include "codecs/spqr/spqr_params.h"
#include "xform/hadamard.h"

#define RHT_SEED_XOR 0x5350515248540001ull /* "SPQRHT": spqr's signs differ from QuIP#'s at the same seed */

/* A <- V A Vᵀ (n x n, row-major, symmetric) with V = Ĥ diag(s). */
static void rotate_hessian(double *A, uint64_t n, const sq_had_plan *p, const uint8_t *s) {
    for (int pass = 0; pass < 2; pass++) {
        for (uint64_t i = 0; i < n; i++) sq_rht_apply_plan_f64(p, s, A + i * n); /* rows: A Vᵀ */
        for (uint64_t i = 0; i < n; i++)                                         /* transpose */
            for (uint64_t j = i + 1; j < n; j++) {
                double t = A[i * n + j];
                A[i * n + j] = A[j * n + i];
                A[j * n + i] = t;
            }
    }
    for (uint64_t i = 0; i < n; i++) /* exactly symmetric, whatever the rounding */
        for (uint64_t j = i + 1; j < n; j++) A[i * n + j] = A[j * n + i] = 0.5 * (A[i * n + j] + A[j * n + i]);
}

/* The rotated problem: w' (rows x cols) and H' (cols x cols), inputs never
 * active (H_ii = 0) zeroed first, as GPTQ does; signs into su. */
static sq_status rotate_inputs(const sq_encode_ctx *x, float **wr, double **hr, uint8_t *su, sq_err *err) {
    const uint64_t R = x->rows, C = x->cols;
    *wr = malloc(R * C * sizeof(float));
    *hr = malloc(C * C * sizeof(double));
    if (!*wr || !*hr) return sq_err_set(err, SQ_ENOMEM, "spqr: out of memory for the rotated %llu x %llu matrix",
                                        (unsigned long long)R, (unsigned long long)C);
    memcpy(*wr, x->w, R * C * sizeof(float));
    memcpy(*hr, x->xtx, C * C * sizeof(double));
    for (uint64_t c = 0; c < C; c++)
        if (x->xtx[c * C + c] == 0)
            for (uint64_t r = 0; r < R; r++) (*wr)[r * C + c] = 0;
    sq_had_plan pl;
    sq_had_plan_init(&pl, C, NULL);
    sq_rht_signs(x->seed ^ RHT_SEED_XOR, C, su);
    for (uint64_t r = 0; r < R; r++) sq_rht_apply_plan(&pl, su, *wr + r * C);
    rotate_hessian(*hr, C, &pl, su);
    return SQ_OK;
}

void sq_spqr_opts_from_params(const uint32_t *p, sq_spqr_opts *o) {
    sq_spqr_opts_default(o);
    o->wbits = sq_spqr_p_wbits(p);
    o->stat_bits = sq_spqr_p_stat_bits(p);
    o->search = (int)sq_spqr_p_search(p);
    o->refine = sq_spqr_p_refine(p);
    o->group = sq_spqr_p_group(p);
    o->stat_group = sq_spqr_p_stat_group(p);
    o->tau = p[SQ_SPQR_P_TAU] ? (double)sq_spqr_p_tau(p) : INFINITY; /* t0: no outliers */
    o->outlier_fraction = p[SQ_SPQR_P_BUDGET] ? (double)sq_spqr_p_budget(p) / 100.0 : 0.0;
}

static sq_status spqr_encode(const sq_encode_ctx *x, sq_encoded *out, sq_err *err) {
    sq_spqr_opts o;
    sq_spqr_opts_from_params(x->params, &o);
    o.n_threads = x->n_threads > 0 ? x->n_threads : 1;
    const int rht = (int)sq_spqr_p_rht(x->params);
    float *wr = NULL;
    double *hr = NULL;
    uint8_t *su = NULL;
    sq_spqr_result r;
    sq_status st = SQ_OK;
    if (rht) {
        o.no_act_order = 1;
        if (!x->xtx) return sq_err_set(err, SQ_EUSAGE, "spqr: needs the layer's XᵀX");
        if (!(su = calloc((x->cols + 7) / 8, 1))) return sq_err_set(err, SQ_ENOMEM, "spqr: out of memory");
        st = rotate_inputs(x, &wr, &hr, su, err);
    }
    if (!st) st = sq_spqr_quantize(rht ? wr : x->w, x->rows, x->cols, rht ? hr : x->xtx, &o, &r, err);
    free(wr);
    free(hr);
    if (st) {
        free(su);
        return st;
    }
    const uint64_t nnz = r.shape.nnz;
    uint32_t *perm = malloc(x->cols * sizeof(uint32_t));
    if (!perm) {
        free(su);
        sq_spqr_result_free(&r);
        return sq_err_set(err, SQ_ENOMEM, "spqr: out of memory");
    }
    for (uint64_t j = 0; j < x->cols; j++) perm[j] = r.perm[j];
    /* each put hands the buffer over (freed with out), so clear it from r as it goes */
    struct { const char *name; void **data; uint64_t dim0; } parts[] = {
        {"codes", (void **)&r.codes, x->rows},           {"scale_codes", (void **)&r.scale_codes, x->rows},
        {"zero_codes", (void **)&r.zero_codes, x->rows}, {"stats2", (void **)&r.stats2, (x->rows + o.stat_group - 1) / o.stat_group},
        {"row_ptr", (void **)&r.row_ptr, x->rows + 1},  {"outlier_cols", (void **)&r.outlier_cols, nnz},
        {"outlier_vals", (void **)&r.outlier_vals, nnz}};
    for (size_t i = 0; !st && i < sizeof parts / sizeof parts[0]; i++) {
        st = sq_encoded_put_part(out, parts[i].name, *parts[i].data, parts[i].dim0, err);
        if (!st) *parts[i].data = NULL;
    }
    if (!st) st = rht ? sq_encoded_add_xform(out, SQ_XFORM_RHT_IN, su, err) : sq_encoded_add_xform(out, SQ_XFORM_PERM, perm, err);
    free(perm);
    free(su);
    sq_spqr_result_free(&r);
    return st;
}

const sq_codec_encoder sq_spqr_encoder = {.needs_xtx = 1, .encode = spqr_encode};
