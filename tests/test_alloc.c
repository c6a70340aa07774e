/* The target-bpw allocator's solver (quant/alloc.c), against brute force:
 * random tables small enough to enumerate every mix. Expected values are
 * computed here by enumeration, not by the code under test. */
#include <math.h>

#include "alloc.h"
#include "alloc_probe.h"
#include "testutil.h"

#define NI 6
#define NK 4

typedef struct table {
    uint64_t bits[NI][NK];
    double loss[NI][NK];
    sq_alloc_item items[NI];
} table;

/* Loss falls with size, as real candidates' do, with noise that puts some
 * candidates off the convex hull (and some dominated). */
static void random_table(table *t) {
    for (int i = 0; i < NI; i++) {
        uint64_t w = 1000 + (uint64_t)(urand() * 4000); /* the tensor's weights */
        for (int j = 0; j < NK; j++) {
            double bpw = 2 + j * 1.5 + urand();
            t->bits[i][j] = (uint64_t)(bpw * (double)w);
            t->loss[i][j] = (1 + urand()) * pow(2.0, -2 * bpw) * (0.5 + urand());
        }
        t->items[i] = (sq_alloc_item){NK, t->bits[i], t->loss[i]};
    }
}

/* The least loss over every mix whose rounded size (units of u, rounded up,
 * as the solver's table counts) fits cap; and the least over mixes whose
 * true size is <= hi and >= lo. */
static double brute(const table *t, uint64_t u, uint64_t cap, uint64_t lo, uint64_t hi, double *best_true) {
    double best = INFINITY;
    *best_true = INFINITY;
    int pick[NI] = {0};
    for (;;) {
        uint64_t units = 0, bits = 0;
        double loss = 0;
        for (int i = 0; i < NI; i++) {
            units += (t->bits[i][pick[i]] + u - 1) / u;
            bits += t->bits[i][pick[i]];
            loss += t->loss[i][pick[i]];
        }
        if (units <= cap && loss < best) best = loss;
        if (bits >= lo && bits <= hi && loss < *best_true) *best_true = loss;
        int i = 0;
        while (i < NI && ++pick[i] == NK) pick[i++] = 0;
        if (i == NI) break;
    }
    return best;
}

START_TEST(solver_is_exact_against_brute_force) {
    for (int trial = 0; trial < 60; trial++) {
        table t;
        random_table(&t);
        uint64_t lo = 0, hi = 0, n = 0;
        for (int i = 0; i < NI; i++) {
            lo += t.bits[i][0] < t.bits[i][NK - 1] ? t.bits[i][0] : t.bits[i][NK - 1];
            hi += t.bits[i][NK - 1];
            n += t.bits[i][0] / 3; /* roughly the weights */
        }
        /* a tolerance wide enough that some mix always lands within it (4096 mixes over the range) */
        uint64_t tol = (hi - lo) / 40 > n / 50 ? (hi - lo) / 40 : n / 50;
        uint64_t budget = lo + (uint64_t)((double)(hi - lo) * (0.1 + 0.8 * urand()));
        int pick[NI];
        sq_alloc_result r = {.pick = pick};
        sq_err err;
        ck_assert_int_eq(sq_alloc_solve(t.items, NI, budget, tol, &r, &err), SQ_OK);
        uint64_t bits = 0;
        double loss = 0;
        for (int i = 0; i < NI; i++) {
            ck_assert(pick[i] >= 0 && pick[i] < NK);
            bits += t.bits[i][pick[i]];
            loss += t.loss[i][pick[i]];
        }
        ck_assert_uint_eq(bits, r.bits);
        ck_assert(fabs(loss - r.loss) <= 1e-12 * loss);
        uint64_t u = tol / (16 * NI) ? tol / (16 * NI) : 1;
        double true_best;
        double table_best = brute(&t, u, budget / u, budget - tol, budget, &true_best);
        if (!r.widened) {
            ck_assert_uint_le(bits, budget);
            ck_assert_uint_ge(bits + tol, budget);
            /* exact on its table, and never worse than the true optimum by more than
             * mixes within n u = tol/2 of the budget could give */
            double want = r.lagr_bits + tol >= budget && r.lagr_loss < table_best ? r.lagr_loss : table_best;
            ck_assert(fabs(r.loss - want) <= 1e-12 * want);
            ck_assert_int_eq(r.from_hull, want < table_best);
            double slack;
            double below = brute(&t, 1, budget - tol / 16, 0, 0, &slack);
            ck_assert(r.loss <= below * (1 + 1e-12));
        } else {
            ck_assert_uint_le(bits, budget + tol);
            ck_assert_uint_ge(bits + tol, budget);
        }
        (void)true_best;
        /* the Lagrangian hull solution fits the budget and is no better than the exact one
         * whenever its rounded size fits the table too */
        ck_assert_uint_le(r.lagr_bits, budget);
    }
}
END_TEST

