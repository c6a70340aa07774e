/* Built against the installed decode library alone (pkg-config --cflags
 * --libs squish-decode) by test_install.sh: opens a .squizd file, decodes
 * every tensor and prints its name and the sum of its values, so the test
 * can compare with the same program linked against the full library. */
#include <stdio.h>
#include <stdlib.h>

#include <squish/codec.h>
#include <squish/container.h>

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: decode_sums FILE.squizd\n");
        return 2;
    }
    sq_err err;
    sq_file *f = sq_open(argv[1], &err);
    if (!f) {
        fprintf(stderr, "%s\n", err.msg);
        return 3;
    }
    int rc = 0;
    for (uint32_t i = 0; i < sq_file_ntensors(f) && !rc; i++) {
        const sq_tensor *t = sq_file_tensor(f, i);
        sq_tview v;
        void *owned[SQ_CODEC_MAX_PARTS];
        if (sq_tview_open(f, t, 0, &v, owned, &err)) {
            fprintf(stderr, "%s\n", err.msg);
            rc = 4;
            break;
        }
        float *out = malloc(v.rows * v.cols * sizeof(float));
        if (!out) { rc = 6; break; }
        sq_decode_mt(&v, out, 1);
        double s = 0;
        for (uint64_t k = 0; k < v.rows * v.cols; k++) s += out[k];
        printf("%s %.17g\n", t->name, s);
        free(out);
        sq_tview_close(&v, owned);
    }
    sq_close(f);
    return rc;
}
