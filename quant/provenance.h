/* Provenance in canonical form: what an output records about how it was
 * made depends only on the inputs' contents and names and on the options'
 * values, never on how the command was typed (program path, relative or
 * absolute paths, trailing slashes, short or long options, their order). */
#ifndef SQUISH_PROVENANCE_H
#define SQUISH_PROVENANCE_H

#include <stddef.h>

#include "squish/error.h"

struct json_object;

/* A JSON array holding the command line, starting with tool (no path). */
struct json_object *prov_command(const char *tool);
/* Appends "--option" and, when value is not NULL, its value. */
void prov_arg(struct json_object *cl, const char *option, const char *value);
/* The file or directory name of path without its directories, of the path
 * resolved (so "M", "M/", "./M" and "/abs/M" all give "M"). */
void prov_name(const char *path, char *out, size_t n);
/* The shortest text that reads back as v ("0.01", not "0.010000000000000000208"). */
void prov_number(double v, char *out, size_t n);
/* {"name": file name, "bytes": size, "sha256": hex} of a file; NULL with err set on failure. */
struct json_object *prov_file(const char *path, sq_err *err);

#endif
