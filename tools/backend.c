/* Choosing where the reference runtime's matrix products run. */
#include <stdio.h>
#include <string.h>

#include "backend.h"
#include "cli.h"

int cli_parse_backend(const char *s, cli_backend *b) {
    if (!strcmp(s, "cpu")) b->vulkan = 0;
    else if (!strcmp(s, "vulkan")) b->vulkan = 1;
    else return -1;
    return 0;
}

sq_status cli_backend_open(cli_backend *b, sq_err *err) {
    if (!b->vulkan || b->vk) return SQ_OK;
    sq_status st = sq_vk_open(b->device, &b->vk, err);
    if (!st) cli_note("%s: vulkan device: %s\n", cli_prog, sq_vk_describe(b->vk));
    return st;
}

sq_status cli_backend_attach(cli_backend *b, sq_rt_model *m, sq_err *err) {
    if (!b->vulkan) return SQ_OK;
    sq_status st = cli_backend_open(b, err);
    return st ? st : sq_rt_use_vulkan(m, b->vk, err);
}

void cli_backend_describe(const cli_backend *b, int threads, char *out, size_t n) {
    if (b->vulkan && b->vk) snprintf(out, n, "vulkan: %s", sq_vk_describe(b->vk));
    else snprintf(out, n, "cpu, %d thread%s", threads, threads == 1 ? "" : "s");
}

int cli_list_devices(void) {
    sq_err err = {0};
    return sq_vk_list(stdout, &err) ? cli_fail(&err) : EXIT_OK;
}

void cli_backend_close(cli_backend *b) {
    sq_vk_close(b->vk);
    b->vk = NULL;
}
