/* Error statistics of a decoded tensor against its original. */
#ifndef SQUISH_STATS_H
#define SQUISH_STATS_H

#include <stdint.h>

typedef struct sq_errstats {
    uint64_t n;
    double sum_sq_err, sum_sq_ref, sum_sq_dec, dot, max_abs;
} sq_errstats;

void sq_errstats_add(sq_errstats *s, const float *ref, const float *dec, uint64_t n);
double sq_errstats_rmse(const sq_errstats *s);
double sq_errstats_cosine(const sq_errstats *s); /* 1 when both are all zero */
double sq_errstats_snr_db(const sq_errstats *s); /* +inf when exact */

#endif
