/* The rate–distortion plot as SVG (rd_svg.h). */
#include "rd_svg.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- a growing text buffer ---- */

typedef struct sbuf {
    char *b;
    size_t len, cap;
    int oom;
} sbuf;

static void sb_printf(sbuf *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *s, const char *fmt, ...) {
    if (s->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(s->b ? s->b + s->len : NULL, s->b ? s->cap - s->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) { s->oom = 1; return; }
        if (s->b && s->len + (size_t)n < s->cap) { s->len += (size_t)n; return; }
        size_t cap = s->cap ? s->cap : 4096;
        while (cap <= s->len + (size_t)n) cap *= 2;
        char *nb = realloc(s->b, cap);
        if (!nb) { s->oom = 1; return; }
        s->b = nb;
        s->cap = cap;
    }
}

/* Text with XML's five special characters escaped; control characters
 * (not allowed in XML 1.0) dropped. */
static void sb_text(sbuf *s, const char *t) {
    for (; *t; t++) {
        switch (*t) {
        case '&': sb_printf(s, "&amp;"); break;
        case '<': sb_printf(s, "&lt;"); break;
        case '>': sb_printf(s, "&gt;"); break;
        case '"': sb_printf(s, "&quot;"); break;
        case '\'': sb_printf(s, "&apos;"); break;
        default:
            if ((unsigned char)*t >= 0x20 || *t == '\t') sb_printf(s, "%c", *t);
        }
    }
}

/* A coordinate with two decimals; never "-0.00". */
static const char *num(char *buf, double v) {
    snprintf(buf, 24, "%.2f", v);
    if (!strcmp(buf, "-0.00")) strcpy(buf, "0.00");
    return buf;
}

/* ---- layout (pixels) ---- */

enum { W = 860, H = 560, X0 = 78, X1 = 620, Y0 = 62, Y1 = 486, LEGEND_X = 640 };
static const char *const colours[] = {"#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"};
#define N_COLOURS (int)(sizeof colours / sizeof colours[0])

typedef struct axes {
    double x_lo, x_hi, x_step;
    int d_lo, d_hi; /* decades of the KL-divergence axis */
} axes;

static double px(const axes *a, double bpw) { return X0 + (bpw - a->x_lo) / (a->x_hi - a->x_lo) * (X1 - X0); }
static double py(const axes *a, double kld) { return Y1 - (log10(kld) - a->d_lo) / (a->d_hi - a->d_lo) * (Y1 - Y0); }

static int drawable(const rd_plot *pl, const rd_point *p) {
    int in_x = !(pl->x_lo || pl->x_hi) || (p->bpw >= pl->x_lo && p->bpw <= pl->x_hi);
    return in_x && p->kld > 0 && isfinite(p->kld) && isfinite(p->bpw);
}

/* A tick step giving at most 12 ticks over span. */
static double tick_step(double span) {
    static const double steps[] = {0.05, 0.1, 0.2, 0.25, 0.5, 1, 2, 5, 10, 20, 50};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++)
        if (span / steps[i] <= 12) return steps[i];
    return 100;
}

/* Marker of series k centred at (x, y): circle, square, triangle, diamond, inverted triangle. */
static void marker(sbuf *s, int k, double x, double y, const char *col) {
    char a[24], b[24], c[24], d[24], e[24], f[24], g[24], h[24];
    switch (k % 5) {
    case 0: sb_printf(s, "<circle cx=\"%s\" cy=\"%s\" r=\"4\" fill=\"%s\"/>\n", num(a, x), num(b, y), col); break;
    case 1:
        sb_printf(s, "<rect x=\"%s\" y=\"%s\" width=\"7\" height=\"7\" fill=\"%s\"/>\n", num(a, x - 3.5), num(b, y - 3.5), col);
        break;
    case 2:
        sb_printf(s, "<path d=\"M%s %sL%s %sL%s %sZ\" fill=\"%s\"/>\n", num(a, x), num(b, y - 4.5), num(c, x + 4.5), num(d, y + 3.5),
                  num(e, x - 4.5), num(f, y + 3.5), col);
        break;
    case 3:
        sb_printf(s, "<path d=\"M%s %sL%s %sL%s %sL%s %sZ\" fill=\"%s\"/>\n", num(a, x), num(b, y - 5), num(c, x + 4.5), num(d, y),
                  num(e, x), num(f, y + 5), num(g, x - 4.5), num(h, y), col);
        break;
    default:
        sb_printf(s, "<path d=\"M%s %sL%s %sL%s %sZ\" fill=\"%s\"/>\n", num(a, x), num(b, y + 4.5), num(c, x + 4.5), num(d, y - 3.5),
                  num(e, x - 4.5), num(f, y - 3.5), col);
    }
}

