#include "provenance.h"

#include <json-c/json.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "squish/model.h"

json_object *prov_command(const char *tool) {
    json_object *cl = json_object_new_array();
    json_object_array_add(cl, json_object_new_string(tool));
    return cl;
}

void prov_arg(json_object *cl, const char *option, const char *value) {
    json_object_array_add(cl, json_object_new_string(option));
    if (value) json_object_array_add(cl, json_object_new_string(value));
}

/* The name a path is known by: a directory by its resolved name (so ".",
 * "M/" and "../x/M" agree), a file by its own last component, not its
 * target's (a Hugging Face cache links model-00001-of-00002.safetensors to
 * blobs/<hash>; the link's name is the meaningful one). */
void prov_name(const char *path, char *out, size_t n) {
    struct stat st;
    const int is_dir = stat(path, &st) == 0 && S_ISDIR(st.st_mode);
    char *real = is_dir ? realpath(path, NULL) : NULL;
    const char *p = real ? real : path;
    size_t end = strlen(p);
    while (end > 1 && p[end - 1] == '/') end--; /* only when unresolved */
    size_t start = end;
    while (start > 0 && p[start - 1] != '/') start--;
    if (start == end) snprintf(out, n, "%.*s", (int)end, p); /* "/" */
    else snprintf(out, n, "%.*s", (int)(end - start), p + start);
    free(real);
}

void prov_number(double v, char *out, size_t n) {
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(out, n, "%.*g", prec, v);
        if (strtod(out, NULL) == v) return;
    }
}

json_object *prov_file(const char *path, sq_err *err) {
    char hex[65], name[256];
    struct stat st;
    if (sq_sha256_file(path, hex, err)) return NULL;
    if (stat(path, &st) != 0) st.st_size = 0;
    prov_name(path, name, sizeof name);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "name", json_object_new_string(name));
    json_object_object_add(o, "bytes", json_object_new_int64((int64_t)st.st_size));
    json_object_object_add(o, "sha256", json_object_new_string(hex));
    return o;
}