START_TEST(larger_budget_never_more_loss) {
    for (int trial = 0; trial < 20; trial++) {
        table t;
        random_table(&t);
        uint64_t lo = 0, hi = 0;
        for (int i = 0; i < NI; i++) lo += t.bits[i][0], hi += t.bits[i][NK - 1];
        double prev = INFINITY, prev_lagr = INFINITY;
        uint64_t tol = (hi - lo) / 40;
        for (uint64_t b = lo + tol; b + tol <= hi; b += (hi - lo) / 25) {
            int pick[NI];
            sq_alloc_result r = {.pick = pick};
            ck_assert_int_eq(sq_alloc_solve(t.items, NI, b, tol, &r, NULL), SQ_OK);
            if (!r.widened) {
                ck_assert_msg(r.loss <= prev, "budget %llu: loss %g after %g", (unsigned long long)b, r.loss, prev);
                prev = r.loss;
            }
            ck_assert(r.lagr_loss <= prev_lagr);
            prev_lagr = r.lagr_loss;
        }
    }
}
END_TEST

START_TEST(ties_go_to_the_lower_index) {
    uint64_t bits[3] = {100, 100, 200};
    double loss[3] = {1, 1, 0.5};
    sq_alloc_item it[2] = {{3, bits, loss}, {3, bits, loss}};
    int pick[2];
    sq_alloc_result r = {.pick = pick};
    ck_assert_int_eq(sq_alloc_solve(it, 2, 200, 10, &r, NULL), SQ_OK);
    ck_assert_int_eq(pick[0], 0); /* 0 and 1 tie: 0 */
    ck_assert_int_eq(pick[1], 0);
    ck_assert_int_eq(sq_alloc_solve(it, 2, 300, 10, &r, NULL), SQ_OK);
    ck_assert_uint_eq(r.bits, 300); /* one upgrade fits: the first item takes it */
    ck_assert_int_eq(pick[0], 2);
    ck_assert_int_eq(pick[1], 0);
    ck_assert(fabs(r.loss - 1.5) < 1e-15);
}
END_TEST

START_TEST(refusals_name_the_bound) {
    uint64_t bits[2] = {1000, 4000};
    double loss[2] = {1, 0.1};
    sq_alloc_item it[1] = {{2, bits, loss}};
    int pick[1];
    sq_alloc_result r = {.pick = pick};
    sq_err err = {0};
    ck_assert_int_eq(sq_alloc_solve(it, 1, 900, 20, &r, &err), SQ_EUSAGE); /* below the cheapest */
    ck_assert_ptr_nonnull(strstr(err.msg, "cheapest"));
    ck_assert_int_eq(sq_alloc_solve(it, 1, 5000, 20, &r, &err), SQ_EUSAGE); /* above the dearest */
    ck_assert_ptr_nonnull(strstr(err.msg, "dearest"));
    ck_assert_int_eq(sq_alloc_solve(it, 1, 2500, 20, &r, &err), SQ_EUSAGE); /* no mix within 20 bits of 2500 */
    ck_assert_int_eq(sq_alloc_solve(it, 1, 1010, 20, &r, &err), SQ_OK);
    ck_assert_int_eq(pick[0], 0);
    double bad[2] = {1, NAN};
    sq_alloc_item nan_item[1] = {{2, bits, bad}};
    ck_assert_int_eq(sq_alloc_solve(nan_item, 1, 1010, 20, &r, &err), SQ_EUSAGE);
}
END_TEST