/* The frame: title, grid, ticks and axis labels. */
static void frame(sbuf *s, const rd_plot *pl, const axes *a) {
    char n1[24], n2[24];
    sb_printf(s, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                 "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
                 "font-family=\"DejaVu Sans, Arial, sans-serif\">\n"
                 "<rect width=\"%d\" height=\"%d\" fill=\"#ffffff\"/>\n",
              W, H, W, H, W, H);
    sb_printf(s, "<text x=\"%d\" y=\"26\" font-size=\"16\" font-weight=\"bold\">", X0);
    sb_text(s, pl->title ? pl->title : "");
    sb_printf(s, "</text>\n<text x=\"%d\" y=\"45\" font-size=\"11\" fill=\"#444444\">", X0);
    sb_text(s, pl->subtitle ? pl->subtitle : "");
    sb_printf(s, "</text>\n<g stroke-width=\"1\">\n");
    /* decades (darker) and their 2..9 multiples on y */
    for (int d = a->d_lo; d <= a->d_hi; d++)
        for (int m = 1; m <= 9 && (m == 1 || d < a->d_hi); m++) {
            double y = Y1 - ((d - a->d_lo) + log10((double)m)) / (a->d_hi - a->d_lo) * (Y1 - Y0);
            sb_printf(s, "<line x1=\"%d\" y1=\"%s\" x2=\"%d\" y2=\"%s\" stroke=\"%s\"/>\n", X0, num(n1, y), X1, num(n2, y),
                      m == 1 ? "#bbbbbb" : "#eeeeee");
        }
    /* x ticks at whole multiples of the step (from integers: no accumulated rounding) */
    long k_lo = lround(ceil(a->x_lo / a->x_step - 1e-9)), k_hi = lround(floor(a->x_hi / a->x_step + 1e-9));
    for (long k = k_lo; k <= k_hi; k++) {
        double x = px(a, (double)k * a->x_step);
        sb_printf(s, "<line x1=\"%s\" y1=\"%d\" x2=\"%s\" y2=\"%d\" stroke=\"#dddddd\"/>\n", num(n1, x), Y0, num(n2, x), Y1);
    }
    sb_printf(s, "</g>\n<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#000000\"/>\n", X0, Y0, X1 - X0,
              Y1 - Y0);
    int decimals = a->x_step >= 1 ? 0 : (a->x_step == 0.25 || a->x_step == 0.05) ? 2 : 1;
    sb_printf(s, "<g font-size=\"11\" text-anchor=\"middle\">\n");
    for (long k = k_lo; k <= k_hi; k++)
        sb_printf(s, "<text x=\"%s\" y=\"%d\">%.*f</text>\n", num(n1, px(a, (double)k * a->x_step)), Y1 + 16, decimals,
                  (double)k * a->x_step);
    sb_printf(s, "</g>\n<g font-size=\"11\" text-anchor=\"end\">\n");
    for (int d = a->d_lo; d <= a->d_hi; d++) {
        char lab[24];
        if (d >= 0 && d <= 6) snprintf(lab, sizeof lab, "%.0f", pow(10, d));
        else if (d < 0 && d >= -6) snprintf(lab, sizeof lab, "%.*f", -d, pow(10, d));
        else snprintf(lab, sizeof lab, "1e%d", d);
        sb_printf(s, "<text x=\"%d\" y=\"%s\">%s</text>\n", X0 - 6,
                  num(n1, Y1 - (double)(d - a->d_lo) / (a->d_hi - a->d_lo) * (Y1 - Y0) + 4), lab);
    }
    sb_printf(s, "</g>\n<text x=\"%d\" y=\"%d\" font-size=\"12\" text-anchor=\"middle\">", (X0 + X1) / 2, H - 34);
    sb_text(s, pl->xlabel ? pl->xlabel : "bits per weight");
    sb_printf(s, "</text>\n<text transform=\"translate(24 %d) rotate(-90)\" font-size=\"12\" text-anchor=\"middle\">"
                 "mean KL-divergence to the reference (log scale)</text>\n",
              (Y0 + Y1) / 2);
}

