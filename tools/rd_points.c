/* Reading rate–distortion points from a JSON file (rd_points.h). */
#include "rd_points.h"

#include <json-c/json.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "squish/fileio.h"

/* A finite number under key, or NAN (absent, null, another type). */
static double number(json_object *o, const char *key) {
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v)) return NAN;
    if (!json_object_is_type(v, json_type_double) && !json_object_is_type(v, json_type_int)) return NAN;
    double d = json_object_get_double(v);
    return isfinite(d) ? d : NAN;
}

static double entry_bpw(json_object *o, int over_all) {
    if (!over_all) return number(o, "bpw_repeating_matrices");
    double b = number(o, "bpw_all");
    return isnan(b) ? number(o, "bpw_computed_all_tensors") : b;
}

/* Adds the entry o (named label) when it has both figures. */
static sq_status add_entry(rd_series *s, const char *label, json_object *o, int over_all, sq_err *err) {
    double bpw = json_object_is_type(o, json_type_object) ? entry_bpw(o, over_all) : NAN;
    double kld = json_object_is_type(o, json_type_object) ? number(o, "kld_mean") : NAN;
    if (!(bpw > 0) || !(kld >= 0) || !label) {
        s->skipped++;
        return SQ_OK;
    }
    rd_point *np = realloc(s->p, (size_t)(s->n + 1) * sizeof *np);
    if (!np) return sq_err_set(err, SQ_ENOMEM, "out of memory");
    s->p = np;
    if (!(np[s->n].label = strdup(label))) return sq_err_set(err, SQ_ENOMEM, "out of memory");
    np[s->n].bpw = bpw;
    np[s->n].kld = kld;
    s->n++;
    return SQ_OK;
}

static sq_status read_entries(rd_series *s, json_object *root, int over_all, sq_err *err) {
    json_object *c;
    sq_status st = SQ_OK;
    if (json_object_object_get_ex(root, "points", &c) && json_object_is_type(c, json_type_array)) { /* squish-bench --rd */
        for (size_t i = 0; i < json_object_array_length(c) && !st; i++) {
            json_object *e = json_object_array_get_idx(c, i), *l;
            const char *label = json_object_is_type(e, json_type_object) && json_object_object_get_ex(e, "label", &l) &&
                                        json_object_is_type(l, json_type_string) ? json_object_get_string(l) : NULL;
            st = add_entry(s, label, e, over_all, err);
        }
        return st;
    }
    if (!(json_object_object_get_ex(root, "types", &c) && json_object_is_type(c, json_type_object))) c = root; /* ik_llama.cpp */
    json_object_object_foreach(c, key, val) { /* json-c keeps the file's order */
        if (!st) st = add_entry(s, key, val, over_all, err);
    }
    return st;
}

sq_status rd_points_read(const char *path, int over_all, rd_series *s, sq_err *err) {
    memset(s, 0, sizeof *s);
    char *text = NULL;
    size_t len = 0;
    sq_status st = sq_read_file(path, (size_t)64 << 20, &text, &len, err);
    if (st) return st;
    enum json_tokener_error je = json_tokener_success;
    json_object *root = strlen(text) == len ? json_tokener_parse_verbose(text, &je) : NULL;
    free(text);
    if (!root) {
        return sq_err_set(err, SQ_EUSAGE, "%s: not valid JSON (%s)", path,
                          je == json_tokener_success ? "a NUL byte in the text" : json_tokener_error_desc(je));
    }
    if (!json_object_is_type(root, json_type_object)) {
        json_object_put(root);
        return sq_err_set(err, SQ_EUSAGE, "%s: expected a JSON object of entries (name: {\"kld_mean\": ..., \"bpw_...\": ...})", path);
    }
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t bl = strlen(base);
    if (bl > 5 && !strcmp(base + bl - 5, ".json")) bl -= 5;
    if (!(s->name = strndup(base, bl))) st = sq_err_set(err, SQ_ENOMEM, "out of memory");
    if (!st) st = read_entries(s, root, over_all, err);
    json_object_put(root);
    if (!st && !s->n)
        st = sq_err_set(err, SQ_EUSAGE, "%s: no entry has a number in both \"kld_mean\" and %s (%d entr%s skipped)", path,
                        over_all ? "\"bpw_all\" or \"bpw_computed_all_tensors\"" : "\"bpw_repeating_matrices\"", s->skipped,
                        s->skipped == 1 ? "y" : "ies");
    if (st) rd_series_free(s);
    return st;
}

void rd_series_free(rd_series *s) {
    for (int i = 0; i < s->n; i++) free(s->p[i].label);
    free(s->p);
    free(s->name);
    memset(s, 0, sizeof *s);
}
