#include "rtn.h"

#include <math.h>

sq_status sq_check_finite(const char *name, const float *w, uint64_t n, sq_err *err) {
    for (uint64_t i = 0; i < n; i++)
        if (!isfinite(w[i]))
            return sq_err_set(err, SQ_ECORRUPT, "%s: element %llu is %s; refusing to quantize non-finite weights", name,
                              (unsigned long long)i, isnan(w[i]) ? "NaN" : "infinite");
    return SQ_OK;
}

sq_status sq_rtn_quantize(const char *name, const sq_codec *c, const uint32_t params[SQ_NPARAMS], const float *w,
                          uint64_t rows, uint64_t cols, int n_threads, sq_encoded *out, sq_err *err) {
    sq_status s = sq_check_finite(name, w, rows * cols, err);
    if (s) return s;
    return sq_encode(c, params, w, rows, cols, n_threads, out, err);
}
