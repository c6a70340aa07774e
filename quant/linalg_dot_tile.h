/* One ISA's register tile of fixed-order dots, included by linalg.c with
 * TILE_ATTR, VT (a vector of VW doubles), V_ZERO, V_LOAD, V_BCAST, V_FMA,
 * V_ADD, V_STORE and the names TILE_LANE, TILE_BODY, TILE_R4_64, TILE_R4,
 * TILE_R1 defined.
 *
 * out[r][c] = sq_la_dot(a[r], b_c, len) for tr rows and 8 columns, where Bp
 * holds the 8 vectors b_c interleaved ([k][8]). The vectors run across the
 * 8 outputs, not along k, so every element gets exactly sq_la_dot's
 * sequence: lane m is a chain of fused multiply-adds from +0 over
 * k = m, m+32, ...; g_k = (l_k + l_{8+k}) + (l_{16+k} + l_{24+k}); the sum
 * ((g0+g4)+(g2+g6)) + ((g1+g5)+(g3+g7)); then the tail by fused multiply-add
 * in order. Each row's a[r][k] is broadcast and each b load serves tr rows:
 * no horizontal sums, one read of the operands per tile. */
#define NV (8 / VW)

/* lane m over the 8 columns at b (row stride 8) */
TILE_ATTR static inline __attribute__((always_inline)) VT TILE_LANE(uint64_t P, uint64_t m, const double *a,
                                                                     const double *b) {
    VT t = V_ZERO;
    for (uint64_t p = 0; p < P; p++) t = V_FMA(V_BCAST(a[32 * p + m]), V_LOAD(b + 8 * (32 * p + m)), t);
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
    for (uint64_t k = 32 * P; k < len; k++) s = V_FMA(V_BCAST(a[k]), V_LOAD(b + 8 * k), s);
    return s;
}

TILE_ATTR static inline __attribute__((always_inline)) void TILE_BODY(int tr, uint64_t len, const double *const *a,
                                                                       const double *Bp, double *out) {
#pragma GCC unroll 4
    for (int r = 0; r < tr; r++)
#pragma GCC unroll 8
        for (int v = 0; v < NV; v++) V_STORE(out + 8 * r + VW * v, TILE_ONE(len, a[r], Bp + VW * v));
}

TILE_ATTR static void TILE_R4_64(uint64_t len, const double *const *a, const double *Bp, double *out) {
    (void)len;
    TILE_BODY(4, 64, a, Bp, out);
}
TILE_ATTR static void TILE_R4(uint64_t len, const double *const *a, const double *Bp, double *out) {
    TILE_BODY(4, len, a, Bp, out);
}
TILE_ATTR static void TILE_R1(uint64_t len, const double *const *a, const double *Bp, double *out) {
    TILE_BODY(1, len, a, Bp, out);
}

#undef NV
