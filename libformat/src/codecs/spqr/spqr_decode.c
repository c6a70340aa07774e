/* SpQR reference decode, GEMV and validation (layout: spqr_decode.h). */
#include "spqr_decode.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "squish/codec.h"     /* sq_isa_active */
#include "squish/container.h" /* SQ_DT_* */

#define GEMV_CHUNK 4096 /* at most this many columns of x gathered per pass (on the stack) */
#define GEMV_GROUPS 256 /* and at most this many groups: statistics of a chunk on the stack too */
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
    uint8_t *seen = v->perm ? calloc(s->cols, 1) : NULL;
    if (v->perm && !seen) return sq_err_set(err, SQ_ENOMEM, "spqr: out of memory checking perm");
    for (uint64_t j = 0; v->perm && j < s->cols; j++) {
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

/* Original column of stored column j. */
static inline uint64_t col(const sq_spqr_view *v, uint64_t j) { return v->perm ? v->perm[j] : j; }

void sq_spqr_group_stats(const sq_spqr_view *v, uint64_t r, uint64_t g, float *S, float *Z) {
    const sq_spqr_shape *s = &v->shape;
    const uint64_t ng = ceil_div(s->cols, s->group), ss = sq_spqr_stat_stride(s);
    const uint16_t *st = v->stats2 + ((r / s->stat_group) * ng + g) * 4;
    *S = sq_spqr_stat_value(st[0], st[1], sq_spqr_code_at(v->scale_codes + r * ss, g, s->stat_bits));
    *Z = sq_spqr_stat_value(st[2], st[3], sq_spqr_code_at(v->zero_codes + r * ss, g, s->stat_bits));
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
            for (uint64_t j = g0; j < g1; j++) o[col(v, j)] = sq_spqr_weight_value(S, Z, sq_spqr_code_at(row, j, s->wbits));
        }
        for (uint32_t k = v->row_ptr[r]; k < v->row_ptr[r + 1]; k++)
            o[col(v, v->outlier_cols[k])] = sq_f16_to_f32(v->outlier_vals[k]);
    }
}

/* Columns per GEMV pass: whole groups, within both stack bounds (~21 KiB in all). */
static uint64_t gemv_chunk(uint64_t gs) {
    uint64_t n = GEMV_CHUNK / gs;
    return gs * (n < GEMV_GROUPS ? n : GEMV_GROUPS);
}

/* f16 statistics of one row block, for the groups [g0, g0 + n), as floats. */
static void block_stats(const sq_spqr_view *v, uint64_t rb, uint64_t g0, uint64_t n, float *st) {
    const uint64_t ng = ceil_div(v->shape.cols, v->shape.group);
    const uint16_t *p = v->stats2 + (rb * ng + g0) * 4;
    for (uint64_t i = 0; i < 4 * n; i++) st[i] = sq_f16_to_f32(p[i]);
}

/* x gathered into stored column order for one chunk of columns, zero padded
 * to whole groups, and Σ x per group (in column order). */
static void gather_chunk(const sq_spqr_view *v, const float *x, uint64_t c0, uint64_t c1, float *xs, float *xsum) {
    const uint64_t gs = v->shape.group, n = c1 - c0, ngc = ceil_div(n, gs);
    for (uint64_t j = c0; j < c1; j++) xs[j - c0] = x[col(v, j)];
    for (uint64_t j = n; j < ngc * gs; j++) xs[j] = 0;
    for (uint64_t g = 0; g < ngc; g++) {
        float t = 0;
        for (uint64_t j = g * gs; j < (g + 1) * gs && j < n; j++) t += xs[j];
        xsum[g] = t;
    }
}

/* Σ (v - dense)·x over row r's outliers in columns [c0, c1) of a chunk, with
 * the chunk's decoded statistics st (groups from gA) and gathered xs. */
