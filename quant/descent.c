/* The gradient for the coordinate descent (descent.h). */
#include "descent.h"

#include "linalg.h"

#include <math.h>

#define CHUNK 256 /* G columns per pass over H: R x 256 doubles (128 KiB for 64 rows) stay in L2 */

void sq_descent_gradient(sq_isa isa, const double *E, uint64_t R, uint64_t K, const double *H, double lam, double *G) {
    for (uint64_t j0 = 0; j0 < K; j0 += CHUNK) {
        const uint64_t nj = K - j0 < CHUNK ? K - j0 : CHUNK;
        for (uint64_t r = 0; r < R; r++)
            for (uint64_t j = 0; j < nj; j++) G[r * K + j0 + j] = lam * E[r * K + j0 + j];
        for (uint64_t k = 0; k < K; k++)
            for (uint64_t r = 0; r < R; r++) {
                const double ek = E[r * K + k];
                if (ek != 0) sq_la_axpy_f64(isa, G + r * K + j0, ek, H + k * K + j0, nj);
            }
    }
}

int sq_descent_move(sq_isa isa, const double *H, uint64_t K, double lam, double *g, uint64_t oc, double d) {
    const double h = H[oc * K + oc] + lam;
    if (!(d * d * h - 2 * d * g[oc] < 0)) return 0;
    sq_la_axpy_f64(isa, g, -d, H + oc * K, K);
    g[oc] = fma(-d, lam, g[oc]);
    return 1;
}
