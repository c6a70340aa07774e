/* The spqr codec's encoder (quant/encoders.c): params -> sq_spqr_opts, the
 * SpQR sweep of spqr.c on the layer's XᵀX, its parts handed to the
 * sq_encoded (the CSR arrays sized by the data), and its act-order
 * permutation appended as the chain's perm link (u32). */
#include <math.h>
#include <stdlib.h>

#include "spqr.h"
#include "codecs/spqr/spqr_params.h"

void sq_spqr_opts_from_params(const uint32_t *p, sq_spqr_opts *o) {
    sq_spqr_opts_default(o);
    o->wbits = sq_spqr_p_wbits(p);
    o->stat_bits = sq_spqr_p_stat_bits(p);
    o->search = (int)sq_spqr_p_search(p);
    o->group = sq_spqr_p_group(p);
    o->stat_group = sq_spqr_p_stat_group(p);
    o->tau = p[SQ_SPQR_P_TAU] ? (double)sq_spqr_p_tau(p) : INFINITY; /* t0: no outliers */
    o->outlier_fraction = p[SQ_SPQR_P_BUDGET] ? (double)sq_spqr_p_budget(p) / 100.0 : 0.0;
}

static sq_status spqr_encode(const sq_encode_ctx *x, sq_encoded *out, sq_err *err) {
    sq_spqr_opts o;
    sq_spqr_opts_from_params(x->params, &o);
    o.n_threads = x->n_threads > 0 ? x->n_threads : 1;
    sq_spqr_result r;
    sq_status st = sq_spqr_quantize(x->w, x->rows, x->cols, x->xtx, &o, &r, err);
    if (st) return st;
    const uint64_t nnz = r.shape.nnz;
    uint32_t *perm = malloc(x->cols * sizeof(uint32_t));
    if (!perm) {
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
    if (!st) st = sq_encoded_add_xform(out, SQ_XFORM_PERM, perm, err);
    free(perm);
    sq_spqr_result_free(&r);
    return st;
}

const sq_codec_encoder sq_spqr_encoder = {.needs_xtx = 1, .encode = spqr_encode};