static inline float row_outliers(const sq_spqr_view *v, uint64_t r, uint64_t c0, uint64_t c1, uint64_t gA,
                                 const float *st, const float *xs, const uint8_t *row, const uint8_t *sc,
                                 const uint8_t *zc) {
    const sq_spqr_shape *s = &v->shape;
    float corr = 0;
    for (uint32_t k = v->row_ptr[r]; k < v->row_ptr[r + 1]; k++) {
        const uint64_t j = v->outlier_cols[k];
        if (j < c0) continue;
        if (j >= c1) break; /* increasing within the row */
        const uint64_t g = j / s->group;
        const float *t = st + 4 * (g - gA);
        const float S = t[0] * ((float)sq_spqr_code_at(sc, g, s->stat_bits) - t[1]);
        const float Z = t[2] * ((float)sq_spqr_code_at(zc, g, s->stat_bits) - t[3]);
        corr += (sq_f16_to_f32(v->outlier_vals[k]) - S * ((float)sq_spqr_code_at(row, j, s->wbits) - Z)) * xs[j - c0];
    }
    return corr;
}

void sq_spqr_gemv_portable(const sq_spqr_view *v, const float *x, float *y, uint64_t r0, uint64_t r1) {
    const sq_spqr_shape *s = &v->shape;
    const uint64_t K = s->cols, gs = s->group, cs = sq_spqr_code_stride(s), ss = sq_spqr_stat_stride(s);
    const uint64_t chunk = gemv_chunk(gs);
    float xs[GEMV_CHUNK], xsum[GEMV_GROUPS], st[4 * GEMV_GROUPS];
    for (uint64_t r = r0; r < r1; r++) y[r] = 0;
    for (uint64_t c0 = 0; c0 < K; c0 += chunk) {
        const uint64_t c1 = c0 + chunk < K ? c0 + chunk : K, gA = c0 / gs, ngc = ceil_div(c1 - c0, gs);
        gather_chunk(v, x, c0, c1, xs, xsum);
        uint64_t rb = UINT64_MAX;
        for (uint64_t r = r0; r < r1; r++) {
            if (r / s->stat_group != rb) block_stats(v, rb = r / s->stat_group, gA, ngc, st);
            const uint8_t *row = v->codes + r * cs, *sc = v->scale_codes + r * ss, *zc = v->zero_codes + r * ss;
            float acc = y[r];
            for (uint64_t g = 0; g < ngc; g++) {
                const uint64_t j0 = c0 + g * gs, j1 = j0 + gs < c1 ? j0 + gs : c1;
                const float *t = st + 4 * g;
                const float S = t[0] * ((float)sq_spqr_code_at(sc, gA + g, s->stat_bits) - t[1]);
                const float Z = t[2] * ((float)sq_spqr_code_at(zc, gA + g, s->stat_bits) - t[3]);
                float qx = 0;
                for (uint64_t j = j0; j < j1; j++) qx += (float)sq_spqr_code_at(row, j, s->wbits) * xs[j - c0];
                acc += S * (qx - Z * xsum[g]); /* Σ S (q - Z) x over the group */
            }
            y[r] = acc + row_outliers(v, r, c0, c1, gA, st, xs, row, sc, zc);
        }
    }
}

#if defined(__x86_64__)
#include <immintrin.h>
#define AVX2 __attribute__((target("avx2,fma,f16c")))

AVX2 static inline float hsum256(__m256 a) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

/* The w bytes holding 8 codes, in a register (copying 3 bytes into a
 * zeroed u32 in memory and reading it back stalls store forwarding). */
static inline uint32_t window(const uint8_t *p, uint32_t w) {
    uint16_t h;
    uint32_t u;
    switch (w) {
    case 1: return p[0];
    case 2: memcpy(&h, p, 2); return h;
    case 3: memcpy(&h, p, 2); return h | (uint32_t)p[2] << 16;
    default: memcpy(&u, p, 4); return u;
    }
}

/* The w = 5..8 bytes holding 8 codes (never a byte past them: the last
 * group of the last row ends the part), assembled in registers: a memcpy of
 * w bytes into a zeroed word stores them piecewise and the word's load then
 * waits on failed store forwarding (it made w5 run at a tenth of w4). */
static inline uint64_t window64(const uint8_t *p, uint32_t w) {
    uint32_t lo;
    memcpy(&lo, p, 4); /* little-endian x86 */
    return (uint64_t)lo | (uint64_t)window(p + 4, w - 4) << 32;
}

/* Groups of a multiple of 8 codes: 8 codes are wbits whole bytes, spread to
 * 8 lanes by variable shifts (of one 32-bit window for wbits <= 4, of two
 * for 5..8). The last group of a row, when it is partial, goes through the
 * scalar code. */
