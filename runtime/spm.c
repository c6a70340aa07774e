/* SentencePiece BPE models (tokenizer.model, a ModelProto protobuf):
 * pieces with scores and types, the normalizer's add_dummy_prefix and
 * remove_extra_whitespaces flags (identity normalization only), byte
 * fallback. Encoding: spaces become U+2581, then adjacent symbols are merged
 * highest piece score first (leftmost on ties) while the merged string is a
 * piece; symbols left without an id fall back to <0xXX> byte pieces. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spm.h"

#define SPACE "\xe2\x96\x81" /* U+2581, SentencePiece's whitespace mark */

enum { PIECE_NORMAL = 1, PIECE_UNKNOWN = 2, PIECE_CONTROL = 3, PIECE_USER = 4, PIECE_UNUSED = 5, PIECE_BYTE = 6 };

struct sq_spm {
    uint32_t n;
    char **piece;
    size_t *len;
    float *score;
    int *type;
    int32_t byte_id[256];
    int32_t unk_id;
    int add_dummy_prefix, remove_extra_ws;
    /* open-addressing index piece -> id */
    int32_t *slots;
    size_t cap;
};

static uint64_t hash(const char *s, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 0x100000001b3ull;
    return h;
}

static int32_t lookup(const sq_spm *m, const char *s, size_t n) {
    for (size_t i = (size_t)hash(s, n) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        int32_t id = m->slots[i];
        if (id < 0) return -1;
        if (m->len[id] == n && !memcmp(m->piece[id], s, n)) return id;
    }
}

/* protobuf reading */
typedef struct pb {
    const uint8_t *p, *end;
    int bad;
} pb;

static uint64_t pb_varint(pb *b) {
    uint64_t v = 0;
    for (int s = 0; s < 64; s += 7) {
        if (b->p >= b->end) { b->bad = 1; return 0; }
        uint8_t c = *b->p++;
        v |= (uint64_t)(c & 0x7f) << s;
        if (!(c & 0x80)) return v;
    }
    b->bad = 1;
    return 0;
}

/* Next field: returns 0 at the end. For length-delimited fields *sub is the payload. */
static int pb_next(pb *b, uint32_t *field, uint32_t *wire, uint64_t *val, pb *sub) {
    if (b->bad || b->p >= b->end) return 0;
    uint64_t key = pb_varint(b);
    *field = (uint32_t)(key >> 3);
    *wire = (uint32_t)(key & 7);
    switch (*wire) {
    case 0: *val = pb_varint(b); break;
    case 1: if (b->end - b->p < 8) b->bad = 1; else b->p += 8; break;
    case 5:
        if (b->end - b->p < 4) b->bad = 1;
        else { uint32_t u; memcpy(&u, b->p, 4); *val = u; b->p += 4; }
        break;
    case 2: {
        uint64_t n = pb_varint(b);
        if (b->bad || n > (uint64_t)(b->end - b->p)) { b->bad = 1; break; }
        *sub = (pb){b->p, b->p + n, 0};
        b->p += n;
        break;
    }
    default: b->bad = 1;
    }
    return !b->bad;
}

static int build_index(sq_spm *m);

