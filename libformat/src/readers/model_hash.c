/* The content hash of a source model (provenance.model_content_sha256 in
 * spec/squizd.md §4): what the model is, not where it lies or how its files
 * are cut. SHA-256 over
 *   "squish-model-sha256/1" NUL, u64 length + configuration text,
 *   then per tensor in sq_model_order: u64 length + name, u32 dtype (256 +
 *   the ggml type for a GGUF tensor of quantized blocks), u32 ndim,
 *   u64 dims[ndim], u64 length + source bytes
 * (integers little-endian). The source bytes are the tensor's bytes as the
 * file stores them; for a .squizd source, its parts' stored bytes in record
 * order. Callers that read every tensor anyway feed them as they go, so the
 * model is read once. */
#include <stdlib.h>
#include <string.h>

#include "common/bytes.h"
#include "squish/model.h"

static void put_u32(sq_sha256 *s, uint32_t v) {
    uint8_t b[4];
    put32(b, v);
    sq_sha256_update(s, b, 4);
}

static void put_u64(sq_sha256 *s, uint64_t v) {
    uint8_t b[8];
    put64(b, v);
    sq_sha256_update(s, b, 8);
}

static void put_bytes(sq_sha256 *s, const void *p, uint64_t n) {
    put_u64(s, n);
    sq_sha256_update(s, p, (size_t)n);
}

void sq_model_hash_init(sq_model_hash *h, const sq_model *m) {
    static const char tag[] = "squish-model-sha256/1";
    sq_sha256_init(&h->sh);
    sq_sha256_update(&h->sh, tag, sizeof tag); /* with its NUL */
    const char *cfg = m->config_json ? m->config_json : "";
    put_bytes(&h->sh, cfg, strlen(cfg));
}

void sq_model_hash_tensor(sq_model_hash *h, const sq_model *m, const sq_model_tensor *t) {
    put_bytes(&h->sh, t->name, strlen(t->name));
    put_u32(&h->sh, t->ggml_type ? 256 + t->ggml_type : t->dtype); /* ggml blocks: Q4_0 and IQ4_NL are the same size */
    put_u32(&h->sh, t->ndim);
    for (uint32_t d = 0; d < t->ndim; d++) put_u64(&h->sh, t->dims[d]);
    if (!m->squizd) {
        put_bytes(&h->sh, t->data, t->nbytes);
        return;
    }
    const sq_tensor *rec = sq_file_tensor(m->squizd, t->record);
    const uint8_t *base = sq_file_bytes(m->squizd, NULL);
    uint64_t total = 0;
    for (uint32_t i = 0; i < rec->n_parts; i++) total += rec->parts[i].stored_size;
    put_u64(&h->sh, total);
    for (uint32_t i = 0; i < rec->n_parts; i++) /* bounds checked by sq_open */
        sq_sha256_update(&h->sh, base + rec->parts[i].offset, (size_t)rec->parts[i].stored_size);
}

void sq_model_hash_final(sq_model_hash *h, char hex[65]) {
    uint8_t d[32];
    sq_sha256_final(&h->sh, d);
    sq_hex32(d, hex);
}

sq_status sq_model_content_sha256(const sq_model *m, char hex[65], sq_err *err) {
    uint32_t *order = sq_model_order(m);
    if (!order) return sq_err_set(err, SQ_ENOMEM, "out of memory");
    sq_model_hash h;
    sq_model_hash_init(&h, m);
    for (uint32_t i = 0; i < m->n_tensors; i++) {
        sq_model_hash_tensor(&h, m, &m->tensors[order[i]]);
        sq_model_release(m, &m->tensors[order[i]]);
    }
    sq_model_hash_final(&h, hex);
    free(order);
    return SQ_OK;
}
