#include "common/json_util.h"
#include "squish/fileio.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

sq_status sq_read_file(const char *path, size_t max_bytes, char **out, size_t *len, sq_err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return sq_err_set(err, SQ_EIO, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 4096, n = 0;
    char *b = malloc(cap);
    while (b) {
        if (n + 1 >= cap) {
            if (cap > max_bytes) {
                free(b);
                fclose(f);
                return sq_err_set(err, SQ_ENOMEM, "%s: larger than the %zu-byte limit for this kind of file", path, max_bytes);
            }
            char *nb = realloc(b, cap * 2);
            if (!nb) { /* never hand back a silently truncated file */
                free(b);
                fclose(f);
                return sq_err_set(err, SQ_ENOMEM, "%s: out of memory", path);
            }
            b = nb;
            cap *= 2;
        }
        size_t k = fread(b + n, 1, cap - n - 1, f);
        n += k;
        if (k == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (!b) return sq_err_set(err, SQ_ENOMEM, "%s: out of memory", path);
    if (bad) {
        free(b);
        return sq_err_set(err, SQ_EIO, "%s: read failed", path);
    }
    if (n > max_bytes) {
        free(b);
        return sq_err_set(err, SQ_ENOMEM, "%s: larger than the %zu-byte limit for this kind of file", path, max_bytes);
    }
    b[n] = 0;
    *out = b;
    if (len) *len = n;
    return SQ_OK;
}

sq_status sq_json_parse_object(const char *path, const char *text, size_t len, json_object **out, sq_err *err) {
    json_tokener *tok = json_tokener_new_ex(64);
    if (!tok) return sq_err_set(err, SQ_ENOMEM, "%s: out of memory", path);
    json_object *o = json_tokener_parse_ex(tok, text, (int)len);
    enum json_tokener_error je = json_tokener_get_error(tok);
    size_t end = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    if (!o || je != json_tokener_success) {
        json_object_put(o);
        return sq_err_set(err, SQ_ECORRUPT, "%s: invalid JSON near byte %zu: %s", path, end,
                          je == json_tokener_continue ? "unexpected end of text" : json_tokener_error_desc(je));
    }
    while (end < len && (text[end] == ' ' || text[end] == '\n' || text[end] == '\r' || text[end] == '\t')) end++;
    if (end != len) {
        json_object_put(o);
        return sq_err_set(err, SQ_ECORRUPT, "%s: trailing data after the JSON value at byte %zu", path, end);
    }
    if (!json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        return sq_err_set(err, SQ_ECORRUPT, "%s: expected a JSON object at the top level", path);
    }
    *out = o;
    return SQ_OK;
}

int sq_json_u32(json_object *o, const char *key, uint32_t *v) {
    json_object *x;
    if (!json_object_object_get_ex(o, key, &x) || !json_object_is_type(x, json_type_int)) return 0;
    int64_t i = json_object_get_int64(x);
    if (i < 0 || i > UINT32_MAX) return 0;
    *v = (uint32_t)i;
    return 1;
}

int sq_json_f32(json_object *o, const char *key, float *v) {
    json_object *x;
    if (!json_object_object_get_ex(o, key, &x)) return 0;
    if (!json_object_is_type(x, json_type_double) && !json_object_is_type(x, json_type_int)) return 0;
    double d = json_object_get_double(x);
    if (!(d >= -3.0e38 && d <= 3.0e38)) return 0; /* out of float range (or NaN): treat as absent */
    *v = (float)d;
    return 1;
}

int sq_json_bool(json_object *o, const char *key, int *v) {
    json_object *x;
    if (!json_object_object_get_ex(o, key, &x) || !json_object_is_type(x, json_type_boolean)) return 0;
    *v = json_object_get_boolean(x);
    return 1;
}

const char *sq_json_str(json_object *o, const char *key) {
    json_object *x;
    if (!json_object_object_get_ex(o, key, &x) || !json_object_is_type(x, json_type_string)) return NULL;
    return json_object_get_string(x);
}