/* Places labels where they overlap no marker and no earlier label:
 * right of the point, else below right, left, below left, above, below; a label that
 * fits nowhere is left out (the table has every point). Widths are an
 * estimate for a 9 px sans-serif font. */
typedef struct box {
    double x0, y0, x1, y1;
} box;
typedef struct placer {
    box *b;
    int n, cap, left_out;
} placer;

static int place_add(placer *pc, box b) {
    if (pc->n == pc->cap) {
        int cap = pc->cap ? 2 * pc->cap : 64;
        box *nb = realloc(pc->b, (size_t)cap * sizeof *nb);
        if (!nb) return -1;
        pc->b = nb, pc->cap = cap;
    }
    pc->b[pc->n++] = b;
    return 0;
}

static int place_free(const placer *pc, box b) {
    if (b.x0 < X0 || b.x1 > LEGEND_X - 4 || b.y0 < Y0 || b.y1 > Y1) return 0;
    for (int i = 0; i < pc->n; i++)
        if (b.x0 < pc->b[i].x1 && pc->b[i].x0 < b.x1 && b.y0 < pc->b[i].y1 && pc->b[i].y0 < b.y1) return 0;
    return 1;
}

/* The label's baseline origin and anchor for point (x, y), or 0 when none is free. */
static int place_label(placer *pc, const char *text, double x, double y, double *tx, double *ty, int *end) {
    double w = 5.4 * (double)strlen(text) + 1;
    /* right, below right, left, below left (anchored at the end), above, below (anchored in the middle) */
    static const double dx[6] = {6, 6, -6, -6, 0, 0}, dy[6] = {-4, 11, -4, 11, -8, 16};
    for (int k = 0; k < 6; k++) {
        double bx = x + dx[k], by = y + dy[k];
        double l = k < 2 ? bx : k < 4 ? bx - w : bx - w / 2;
        box b = {l, by - 8, l + w, by + 2};
        if (place_free(pc, b)) {
            if (place_add(pc, b)) return -1;
            *tx = bx, *ty = by, *end = k < 2 ? 0 : k < 4 ? 1 : 2;
            return 1;
        }
    }
    pc->left_out++;
    return 0;
}

/* The drawable points of series i in order of bpw (stable: the input's order breaks ties); their count. */
static int sorted_points(const rd_plot *pl, int i, int *ord) {
    const rd_plot_series *se = &pl->s[i];
    int m = 0;
    for (int j = 0; j < se->n; j++)
        if (drawable(pl, &se->p[j])) ord[m++] = j;
    for (int x = 1; x < m; x++)
        for (int y = x; y > 0 && se->p[ord[y]].bpw < se->p[ord[y - 1]].bpw; y--) {
            int t = ord[y];
            ord[y] = ord[y - 1], ord[y - 1] = t;
        }
    return m;
}

/* Series i: its line under its markers under its labels, and its legend row. */
static void series(sbuf *s, const axes *a, const rd_plot *pl, int i, int *ord, int *row, placer *pc) {
    const rd_plot_series *se = &pl->s[i];
    const char *col = colours[i % N_COLOURS];
    char n1[24], n2[24];
    int m = sorted_points(pl, i, ord);
    if (!m) return;
    sb_printf(s, "<g>\n");
    if (se->line && m > 1) {
        sb_printf(s, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" points=\"", col);
        for (int j = 0; j < m; j++)
            sb_printf(s, "%s%s,%s", j ? " " : "", num(n1, px(a, se->p[ord[j]].bpw)), num(n2, py(a, se->p[ord[j]].kld)));
        sb_printf(s, "\"/>\n");
    }
    for (int j = 0; j < m; j++) marker(s, i, px(a, se->p[ord[j]].bpw), py(a, se->p[ord[j]].kld), col);
    sb_printf(s, "<g font-size=\"9\" fill=\"%s\">\n", col);
    for (int j = 0; j < m; j++) {
        double tx, ty;
        int end, r = place_label(pc, se->p[ord[j]].label, px(a, se->p[ord[j]].bpw), py(a, se->p[ord[j]].kld), &tx, &ty, &end);
        if (r < 0) s->oom = 1;
        if (r <= 0) continue;
        sb_printf(s, "<text x=\"%s\" y=\"%s\"%s>", num(n1, tx), num(n2, ty), end == 1 ? " text-anchor=\"end\"" : end == 2 ? " text-anchor=\"middle\"" : "");
        sb_text(s, se->p[ord[j]].label);
        sb_printf(s, "</text>\n");
    }
    double ly = Y0 + 10 + 20.0 * (*row)++;
    sb_printf(s, "</g>\n");
    marker(s, i, LEGEND_X + 6, ly, col);
    sb_printf(s, "<text x=\"%d\" y=\"%s\" font-size=\"11\">", LEGEND_X + 16, num(n1, ly + 4));
    sb_text(s, se->name);
    sb_printf(s, "</text>\n</g>\n");
}

