/* The allocator's solver (see alloc.h). */
#include "alloc.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- stage 1: the Lagrangian sweep over the items' convex hulls ---- */

typedef struct hull_step {
    int item, from, to; /* candidate indices */
    uint64_t dbits;
    double gain; /* loss saved per bit (> 0) */
} hull_step;

/* by bits, then loss, then index: a fixed order for equal entries */
static int before(const sq_alloc_item *it, int i, int j) {
    if (it->bits[i] != it->bits[j]) return it->bits[i] < it->bits[j];
    if (it->loss[i] != it->loss[j]) return it->loss[i] < it->loss[j];
    return i < j;
}

static int by_gain(const void *a, const void *b) {
    const hull_step *x = a, *y = b;
    if (x->gain != y->gain) return x->gain > y->gain ? -1 : 1;
    if (x->item != y->item) return x->item - y->item;
    return x->from - y->from; /* an item's steps in hull order */
}

/* The lower convex hull of item k's (bits, loss), loss strictly falling,
 * into hull[] (candidate indices); returns its length. */
static int item_hull(const sq_alloc_item *items, int k, int *idx, int *hull) {
    const sq_alloc_item *it = &items[k];
    for (int j = 0; j < it->n; j++) { /* insertion sort: a few candidates, and qsort has no context in C11 */
        int m = j;
        for (; m > 0 && before(it, j, idx[m - 1]); m--) idx[m] = idx[m - 1];
        idx[m] = j;
    }
    int h = 0;
    for (int m = 0; m < it->n; m++) {
        int p = idx[m];
        if (h && it->loss[p] >= it->loss[hull[h - 1]]) continue; /* dominated: dearer and no better */
        while (h >= 2) { /* drop the last point when it lies on or above the chord to p */
            int a = hull[h - 2], b = hull[h - 1];
            double lhs = (it->loss[b] - it->loss[a]) * (double)(it->bits[p] - it->bits[b]);
            double rhs = (it->loss[p] - it->loss[b]) * (double)(it->bits[b] - it->bits[a]);
            if (lhs < rhs) break;
            h--;
        }
        hull[h++] = p;
    }
    return h;
}

static sq_status lagrangian(const sq_alloc_item *items, int n_items, uint64_t budget, sq_alloc_result *r, int *at,
                            sq_err *err) {
    size_t total = 0;
    int kmax = 1;
    for (int k = 0; k < n_items; k++) {
        total += (size_t)items[k].n;
        if (items[k].n > kmax) kmax = items[k].n;
    }
    int *idx = malloc((size_t)kmax * sizeof *idx), *hull = malloc((size_t)kmax * sizeof *hull);
    hull_step *steps = malloc((total ? total : 1) * sizeof *steps);
    if (!idx || !hull || !steps) {
        free(idx), free(hull), free(steps);
        return sq_err_set(err, SQ_ENOMEM, "allocator: out of memory");
    }
    size_t ns = 0;
    uint64_t bits = 0;
    for (int k = 0; k < n_items; k++) {
        int h = item_hull(items, k, idx, hull);
        at[k] = hull[0];
        bits += items[k].bits[hull[0]];
        for (int s = 1; s < h; s++) {
            uint64_t db = items[k].bits[hull[s]] - items[k].bits[hull[s - 1]];
            steps[ns++] = (hull_step){k, hull[s - 1], hull[s], db,
                                      (items[k].loss[hull[s - 1]] - items[k].loss[hull[s]]) / (double)db};
        }
    }
    qsort(steps, ns, sizeof *steps, by_gain);
    r->lambda = 0;
    for (size_t s = 0; s < ns && bits <= budget; s++) { /* λ falls step by step; stop at the first that does not fit */
        if (bits + steps[s].dbits > budget) break;
        bits += steps[s].dbits;
        at[steps[s].item] = steps[s].to;
        r->lambda = steps[s].gain;
    }
    r->lagr_bits = bits;
    r->lagr_loss = 0; /* summed again in item order: the same figure whatever the step order */
    for (int k = 0; k < n_items; k++) r->lagr_loss += items[k].loss[at[k]];
    free(idx), free(hull), free(steps);
    return SQ_OK;
}

/* ---- stage 2: the exact fill by dynamic programming over rounded sizes ---- */

/* The mix the table holds at rounded size c, into pick; its true size. */
static uint64_t backtrack(const sq_alloc_item *items, int n_items, const uint8_t *choice, size_t w, uint64_t u, uint64_t c,
                          int *pick) {
    uint64_t bits = 0;
    for (int k = n_items - 1; k >= 0; k--) {
        int j = choice[(size_t)k * w + c];
        pick[k] = j;
        bits += items[k].bits[j];
        c -= (items[k].bits[j] + u - 1) / u;
    }
    return bits;
}