static int hexval(char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int sq_spm_byte_piece(const char *p, size_t len, unsigned *byte) {
    if (len != 6 || memcmp(p, "<0x", 3) || p[5] != '>' || hexval(p[3]) < 0 || hexval(p[4]) < 0) return 0;
    *byte = (unsigned)(hexval(p[3]) * 16 + hexval(p[4]));
    return 1;
}

void sq_spm_free(sq_spm *m) {
    if (!m) return;
    for (uint32_t i = 0; i < m->n; i++) free(m->piece[i]);
    free(m->piece);
    free(m->len);
    free(m->score);
    free(m->type);
    free(m->slots);
    free(m);
}

sq_spm *sq_spm_load(const uint8_t *data, size_t size, const char *path, sq_err *err) {
    sq_spm *m = calloc(1, sizeof *m);
    if (!m) { sq_err_set(err, SQ_ENOMEM, "out of memory"); return NULL; }
    m->add_dummy_prefix = 1;
    m->remove_extra_ws = 1;
    m->unk_id = -1;
    for (int i = 0; i < 256; i++) m->byte_id[i] = -1;
    pb b = {data, data + size, 0}, sub;
    uint32_t f, w, cap = 0, model_type = 1;
    uint64_t v = 0;
    while (pb_next(&b, &f, &w, &v, &sub)) {
        if (f == 1 && w == 2) { /* SentencePiece { piece = 1, score = 2, type = 3 } */
            if (m->n == cap) {
                cap = cap ? cap * 2 : 1024;
                if (cap > (1u << 22)) break;
                char **np = realloc(m->piece, cap * sizeof *np);
                size_t *nl = realloc(m->len, cap * sizeof *nl);
                float *ns = realloc(m->score, cap * sizeof *ns);
                int *nt = realloc(m->type, cap * sizeof *nt);
                if (np) m->piece = np;
                if (nl) m->len = nl;
                if (ns) m->score = ns;
                if (nt) m->type = nt;
                if (!np || !nl || !ns || !nt) { sq_err_set(err, SQ_ENOMEM, "out of memory"); goto fail; }
            }
            const uint8_t *ps = NULL;
            size_t pl = 0;
            float score = 0;
            int type = PIECE_NORMAL;
            uint32_t f2, w2;
            uint64_t v2 = 0;
            pb s2;
            while (pb_next(&sub, &f2, &w2, &v2, &s2)) {
                if (f2 == 1 && w2 == 2) { ps = s2.p; pl = (size_t)(s2.end - s2.p); }
                else if (f2 == 2 && w2 == 5) { uint32_t u = (uint32_t)v2; memcpy(&score, &u, 4); }
                else if (f2 == 3 && w2 == 0) type = (int)v2;
            }
            if (sub.bad || !ps) { sq_err_set(err, SQ_ECORRUPT, "%s: piece %u is malformed", path, m->n); goto fail; }
            m->piece[m->n] = malloc(pl + 1);
            if (!m->piece[m->n]) { sq_err_set(err, SQ_ENOMEM, "out of memory"); goto fail; }
            memcpy(m->piece[m->n], ps, pl);
            m->piece[m->n][pl] = 0;
            m->len[m->n] = pl;
            m->score[m->n] = score;
            m->type[m->n] = type;
            m->n++;
        } else if (f == 2 && w == 2) { /* TrainerSpec: model_type = 3 (1 unigram, 2 bpe) */
            uint32_t f2, w2;
            uint64_t v2 = 0;
            pb s2;
            while (pb_next(&sub, &f2, &w2, &v2, &s2))
                if (f2 == 3 && w2 == 0) model_type = (uint32_t)v2;
        } else if (f == 3 && w == 2) { /* NormalizerSpec */
            uint32_t f2, w2;
            uint64_t v2 = 0;
            pb s2;
            while (pb_next(&sub, &f2, &w2, &v2, &s2)) {
                if (f2 == 1 && w2 == 2 && !((s2.end - s2.p) == 8 && !memcmp(s2.p, "identity", 8))) {
                    sq_err_set(err, SQ_EUNSUPPORTED, "%s: normalization rule \"%.*s\" is not supported (identity only)", path,
                               (int)(s2.end - s2.p), (const char *)s2.p);
                    goto fail;
                }
                if (f2 == 3 && w2 == 0) m->add_dummy_prefix = v2 != 0;
                if (f2 == 4 && w2 == 0) m->remove_extra_ws = v2 != 0;
            }
        }
    }
    if (b.bad) { sq_err_set(err, SQ_ECORRUPT, "%s: not a SentencePiece model (malformed protobuf)", path); goto fail; }
    if (!m->n) { sq_err_set(err, SQ_ECORRUPT, "%s: no pieces", path); goto fail; }
    if (model_type != 2) { sq_err_set(err, SQ_EUNSUPPORTED, "%s: SentencePiece model type %u is not supported (BPE only)", path, model_type); goto fail; }
    if (build_index(m)) { sq_err_set(err, SQ_ENOMEM, "out of memory"); goto fail; }
    return m;
fail:
    sq_spm_free(m);
    return NULL;
}

static int build_index(sq_spm *m) {
    m->cap = 16;
    while (m->cap < 2 * (size_t)m->n) m->cap *= 2;
    m->slots = malloc(m->cap * sizeof *m->slots);
    if (!m->slots) return -1;
    for (size_t i = 0; i < m->cap; i++) m->slots[i] = -1;
    for (uint32_t id = 0; id < m->n; id++) {
        if (m->type[id] == PIECE_UNKNOWN) m->unk_id = (int32_t)id;
        unsigned byte;
        if (m->type[id] == PIECE_BYTE && sq_spm_byte_piece(m->piece[id], m->len[id], &byte)) m->byte_id[byte] = (int32_t)id;
        if (lookup(m, m->piece[id], m->len[id]) >= 0) continue; /* first one wins */
        size_t i = (size_t)hash(m->piece[id], m->len[id]) & (m->cap - 1);
        while (m->slots[i] >= 0) i = (i + 1) & (m->cap - 1);
        m->slots[i] = (int32_t)id;
    }
    return 0;
}

/* How many whole token records (f32 score, i32 length, bytes) lie in
 * [pos, size) when they end exactly there; -1 otherwise. */
static int64_t whole_records(const uint8_t *data, size_t size, size_t pos) {
    int64_t n = 0;
    while (size - pos >= 8) {
        int32_t len;
        memcpy(&len, data + pos + 4, 4);
        if (len < 0 || (size_t)len > size - pos - 8) return -1;
        pos += 8 + (size_t)len;
        n++;
    }
    return pos == size ? n : -1;
}

sq_spm *sq_spm_load_llama2c(const uint8_t *data, size_t size, uint32_t vocab, const char *path, sq_err *err) {
    sq_spm *m = calloc(1, sizeof *m);
    if (!m) { sq_err_set(err, SQ_ENOMEM, "out of memory"); return NULL; }
    m->add_dummy_prefix = 1; /* what llama2.c's encoder does; its tokenizers come from such models */
    m->remove_extra_ws = 1;
    m->unk_id = -1;
    for (int i = 0; i < 256; i++) m->byte_id[i] = -1;
    m->piece = calloc(vocab ? vocab : 1, sizeof *m->piece);
    m->len = calloc(vocab ? vocab : 1, sizeof *m->len);
    m->score = calloc(vocab ? vocab : 1, sizeof *m->score);
    m->type = calloc(vocab ? vocab : 1, sizeof *m->type);
    if (!m->piece || !m->len || !m->score || !m->type) { sq_err_set(err, SQ_ENOMEM, "out of memory"); goto fail; }
    size_t pos = 4;
    if (size < 4 || vocab == 0 || vocab > (1u << 22)) { sq_err_set(err, SQ_ECORRUPT, "%s: not a llama2.c tokenizer", path); goto fail; }
    for (uint32_t id = 0; id < vocab; id++) {
        int32_t len;
        float score;
        if (size - pos < 8) {
            if (pos == size) /* whole records, fewer than the model has: another model's tokenizer */
                sq_err_set(err, SQ_EUSAGE, "%s holds %u tokens but the model's vocabulary has %u: a tokenizer of another model",
                           path, id, vocab);
            else sq_err_set(err, SQ_ECORRUPT, "%s: truncated at token %u (byte %zu)", path, id, pos);
            goto fail;
        }
        memcpy(&score, data + pos, 4);
        memcpy(&len, data + pos + 4, 4);
        pos += 8;
        if (len < 0 || (size_t)len > size - pos || len > 4096) {
            sq_err_set(err, SQ_ECORRUPT, "%s: token %u has length %d at byte %zu", path, id, len, pos - 4);
            goto fail;
        }
        /* spaces back to U+2581; the three specials are <unk>, <s>, </s> */
        char *p = malloc((size_t)len * 3 + 1);
        if (!p) { sq_err_set(err, SQ_ENOMEM, "out of memory"); goto fail; }
        size_t k = 0;
        for (int32_t i = 0; i < len; i++) {
            if (data[pos + (size_t)i] == ' ') { memcpy(p + k, SPACE, 3); k += 3; }
            else p[k++] = (char)data[pos + (size_t)i];
        }
        p[k] = 0;
        unsigned byte;
        m->piece[id] = p;
        m->len[id] = k;
        m->score[id] = score;
        m->type[id] = id == 0 ? PIECE_UNKNOWN : id < 3 ? PIECE_CONTROL
                      : sq_spm_byte_piece(p, k, &byte) ? PIECE_BYTE : PIECE_NORMAL;
        m->n = id + 1;
        pos += (size_t)len;
    }
    if (pos != size) {
        int64_t more = whole_records(data, size, pos);
        if (more > 0)
            sq_err_set(err, SQ_EUSAGE, "%s holds %llu tokens but the model's vocabulary has %u: a tokenizer of another model",
                       path, (unsigned long long)(vocab + (uint64_t)more), vocab);
        else sq_err_set(err, SQ_ECORRUPT, "%s: %zu bytes after the last of %u tokens", path, size - pos, vocab);
        goto fail;
    }
    if (build_index(m)) { sq_err_set(err, SQ_ENOMEM, "out of memory"); goto fail; }
    return m;
fail:
    sq_spm_free(m);
    return NULL;
}

uint32_t sq_spm_vocab(const sq_spm *m) { return m->n; }

const char *sq_spm_piece(const sq_spm *m, int32_t id, size_t *len) {
    if (id < 0 || (uint32_t)id >= m->n) return NULL;
    *len = m->len[id];
    return m->piece[id];
}

static int mergeable(const sq_spm *m, int32_t id) {
    return id >= 0 && (m->type[id] == PIECE_NORMAL || m->type[id] == PIECE_USER);
}

/* Encodes one normalized segment (a run of UTF-8 characters). */
static sq_status encode_segment(const sq_spm *m, const char *s, size_t n, int32_t **ids, uint64_t *cnt, uint64_t *cap,
                                sq_err *err) {
    typedef struct { size_t off, len; } sym;
    sym *y = malloc((n + 1) * sizeof *y);
    if (!y) return sq_err_set(err, SQ_ENOMEM, "out of memory");
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        uint8_t c = (uint8_t)s[i];
        size_t l = c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
        if (i + l > n) l = n - i;
        y[k++] = (sym){i, l};
        i += l;
    }
    for (;;) { /* highest-scoring mergeable pair, leftmost on ties */
        float best = 0;
        size_t at = SIZE_MAX;
        for (size_t i = 0; i + 1 < k; i++) {
            int32_t id = lookup(m, s + y[i].off, y[i].len + y[i + 1].len);
            if (mergeable(m, id) && (at == SIZE_MAX || m->score[id] > best)) {
                best = m->score[id];
                at = i;
            }
        }
        if (at == SIZE_MAX) break;
        y[at].len += y[at + 1].len;
        memmove(y + at + 1, y + at + 2, (k - at - 2) * sizeof *y);
        k--;
    }
    sq_status st = SQ_OK;
    for (size_t i = 0; i < k && !st; i++) {
        int32_t id = lookup(m, s + y[i].off, y[i].len);
        int32_t tmp[8];
        size_t nt = 0;
        if (id >= 0 && m->type[id] != PIECE_UNUSED) tmp[nt++] = id;
        else {
            for (size_t b = 0; b < y[i].len; b++) { /* byte fallback, else <unk> */
                int32_t bid = m->byte_id[(uint8_t)s[y[i].off + b]];
                if (bid < 0) { bid = m->unk_id; b = y[i].len; }
                if (bid < 0) { st = sq_err_set(err, SQ_ECORRUPT, "tokenizer: a character has no piece, byte piece or <unk>"); break; }
                tmp[nt++] = bid;
            }
        }
        for (size_t j = 0; j < nt && !st; j++) {
            if (*cnt == *cap) {
                int32_t *ni = realloc(*ids, (*cap *= 2) * sizeof **ids);
                if (!ni) { st = sq_err_set(err, SQ_ENOMEM, "out of memory"); break; }
                *ids = ni;
            }
            (*ids)[(*cnt)++] = tmp[j];
        }
    }
    free(y);
    return st;
}

