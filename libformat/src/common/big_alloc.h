/* Large work buffers (the Hessian's factors, GPTQ's U): on Linux backed by
 * transparent huge pages where the kernel offers them on request, so that
 * first touch costs one fault per 2 MiB instead of per 4 KiB (a 4096-wide
 * layer's float64 factors fault 64k times; in a VM each fault is slow) and
 * the strided passes over them miss the TLB less. Release with free(). */
#ifndef SQ_BIG_ALLOC_H
#define SQ_BIG_ALLOC_H

#include <stddef.h>

void *sq_big_alloc(size_t bytes);

#endif
