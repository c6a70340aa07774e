/* Randomized Hadamard transform: Sylvester (fast Walsh–Hadamard) blocks of
 * 2^m combined with a Paley matrix of order K (see hadamard.h). */
#include "hadamard.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static int is_prime(uint32_t q) {
    if (q < 2) return 0;
    for (uint32_t d = 2; d * d <= q; d++)
        if (q % d == 0) return 0;
    return 1;
}

/* Legendre symbol table of GF(q): chi[a] for a in [0, q). */
static void legendre(uint32_t q, int8_t *chi) {
    memset(chi, -1, q);
    chi[0] = 0;
    for (uint32_t x = 1; x < q; x++) chi[(uint64_t)x * x % q] = 1;
}

/* Paley I (q ≡ 3 mod 4): H = I + S, S = [[0, 1ᵀ], [-1, Q]], Q[i][j] = chi(j - i). */
static void paley1(uint32_t q, int8_t *H) {
    const uint32_t K = q + 1;
    int8_t chi[SQ_HAD_MAX_K];
    legendre(q, chi);
    for (uint32_t i = 0; i < K; i++)
        for (uint32_t j = 0; j < K; j++) {
            int s = i == 0 ? (j == 0 ? 0 : 1) : j == 0 ? -1 : chi[(j - 1 + q - (i - 1)) % q];
            H[i * K + j] = (int8_t)(s + (i == j));
        }
}

/* Paley II (q ≡ 1 mod 4): C = [[0, 1ᵀ], [1, Q]] (symmetric conference
 * matrix); each 0 becomes [[1,-1],[-1,-1]], each ±1 becomes ±[[1,1],[1,-1]]. */
static void paley2(uint32_t q, int8_t *H) {
    const uint32_t C = q + 1, K = 2 * C;
    int8_t chi[SQ_HAD_MAX_K];
    legendre(q, chi);
    for (uint32_t i = 0; i < C; i++)
        for (uint32_t j = 0; j < C; j++) {
            int c = i == 0 ? (j == 0 ? 0 : 1) : j == 0 ? 1 : chi[(j - 1 + q - (i - 1)) % q];
            for (int a = 0; a < 2; a++)
                for (int b = 0; b < 2; b++) {
                    int v = c == 0 ? (a == 0 && b == 0 ? 1 : -1) : c * (a == 1 && b == 1 ? -1 : 1);
                    H[(2 * i + a) * K + 2 * j + b] = (int8_t)v;
                }
        }
}

static int8_t *had_mats[SQ_HAD_MAX_K + 1];
static pthread_once_t had_once = PTHREAD_ONCE_INIT;

static void build_all(void) {
    for (uint32_t K = 4; K <= SQ_HAD_MAX_K; K += 4) {
        if ((K & (K - 1)) == 0) continue; /* powers of two: Sylvester */
        int p1 = is_prime(K - 1) && (K - 1) % 4 == 3, p2 = is_prime(K / 2 - 1) && (K / 2 - 1) % 4 == 1;
        if (!p1 && !p2) continue;
        int8_t *H = malloc((size_t)K * K);
        if (!H) continue; /* out of memory: that order is then unsupported (fallback), never a crash */
        if (p1) paley1(K - 1, H);
        else paley2(K / 2 - 1, H);
        had_mats[K] = H;
    }
}

const int8_t *sq_had_matrix(uint32_t K) {
    if (K > SQ_HAD_MAX_K) return NULL;
    pthread_once(&had_once, build_all);
    return had_mats[K];
}

int sq_had_order_supported(uint32_t K) { return K == 1 || sq_had_matrix(K) != NULL; }

/* Direct form of n (K·2^m), or 0. */
static int direct(uint64_t n, uint32_t *K, uint32_t *log2m) {
    uint64_t o = n;
    uint32_t e = 0;
    while (o % 2 == 0) {
        o /= 2;
        e++;
    }
    if (o == 1) {
        *K = 1;
        *log2m = e;
        return 1;
    }
    for (uint32_t t = 2; t <= e && (o << t) <= SQ_HAD_MAX_K; t++)
        if (sq_had_matrix((uint32_t)(o << t))) {
            *K = (uint32_t)(o << t);
            *log2m = e - t;
            return 1;
        }
    return 0;
}

sq_status sq_had_plan_init(sq_had_plan *p, uint64_t n, sq_err *err) {
    memset(p, 0, sizeof *p);
    if (n == 0) return sq_err_set(err, SQ_EUSAGE, "Hadamard transform of length 0");
    p->n = n;
    uint32_t K = 1, lm = 0;
    uint64_t d = n;
    if (!direct(n, &K, &lm)) { /* fallback: the largest direct divisor (1 always is) */
        uint64_t best = 1;
        uint32_t bK = 1, bl = 0;
        for (uint64_t a = 1; a * a <= n; a++) {
            if (n % a) continue;
            uint64_t c[2] = {a, n / a};
            for (int i = 0; i < 2; i++) {
                uint32_t k2, l2;
                if (c[i] > best && direct(c[i], &k2, &l2)) {
                    best = c[i];
                    bK = k2;
                    bl = l2;
                }
            }
        }
        d = best;
        K = bK;
        lm = bl;
    }
    p->block = d;
    p->K = K;
    p->log2m = lm;
    p->HK = K > 1 ? sq_had_matrix(K) : NULL;
    return SQ_OK;
}

