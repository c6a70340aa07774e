/* One ISA's register tile of fixed-order dots, included by linalg.c with
 * TILE_ATTR, VT (a vector of VW doubles), V_ZERO, V_LOAD, V_BCAST, V_FMA,
 * V_ADD, V_SUB, V_DIV, V_STORE, V_PIN (keep a value in a register here), V_BARRIER (a
 * compiler memory barrier), the names TILE_LANE, TILE_G, TILE_ONE, TILE_BODY,
 * TILE_G64, TILE_PUT, TILE_ADDM, TILE_ADDR, TILE_R4_64, TILE_R1 and TILE_PANEL, and TR and
 * TC (the tile's rows and columns) defined.
 *
 * out[r][c] = sq_la_dot(a[r], b_c, len) for tr rows and TC columns, where Bp
 * holds the TC vectors b_c interleaved ([k][TC]). The vectors run across the
 * TC outputs, not along k, so every element gets exactly sq_la_dot's
 * sequence: lane m is a chain of fused multiply-adds from +0 over
 * k = m, m+32, ...; g_k = (l_k + l_{8+k}) + (l_{16+k} + l_{24+k}); the sum
 * ((g0+g4)+(g2+g6)) + ((g1+g5)+(g3+g7)); then the tail by fused multiply-add
 * in order. Each row's a[r][k] is broadcast and each b load serves tr rows:
 * no horizontal sums, one read of the operands per tile. */
#define NV (TC / VW)

/* lane m over the TC columns at b (row stride TC) */
TILE_ATTR static inline __attribute__((always_inline)) VT TILE_LANE(uint64_t P, uint64_t m, const double *a,
                                                                     const double *b) {
    VT t = V_ZERO;
    for (uint64_t p = 0; p < P; p++) t = V_FMA(V_BCAST(a[32 * p + m]), V_LOAD(b + TC * (32 * p + m)), t);
    return t;
}

/* g_k = (l_k + l_{8+k}) + (l_{16+k} + l_{24+k}) */
TILE_ATTR static inline __attribute__((always_inline)) VT TILE_G(uint64_t P, uint64_t k, const double *a,
                                                                  const double *b) {
    const VT u = V_ADD(TILE_LANE(P, k, a, b), TILE_LANE(P, 8 + k, a, b));
    return V_ADD(u, V_ADD(TILE_LANE(P, 16 + k, a, b), TILE_LANE(P, 24 + k, a, b)));
}

/* One row's dots with VW of the columns; every operation is exact-order, so
 * the compiler may interleave the tile's outputs freely. */
TILE_ATTR static inline __attribute__((always_inline)) VT TILE_ONE(uint64_t len, const double *a, const double *b) {
    const uint64_t P = len / 32;
    const VT s0 = V_ADD(V_ADD(TILE_G(P, 0, a, b), TILE_G(P, 4, a, b)), V_ADD(TILE_G(P, 2, a, b), TILE_G(P, 6, a, b)));
    const VT s1 = V_ADD(V_ADD(TILE_G(P, 1, a, b), TILE_G(P, 5, a, b)), V_ADD(TILE_G(P, 3, a, b), TILE_G(P, 7, a, b)));
    VT s = V_ADD(s0, s1);
    for (uint64_t k = 32 * P; k < len; k++) s = V_FMA(V_BCAST(a[k]), V_LOAD(b + TC * k), s);
    return s;
}

TILE_ATTR static inline __attribute__((always_inline)) void TILE_BODY(int tr, uint64_t len, const double *const *a,
                                                                       const double *Bp, double *out) {
#pragma GCC unroll 4
    for (int r = 0; r < tr; r++)
#pragma GCC unroll 16
        for (int v = 0; v < NV; v++) V_STORE(out + TC * r + VW * v, TILE_ONE(len, a[r], Bp + VW * v));
}

/* The TR x TC tile of len-64 dots, the same sums in another schedule:
 * loads, not arithmetic, bound the plain body (each B vector reloaded per
 * row, each broadcast serving one vector), so here every g_k is formed for
 * all TR rows from B vectors held in registers (lanes k, 8+k first, then
 * 16+k, 24+k), each broadcast serving NV vectors; one partial sum of the
 * final tree stays in registers, the others wait in memory. V_PIN keeps
 * the compiler from hoisting all lanes ahead of their sums (which spilled
 * them). */
TILE_ATTR static inline __attribute__((always_inline)) void TILE_G64(VT G[TR][NV], const double *const *a,
                                                                      const double *Bp, int k) {
#pragma GCC unroll 2
    for (int h = 0; h < 2; h++) { /* h = 0: G = l_k + l_{8+k}; h = 1: G += l_{16+k} + l_{24+k} */
        VT bv[2][2][NV];
#pragma GCC unroll 2
        for (int q = 0; q < 2; q++)
#pragma GCC unroll 16
            for (int v = 0; v < NV; v++) {
                bv[q][0][v] = V_LOAD(Bp + TC * (16 * h + 8 * q + k) + VW * v);
                bv[q][1][v] = V_LOAD(Bp + TC * (16 * h + 8 * q + k + 32) + VW * v);
            }
#pragma GCC unroll 4
        for (int r = 0; r < TR; r++) {
            const double *ar = a[r] + 16 * h + k;
            const VT x0 = V_BCAST(ar[0]), x1 = V_BCAST(ar[32]), y0 = V_BCAST(ar[8]), y1 = V_BCAST(ar[40]);
#pragma GCC unroll 16
            for (int v = 0; v < NV; v++) {
                const VT l0 = V_FMA(x1, bv[0][1][v], V_FMA(x0, bv[0][0][v], V_ZERO));
                const VT l1 = V_FMA(y1, bv[1][1][v], V_FMA(y0, bv[1][0][v], V_ZERO));
                G[r][v] = h ? V_ADD(G[r][v], V_ADD(l0, l1)) : V_ADD(l0, l1);
                V_PIN(G[r][v]);
            }
        }
    }
}

