/* Shared descriptions of .squizd contents for squish-inspect and
 * squish-verify: flag names, shapes, per-tensor sizes and JSON forms. */
#ifndef SQUISH_DESCRIBE_H
#define SQUISH_DESCRIBE_H

#include <json-c/json.h>
#include <stddef.h>

#include "squish/codec.h"
#include "squish/container.h"

/* Space-separated names of the set flag bits ("INT4 FLOAT"). */
void describe_flags(uint64_t flags, char *out, size_t n);
void describe_shape(const uint64_t *dims, uint32_t ndim, char *out, size_t n);
/* Scheme text of a tensor, or "codec#ID" when the codec is unknown. */
void describe_scheme(const sq_tensor *t, char *out, size_t n);
uint64_t tensor_elems(const sq_tensor *t);
uint64_t tensor_raw_bytes(const sq_tensor *t);
uint64_t tensor_stored_bytes(const sq_tensor *t);
/* 1 if every part's checksum matches, 0 if not. */
int tensor_checksums_ok(const sq_file *f, const sq_tensor *t);
json_object *describe_header_json(const sq_header *h);
json_object *describe_tensor_json(const sq_file *f, const sq_tensor *t, int with_parts, int check);

#endif
