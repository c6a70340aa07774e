/* --backend / --device / --list-devices, shared by the tools that run the
 * reference runtime (squish-verify, squish-bench). */
#ifndef SQUISH_CLI_BACKEND_H
#define SQUISH_CLI_BACKEND_H

#include "runtime.h"

typedef struct cli_backend {
    int vulkan;         /* 0: CPU */
    const char *device; /* --device (NULL: $SQUISH_VULKAN_DEVICE or automatic) */
    sq_vk *vk;          /* opened on first use */
} cli_backend;

/* "cpu" or "vulkan"; returns -1 for anything else. */
int cli_parse_backend(const char *s, cli_backend *b);
/* Opens the device once (the chosen device is named on stderr unless -q). */
sq_status cli_backend_open(cli_backend *b, sq_err *err);
/* Moves the model's products to the backend (nothing for the CPU). */
sq_status cli_backend_attach(cli_backend *b, sq_rt_model *m, sq_err *err);
/* "cpu, 4 threads" or "vulkan: DEVICE" */
void cli_backend_describe(const cli_backend *b, int threads, char *out, size_t n);
/* Prints the Vulkan devices (index, name, type) on stdout; exit code. */
int cli_list_devices(void);
void cli_backend_close(cli_backend *b);

#endif
