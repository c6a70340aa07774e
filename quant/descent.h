/* Coordinate descent on quantized codes after a GPTQ-style sweep (the idea
 * of QuantEase, Behdin et al. 2023): the shared part, the gradient of each
 * row's calibrated loss e (H + lam I) eᵀ. The per-code moves stay with each
 * quantizer (gptq.c, spqr.c), which know their levels. */
#ifndef SQUISH_QUANT_DESCENT_H
#define SQUISH_QUANT_DESCENT_H

#include <stdint.h>

#include "squish/codec.h" /* sq_isa */

/* G = E (H + lam I) for R rows of K columns (row-major, float64; H is
 * K x K, symmetric). Each element is lam e_j, then fused multiply-adds of
 * e_k H[k][j] over k in order, skipping e_k = 0: the same bits for every
 * ISA and however rows are grouped. H's rows are read once per call, in
 * column chunks that keep G's chunk in cache. */
void sq_descent_gradient(sq_isa isa, const double *E, uint64_t R, uint64_t K, const double *H, double lam, double *G);

/* The optimum of the weight at original column oc given all the others,
 * cur + g[oc] / (H[oc][oc] + lam); the caller rounds it to its nearest level. */
static inline double sq_descent_optimum(const double *H, uint64_t K, double lam, const double *g, uint64_t oc, double cur) {
    return cur + g[oc] / (H[oc * K + oc] + lam);
}

/* Moving that weight by d (its error falls by d) changes the row's loss by
 * d² (H[oc][oc] + lam) - 2 d g[oc]. If that is negative, g follows the move
 * (g -= d (H[oc] + lam e_oc), fused) and 1 is returned; otherwise 0, g
 * untouched: only strict improvements, so the loss never rises. */
int sq_descent_move(sq_isa isa, const double *H, uint64_t K, double lam, double *g, uint64_t oc, double d);

#endif
