/* Shared helpers for the Check test programs. */
#ifndef SQUISH_TESTUTIL_H
#define SQUISH_TESTUTIL_H

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <stdint.h>

#include "squish/fp.h"

/* xorshift64: uniform doubles in [0, 1), the same sequence in every run. */
static uint64_t test_rng = 88172645463325252ull;
static inline double urand(void) {
    test_rng ^= test_rng << 13;
    test_rng ^= test_rng >> 7;
    test_rng ^= test_rng << 17;
    return (double)(test_rng >> 11) / 9007199254740992.0;
}
/* n weights, roughly Gaussian (sum of 4 uniforms, sd ~0.03), every 97th
 * times 12 when outliers is set, rounded to bf16 like real checkpoints. */
static inline float *random_matrix(uint64_t n, int outliers) {
    float *w = malloc(n * sizeof(float));
    for (uint64_t i = 0; i < n; i++) {
        double g = 0;
        for (int k = 0; k < 4; k++) g += urand() - 0.5;
        if (outliers && i % 97 == 3) g *= 12;
        w[i] = sq_bf16_to_f32(sq_f32_to_bf16((float)(g * 0.05)));
    }
    return w;
}

/* SQUISH_SOURCE_DIR and SQUISH_SHARED_DIR come from tests/CMakeLists.txt. */
static inline const char *src_path(const char *rel) {
    static __thread char buf[4096];
    snprintf(buf, sizeof buf, "%s/%s", SQUISH_SOURCE_DIR, rel);
    return buf;
}
static inline const char *shared_path(const char *rel) {
    static __thread char buf[4096];
    snprintf(buf, sizeof buf, "%s/%s", SQUISH_SHARED_DIR, rel);
    return buf;
}
static inline int have_shared(void) { return access(shared_path("README.md"), R_OK) == 0; }
/* The sanitizer run (scripts/test.sh sets SQUISH_TEST_QUICK): brute-force
 * sweeps check fewer random cases there; the release run checks them all. */
static inline int test_quick(void) { return getenv("SQUISH_TEST_QUICK") != NULL; }

static inline unsigned char *read_all(const char *path, size_t *len) {
    if (len) *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) { free(b); b = NULL; }
    fclose(f);
    if (len) *len = (size_t)n;
    return b;
}

static inline int write_all_file(const char *path, const void *d, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t k = fwrite(d, 1, n, f);
    return (fclose(f) == 0 && k == n) ? 0 : -1;
}

/* A fresh temporary directory for one test. */
static inline const char *tmpdir(void) {
    static __thread char d[256];
    snprintf(d, sizeof d, "/tmp/squish-test-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(d));
    return d;
}

#define RUN_SUITE(S)                                     \
    int main(void) {                                     \
        SRunner *sr = srunner_create(S);                 \
        srunner_run_all(sr, CK_NORMAL);                  \
        int failed = srunner_ntests_failed(sr);          \
        srunner_free(sr);                                \
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;     \
    }

#endif
