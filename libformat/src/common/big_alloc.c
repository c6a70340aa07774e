/* Large work buffers on huge pages (see big_alloc.h). */
#if defined(__linux__)
#define _DEFAULT_SOURCE /* madvise */
#endif
#include "big_alloc.h"

#include <stdlib.h>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#define HUGE_BYTES ((size_t)2 << 20)
#define MIN_BYTES ((size_t)8 << 20) /* below this, plain malloc: the saving is small */

void *sq_big_alloc(size_t bytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (bytes >= MIN_BYTES) {
        const size_t size = (bytes + HUGE_BYTES - 1) / HUGE_BYTES * HUGE_BYTES;
        void *p = aligned_alloc(HUGE_BYTES, size);
        if (p) madvise(p, size, MADV_HUGEPAGE); /* advice only: without THP the pages are ordinary */
        return p;
    }
#endif
    return malloc(bytes ? bytes : 1);
}
