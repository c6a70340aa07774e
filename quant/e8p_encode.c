/* E8P12 nearest codeword. For a shift t the codewords are s⊙a + t with a
 * one of 256 absolute vectors and s a sign vector whose number of minus
 * signs has the parity of Σa (so that s⊙a is in D8 + 1/2). With z = y - t,
 * ‖z - s⊙a‖² = ‖z‖² + ‖a‖² - 2 Σ s_i a_i z_i; for a fixed a the best s is
 * sign(z), and when its parity is wrong the cheapest repair flips the
 * coordinate with the smallest a_i|z_i| (cost 4·min a_i|z_i|). So each a is
 * scored with 8 products, 512 candidates in all, no approximation. */
#include "e8p_encode.h"

#include <math.h>
#include <pthread.h>
#include <string.h>

#include "codecs/quip/e8p.h"

static float AT[8][256];  /* |a| transposed, so the loops over entries vectorize */
static float NORM[256];   /* ‖a‖² */
static int PAR[256];      /* parity of Σ a (number of minus signs required) */
static float E81T[8][256], E81N[256];
static pthread_once_t once = PTHREAD_ONCE_INIT;

/* The searches score all 256 entries of a table with elementwise products
 * and sums in a fixed order (no contraction: -ffp-contract=off), so the
 * wider clones give the portable clone's bits. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define WIDE __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define WIDE
#endif

/* Index of the first maximum of sc[0..255]: lane-wise maxima (vectorized),
 * then the first entry equal to their maximum (what a scan with a strict
 * comparison from entry 0 returns). */
static inline int argmax256(const float sc[256]) {
    float m[16];
    for (int l = 0; l < 16; l++) m[l] = sc[l];
    for (int e = 16; e < 256; e += 16)
        for (int l = 0; l < 16; l++) m[l] = sc[e + l] > m[l] ? sc[e + l] : m[l];
    float mx = m[0];
    for (int l = 1; l < 16; l++) mx = m[l] > mx ? m[l] : mx;
    int b = 0;
    while (sc[b] != mx) b++;
    return b;
}

static void build(void) {
    for (int A = 0; A < 256; A++) {
        int s2 = 0;
        float n = 0;
        for (int i = 0; i < 8; i++) {
            int v = (int)((sq_e8p_abs[A] >> (4 * i)) & 15);
            s2 += v;
            AT[i][A] = 0.5f * (float)v;
            n += AT[i][A] * AT[i][A];
        }
        NORM[A] = n;
        PAR[A] = (s2 / 2) & 1;
        float m = 0;
        for (int i = 0; i < 8; i++) {
            E81T[i][A] = 0.5f * (float)sq_e81b_grid2[A][i];
            m += E81T[i][A] * E81T[i][A];
        }
        E81N[A] = m;
    }
}

/* Best (score, entry) for one shift; score = 2 Σ s_i a_i z_i - ‖a‖². */
WIDE static float best_for_shift(const float z[8], int *best) {
    float u[8], acc[256], mn[256], sc[256];
    int negpar = 0;
    for (int i = 0; i < 8; i++) {
        u[i] = z[i] < 0 ? -z[i] : z[i];
        negpar ^= z[i] < 0;
    }
    for (int e = 0; e < 256; e++) {
        acc[e] = AT[0][e] * u[0];
        mn[e] = acc[e];
    }
    for (int i = 1; i < 8; i++)
        for (int e = 0; e < 256; e++) {
            float p = AT[i][e] * u[i];
            acc[e] += p;
            mn[e] = p < mn[e] ? p : mn[e];
        }
    for (int e = 0; e < 256; e++) sc[e] = 2 * acc[e] - NORM[e] - (PAR[e] != negpar ? 4 * mn[e] : 0.0f);
    const int b = argmax256(sc);
    *best = b;
    return sc[b];
}

/* Per-entry scores for one shift: sc[e] = 2 Σ s_i a_i z_i - ‖a‖² with the
 * best sign pattern s for entry e (distance = ‖z‖² - sc[e]). */
WIDE static void scores_for_shift(const float z[8], float sc[256]) {
    float u[8], acc[256], mn[256];
    int negpar = 0;
    for (int i = 0; i < 8; i++) {
        u[i] = z[i] < 0 ? -z[i] : z[i];
        negpar ^= z[i] < 0;
    }
    for (int e = 0; e < 256; e++) {
        acc[e] = AT[0][e] * u[0];
        mn[e] = acc[e];
    }
    for (int i = 1; i < 8; i++)
        for (int e = 0; e < 256; e++) {
            float p = AT[i][e] * u[i];
            acc[e] += p;
            mn[e] = p < mn[e] ? p : mn[e];
        }
    for (int e = 0; e < 256; e++) sc[e] = 2 * acc[e] - NORM[e] - (PAR[e] != negpar ? 4 * mn[e] : 0.0f);
}

/* The code of entry A with the best signs for z = y - t (t = -1/4 when
 * minus), and its value. */
