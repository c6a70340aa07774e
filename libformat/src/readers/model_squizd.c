/* .squizd files as source models: re-quantizing a file (e.g. one made by
 * squish-pack import), and squish-verify's structural check. The
 * configuration comes from the metadata's "config" member, as the runtime
 * reads it; tensors keep their recorded shape and source dtype and are
 * decoded to f32 through their codec when read (sq_model_tensor_f32). */
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "squish/model.h"

static int has_suffix(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

int sq_is_squizd(const char *path) {
    if (has_suffix(path, ".squizd")) return 1;
    char magic[4] = {0};
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t n = read(fd, magic, sizeof magic);
    close(fd);
    return n == 4 && !memcmp(magic, SQ_MAGIC, 4);
}

sq_status sq_model_from_squizd(sq_model *m, sq_file *f, sq_err *err) {
    const char *path = sq_file_path(f);
    m->squizd = f;
    const char *meta = sq_file_metadata(f, err);
    if (!meta) return err ? err->status : SQ_ECORRUPT;
    json_object *root = json_tokener_parse(meta), *cfg;
    if (!root || !json_object_object_get_ex(root, "config", &cfg) || !json_object_is_type(cfg, json_type_object)) {
        json_object_put(root);
        return sq_err_set(err, SQ_ECORRUPT, "%s: the metadata has no \"config\" object describing the model", path);
    }
    m->partial = json_object_object_get_ex(root, "shard", NULL);
    const char *text = json_object_to_json_string(cfg); /* as sq_rt_load_file reads it */
    sq_status st = sq_model_parse_config(m, path, text, strlen(text), err);
    json_object_put(root);
    if (st) return st;
    uint64_t size;
    const uint8_t *bytes = sq_file_bytes(f, &size);
    int fi = sq_model_add_buffer(m, path, bytes, size, err);
    if (fi < 0) return err ? err->status : SQ_ENOMEM;
    for (uint32_t i = 0; i < sq_file_ntensors(f); i++) {
        const sq_tensor *t = sq_file_tensor(f, i);
        uint32_t dt = t->src_dtype == SQ_DT_F16 || t->src_dtype == SQ_DT_BF16 ? t->src_dtype : SQ_DT_F32;
        if ((st = sq_model_add_tensor(m, t->name, t->name, dt, t->ndim, t->dims, NULL, 0, fi, err))) return st;
        m->tensors[m->n_tensors - 1].record = i;
    }
    if (!m->n_tensors) return sq_err_set(err, SQ_ECORRUPT, "%s: the file has no tensors", path);
    return SQ_OK;
}

sq_status sq_model_open_squizd(sq_model *m, const char *path, sq_err *err) {
    sq_file *f = sq_open(path, err);
    if (!f) return err ? err->status : SQ_EIO;
    m->squizd_owned = 1;
    sq_status st = sq_model_from_squizd(m, f, err);
    if (!st && m->partial)
        st = sq_err_set(err, SQ_EUSAGE, "%s is a partial file (squish-quantize --shard); join the parts with squish-pack merge first",
                        path);
    return st;
}