#define JC 8 /* columns of the K-mix done together (stack buffer K x JC) */

#define DEFINE_HAD(SUF, T)                                                                  \
    static void fwht##SUF(T *x, uint64_t len) {                                             \
        for (uint64_t h = 1; h < len; h *= 2)                                               \
            for (uint64_t i = 0; i < len; i += 2 * h)                                       \
                for (uint64_t j = i; j < i + h; j++) {                                      \
                    T a = x[j], b = x[j + h];                                               \
                    x[j] = a + b;                                                           \
                    x[j + h] = a - b;                                                       \
                }                                                                           \
    }                                                                                       \
    /* y[k'][j] = Σ_k H[k'][k] z[k][j] (tr = 0) or Σ_k H[k][k'] z[k][j] (tr = 1) */         \
    static void kmix##SUF(const int8_t *H, uint32_t K, uint64_t M, T *x, int tr) {          \
        T t[SQ_HAD_MAX_K][JC];                                                              \
        for (uint64_t j0 = 0; j0 < M; j0 += JC) {                                           \
            const uint64_t nj = M - j0 < JC ? M - j0 : JC;                                  \
            for (uint32_t k = 0; k < K; k++)                                                \
                for (uint64_t j = 0; j < nj; j++) t[k][j] = x[k * M + j0 + j];              \
            for (uint32_t a = 0; a < K; a++) {                                              \
                T s[JC] = {0};                                                              \
                for (uint32_t k = 0; k < K; k++) {                                          \
                    const T h = (T)(tr ? H[(size_t)k * K + a] : H[(size_t)a * K + k]);      \
                    for (uint64_t j = 0; j < nj; j++) s[j] += h * t[k][j];                  \
                }                                                                           \
                for (uint64_t j = 0; j < nj; j++) x[a * M + j0 + j] = s[j];                 \
            }                                                                               \
        }                                                                                   \
    }                                                                                       \
    static void block##SUF(const sq_had_plan *p, T *x, int inv) {                           \
        const uint64_t M = (uint64_t)1 << p->log2m;                                         \
        const T norm = (T)(1.0 / sqrt((double)p->block));                                   \
        for (uint64_t b0 = 0; b0 < p->n; b0 += p->block) {                                  \
            T *v = x + b0;                                                                  \
            if (inv && p->K > 1) kmix##SUF(p->HK, p->K, M, v, 1);                           \
            for (uint32_t k = 0; k < p->K; k++) fwht##SUF(v + k * M, M);                    \
            if (!inv && p->K > 1) kmix##SUF(p->HK, p->K, M, v, 0);                          \
            for (uint64_t i = 0; i < p->block; i++) v[i] *= norm;                           \
        }                                                                                   \
    }

DEFINE_HAD(_f32, float)
DEFINE_HAD(_f64, double)

void sq_had_fwd(const sq_had_plan *p, float *x) { block_f32(p, x, 0); }
void sq_had_inv(const sq_had_plan *p, float *x) { block_f32(p, x, 1); }
void sq_had_fwd_f64(const sq_had_plan *p, double *x) { block_f64(p, x, 0); }
void sq_had_inv_f64(const sq_had_plan *p, double *x) { block_f64(p, x, 1); }

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void sq_rht_signs(uint64_t seed, uint64_t n, uint8_t *signs) {
    memset(signs, 0, (n + 7) / 8);
    uint64_t s = seed;
    for (uint64_t i = 0; i < n; i++)
        if (splitmix64(&s) >> 63) signs[i >> 3] |= (uint8_t)(1u << (i & 7));
}

#define DEFINE_RHT(SUF, BSUF, T)                                                                  \
    void sq_rht_apply_plan##SUF(const sq_had_plan *p, const uint8_t *signs, T *x) {          \
        for (uint64_t i = 0; i < p->n; i++)                                                 \
            if (sq_rht_sign_neg(signs, i)) x[i] = -x[i];                                    \
        block##BSUF(p, x, 0);                                                               \
    }                                                                                       \
    void sq_rht_inverse_plan##SUF(const sq_had_plan *p, const uint8_t *signs, T *x) {        \
        block##BSUF(p, x, 1);                                                               \
        for (uint64_t i = 0; i < p->n; i++)                                                 \
            if (sq_rht_sign_neg(signs, i)) x[i] = -x[i];                                    \
    }
DEFINE_RHT(, _f32, float)
DEFINE_RHT(_f64, _f64, double)

void sq_rht_apply(const uint8_t *signs, float *x, uint64_t n) {
    sq_had_plan p;
    if (sq_had_plan_init(&p, n, NULL) == SQ_OK) sq_rht_apply_plan(&p, signs, x);
}
void sq_rht_inverse(const uint8_t *signs, float *x, uint64_t n) {
    sq_had_plan p;
    if (sq_had_plan_init(&p, n, NULL) == SQ_OK) sq_rht_inverse_plan(&p, signs, x);
}