static uint16_t code_of(const float z[8], int A, int minus, float q[8]) {
    int neg[8], negpar = 0, flip = 0;
    float fmin = 0;
    for (int i = 0; i < 8; i++) {
        neg[i] = z[i] < 0;
        negpar ^= neg[i];
        float p = AT[i][A] * (z[i] < 0 ? -z[i] : z[i]);
        if (i == 0 || p < fmin) {
            fmin = p;
            flip = i;
        }
    }
    if (negpar != PAR[A]) neg[flip] ^= 1;
    /* f_i = (value sign) xor (sign of b_i); b_7 < 0 when Σ a is odd */
    unsigned f = 0;
    for (int i = 0; i < 8; i++) {
        int bneg = i == 7 && PAR[A];
        if (neg[i] ^ bneg) f |= 1u << ((i & 1) ? 4 + i / 2 : i / 2);
    }
    const unsigned S = f ^ (unsigned)minus;
    const float t = minus ? -0.25f : 0.25f;
    for (int i = 0; i < 8; i++) q[i] = (neg[i] ? -AT[i][A] : AT[i][A]) + t;
    return (uint16_t)((unsigned)A << 8 | S);
}

uint16_t sq_e8p_nearest(const float y[8], float q[8]) {
    pthread_once(&once, build);
    float zp[8], zm[8];
    for (int i = 0; i < 8; i++) {
        zp[i] = y[i] - 0.25f;
        zm[i] = y[i] + 0.25f;
    }
    int ep, em;
    float sp = best_for_shift(zp, &ep), sm = best_for_shift(zm, &em);
    /* ‖z‖² differs between the shifts: compare full distances */
    float np = 0, nm = 0;
    for (int i = 0; i < 8; i++) {
        np += zp[i] * zp[i];
        nm += zm[i] * zm[i];
    }
    const int minus = nm - sm < np - sp; /* p = 1: shift -1/4 */
    return code_of(minus ? zm : zp, minus ? em : ep, minus, q);
}

int sq_e8p_candidates(const float y[8], int k, uint16_t *codes, float *vals, float *dist) {
    pthread_once(&once, build);
    float z[2][8], sc[2][256], nz[2] = {0, 0};
    for (int i = 0; i < 8; i++) {
        z[0][i] = y[i] - 0.25f;
        z[1][i] = y[i] + 0.25f;
        nz[0] += z[0][i] * z[0][i];
        nz[1] += z[1][i] * z[1][i];
    }
    scores_for_shift(z[0], sc[0]);
    scores_for_shift(z[1], sc[1]);
    /* k smallest distances by insertion; order: distance, then +1/4 shift
     * first, then the lower entry (the nearest search's tie rule) */
    int n = 0, who[SQ_E8P_MAX_CAND];
    float best[SQ_E8P_MAX_CAND];
    if (k > SQ_E8P_MAX_CAND) k = SQ_E8P_MAX_CAND;
    for (int m = 0; m < 2; m++)
        for (int e = 0; e < 256; e++) {
            const float d = nz[m] - sc[m][e];
            if (n == k && !(d < best[n - 1])) continue;
            int j = n < k ? n++ : n - 1;
            while (j > 0 && d < best[j - 1]) {
                best[j] = best[j - 1];
                who[j] = who[j - 1];
                j--;
            }
            best[j] = d;
            who[j] = m << 8 | e;
        }
    for (int j = 0; j < n; j++) {
        const int m = who[j] >> 8;
        codes[j] = code_of(z[m], who[j] & 255, m, vals + 8 * j);
        if (dist) dist[j] = best[j];
    }
    return n;
}

WIDE uint8_t sq_e81b_nearest(const float y[8], float q[8]) {
    pthread_once(&once, build);
    float acc[256];
    for (int e = 0; e < 256; e++) acc[e] = E81T[0][e] * y[0];
    for (int i = 1; i < 8; i++)
        for (int e = 0; e < 256; e++) acc[e] += E81T[i][e] * y[i];
    for (int e = 0; e < 256; e++) acc[e] = 2 * acc[e] - E81N[e];
    const int b = argmax256(acc);
    for (int i = 0; i < 8; i++) q[i] = E81T[i][b];
    return (uint8_t)b;
}

/* ---- the nested stages: E8 nearest point, cosets of 2E8, E8R ---- */

/* Nearest point of D8 (integer vectors with an even sum): round every
 * coordinate; when the sum is odd, round the coordinate that was farthest
 * from an integer the other way (Conway & Sloane, ch. 20). Ties of the
 * rounding go to even (rintf), of the farthest coordinate to the first. */
static void d8_nearest(const float x[8], float p[8]) {
    int sum = 0, w = 0;
    float we = -1;
    for (int i = 0; i < 8; i++) {
        p[i] = rintf(x[i]);
        sum += (int)p[i];
        const float e = fabsf(x[i] - p[i]);
        if (e > we) {
            we = e;
            w = i;
        }
    }
    if (sum & 1) p[w] += x[w] > p[w] ? 1.0f : -1.0f;
}

