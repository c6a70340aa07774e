/* Rate–distortion points (bits per weight, mean KL-divergence) read from a
 * JSON file of measured figures, for squish-bench --rd to draw beside its
 * own. Three layouts are accepted as they are:
 *  - an object of entries keyed by name (llama.cpp's figures:
 *    {"Q4_K_M": {"kld_mean": ..., "bpw_repeating_matrices": ..., ...}, ...});
 *  - the same under "types" (ik_llama.cpp's figures: {"what": ...,
 *    "types": {"IQ4_K": {...}}});
 *  - squish-bench --rd's own JSON ("points": [{"label": ..., ...}]).
 * An entry's bpw is "bpw_repeating_matrices" (over the blocks' linear
 * matrices) or, over all tensors, "bpw_all", else "bpw_computed_all_tensors";
 * entries without a number there or in "kld_mean" (an F32 base, a
 * cross-check) are skipped and counted. */
#ifndef SQUISH_RD_POINTS_H
#define SQUISH_RD_POINTS_H

#include "squish/error.h"

typedef struct rd_point {
    char *label;
    double bpw, kld;
} rd_point;

typedef struct rd_series {
    char *name;    /* the file's name without folders and ".json" */
    rd_point *p;   /* in the file's order */
    int n;
    int skipped;   /* entries without both figures */
} rd_series;

/* Reads path; over_all picks the bpw over all tensors instead of the
 * matrices. Errors name the file: SQ_EIO (unreadable), SQ_EUSAGE (not JSON,
 * not one of the layouts, no entry with both figures), SQ_ENOMEM. */
sq_status rd_points_read(const char *path, int over_all, rd_series *s, sq_err *err);
void rd_series_free(rd_series *s);

#endif