sq_status sq_spm_encode(const sq_spm *m, const char *text, size_t len, int32_t **out, uint64_t *n, sq_err *err) {
    /* normalize: optional dummy prefix, collapse/strip spaces, ' ' -> U+2581 */
    char *norm = malloc(len * 3 + 4);
    uint64_t cap = 1024, cnt = 0;
    int32_t *ids = malloc(cap * sizeof *ids);
    if (!norm || !ids) { free(norm); free(ids); return sq_err_set(err, SQ_ENOMEM, "out of memory"); }
    size_t k = 0, i = 0;
    if (m->remove_extra_ws)
        while (i < len && text[i] == ' ') i++;
    if (m->add_dummy_prefix && i < len) { memcpy(norm, SPACE, 3); k = 3; }
    int prev_space = m->remove_extra_ws;
    for (; i < len; i++) {
        if (text[i] == ' ') {
            if (prev_space && m->remove_extra_ws) continue;
            memcpy(norm + k, SPACE, 3);
            k += 3;
            prev_space = 1;
        } else {
            norm[k++] = text[i];
            prev_space = 0;
        }
    }
    if (m->remove_extra_ws)
        while (k >= 3 && !memcmp(norm + k - 3, SPACE, 3) && k > (m->add_dummy_prefix ? 3u : 0u)) k -= 3;
    /* pieces never span a whitespace mark except at their start, so each
     * U+2581-led word is encoded on its own */
    sq_status st = SQ_OK;
    size_t start = 0;
    for (size_t p = 3; p <= k && !st; p++) {
        if (p == k || (p + 3 <= k && !memcmp(norm + p, SPACE, 3))) {
            st = encode_segment(m, norm + start, p - start, &ids, &cnt, &cap, err);
            start = p;
        }
    }
    if (!st && k > 0 && k < 3) st = encode_segment(m, norm, k, &ids, &cnt, &cap, err);
    free(norm);
    if (st) { free(ids); return st; }
    *out = ids;
    *n = cnt;
    return SQ_OK;
}
