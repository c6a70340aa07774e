/* Randomized Hadamard transform (RHT) for QuIP#-style incoherence
 * processing, applied to weights by the quantizer and to activations by the
 * runtime.
 *
 * Sizes. A length n is "direct" when n = K·2^m with K = 1 or K one of the
 * orders this file constructs: every K = o·2^t (o odd, t >= 2, K <= 256)
 * for which a Paley construction over a prime field exists,
 *   Paley I : q = K - 1 prime, q ≡ 3 (mod 4)  ->  order q + 1
 *   Paley II: q = K/2 - 1 prime, q ≡ 1 (mod 4) ->  order 2(q + 1)
 * (Paley I preferred when both apply). The orders built are
 *   12 20 24 28 36 44 48 60 68 72 76 80 84 104 108 124 132 140 148 152 164
 *   168 180 192 196 200 204 212 220 224 228 240 252
 * (tests/test_quip.c checks H·Hᵀ = K·I for each). Not built: orders whose
 * construction needs GF(p^k) or Williamson matrices, e.g. 52, 92, 116, 156,
 * 172 (quip-sharp stores those; Llama-2-7B's 11008 = 172·64 therefore takes
 * the fallback below with blocks of 256).
 * For n = o·2^e the factor is K = o·2^t with the smallest t >= 2 that is
 * constructible (K = 1 when o = 1), and H_n = H_K ⊗ H_{2^m} (Sylvester),
 * normalized by 1/sqrt(n). 512 = 2^9 and 1536 = 12·128 are direct.
 *
 * Fallback (any other n, e.g. 10920 = 8·1365 or an odd n): blocking. n is
 * cut into n/d contiguous blocks of the largest direct size d dividing n,
 * each transformed on its own (block-diagonal, still orthogonal). Chosen
 * over padding because it keeps every stored shape and the activation
 * length exactly n (no padded codes, no padded activations in the runtime);
 * the price is weaker incoherence (mixing only inside blocks of d), which
 * the quantizer reports through sq_had_plan.block < n. d = 1 (odd n with
 * no direct divisor > 1) degrades to the sign flips alone, never a crash.
 *
 * Signs. sq_rht_signs() draws them from a seed with splitmix64: state =
 * seed; for i = 0..n-1: state += 0x9E3779B97F4A7C15, z = mix(state)
 * (z ^= z >> 30, z *= 0xBF58476D1CE4E5B9, z ^= z >> 27, z *= 0x94D049BB133111EB,
 * z ^= z >> 31); sign i is -1 when the top bit of z is set. Signs are
 * stored bit-packed, LSB first: bit (i % 8) of byte i / 8 set means -1. */
#ifndef SQUISH_XFORM_HADAMARD_H
#define SQUISH_XFORM_HADAMARD_H

#include <stddef.h>
#include <stdint.h>

#include "squish/error.h"

#define SQ_HAD_MAX_K 256

/* How a length n is transformed: blocks of `block` = K·2^m elements. */
typedef struct sq_had_plan {
    uint64_t n;       /* total length */
    uint64_t block;   /* direct size of each block (== n unless the fallback applies) */
    uint32_t K;       /* odd-part Hadamard order (1: pure Walsh–Hadamard) */
    uint32_t log2m;   /* block = K << log2m */
    const int8_t *HK; /* K x K, entries ±1, H·Hᵀ = K·I (NULL when K = 1) */
} sq_had_plan;

/* 1 when a Hadamard matrix of order K is constructed here. */
int sq_had_order_supported(uint32_t K);
/* The ±1 matrix of order K (row-major, K x K), or NULL. Built once,
 * thread-safe, never freed. */
const int8_t *sq_had_matrix(uint32_t K);
/* Plan for length n (n >= 1). Never fails for n >= 1; SQ_EUSAGE for n = 0. */
sq_status sq_had_plan_init(sq_had_plan *p, uint64_t n, sq_err *err);

/* In place, normalized: x <- Ĥ x with Ĥ = H_n / sqrt(block) per block
 * (orthogonal), and its inverse (Ĥᵀ). */
void sq_had_fwd(const sq_had_plan *p, float *x);
void sq_had_inv(const sq_had_plan *p, float *x);
void sq_had_fwd_f64(const sq_had_plan *p, double *x);
void sq_had_inv_f64(const sq_had_plan *p, double *x);

/* Bit-packed signs (see above): (n + 7) / 8 bytes. */
void sq_rht_signs(uint64_t seed, uint64_t n, uint8_t *signs);
static inline int sq_rht_sign_neg(const uint8_t *signs, uint64_t i) { return (signs[i >> 3] >> (i & 7)) & 1; }

/* x <- Ĥ·diag(signs)·x and its inverse x <- diag(signs)·Ĥᵀ·x. */
void sq_rht_apply_plan(const sq_had_plan *p, const uint8_t *signs, float *x);
void sq_rht_inverse_plan(const sq_had_plan *p, const uint8_t *signs, float *x);
void sq_rht_apply_plan_f64(const sq_had_plan *p, const uint8_t *signs, double *x);
void sq_rht_inverse_plan_f64(const sq_had_plan *p, const uint8_t *signs, double *x);
/* Convenience forms that build the plan (cheap: no allocation). */
void sq_rht_apply(const uint8_t *signs, float *x, uint64_t n);
void sq_rht_inverse(const uint8_t *signs, float *x, uint64_t n);

#endif
