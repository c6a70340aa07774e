/* XXH64 against values printed by `xxhsum -H64`, SHA-256 against FIPS 180-2 examples. */
#include "squish/hash.h"
#include "testutil.h"

START_TEST(xxh64_matches_xxhsum) {
    /* input byte i = (i*31 + 7) mod 256; expected values from xxhsum 0.8.1 */
    static const struct { size_t n; uint64_t h; } v[] = {
        {0, 0xef46db3751d8e999ull},  {1, 0xa96c7f0ce858bbb7ull},  {3, 0x56e6957632a487f9ull},
        {4, 0xc60d15b1e3ff8f04ull},  {7, 0xafbefc3d6c6f9a8eull},  {8, 0x3da5c7aa269683e0ull},
        {31, 0x4a74f3a1a39ad4a1ull}, {32, 0x8d57d6a4671cc43dull}, {33, 0x62c9fd21ed857664ull},
        {63, 0x5c320a0d2707057full}, {64, 0x7bbabbc45729d17eull}, {100, 0xefa0ad2d3e70c151ull},
        {1000, 0x99594f4828043d35ull}};
    uint8_t buf[1000];
    for (int i = 0; i < 1000; i++) buf[i] = (uint8_t)(i * 31 + 7);
    for (size_t k = 0; k < sizeof v / sizeof v[0]; k++) ck_assert_uint_eq(sq_xxh64(buf, v[k].n, 0), v[k].h);
}
END_TEST

static void sha_hex(const char *msg, size_t len, char out[65], size_t chunk) {
    sq_sha256 s;
    sq_sha256_init(&s);
    for (size_t i = 0; i < len; i += chunk) sq_sha256_update(&s, msg + i, len - i < chunk ? len - i : chunk);
    uint8_t d[32];
    sq_sha256_final(&s, d);
    sq_hex32(d, out);
}

START_TEST(sha256_fips_examples) {
    char h[65];
    sha_hex("abc", 3, h, 3);
    ck_assert_str_eq(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *m2 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    for (size_t chunk = 1; chunk < 70; chunk += 13) { /* any split gives the same digest */
        sha_hex(m2, strlen(m2), h, chunk);
        ck_assert_str_eq(h, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    }
    sha_hex("", 0, h, 1);
    ck_assert_str_eq(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    const char *m3 = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrst"
                     "nopqrstu";
    sha_hex(m3, strlen(m3), h, 112);
    ck_assert_str_eq(h, "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
}
END_TEST

/* FIPS 180-2's million 'a's: many whole blocks per update (the SHA-extension
 * path where the CPU has it; the portable rounds in the hash_portable run). */
START_TEST(sha256_million_a) {
    char *a = malloc(1000000), h[65];
    ck_assert_ptr_nonnull(a);
    memset(a, 'a', 1000000);
    for (size_t chunk = 1000000; chunk >= 999; chunk /= 10) {
        sha_hex(a, 1000000, h, chunk);
        ck_assert_str_eq(h, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    }
    free(a);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("hash");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, xxh64_matches_xxhsum);
    tcase_add_test(tc, sha256_fips_examples);
    tcase_add_test(tc, sha256_million_a);
    suite_add_tcase(s, tc);
    return s;
}
RUN_SUITE(suite())
