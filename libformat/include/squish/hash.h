/* Hashes: XXH64 (checksums inside .squizd) and SHA-256 (provenance of inputs). */
#ifndef SQUISH_HASH_H
#define SQUISH_HASH_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* XXH64 with the given seed (squish always uses seed 0). */
uint64_t sq_xxh64(const void *data, size_t len, uint64_t seed);

typedef struct sq_sha256 {
    uint32_t h[8];
    uint64_t total;
    uint8_t buf[64];
    size_t used;
} sq_sha256;

void sq_sha256_init(sq_sha256 *s);
void sq_sha256_update(sq_sha256 *s, const void *data, size_t len);
void sq_sha256_final(sq_sha256 *s, uint8_t out[32]);
/* Lower-case hex of a 32-byte digest into out (65 bytes incl. NUL). */
void sq_hex32(const uint8_t d[32], char out[65]);
/* The reverse: 64 hex digits to 32 bytes; -1 if hex is not that. */
int sq_unhex32(const char *hex, uint8_t out[32]);

#ifdef __cplusplus
}
#endif
#endif