/* Scale and zero of every group of a row chunk: 8 groups at a time (their
 * codes are stat_bits whole bytes when the chunk starts on a byte), the
 * same float operations as the scalar path, so the values are identical. */
AVX2 static inline void row_stats_avx2(const sq_spqr_view *v, const uint8_t *sc, const uint8_t *zc, uint64_t gA,
                                       uint64_t ngc, const float *T, float *SA, float *ZA) {
    const uint32_t sb = v->shape.stat_bits;
    uint64_t g = 0;
    if (sb <= 4 && (gA * sb) % 8 == 0) {
        const __m256i sh = _mm256_setr_epi32(0, (int)sb, 2 * (int)sb, 3 * (int)sb, 4 * (int)sb, 5 * (int)sb,
                                             6 * (int)sb, 7 * (int)sb);
        const __m256i m = _mm256_set1_epi32((1 << sb) - 1);
        for (; g + 8 <= ngc; g += 8) { /* whole bytes of this row only: gA + g + 8 <= groups of the row */
            const uint64_t byte = (gA + g) * sb / 8;
            __m256i qs = _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32((int)window(sc + byte, sb)), sh), m);
            __m256i qz = _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32((int)window(zc + byte, sb)), sh), m);
            __m256 S = _mm256_mul_ps(_mm256_load_ps(T + g), _mm256_sub_ps(_mm256_cvtepi32_ps(qs), _mm256_load_ps(T + GEMV_GROUPS + g)));
            __m256 Z = _mm256_mul_ps(_mm256_load_ps(T + 2 * GEMV_GROUPS + g),
                                     _mm256_sub_ps(_mm256_cvtepi32_ps(qz), _mm256_load_ps(T + 3 * GEMV_GROUPS + g)));
            _mm256_store_ps(SA + g, S);
            _mm256_store_ps(ZA + g, Z);
        }
    }
    for (; g < ngc; g++) {
        SA[g] = T[g] * ((float)sq_spqr_code_at(sc, gA + g, sb) - T[GEMV_GROUPS + g]);
        ZA[g] = T[2 * GEMV_GROUPS + g] * ((float)sq_spqr_code_at(zc, gA + g, sb) - T[3 * GEMV_GROUPS + g]);
    }
}

