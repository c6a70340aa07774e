/* Small helpers over json-c for the readers (internal). */
#ifndef SQUISH_JSON_UTIL_H
#define SQUISH_JSON_UTIL_H

#include <json-c/json.h>
#include <stdint.h>

#include "squish/error.h"
#include "squish/fileio.h"

/* Parses JSON text that must be one complete object; errors name path. */
sq_status sq_json_parse_object(const char *path, const char *text, size_t len, json_object **out, sq_err *err);
/* Field getters: return 1 and set *v when the field exists with the right type. */
int sq_json_u32(json_object *o, const char *key, uint32_t *v);
int sq_json_f32(json_object *o, const char *key, float *v);
int sq_json_bool(json_object *o, const char *key, int *v);
const char *sq_json_str(json_object *o, const char *key);

#endif
