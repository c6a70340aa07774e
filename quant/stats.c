#include "stats.h"

#include <math.h>

void sq_errstats_add(sq_errstats *s, const float *ref, const float *dec, uint64_t n) {
    for (uint64_t i = 0; i < n; i++) {
        double r = ref[i], d = dec[i], e = d - r;
        s->sum_sq_err += e * e;
        s->sum_sq_ref += r * r;
        s->sum_sq_dec += d * d;
        s->dot += r * d;
        if (fabs(e) > s->max_abs) s->max_abs = fabs(e);
    }
    s->n += n;
}

double sq_errstats_rmse(const sq_errstats *s) { return s->n ? sqrt(s->sum_sq_err / (double)s->n) : 0.0; }

double sq_errstats_cosine(const sq_errstats *s) {
    if (s->sum_sq_ref == 0 && s->sum_sq_dec == 0) return 1.0;
    if (s->sum_sq_ref == 0 || s->sum_sq_dec == 0) return 0.0;
    return s->dot / sqrt(s->sum_sq_ref * s->sum_sq_dec);
}

double sq_errstats_snr_db(const sq_errstats *s) {
    if (s->sum_sq_err == 0) return INFINITY;
    if (s->sum_sq_ref == 0) return -INFINITY;
    return 10.0 * log10(s->sum_sq_ref / s->sum_sq_err);
}
