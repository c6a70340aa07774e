/* The calibration token ids from the text files, as squish-calibrate makes
 * them (spec/calib-hdf5.md section 4), and the text_sha256 it records. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calib.h"
#include "squish/fileio.h"
#include "squish/hash.h"
#include "tokenizer.h"

#define MAX_TEXT_BYTES ((size_t)1 << 31)

sq_status sq_calib_text_ids(sq_tokenizer *tk, const char *const *paths, int n_paths, int32_t **ids_out, uint64_t *n_out,
                            char text_sha256[65], sq_err *err) {
    int32_t *ids = NULL;
    uint64_t n_ids = 0;
    sq_sha256 sh;
    sq_sha256_init(&sh);
    sq_status st = SQ_OK;
    for (int i = 0; i < n_paths && !st; i++) {
        char *text;
        size_t len;
        if ((st = sq_read_file(paths[i], MAX_TEXT_BYTES, &text, &len, err))) break;
        sq_sha256_update(&sh, text, len); /* the bytes as read: the hash names the files */
        len = sq_text_newlines(text, len);
        int32_t *t_ids;
        uint64_t tn;
        st = sq_tokenize(tk, text, len, &t_ids, &tn, err);
        free(text);
        if (st) {
            char msg[sizeof err->msg];
            snprintf(msg, sizeof msg, "%s", err->msg);
            st = sq_err_set(err, st, "%s: %s", paths[i], msg);
            break;
        }
        int32_t *grown = realloc(ids, (size_t)(n_ids + tn + 1) * sizeof *ids);
        if (!grown) {
            free(t_ids);
            st = sq_err_set(err, SQ_ENOMEM, "out of memory for %llu token ids", (unsigned long long)(n_ids + tn));
            break;
        }
        ids = grown;
        memcpy(ids + n_ids, t_ids, (size_t)tn * sizeof *ids);
        n_ids += tn;
        free(t_ids);
    }
    if (st) {
        free(ids);
        return st;
    }
    uint8_t d[32];
    sq_sha256_final(&sh, d);
    sq_hex32(d, text_sha256);
    *ids_out = ids;
    *n_out = n_ids;
    return SQ_OK;
}
