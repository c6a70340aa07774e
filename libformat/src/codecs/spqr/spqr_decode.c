/* SpQR reference decode, GEMV and validation (layout: spqr_decode.h). */
#include "spqr_decode.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "squish/container.h" /* SQ_DT_* */

#define GEMV_CHUNK 4096 /* columns of x gathered per pass (on the stack) */
#define MAX_GROUP 1024

static uint64_t ceil_div(uint64_t a, uint64_t b) { return (a + b - 1) / b; }

uint64_t sq_spqr_code_stride(const sq_spqr_shape *s) { return ceil_div(s->cols * s->wbits, 8); }
uint64_t sq_spqr_stat_stride(const sq_spqr_shape *s) { return ceil_div(ceil_div(s->cols, s->group) * s->stat_bits, 8); }

void sq_spqr_parts(const sq_spqr_shape *s, sq_spqr_part out[SQ_SPQR_NPARTS]) {
    const uint64_t ng = ceil_div(s->cols, s->group), nrb = ceil_div(s->rows, s->stat_group);
    const sq_spqr_part p[SQ_SPQR_NPARTS] = {
        {"codes", SQ_DT_U8, 2, {s->rows, sq_spqr_code_stride(s), 0}, s->rows * sq_spqr_code_stride(s)},
        {"scale_codes", SQ_DT_U8, 2, {s->rows, sq_spqr_stat_stride(s), 0}, s->rows * sq_spqr_stat_stride(s)},
        {"zero_codes", SQ_DT_U8, 2, {s->rows, sq_spqr_stat_stride(s), 0}, s->rows * sq_spqr_stat_stride(s)},
        {"stats2", SQ_DT_F16, 3, {nrb, ng, 4}, nrb * ng * 4 * 2},
        {"perm", SQ_DT_U16, 1, {s->cols, 0, 0}, s->cols * 2},
        {"row_ptr", SQ_DT_U32, 1, {s->rows + 1, 0, 0}, (s->rows + 1) * 4},
        {"outlier_cols", SQ_DT_U16, 1, {s->nnz, 0, 0}, s->nnz * 2},
        {"outlier_vals", SQ_DT_F16, 1, {s->nnz, 0, 0}, s->nnz * 2},
    };
    memcpy(out, p, sizeof p);
}

uint64_t sq_spqr_bytes(const sq_spqr_shape *s) {
    sq_spqr_part p[SQ_SPQR_NPARTS];
    sq_spqr_parts(s, p);
    uint64_t n = 0;
    for (int i = 0; i < SQ_SPQR_NPARTS; i++) n += p[i].bytes;
    return n;
}

double sq_spqr_bpw(const sq_spqr_shape *s) {
    return s->rows && s->cols ? 8.0 * (double)sq_spqr_bytes(s) / ((double)s->rows * (double)s->cols) : 0;
}

static int f16_finite(uint16_t h) { return (h & 0x7c00) != 0x7c00; }

/* Bits past the last code of a packed row must be zero (canonical form). */
static int padding_clear(const uint8_t *row, uint64_t n, uint32_t b, uint64_t stride) {
    uint64_t used = n * b;
    if (used % 8 && (row[used / 8] >> (used % 8))) return 0;
    for (uint64_t i = ceil_div(used, 8); i < stride; i++)
        if (row[i]) return 0;
    return 1;
}