void sq_e8_nearest(const float x[8], float p[8]) {
    float a[8], b[8], xs[8], ea = 0, eb = 0;
    d8_nearest(x, a);
    for (int i = 0; i < 8; i++) xs[i] = x[i] - 0.5f;
    d8_nearest(xs, b);
    for (int i = 0; i < 8; i++) {
        b[i] += 0.5f;
        ea += (x[i] - a[i]) * (x[i] - a[i]);
        eb += (x[i] - b[i]) * (x[i] - b[i]);
    }
    memcpy(p, ea <= eb ? a : b, 8 * sizeof(float));
}

/* Coordinates n of an E8 point e = Σ n_j g_j in the basis g_0 = 2e_0,
 * g_j = e_j - e_{j-1} (j = 1..6), g_7 = ½·1, reduced mod 2: the point's
 * coset of 2E8 as 8 bits. X = 2e (integers). */
static unsigned coset_bits(const int X[8]) {
    int n[8];
    n[7] = X[7];
    n[6] = (X[6] - X[7]) / 2;
    for (int j = 5; j >= 1; j--) n[j] = (X[j] - X[7]) / 2 + n[j + 1];
    n[0] = ((X[0] - X[7]) / 2 + n[1]) / 2;
    unsigned k = 0;
    for (int j = 0; j < 8; j++) k |= (unsigned)(n[j] & 1) << j;
    return k;
}

static uint8_t E8R_OF_COSET[256];
static float E8RT[8][256], E8RN[256];
static int16_t ABS_OF_DIGITS[6561]; /* base-3 digits (2|a_i| - 1) / 2 -> E8P absolute entry, or -1 */
static pthread_once_t nested_once = PTHREAD_ONCE_INIT;

static void build_nested(void) {
    pthread_once(&once, build);
    for (int c = 0; c < 256; c++) {
        int X[8];
        float n = 0;
        for (int i = 0; i < 8; i++) {
            X[i] = sq_e8r_grid4[c][i]; /* 4·value = 2·(E8 member) */
            E8RT[i][c] = 0.25f * (float)sq_e8r_grid4[c][i];
            n += E8RT[i][c] * E8RT[i][c];
        }
        E8RN[c] = n;
        E8R_OF_COSET[coset_bits(X)] = (uint8_t)c;
    }
    for (int d = 0; d < 6561; d++) ABS_OF_DIGITS[d] = -1;
    for (int A = 0; A < 256; A++) {
        int d = 0;
        for (int i = 7; i >= 0; i--) d = d * 3 + (int)(((sq_e8p_abs[A] >> (4 * i)) & 15) - 1) / 2;
        ABS_OF_DIGITS[d] = (int16_t)A;
    }
}

uint8_t sq_e8r_of_coset(const float e[8]) {
    pthread_once(&nested_once, build_nested);
    int X[8];
    for (int i = 0; i < 8; i++) X[i] = (int)lrintf(2.0f * e[i]);
    return E8R_OF_COSET[coset_bits(X)];
}

int sq_e8p_code_of_value(const float c[8], float q[8]) {
    pthread_once(&nested_once, build_nested);
    /* c - ¼ integral: c = (c - ¼ + ½) - ¼ with c - ¼ + ½ in D8 + ½, shift -¼ */
    const int minus = rintf(c[0] - 0.25f) == c[0] - 0.25f;
    const float t = minus ? -0.25f : 0.25f;
    float z[8];
    int d = 0;
    for (int i = 7; i >= 0; i--) {
        z[i] = c[i] - t;
        const int a2 = (int)lrintf(2.0f * fabsf(z[i])); /* 1, 3 or 5 inside the ball */
        if (a2 != 1 && a2 != 3 && a2 != 5) return -1;
        d = d * 3 + (a2 - 1) / 2;
    }
    const int A = ABS_OF_DIGITS[d];
    if (A < 0) return -1;
    return code_of(z, A, minus, q);
}

static uint8_t e8r_brute(const float y[8], float q[8]);

uint8_t sq_e8r_nearest(const float y[8], float q[8]) {
    pthread_once(&nested_once, build_nested);
    /* E8R lies in ½E8: when ½E8's nearest point is an E8R entry it is the answer */
    float x[8], p[8];
    for (int i = 0; i < 8; i++) x[i] = 2.0f * y[i];
    sq_e8_nearest(x, p);
    const uint8_t k = sq_e8r_of_coset(p);
    int same = 1;
    for (int i = 0; i < 8; i++) same &= 0.5f * p[i] == E8RT[i][k];
    if (same) {
        for (int i = 0; i < 8; i++) q[i] = E8RT[i][k];
        return k;
    }
    return e8r_brute(y, q);
}

WIDE static uint8_t e8r_brute(const float y[8], float q[8]) {
    float acc[256];
    for (int e = 0; e < 256; e++) acc[e] = E8RT[0][e] * y[0];
    for (int i = 1; i < 8; i++)
        for (int e = 0; e < 256; e++) acc[e] += E8RT[i][e] * y[i];
    for (int e = 0; e < 256; e++) acc[e] = 2 * acc[e] - E8RN[e];
    const int b = argmax256(acc);
    for (int i = 0; i < 8; i++) q[i] = E8RT[i][b];
    return (uint8_t)b;
}
