/* The target-bpw allocator's solver: one candidate per item (tensor) so
 * that the summed loss is least while the summed size stays within a
 * budget (a multiple-choice knapsack). Pure arithmetic on a table of
 * (bits, loss) per item and candidate; quantize_model.c fills the table by
 * encoding every tensor with every candidate (alloc_model.c).
 *
 * Two stages, both deterministic (ties go to the lower item, then the
 * lower candidate index):
 *  1. a Lagrangian sweep: each item's lower convex hull of (bits, loss),
 *     upgrades taken in order of loss saved per bit (λ falling) while they
 *     fit: the classic hull solution and its λ, a bracket for stage 2;
 *  2. the exact fill: dynamic programming over the sizes in units of
 *     u = tol / (16 n) bits (coarser only to keep the table within 2^26
 *     entries; rounded up per candidate, so the rounded sum bounds the true
 *     sum from above and overshoots it by less than n u = tol / 16). It
 *     takes the least loss with the true size <= budget, or the stage 1
 *     mix when that fits within tol and is better (the rounding can hide it);
 *     when that lands below budget - tol (candidates too coarse to fill the
 *     budget), the least loss among the table's mixes (one per rounded
 *     size) whose true size is within budget ± tol. */
#ifndef SQUISH_ALLOC_H
#define SQUISH_ALLOC_H

#include <stdint.h>

#include "squish/error.h"

typedef struct sq_alloc_item {
    int n;               /* candidates (>= 1) */
    const uint64_t *bits; /* [n] stored size of each candidate */
    const double *loss;  /* [n] predicted loss of each candidate (finite, >= 0) */
} sq_alloc_item;

typedef struct sq_alloc_result {
    int *pick;              /* [n_items] chosen candidate (caller's array) */
    uint64_t bits;          /* the chosen candidates' summed bits */
    double loss;            /* their summed loss */
    uint64_t lagr_bits;     /* the Lagrangian (hull) solution within the budget */
    double lagr_loss, lambda; /* its loss and the λ (loss per bit) of its last upgrade; 0 when none */
    int widened;            /* 1: no mix <= budget came within tol; chosen within budget ± tol */
    int from_hull;          /* 1: the hull solution was better than the table's (its rounding) and is taken */
} sq_alloc_result;

/* The least-loss choice with total bits <= budget and >= budget - tol
 * (or, failing that, within budget ± tol). SQ_EUSAGE naming the bound when
 * even the cheapest mix exceeds budget + tol or the dearest falls short of
 * budget - tol; SQ_ENOMEM. r->pick must hold n_items ints. */
sq_status sq_alloc_solve(const sq_alloc_item *items, int n_items, uint64_t budget, uint64_t tol, sq_alloc_result *r,
                         sq_err *err);

#endif
