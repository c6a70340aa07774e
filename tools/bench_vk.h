/* The Vulkan kernel benchmark of squish-bench. */
#ifndef SQUISH_BENCH_VK_H
#define SQUISH_BENCH_VK_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"

/* Prints the copy baseline and one GEMV line per scheme of the comma-separated
 * list (modified); w is the rows x cols matrix. Returns an exit code. */
int bench_vulkan(cli_backend *be, const float *w, uint64_t rows, uint64_t cols, char *list, int threads, size_t ws_mib,
                 double min_time);

struct sq_vk_decode;
/* The device decode step's per-dispatch profile ($SQUISH_VULKAN_PROFILE=1):
 * ms per token and share per kind of dispatch, against host_ms, the
 * measured wall time per token; nothing when not profiling. */
void bench_vk_decode_profile(const struct sq_vk_decode *d, double host_ms);

#endif