/* S = G (through memory), G += S, R = G, R += G */
TILE_ATTR static inline __attribute__((always_inline)) void TILE_PUT(double *S, VT G[TR][NV]) {
#pragma GCC unroll 4
    for (int r = 0; r < TR; r++)
#pragma GCC unroll 16
        for (int v = 0; v < NV; v++) V_STORE(S + TC * r + VW * v, G[r][v]);
    V_BARRIER();
}
TILE_ATTR static inline __attribute__((always_inline)) void TILE_ADDM(VT G[TR][NV], const double *S) {
#pragma GCC unroll 4
    for (int r = 0; r < TR; r++)
#pragma GCC unroll 16
        for (int v = 0; v < NV; v++) G[r][v] = V_ADD(G[r][v], V_LOAD(S + TC * r + VW * v));
}
TILE_ATTR static inline __attribute__((always_inline)) void TILE_ADDR(VT R[TR][NV], VT G[TR][NV], int set) {
#pragma GCC unroll 4
    for (int r = 0; r < TR; r++)
#pragma GCC unroll 16
        for (int v = 0; v < NV; v++) {
            R[r][v] = set ? G[r][v] : V_ADD(R[r][v], G[r][v]);
            V_PIN(R[r][v]);
        }
}

/* out (row stride ldo) = the tile (mode 0), out += the tile (mode 1) or
 * out -= the tile (mode -1) */
TILE_ATTR static void TILE_R4_64(const double *const *a, const double *Bp, double *out, size_t ldo, int mode) {
    double S[2][TR * TC];
    VT G[TR][NV], R[TR][NV];
    TILE_G64(G, a, Bp, 0); /* ((g0 + g4) + (g2 + g6)) + ((g1 + g5) + (g3 + g7)) */
    TILE_ADDR(R, G, 1);
    TILE_G64(G, a, Bp, 4);
    TILE_ADDR(R, G, 0);
    TILE_G64(G, a, Bp, 2);
    TILE_PUT(S[0], G);
    TILE_G64(G, a, Bp, 6);
    TILE_ADDM(G, S[0]);
    TILE_ADDR(R, G, 0); /* s0 */
    TILE_PUT(S[1], R);
    TILE_G64(G, a, Bp, 1);
    TILE_ADDR(R, G, 1);
    TILE_G64(G, a, Bp, 5);
    TILE_ADDR(R, G, 0);
    TILE_G64(G, a, Bp, 3);
    TILE_PUT(S[0], G);
    TILE_G64(G, a, Bp, 7);
    TILE_ADDM(G, S[0]);
    TILE_ADDR(R, G, 0); /* s1 */
    TILE_ADDM(R, S[1]);
#pragma GCC unroll 4
    for (int r = 0; r < TR; r++)
#pragma GCC unroll 16
        for (int v = 0; v < NV; v++) {
            double *o = out + ldo * r + VW * v;
            V_STORE(o, mode == 0 ? R[r][v] : mode > 0 ? V_ADD(V_LOAD(o), R[r][v]) : V_SUB(V_LOAD(o), R[r][v]));
        }
}
/* lane m of Σ_k T[k]·d[k] for the TC rows in T ([k][TC]), vector v */
#define TILE_PLANE(m, v) V_FMA(V_LOAD(T + TC * (m) + VW * (v)), V_BCAST(dj[m]), V_ZERO)
#define TILE_PG(k, v) V_ADD(V_ADD(TILE_PLANE(k, v), TILE_PLANE(8 + (k), v)), V_ADD(TILE_PLANE(16 + (k), v), TILE_PLANE(24 + (k), v)))

/* The panel's rows below its diagonal block, TC rows at once: T holds them
 * transposed ([m][TC], w <= 64 columns); for j < w in order,
 * T[j] = (T[j] - sq_la_dot(row, D[j], j)) / D[j][j], the dot in its order
 * (one pass of 32 lanes when j >= 32, then the tail), D the diagonal block
 * already factored (row stride ldd). */
TILE_ATTR static void TILE_PANEL(double *T, const double *D, size_t ldd, uint64_t w) {
    for (uint64_t j = 0; j < w; j++) {
        const double *dj = D + j * ldd;
        VT s[NV];
        const uint64_t m0 = j >= 32 ? 32 : 0;
#pragma GCC unroll 16
        for (int v = 0; v < NV; v++)
            s[v] = m0 ? V_ADD(V_ADD(V_ADD(TILE_PG(0, v), TILE_PG(4, v)), V_ADD(TILE_PG(2, v), TILE_PG(6, v))),
                              V_ADD(V_ADD(TILE_PG(1, v), TILE_PG(5, v)), V_ADD(TILE_PG(3, v), TILE_PG(7, v))))
                      : V_ZERO;
        for (uint64_t m = m0; m < j; m++) {
            const VT x = V_BCAST(dj[m]);
#pragma GCC unroll 16
            for (int v = 0; v < NV; v++) s[v] = V_FMA(V_LOAD(T + TC * m + VW * v), x, s[v]);
        }
        const VT d = V_BCAST(dj[j]);
#pragma GCC unroll 16
        for (int v = 0; v < NV; v++) V_STORE(T + TC * j + VW * v, V_DIV(V_SUB(V_LOAD(T + TC * j + VW * v), s[v]), d));
    }
}
#undef TILE_PLANE
#undef TILE_PG

TILE_ATTR static void TILE_R1(uint64_t len, const double *const *a, const double *Bp, double *out) {
    TILE_BODY(1, len, a, Bp, out);
}

#undef NV