/* An entry of n candidates with these bits and proxy losses. */
static sq_alloc_entry entry(int n, const uint64_t *bits, const double *loss) {
    sq_alloc_entry e;
    memset(&e, 0, sizeof e);
    e.n = n;
    for (int j = 0; j < n; j++) e.bits[j] = bits[j], e.loss[j] = loss[j], e.kld[j] = -1;
    return e;
}

START_TEST(probe_points_cheapest_and_median) {
    /* bits out of order: sorted they are j = 3 (100), 1 (200), 4 (300), 0 (400), 2 (500); median = the 2nd (0-based) = j 4 */
    uint64_t bits[5] = {400, 200, 500, 100, 300};
    double loss[5] = {0.1, 0.3, 0.05, 0.5, 0.2};
    sq_alloc_entry e = entry(5, bits, loss);
    int pts[2];
    ck_assert_int_eq(sq_alloc_probe_points(&e, pts), 2);
    ck_assert_int_eq(pts[0], 3);
    ck_assert_int_eq(pts[1], 4);
    e.n = 2; /* two candidates: one probe, the cheaper (j 1) */
    ck_assert_int_eq(sq_alloc_probe_points(&e, pts), 1);
    ck_assert_int_eq(pts[0], 1);
    uint64_t same[3] = {7, 7, 7}; /* equal bits: the candidate order decides */
    sq_alloc_entry f = entry(3, same, loss);
    ck_assert_int_eq(sq_alloc_probe_points(&f, pts), 2);
    ck_assert_int_eq(pts[0], 0);
    ck_assert_int_eq(pts[1], 1);
}
END_TEST

START_TEST(probe_fit_power_law_through_the_probes) {
    uint64_t bits[4] = {100, 200, 300, 400};
    double loss[4] = {0.5, 0.125, 0.03125, 0.0}; /* powers of 2: the log distances below are exact */
    sq_alloc_entry e = entry(4, bits, loss);
    sq_alloc_probe_fit(&e); /* no probes: the proxy */
    for (int j = 0; j < 4; j++) ck_assert(e.pred[j] == loss[j]);
    /* probes at j 0 (cheapest) and j 2 (median of 4): K = 2 x^1.5 through both */
    e.kld[0] = 2 * pow(0.5, 1.5), e.kld[2] = 2 * pow(0.03125, 1.5);
    sq_alloc_probe_fit(&e);
    ck_assert(e.pred[0] == e.kld[0] && e.pred[2] == e.kld[2]); /* the measurements themselves */
    ck_assert_double_eq_tol(e.pred[1], 2 * pow(0.125, 1.5), 1e-12);
    ck_assert(e.pred[3] == 0); /* a lossless candidate */
    /* a slope beyond the clamp: beta = 4 measured, 2 used, anchored at the nearer probe (x = 0.125 is log 4
     * from both probes: a tie goes to the cheapest) */
    e.kld[0] = pow(0.5, 4), e.kld[2] = pow(0.03125, 4);
    sq_alloc_probe_fit(&e);
    ck_assert_double_eq_tol(e.pred[1], pow(0.5, 4) * pow(0.125 / 0.5, 2), 1e-15);
    /* one probe (the median unmeasured): linear in the proxy */
    e.kld[2] = -1, e.kld[0] = 0.8;
    sq_alloc_probe_fit(&e);
    ck_assert_double_eq_tol(e.pred[1], 0.8 * 0.125 / 0.5, 1e-12);
    ck_assert_double_eq_tol(e.pred[2], 0.8 * 0.03125 / 0.5, 1e-12);
    /* a probe measured as no loss at all: floored, so the law still holds */
    e.kld[0] = 0;
    sq_alloc_probe_fit(&e);
    ck_assert(e.pred[0] == SQ_ALLOC_PROBE_FLOOR);
    ck_assert(e.pred[1] > 0 && e.pred[1] < SQ_ALLOC_PROBE_FLOOR);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("alloc");
    TCase *tc = tcase_create("solver");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, solver_is_exact_against_brute_force);
    tcase_add_test(tc, larger_budget_never_more_loss);
    tcase_add_test(tc, ties_go_to_the_lower_index);
    tcase_add_test(tc, refusals_name_the_bound);
    tcase_add_test(tc, probe_points_cheapest_and_median);
    tcase_add_test(tc, probe_fit_power_law_through_the_probes);
    suite_add_tcase(s, tc);
    return s;
}
RUN_SUITE(suite())
