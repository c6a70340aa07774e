/* The safetensors container, both ways, for the GPTQ/AWQ interop
 * (internal). Layout: u64 little-endian header length N, N bytes of JSON
 * {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}},
 * then the data, offsets relative to its start, no holes. */
#ifndef SQUISH_SAFETENSORS_IO_H
#define SQUISH_SAFETENSORS_IO_H

#include <stdint.h>
#include <stdio.h>

#include "squish/container.h"
#include "squish/error.h"

typedef struct sq_st_entry {
    char *name;
    char dtype_name[12]; /* as written: "I32", "F16", ... */
    uint32_t dtype;      /* SQ_DT_* for F32/F16/BF16/F64/I8/U8/I16/U16/I32/U32/I64/U64, else SQ_DT_INVALID */
    uint32_t ndim;       /* scalars read as [1] */
    uint64_t dims[SQ_MAX_NDIM];
    const uint8_t *data; /* in the caller's mapping: any alignment */
    uint64_t nbytes;
    int file;            /* the caller's file index */
} sq_st_entry;

typedef struct sq_st_set {
    sq_st_entry *e;
    uint32_t n;
} sq_st_set;

/* Appends the tensors of one mapped file (path names it in messages). */
sq_status sq_st_parse(sq_st_set *s, const char *path, const uint8_t *map, uint64_t size, int file, sq_err *err);
/* Sorts by name (a name twice is SQ_ECORRUPT); sq_st_find then looks
 * names up by bisection. */
sq_status sq_st_sort(sq_st_set *s, sq_err *err);
const sq_st_entry *sq_st_find(const sq_st_set *s, const char *name);
void sq_st_free(sq_st_set *s);

/* Writing: the tensors' descriptions first (the header needs every
 * offset), then their bytes in the same order. */
typedef struct sq_st_desc {
    const char *name;
    const char *dtype_name; /* "F32", "F16", "BF16", "I32" */
    uint32_t ndim;
    uint64_t dims[SQ_MAX_NDIM];
} sq_st_desc;
uint64_t sq_st_desc_bytes(const sq_st_desc *d);

typedef struct sq_st_out {
    FILE *f;
    char *path;
    uint64_t expect, written;
} sq_st_out;
/* meta: "__metadata__" key/value strings, n_meta pairs (meta[2i], meta[2i+1]). */
sq_status sq_st_out_begin(sq_st_out *o, const char *path, const sq_st_desc *d, uint32_t n, const char *const *meta,
                          int n_meta, sq_err *err);
sq_status sq_st_out_write(sq_st_out *o, const void *data, uint64_t size, sq_err *err);
/* Checks that every byte announced was written, flushes and fsyncs. */
sq_status sq_st_out_end(sq_st_out *o, sq_err *err);
void sq_st_out_abort(sq_st_out *o);

#endif