sq_status rd_svg_render(const rd_plot *pl, char **out, size_t *len, int *dropped, int *dropped_labels, sq_err *err) {
    *out = NULL;
    *dropped_labels = 0;
    *len = 0;
    *dropped = 0;
    double bmin = INFINITY, bmax = -INFINITY, kmin = INFINITY, kmax = -INFINITY;
    int most = 1;
    for (int i = 0; i < pl->n; i++) {
        if (pl->s[i].n > most) most = pl->s[i].n;
        for (int j = 0; j < pl->s[i].n; j++) {
            const rd_point *p = &pl->s[i].p[j];
            if (!drawable(pl, p)) { ++*dropped; continue; }
            bmin = fmin(bmin, p->bpw), bmax = fmax(bmax, p->bpw);
            kmin = fmin(kmin, p->kld), kmax = fmax(kmax, p->kld);
        }
    }
    if (!isfinite(bmin))
        return sq_err_set(err, SQ_EUSAGE, "the plot has no point to draw (each KL-divergence is 0 or its bpw outside the range)");
    axes a;
    if (pl->x_lo || pl->x_hi) {
        a.x_lo = pl->x_lo, a.x_hi = pl->x_hi;
        a.x_step = tick_step(a.x_hi - a.x_lo);
    } else {
        if (bmax - bmin < 0.5) bmin -= 0.25, bmax += 0.25;
        a.x_step = tick_step(bmax - bmin);
        a.x_lo = floor(bmin / a.x_step) * a.x_step;
        a.x_hi = ceil(bmax / a.x_step) * a.x_step;
    }
    a.d_lo = (int)floor(log10(kmin));
    a.d_hi = (int)ceil(log10(kmax));
    if (a.d_hi <= a.d_lo) a.d_hi = a.d_lo + 1;

    sbuf s = {0};
    int *ord = malloc((size_t)most * sizeof *ord), row = 0;
    if (!ord) s.oom = 1;
    placer pc = {0};
    frame(&s, pl, &a);
    for (int i = 0; i < pl->n && !s.oom; i++) { /* every marker is an obstacle for every label */
        int m = sorted_points(pl, i, ord);
        for (int j = 0; j < m && !s.oom; j++) {
            double x = px(&a, pl->s[i].p[ord[j]].bpw), y = py(&a, pl->s[i].p[ord[j]].kld);
            if (place_add(&pc, (box){x - 4.5, y - 5, x + 4.5, y + 5})) s.oom = 1;
        }
    }
    /* labels are placed in series order (the first series' win) but the series are drawn
     * in reverse, so that the first ones' markers lie on top */
    sbuf *parts = calloc((size_t)(pl->n ? pl->n : 1), sizeof *parts);
    if (!parts) s.oom = 1;
    for (int i = 0; i < pl->n && !s.oom; i++) {
        series(&parts[i], &a, pl, i, ord, &row, &pc);
        s.oom |= parts[i].oom;
    }
    for (int i = pl->n - 1; i >= 0 && parts; i--) {
        if (parts[i].b && !s.oom) sb_printf(&s, "%s", parts[i].b);
        free(parts[i].b);
    }
    free(parts);
    free(pc.b);
    *dropped_labels = pc.left_out;
    sb_printf(&s, "</svg>\n");
    free(ord);
    if (s.oom) {
        free(s.b);
        return sq_err_set(err, SQ_ENOMEM, "out of memory for the plot");
    }
    *out = s.b;
    *len = s.len;
    return SQ_OK;
}