AVX2 static inline __attribute__((always_inline)) void gemv_avx2_w(const sq_spqr_view *v, const float *x, float *y,
                                                                    uint64_t r0, uint64_t r1, const uint32_t w) {
    const sq_spqr_shape *s = &v->shape;
    const uint64_t K = s->cols, gs = s->group, cs = sq_spqr_code_stride(s), ss = sq_spqr_stat_stride(s);
    const uint64_t chunk = gemv_chunk(gs);
    float xs[GEMV_CHUNK] __attribute__((aligned(32))), xsum[GEMV_GROUPS], st[4 * GEMV_GROUPS];
    float T[4 * GEMV_GROUPS] __attribute__((aligned(32))); /* st transposed: ss[], sz[], zs[], zz[] */
    float SA[GEMV_GROUPS] __attribute__((aligned(32))), ZA[GEMV_GROUPS] __attribute__((aligned(32)));
    /* w <= 4: lane i shifts the 32-bit window by i w; w > 4: each half shifts its own window by (i mod 4) w */
    const int sw = (int)w, hw = w <= 4 ? 4 * sw : 0;
    const __m256i shifts = _mm256_setr_epi32(0, sw, 2 * sw, 3 * sw, hw, hw + sw, hw + 2 * sw, hw + 3 * sw);
    const __m256i mask = _mm256_set1_epi32((1 << w) - 1);
    for (uint64_t r = r0; r < r1; r++) y[r] = 0;
    for (uint64_t c0 = 0; c0 < K; c0 += chunk) {
        const uint64_t c1 = c0 + chunk < K ? c0 + chunk : K, gA = c0 / gs, ngc = ceil_div(c1 - c0, gs);
        const uint64_t nfull = (c1 - c0) / gs; /* groups wholly inside the columns */
        gather_chunk(v, x, c0, c1, xs, xsum);
        uint64_t rb = UINT64_MAX;
        for (uint64_t r = r0; r < r1; r++) {
            if (r / s->stat_group != rb) {
                block_stats(v, rb = r / s->stat_group, gA, ngc, st);
                for (uint64_t g = 0; g < ngc; g++)
                    for (int i = 0; i < 4; i++) T[i * GEMV_GROUPS + g] = st[4 * g + i];
            }
            const uint8_t *row = v->codes + r * cs, *sc = v->scale_codes + r * ss, *zc = v->zero_codes + r * ss;
            row_stats_avx2(v, sc, zc, gA, ngc, T, SA, ZA);
            __m256 acc = _mm256_setzero_ps();
            float corr = 0, tail = 0;
            const uint8_t *p = row + c0 * w / 8;
            for (uint64_t g = 0; g < nfull; g++) {
                const float *xp = xs + g * gs;
                __m256 qx = _mm256_setzero_ps();
                for (uint64_t h = 0; h < gs; h += 8, p += w) {
                    __m256i q;
                    if (w <= 4) {
                        q = _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32((int)window(p, w)), shifts), mask);
                    } else { /* codes 0..3 lie in the low 4w <= 32 bits, codes 4..7 in the next 4w */
                        const uint64_t win = window64(p, w);
                        const __m256i lh = _mm256_setr_m128i(_mm_set1_epi32((int)(uint32_t)win),
                                                             _mm_set1_epi32((int)(uint32_t)(win >> (4 * w))));
                        q = _mm256_and_si256(_mm256_srlv_epi32(lh, shifts), mask);
                    }
                    qx = _mm256_fmadd_ps(_mm256_cvtepi32_ps(q), _mm256_load_ps(xp + h), qx);
                }
                acc = _mm256_fmadd_ps(_mm256_set1_ps(SA[g]), qx, acc);
                corr += SA[g] * ZA[g] * xsum[g];
            }
            if (nfull < ngc) { /* a partial last group */
                float qx = 0;
                for (uint64_t j = c0 + nfull * gs; j < c1; j++) qx += (float)sq_spqr_code_at(row, j, w) * xs[j - c0];
                tail = SA[nfull] * (qx - ZA[nfull] * xsum[nfull]);
            }
            y[r] += hsum256(acc) - corr + tail + row_outliers(v, r, c0, c1, gA, st, xs, row, sc, zc);
        }
    }
}

/* One copy per code width, so the window loads compile to plain moves. */
AVX2 static void gemv_avx2(const sq_spqr_view *v, const float *x, float *y, uint64_t r0, uint64_t r1) {
    switch (v->shape.wbits) {
    case 1: gemv_avx2_w(v, x, y, r0, r1, 1); break;
    case 2: gemv_avx2_w(v, x, y, r0, r1, 2); break;
    case 3: gemv_avx2_w(v, x, y, r0, r1, 3); break;
    case 4: gemv_avx2_w(v, x, y, r0, r1, 4); break;
    case 5: gemv_avx2_w(v, x, y, r0, r1, 5); break;
    case 6: gemv_avx2_w(v, x, y, r0, r1, 6); break;
    case 7: gemv_avx2_w(v, x, y, r0, r1, 7); break;
    default: gemv_avx2_w(v, x, y, r0, r1, 8); break;
    }
}

static int avx2_ok(const sq_spqr_view *v) {
    return v->shape.wbits <= 8 && v->shape.group % 8 == 0 && sq_isa_supported(SQ_ISA_AVX2);
}

void sq_spqr_gemv_avx2(const sq_spqr_view *v, const float *x, float *y, uint64_t r0, uint64_t r1) {
    if (avx2_ok(v)) gemv_avx2(v, x, y, r0, r1);
    else sq_spqr_gemv_portable(v, x, y, r0, r1);
}
#else
void sq_spqr_gemv_avx2(const sq_spqr_view *v, const float *x, float *y, uint64_t r0, uint64_t r1) {
    sq_spqr_gemv_portable(v, x, y, r0, r1);
}
#endif

void sq_spqr_gemv(const sq_spqr_view *v, const float *x, float *y, uint64_t r0, uint64_t r1) {
    if (sq_isa_active() >= SQ_ISA_AVX2) sq_spqr_gemv_avx2(v, x, y, r0, r1);
    else sq_spqr_gemv_portable(v, x, y, r0, r1);
}
