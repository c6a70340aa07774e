/* Fuzz target: calibration files (squish header + HDF5). Each input is
 * tried twice: as it is (the squish header check must reject damage before
 * libhdf5 sees it), and with its header repaired (right magic, size and
 * SHA-256), which sends the bytes through libhdf5 and squish's checks of
 * attributes, shapes and values. HDF5 opens files by name, so the input is
 * written to a temporary file. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "calib.h"
#include "squish/hash.h"

static void try_file(const char *path) {
    sq_err err;
    sq_calib_file *f = sq_calib_open(path, &err);
    if (!f) return;
    const sq_calib_info *I = sq_calib_file_info(f);
    for (uint32_t l = 0; l < I->n_layers && l < 4; l++)
        for (int s = 0; s < SQ_SITE_COUNT; s++) {
            sq_calib_site site;
            if (!sq_calib_read_site(f, l, (sq_site)s, &site, &err)) sq_calib_site_free(&site);
        }
    sq_calib_close(f);
}

static void write_file(const char *path, const uint8_t *d, size_t n) {
    FILE *fp = fopen(path, "wb");
    if (!fp) abort();
    if (n && fwrite(d, 1, n, fp) != n) abort();
    fclose(fp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[64];
    snprintf(path, sizeof path, "/tmp/squish-fuzz-calib-%ld.h5", (long)getpid());
    write_file(path, data, size);
    try_file(path);
    if (size > 512 && size < (64u << 20)) {
        uint8_t *b = malloc(size);
        memcpy(b, data, size);
        memcpy(b, "SQUISH-CALIB\0\0\0\0", 16);
        memset(b + 16, 0, 8);
        b[16] = 1;
        for (int i = 0; i < 8; i++) b[24 + i] = (uint8_t)((uint64_t)size >> (8 * i));
        sq_sha256 sh;
        sq_sha256_init(&sh);
        sq_sha256_update(&sh, b + 512, size - 512);
        sq_sha256_final(&sh, b + 32);
        write_file(path, b, size);
        free(b);
        try_file(path);
    }
    unlink(path);
    return 0;
}
