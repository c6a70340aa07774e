/* E8P12 nearest codeword. For a shift t the codewords are s⊙a + t with a
 * one of 256 absolute vectors and s a sign vector whose number of minus
 * signs has the parity of Σa (so that s⊙a is in D8 + 1/2). With z = y - t,
 * ‖z - s⊙a‖² = ‖z‖² + ‖a‖² - 2 Σ s_i a_i z_i; for a fixed a the best s is
 * sign(z), and when its parity is wrong the cheapest repair flips the
 * coordinate with the smallest a_i|z_i| (cost 4·min a_i|z_i|). So each a is
 * scored with 8 products, 512 candidates in all, no approximation. */
#include "e8p_encode.h"

#include <pthread.h>
#include <string.h>

#include "codecs/quip/e8p.h"

static float AT[8][256];  /* |a| transposed, so the loops over entries vectorize */
static float NORM[256];   /* ‖a‖² */
static int PAR[256];      /* parity of Σ a (number of minus signs required) */
static float E81T[8][256], E81N[256];
static pthread_once_t once = PTHREAD_ONCE_INIT;

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
static float best_for_shift(const float z[8], int *best) {
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
    int b = 0;
    for (int e = 1; e < 256; e++)
        if (sc[e] > sc[b]) b = e;
    *best = b;
    return sc[b];
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
    const float *z = minus ? zm : zp;
    const int A = minus ? em : ep;
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

uint8_t sq_e81b_nearest(const float y[8], float q[8]) {
    pthread_once(&once, build);
    float acc[256];
    for (int e = 0; e < 256; e++) acc[e] = E81T[0][e] * y[0];
    for (int i = 1; i < 8; i++)
        for (int e = 0; e < 256; e++) acc[e] += E81T[i][e] * y[i];
    int b = 0;
    float bs = 2 * acc[0] - E81N[0];
    for (int e = 1; e < 256; e++) {
        float s = 2 * acc[e] - E81N[e];
        if (s > bs) {
            bs = s;
            b = e;
        }
    }
    for (int i = 0; i < 8; i++) q[i] = E81T[i][b];
    return (uint8_t)b;
}
