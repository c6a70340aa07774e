/* Built against an installed libsquish (pkg-config --cflags --libs squish)
 * by test_install.sh: opens a .squizd file and prints its tensor count, after
 * checking that the headers and the library are the same version. */
#include <stdio.h>
#include <string.h>

#include <squish/squish.h>

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: count_tensors FILE.squizd\n");
        return 2;
    }
    if (sq_library_version() != SQUISH_VERSION_NUMBER || strcmp(sq_library_version_string(), SQUISH_VERSION_STRING)) {
        fprintf(stderr, "headers %s, library %s\n", SQUISH_VERSION_STRING, sq_library_version_string());
        return 1;
    }
    sq_err err;
    sq_file *f = sq_open(argv[1], &err);
    if (!f) {
        fprintf(stderr, "%s\n", err.msg);
        return 3;
    }
    printf("%u tensors (squish %s)\n", sq_file_ntensors(f), sq_library_version_string());
    sq_close(f);
    return 0;
}
