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

#endif