sq_status sq_spqr_validate(const sq_spqr_view *v, sq_err *err) {
    const sq_spqr_shape *s = &v->shape;
    if (!s->rows || !s->cols || s->rows >= UINT32_MAX)
        return sq_err_set(err, SQ_ECORRUPT, "spqr: bad shape %llu x %llu", (unsigned long long)s->rows,
                          (unsigned long long)s->cols);
    if (s->cols > SQ_SPQR_MAX_COLS)
        return sq_err_set(err, SQ_EUNSUPPORTED, "spqr: %llu input columns; u16 outlier columns allow at most %u",
                          (unsigned long long)s->cols, SQ_SPQR_MAX_COLS);
    if (s->wbits < 1 || s->wbits > 8 || s->stat_bits < 1 || s->stat_bits > 8)
        return sq_err_set(err, SQ_ECORRUPT, "spqr: weight bits %u / statistic bits %u out of range 1..8", s->wbits,
                          s->stat_bits);
    if (s->group < 1 || s->group > MAX_GROUP || s->stat_group < 1 || s->stat_group > MAX_GROUP)
        return sq_err_set(err, SQ_ECORRUPT, "spqr: group %u / statistics group %u out of range 1..%u", s->group,
                          s->stat_group, MAX_GROUP);
    if (s->nnz > s->rows * s->cols || s->nnz > UINT32_MAX)
        return sq_err_set(err, SQ_ECORRUPT, "spqr: %llu outliers in a %llu x %llu matrix", (unsigned long long)s->nnz,
                          (unsigned long long)s->rows, (unsigned long long)s->cols);
    const uint64_t ng = ceil_div(s->cols, s->group), nrb = ceil_div(s->rows, s->stat_group);
    const uint64_t cs = sq_spqr_code_stride(s), ss = sq_spqr_stat_stride(s);
    for (uint64_t r = 0; r < s->rows; r++) {
        if (!padding_clear(v->codes + r * cs, s->cols, s->wbits, cs))
            return sq_err_set(err, SQ_ECORRUPT, "spqr: codes: row %llu has bits set past its last code", (unsigned long long)r);
        if (!padding_clear(v->scale_codes + r * ss, ng, s->stat_bits, ss) ||
            !padding_clear(v->zero_codes + r * ss, ng, s->stat_bits, ss))
            return sq_err_set(err, SQ_ECORRUPT, "spqr: scale_codes/zero_codes: row %llu has bits set past its last code",
                              (unsigned long long)r);
    }
    for (uint64_t i = 0; i < nrb * ng * 4; i++)
        if (!f16_finite(v->stats2[i]))
            return sq_err_set(err, SQ_ECORRUPT, "spqr: stats2[%llu] (row block %llu, group %llu) is not finite (0x%04x)",
                              (unsigned long long)i, (unsigned long long)(i / (ng * 4)),
                              (unsigned long long)(i / 4 % ng), v->stats2[i]);
    uint8_t *seen = calloc(s->cols, 1);
    if (!seen) return sq_err_set(err, SQ_ENOMEM, "spqr: out of memory checking perm");
    for (uint64_t j = 0; j < s->cols; j++) {
        uint32_t p = v->perm[j];
        if (p >= s->cols || seen[p]) {
            free(seen);
            return sq_err_set(err, SQ_ECORRUPT, "spqr: perm[%llu] = %u is %s", (unsigned long long)j, p,
                              p >= s->cols ? "out of range" : "repeated (perm is not a permutation)");
        }
        seen[p] = 1;
    }
    free(seen);
    /* offsets first, so column checks below only read inside [0, nnz) */
    if (v->row_ptr[0] != 0) return sq_err_set(err, SQ_ECORRUPT, "spqr: row_ptr[0] = %u, not 0", v->row_ptr[0]);
    for (uint64_t r = 0; r < s->rows; r++) {
        uint32_t a = v->row_ptr[r], b = v->row_ptr[r + 1];
        if (b < a || b > s->nnz || b - a > s->cols)
            return sq_err_set(err, SQ_ECORRUPT, "spqr: row_ptr[%llu] = %u after %u (%s)", (unsigned long long)r + 1, b, a,
                              b < a ? "decreasing" : b > s->nnz ? "past the outlier count" : "more outliers than columns");
    }
    if (v->row_ptr[s->rows] != s->nnz)
        return sq_err_set(err, SQ_ECORRUPT, "spqr: row_ptr[%llu] = %u, but there are %llu outliers",
                          (unsigned long long)s->rows, v->row_ptr[s->rows], (unsigned long long)s->nnz);
    for (uint64_t r = 0; r < s->rows; r++) {
        uint32_t a = v->row_ptr[r], b = v->row_ptr[r + 1];
        for (uint32_t k = a; k < b; k++) {
            if (v->outlier_cols[k] >= s->cols || (k > a && v->outlier_cols[k] <= v->outlier_cols[k - 1]))
                return sq_err_set(err, SQ_ECORRUPT, "spqr: outlier_cols[%u] = %u in row %llu is %s", k, v->outlier_cols[k],
                                  (unsigned long long)r,
                                  v->outlier_cols[k] >= s->cols ? "out of range" : "not above the previous column");
            if (!f16_finite(v->outlier_vals[k]))
                return sq_err_set(err, SQ_ECORRUPT, "spqr: outlier_vals[%u] (row %llu) is not finite (0x%04x)", k,
                                  (unsigned long long)r, v->outlier_vals[k]);
        }
    }
    return SQ_OK;
}