sq_status sq_alloc_solve(const sq_alloc_item *items, int n_items, uint64_t budget, uint64_t tol, sq_alloc_result *r,
                         sq_err *err) {
    if (n_items < 1) return sq_err_set(err, SQ_EUSAGE, "allocator: no tensors to allocate");
    uint64_t lo = 0, hi = 0;
    for (int k = 0; k < n_items; k++) {
        if (items[k].n < 1 || items[k].n > 255)
            return sq_err_set(err, SQ_EUSAGE, "allocator: item %d has %d candidates (1..255)", k, items[k].n);
        uint64_t mn = UINT64_MAX, mx = 0;
        for (int j = 0; j < items[k].n; j++) {
            if (!(items[k].loss[j] >= 0) || !isfinite(items[k].loss[j]))
                return sq_err_set(err, SQ_EUSAGE, "allocator: item %d candidate %d has loss %g", k, j, items[k].loss[j]);
            if (items[k].bits[j] < mn) mn = items[k].bits[j];
            if (items[k].bits[j] > mx) mx = items[k].bits[j];
        }
        lo += mn;
        hi += mx;
    }
    if (lo > budget + tol)
        return sq_err_set(err, SQ_EUSAGE, "allocator: the cheapest mix takes %llu bits, over the budget %llu + %llu",
                          (unsigned long long)lo, (unsigned long long)budget, (unsigned long long)tol);
    if (hi + tol < budget)
        return sq_err_set(err, SQ_EUSAGE, "allocator: the dearest mix takes %llu bits, under the budget %llu - %llu",
                          (unsigned long long)hi, (unsigned long long)budget, (unsigned long long)tol);
    int *hull_pick = malloc((size_t)n_items * sizeof *hull_pick);
    if (!hull_pick) return sq_err_set(err, SQ_ENOMEM, "allocator: out of memory");
    sq_status st = lagrangian(items, n_items, budget, r, hull_pick, err);
    if (st) {
        free(hull_pick);
        return st;
    }
    /* size steps of tol / (16 n) bits, coarser only to keep the table within 2^26 entries */
    uint64_t u = tol / (16 * (uint64_t)n_items) ? tol / (16 * (uint64_t)n_items) : 1;
    while (((budget + tol) / u + (uint64_t)n_items + 1) * (uint64_t)n_items > (1ull << 26) && u < tol) u *= 2;
    const uint64_t cap = (budget + tol) / u + (uint64_t)n_items; /* rounded sizes 0..cap: every mix of true size <= budget + tol */
    if ((cap + 1) * (uint64_t)n_items > (1ull << 31)) {
        free(hull_pick);
        return sq_err_set(err, SQ_ENOMEM, "allocator: the table (%d tensors x %llu size steps) is too large; allow a wider tolerance",
                          n_items, (unsigned long long)cap + 1);
    }
    const size_t w = (size_t)cap + 1;
    double *dp = malloc(w * sizeof *dp), *nx = malloc(w * sizeof *nx);
    uint8_t *choice = malloc(w * (size_t)n_items);
    uint64_t *units = malloc(256 * sizeof *units);
    if (!dp || !nx || !choice || !units) {
        free(dp), free(nx), free(choice), free(units), free(hull_pick);
        return sq_err_set(err, SQ_ENOMEM, "allocator: out of memory for a %d x %zu table", n_items, w);
    }
    for (size_t c = 0; c < w; c++) dp[c] = INFINITY;
    dp[0] = 0;
    for (int k = 0; k < n_items; k++) {
        const sq_alloc_item *it = &items[k];
        uint8_t *ch = choice + (size_t)k * w;
        for (int j = 0; j < it->n; j++) units[j] = (it->bits[j] + u - 1) / u;
        for (size_t c = 0; c < w; c++) {
            double best = INFINITY;
            int bj = 0;
            for (int j = 0; j < it->n; j++) { /* strict <: the lower candidate index wins a tie */
                if (units[j] > c || dp[c - units[j]] == INFINITY) continue;
                double v = dp[c - units[j]] + it->loss[j];
                if (v < best) best = v, bj = j;
            }
            nx[c] = best;
            ch[c] = (uint8_t)bj;
        }
        double *t = dp;
        dp = nx;
        nx = t;
    }
    /* 1: the least loss with rounded size <= budget / u (so true size <= budget) */
    uint64_t best_c = UINT64_MAX;
    for (uint64_t c = 0; c <= budget / u && c < w; c++)
        if (dp[c] < INFINITY && (best_c == UINT64_MAX || dp[c] < dp[best_c])) best_c = c;
    r->widened = 0;
    if (best_c == UINT64_MAX || backtrack(items, n_items, choice, w, u, best_c, r->pick) + tol < budget) {
        /* 2: widened: the least loss among the table's mixes whose true size is within budget ± tol */
        r->widened = 1;
        best_c = UINT64_MAX;
        for (uint64_t c = budget > tol ? (budget - tol) / u : 0; c < w; c++) {
            if (dp[c] == INFINITY || (best_c != UINT64_MAX && !(dp[c] < dp[best_c]))) continue;
            uint64_t bits = backtrack(items, n_items, choice, w, u, c, r->pick);
            if (bits + tol >= budget && bits <= budget + tol) best_c = c;
        }
        if (best_c == UINT64_MAX) {
            free(dp), free(nx), free(choice), free(units), free(hull_pick);
            return sq_err_set(err, SQ_EUSAGE, "allocator: found no mix of the candidates within %llu bits of %llu",
                              (unsigned long long)tol, (unsigned long long)budget);
        }
    }
    r->bits = backtrack(items, n_items, choice, w, u, best_c, r->pick);
    r->loss = 0;
    for (int k = 0; k < n_items; k++) r->loss += items[k].loss[r->pick[k]];
    /* the rounding can cost the table a mix the hull holds: the hull's, when it fits and is better */
    r->from_hull = 0;
    if (!r->widened && r->lagr_bits <= budget && r->lagr_bits + tol >= budget && r->lagr_loss < r->loss) {
        memcpy(r->pick, hull_pick, (size_t)n_items * sizeof *hull_pick);
        r->bits = r->lagr_bits;
        r->loss = r->lagr_loss;
        r->from_hull = 1;
    }
    free(hull_pick);
    free(dp), free(nx), free(choice), free(units);
    return SQ_OK;
}
