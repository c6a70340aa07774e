/* An SVG plot of mean KL-divergence (log y axis) against bits per weight
 * for squish-bench --rd: series of labelled points, each with its own
 * colour and marker, optionally joined in order of bpw, and a legend.
 * The bytes depend only on the input (fixed number formats, no clock, no
 * locale: the C locale's "%.2f"), so equal runs give equal files. */
#ifndef SQUISH_RD_SVG_H
#define SQUISH_RD_SVG_H

#include <stddef.h>

#include "rd_points.h"

typedef struct rd_plot_series {
    const char *name; /* legend text */
    const rd_point *p;
    int n;
    int line; /* 1: join the points in order of bpw */
} rd_plot_series;

typedef struct rd_plot {
    const char *title, *subtitle, *xlabel;
    const rd_plot_series *s;
    int n;
    double x_lo, x_hi; /* the bpw axis; both 0: fitted to the points */
} rd_plot;

/* The document, in a malloc'd NUL-terminated buffer (*out, *len bytes).
 * Points outside the bpw axis or with a KL-divergence that a log axis
 * cannot show (0, not finite) are left out and counted in *dropped; a
 * point's label goes beside it where it overlaps no marker and no earlier
 * label (series in order: the first ones' labels win), else it is left
 * out and counted in *dropped_labels. SQ_EUSAGE when no point is left to
 * draw; SQ_ENOMEM. */
sq_status rd_svg_render(const rd_plot *pl, char **out, size_t *len, int *dropped, int *dropped_labels, sq_err *err);

#endif