void sq_spqr_group_stats(const sq_spqr_view *v, uint64_t r, uint64_t g, float *S, float *Z) {
    const sq_spqr_shape *s = &v->shape;
    const uint64_t ng = ceil_div(s->cols, s->group), ss = sq_spqr_stat_stride(s);
    const uint16_t *st = v->stats2 + ((r / s->stat_group) * ng + g) * 4;
    *S = sq_spqr_stat_value(st[0], st[1], sq_spqr_code_at(v->scale_codes + r * ss, g, s->stat_bits));
    *Z = sq_spqr_stat_value(st[2], st[3], sq_spqr_code_at(v->zero_codes + r * ss, g, s->stat_bits));
}

/* Dense value at stored column j of row r. */
static float dense_at(const sq_spqr_view *v, uint64_t r, uint64_t j) {
    float S, Z;
    sq_spqr_group_stats(v, r, j / v->shape.group, &S, &Z);
    return sq_spqr_weight_value(S, Z, sq_spqr_code_at(v->codes + r * sq_spqr_code_stride(&v->shape), j, v->shape.wbits));
}

void sq_spqr_decode_rows(const sq_spqr_view *v, uint64_t r0, uint64_t r1, float *out) {
    const sq_spqr_shape *s = &v->shape;
    const uint64_t K = s->cols, cs = sq_spqr_code_stride(s);
    for (uint64_t r = r0; r < r1; r++) {
        float *o = out + (r - r0) * K;
        const uint8_t *row = v->codes + r * cs;
        for (uint64_t g0 = 0; g0 < K; g0 += s->group) {
            const uint64_t g1 = g0 + s->group < K ? g0 + s->group : K;
            float S, Z;
            sq_spqr_group_stats(v, r, g0 / s->group, &S, &Z);
            for (uint64_t j = g0; j < g1; j++) o[v->perm[j]] = sq_spqr_weight_value(S, Z, sq_spqr_code_at(row, j, s->wbits));
        }
        for (uint32_t k = v->row_ptr[r]; k < v->row_ptr[r + 1]; k++)
            o[v->perm[v->outlier_cols[k]]] = sq_f16_to_f32(v->outlier_vals[k]);
    }
}

void sq_spqr_gemv(const sq_spqr_view *v, const float *x, float *y, uint64_t r0, uint64_t r1) {
    const sq_spqr_shape *s = &v->shape;
    const uint64_t K = s->cols, gs = s->group, cs = sq_spqr_code_stride(s);
    const uint64_t chunk = gs * (GEMV_CHUNK / gs); /* whole groups */
    float xs[GEMV_CHUNK], xsum[GEMV_CHUNK];
    for (uint64_t r = r0; r < r1; r++) y[r] = 0;
    for (uint64_t c0 = 0; c0 < K; c0 += chunk) {
        const uint64_t c1 = c0 + chunk < K ? c0 + chunk : K;
        for (uint64_t j = c0; j < c1; j++) xs[j - c0] = x[v->perm[j]];
        for (uint64_t g0 = c0; g0 < c1; g0 += gs) { /* Σ x per group, in column order */
            const uint64_t g1 = g0 + gs < c1 ? g0 + gs : c1;
            float t = 0;
            for (uint64_t j = g0; j < g1; j++) t += xs[j - c0];
            xsum[(g0 - c0) / gs] = t;
        }
        for (uint64_t r = r0; r < r1; r++) {
            const uint8_t *row = v->codes + r * cs;
            float acc = y[r];
            for (uint64_t g0 = c0; g0 < c1; g0 += gs) {
                const uint64_t g1 = g0 + gs < c1 ? g0 + gs : c1;
                float S, Z, qx = 0;
                sq_spqr_group_stats(v, r, g0 / gs, &S, &Z);
                for (uint64_t j = g0; j < g1; j++) qx += (float)sq_spqr_code_at(row, j, s->wbits) * xs[j - c0];
                acc += S * (qx - Z * xsum[(g0 - c0) / gs]); /* Σ S (q - Z) x over the group */
            }
            y[r] = acc;
        }
    }
    for (uint64_t r = r0; r < r1; r++) /* outliers replace the dense value */
        for (uint32_t k = v->row_ptr[r]; k < v->row_ptr[r + 1]; k++) {
            const uint64_t j = v->outlier_cols[k];
            y[r] += (sq_f16_to_f32(v->outlier_vals[k]) - dense_at(v, r, j)) * x[v->perm[j]];
        }
}
