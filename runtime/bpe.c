/* Byte-level BPE as in Hugging Face tokenizers' ByteLevel + BPE models:
 * split out added tokens, pre-tokenize with the GPT-2 regex
 *   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * (matched by hand: alternatives in order, each greedy), map bytes to the
 * GPT-2 printable characters, then apply merges lowest rank first. */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spm.h"
#include "squish/fileio.h"
#include "tokenizer.h"
#include "unicode_tables.h"

/* ---- a string -> int hash map (open addressing, FNV-1a) ---- */
typedef struct smap {
    char **keys;
    size_t *klen;
    int32_t *vals;
    size_t cap, n;
} smap;

static uint64_t fnv(const char *s, size_t n, uint64_t h) {
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 0x100000001b3ull;
    return h;
}

static int smap_init(smap *m, size_t expect) {
    m->cap = 16;
    while (m->cap < expect * 2) m->cap *= 2;
    m->n = 0;
    m->keys = calloc(m->cap, sizeof *m->keys);
    m->klen = calloc(m->cap, sizeof *m->klen);
    m->vals = calloc(m->cap, sizeof *m->vals);
    return m->keys && m->klen && m->vals ? 0 : -1;
}

static void smap_free(smap *m) {
    for (size_t i = 0; i < m->cap && m->keys; i++) free(m->keys[i]);
    free(m->keys);
    free(m->klen);
    free(m->vals);
}

/* Key = a, or a + ' ' + b when b is given (merge pairs). */
static size_t smap_slot(const smap *m, const char *a, size_t na, const char *b, size_t nb) {
    uint64_t h = fnv(a, na, 0xcbf29ce484222325ull);
    size_t total = na;
    if (b) {
        h = fnv(" ", 1, h);
        h = fnv(b, nb, h);
        total += 1 + nb;
    }
    size_t i = (size_t)h & (m->cap - 1);
    for (;;) {
        if (!m->keys[i]) return i;
        if (m->klen[i] == total && !memcmp(m->keys[i], a, na) &&
            (!b || (m->keys[i][na] == ' ' && !memcmp(m->keys[i] + na + 1, b, nb))))
            return i;
        i = (i + 1) & (m->cap - 1);
    }
}

static int smap_get(const smap *m, const char *a, size_t na, const char *b, size_t nb, int32_t *v) {
    size_t i = smap_slot(m, a, na, b, nb);
    if (!m->keys[i]) return 0;
    *v = m->vals[i];
    return 1;
}

static int smap_put(smap *m, const char *a, size_t na, const char *b, size_t nb, int32_t v) {
    if ((m->n + 1) * 2 > m->cap) return -1; /* sized up front */
    size_t i = smap_slot(m, a, na, b, nb);
    if (m->keys[i]) return 1; /* duplicate: keep the first */
    size_t total = na + (b ? 1 + nb : 0);
    char *k = malloc(total + 1);
    if (!k) return -1;
    memcpy(k, a, na);
    if (b) {
        k[na] = ' ';
        memcpy(k + na + 1, b, nb);
    }
    k[total] = 0;
    m->keys[i] = k;
    m->klen[i] = total;
    m->vals[i] = v;
    m->n++;
    return 0;
}

struct sq_tokenizer {
    sq_spm *spm; /* a SentencePiece model instead of a tokenizer.json */
    smap vocab, merges, cache;
    char **id_text; /* byte-level text of each id */
    uint32_t n_ids;
    struct { char *text; size_t len; int32_t id; } *added;
    size_t n_added;
    char byte_char[256][3]; /* GPT-2 byte -> printable character (UTF-8) */
    uint8_t byte_len[256];
    int cache_full;
};

uint32_t sq_tokenizer_vocab(const sq_tokenizer *t) { return t->spm ? sq_spm_vocab(t->spm) : t->n_ids; }

void sq_tokenizer_free(sq_tokenizer *t) {
    if (!t) return;
    sq_spm_free(t->spm);
    smap_free(&t->vocab);
    smap_free(&t->merges);
    smap_free(&t->cache);
    for (uint32_t i = 0; i < t->n_ids; i++) free(t->id_text[i]);
    free(t->id_text);
    for (size_t i = 0; i < t->n_added; i++) free(t->added[i].text);
    free(t->added);
    free(t);
}

static size_t utf8_put(uint32_t c, char *o) {
    if (c < 0x80) { o[0] = (char)c; return 1; }
    if (c < 0x800) { o[0] = (char)(0xc0 | c >> 6); o[1] = (char)(0x80 | (c & 63)); return 2; }
    o[0] = (char)(0xe0 | c >> 12); o[1] = (char)(0x80 | ((c >> 6) & 63)); o[2] = (char)(0x80 | (c & 63));
    return 3;
}

/* Decodes one UTF-8 code point (strict: no overlongs, surrogates or > U+10FFFF); returns its length or 0. */
static size_t utf8_get(const uint8_t *s, size_t n, uint32_t *cp) {
    if (!n) return 0;
    uint8_t b = s[0];
    if (b < 0x80) { *cp = b; return 1; }
    size_t len = b >= 0xf0 && b <= 0xf4 ? 4 : b >= 0xe0 ? 3 : b >= 0xc2 && b < 0xe0 ? 2 : 0;
    if (!len || len > n || (len == 4 && b > 0xf4)) return 0;
    uint32_t c = b & (0x7f >> len);
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
        c = c << 6 | (s[i] & 63);
    }
    if ((len == 3 && (c < 0x800 || (c >= 0xd800 && c <= 0xdfff))) || (len == 4 && (c < 0x10000 || c > 0x10ffff))) return 0;
    *cp = c;
    return len;
}

static int in_ranges(const uint32_t (*r)[2], size_t n, uint32_t c) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (c < r[mid][0]) hi = mid;
        else if (c > r[mid][1]) lo = mid + 1;
        else return 1;
    }
    return 0;
}
static int is_letter(uint32_t c) { return in_ranges(sq_uni_letter, sizeof sq_uni_letter / sizeof sq_uni_letter[0], c); }
static int is_number(uint32_t c) { return in_ranges(sq_uni_number, sizeof sq_uni_number / sizeof sq_uni_number[0], c); }
/* Unicode White_Space, as the regex engines behind tokenizers use for \s */
static int is_space(uint32_t c) {
    return (c >= 9 && c <= 13) || c == 32 || c == 0x85 || c == 0xa0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200a) ||
           c == 0x2028 || c == 0x2029 || c == 0x202f || c == 0x205f || c == 0x3000;
}
static int is_other(uint32_t c) { return !is_space(c) && !is_letter(c) && !is_number(c); }

static sq_tokenizer *load_json(const uint8_t *data, size_t len, const char *path, sq_err *err);

/* tokenizer.model (SentencePiece protobuf): anything that does not start like JSON */
#define MAX_TOKENIZER_FILE (256u << 20)

static sq_tokenizer *load_spm(const char *path, uint32_t vocab, sq_err *err) {
    char *b;
    size_t n;
    if (sq_read_file(path, MAX_TOKENIZER_FILE, &b, &n, err)) return NULL;
    size_t plen = strlen(path);
    int bin = plen > 4 && !strcmp(path + plen - 4, ".bin");
    sq_tokenizer *t = sq_tokenizer_load_mem((const uint8_t *)b, n, bin ? 2 : 1, vocab, path, err);
    free(b);
    return t;
}

/* A tokenizer whose ids run past the model's vocabulary belongs to another
 * model (a smaller one is fine: models pad their vocabulary). Frees t then. */
static sq_tokenizer *vocab_fits(sq_tokenizer *t, uint32_t vocab, const char *name, sq_err *err) {
    if (!t || !vocab || sq_tokenizer_vocab(t) <= vocab) return t;
    sq_err_set(err, SQ_EUSAGE, "%s has %u tokens but the model's vocabulary has %u: a tokenizer of another model", name,
               sq_tokenizer_vocab(t), vocab);
    sq_tokenizer_free(t);
    return NULL;
}

sq_tokenizer *sq_tokenizer_load_mem(const uint8_t *data, size_t len, int kind, uint32_t vocab, const char *name, sq_err *err) {
    if (kind == 0) return vocab_fits(load_json(data, len, name, err), vocab, name, err);
    sq_tokenizer *t = calloc(1, sizeof *t);
    if (t) t->spm = kind == 2 ? sq_spm_load_llama2c(data, len, vocab, name, err) : sq_spm_load(data, len, name, err);
    if (!t || !t->spm) {
        free(t);
        if (!t) sq_err_set(err, SQ_ENOMEM, "out of memory");
        return NULL;
    }
    return vocab_fits(t, vocab, name, err);
}

sq_tokenizer *sq_tokenizer_load(const char *path, sq_err *err) { return sq_tokenizer_load_vocab(path, 0, err); }

sq_tokenizer *sq_tokenizer_load_vocab(const char *path, uint32_t model_vocab, sq_err *err) {
    FILE *probe = fopen(path, "rb");
    if (!probe) { sq_err_set(err, SQ_EIO, "%s: cannot open", path); return NULL; }
    int c0;
    do c0 = fgetc(probe); while (c0 == ' ' || c0 == '\n' || c0 == '\r' || c0 == '\t');
    fclose(probe);
    if (c0 != '{') return load_spm(path, model_vocab, err);
    char *b;
    size_t n;
    if (sq_read_file(path, MAX_TOKENIZER_FILE, &b, &n, err)) return NULL;
    sq_tokenizer *t = sq_tokenizer_load_mem((const uint8_t *)b, n, 0, model_vocab, path, err);
    free(b);
    return t;
}

static sq_tokenizer *load_json(const uint8_t *data, size_t len, const char *path, sq_err *err) {
    json_tokener *tok = json_tokener_new();
    json_object *root = tok ? json_tokener_parse_ex(tok, (const char *)data, (int)len) : NULL, *model, *vocab, *merges, *added, *type;
    int complete = tok && json_tokener_get_error(tok) == json_tokener_success;
    if (tok) json_tokener_free(tok);
    sq_tokenizer *t = NULL;
    if (!root || !complete || !json_object_is_type(root, json_type_object)) {
        json_object_put(root);
        sq_err_set(err, SQ_ECORRUPT, "%s: cannot parse as a JSON object", path);
        return NULL;
    }
    if (!json_object_object_get_ex(root, "model", &model) || !json_object_object_get_ex(model, "type", &type) ||
        !json_object_is_type(type, json_type_string) || strcmp(json_object_get_string(type), "BPE") || !json_object_object_get_ex(model, "vocab", &vocab) ||
        !json_object_is_type(vocab, json_type_object) || !json_object_object_get_ex(model, "merges", &merges) ||
        !json_object_is_type(merges, json_type_array)) {
        sq_err_set(err, SQ_EUNSUPPORTED, "%s: not a BPE tokenizer.json (model.type, model.vocab, model.merges)", path);
        goto fail;
    }
    json_object *pre, *pt;
    if (!json_object_object_get_ex(root, "pre_tokenizer", &pre) || !json_object_object_get_ex(pre, "type", &pt) ||
        !json_object_is_type(pt, json_type_string) || strcmp(json_object_get_string(pt), "ByteLevel")) {
        sq_err_set(err, SQ_EUNSUPPORTED, "%s: only the ByteLevel pre-tokenizer is supported", path);
        goto fail;
    }
    t = calloc(1, sizeof *t);
    size_t nv = (size_t)json_object_object_length(vocab), nm = json_object_array_length(merges);
    if (!t || smap_init(&t->vocab, nv) || smap_init(&t->merges, nm) || smap_init(&t->cache, 1 << 16)) {
        sq_err_set(err, SQ_ENOMEM, "%s: out of memory", path);
        goto fail;
    }
    uint32_t max_id = 0;
    json_object_object_foreach(vocab, k, v) {
        int64_t id = json_object_get_int64(v);
        if (!json_object_is_type(v, json_type_int) || id < 0 || id >= (1 << 24)) {
            sq_err_set(err, SQ_ECORRUPT, "%s: vocab entry \"%s\" has no valid id", path, k);
            goto fail;
        }
        if (smap_put(&t->vocab, k, strlen(k), NULL, 0, (int32_t)id) < 0) { sq_err_set(err, SQ_ENOMEM, "out of memory"); goto fail; }
        if ((uint32_t)id + 1 > max_id) max_id = (uint32_t)id + 1;
    }
    for (size_t i = 0; i < nm; i++) {
        json_object *mrg = json_object_array_get_idx(merges, i);
        const char *a, *b;
        size_t na, nb;
        char *sp = NULL;
        if (json_object_is_type(mrg, json_type_array) && json_object_array_length(mrg) == 2) {
            a = json_object_get_string(json_object_array_get_idx(mrg, 0));
            b = json_object_get_string(json_object_array_get_idx(mrg, 1));
        } else if (json_object_is_type(mrg, json_type_string) && (sp = strchr(json_object_get_string(mrg), ' '))) {
            a = json_object_get_string(mrg);
            b = sp + 1;
        } else {
            sq_err_set(err, SQ_ECORRUPT, "%s: merge %zu is neither [\"a\", \"b\"] nor \"a b\"", path, i);
            goto fail;
        }
        na = sp ? (size_t)(sp - a) : strlen(a);
        nb = strlen(b);
        if (smap_put(&t->merges, a, na, b, nb, (int32_t)i) < 0) { sq_err_set(err, SQ_ENOMEM, "out of memory"); goto fail; }
    }
    if (json_object_object_get_ex(root, "added_tokens", &added) && json_object_is_type(added, json_type_array)) {
        size_t na = json_object_array_length(added);
        t->added = calloc(na ? na : 1, sizeof *t->added);
        if (!t->added) { sq_err_set(err, SQ_ENOMEM, "out of memory"); goto fail; }
        for (size_t i = 0; i < na; i++) {
            json_object *a = json_object_array_get_idx(added, i), *c, *id;
            if (!json_object_object_get_ex(a, "content", &c) || !json_object_object_get_ex(a, "id", &id) ||
                !json_object_is_type(c, json_type_string) || !json_object_is_type(id, json_type_int) ||
                !json_object_get_string_len(c)) {
                sq_err_set(err, SQ_ECORRUPT, "%s: added token %zu needs a non-empty content and an id", path, i);
                goto fail;
            }
            t->added[t->n_added].text = strdup(json_object_get_string(c));
            t->added[t->n_added].len = (size_t)json_object_get_string_len(c);
            t->added[t->n_added].id = (int32_t)json_object_get_int64(id);
            if ((uint32_t)t->added[t->n_added].id + 1 > max_id) max_id = (uint32_t)t->added[t->n_added].id + 1;
            t->n_added++;
        }
    }
    t->n_ids = max_id;
    t->id_text = calloc(max_id ? max_id : 1, sizeof *t->id_text);
    if (!t->id_text) { sq_err_set(err, SQ_ENOMEM, "out of memory"); goto fail; }
    {
        json_object_object_foreach(vocab, k2, v2) {
            int32_t id = (int32_t)json_object_get_int64(v2);
            if (!t->id_text[id]) t->id_text[id] = strdup(k2);
        }
    }
    for (size_t i = 0; i < t->n_added; i++)
        if (!t->id_text[t->added[i].id]) t->id_text[t->added[i].id] = strdup(t->added[i].text);
    /* GPT-2 bytes_to_unicode: printable bytes map to themselves, the rest to 256 + n */
    uint32_t next = 256;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174);
        uint32_t c = printable ? (uint32_t)b : next++;
        t->byte_len[b] = (uint8_t)utf8_put(c, t->byte_char[b]);
    }
    json_object_put(root);
    return t;
fail:
    json_object_put(root);
    sq_tokenizer_free(t);
    return NULL;
}

/* BPE over one pre-token (already mapped to byte-level characters). */
typedef struct sym {
    const char *s;
    size_t n;
} sym;

static sq_status bpe_word(sq_tokenizer *t, const char *w, size_t n, int32_t **ids, uint64_t *cnt, uint64_t *cap,
                          sq_err *err) {
    int32_t cached;
    if (smap_get(&t->cache, w, n, NULL, 0, &cached) && cached >= 0) { /* single-token words are cached */
        if (*cnt == *cap) {
            int32_t *ni = realloc(*ids, (*cap *= 2) * sizeof **ids);
            if (!ni) return sq_err_set(err, SQ_ENOMEM, "out of memory");
            *ids = ni;
        }
        (*ids)[(*cnt)++] = cached;
        return SQ_OK;
    }
    sym stack[256], *s = n <= 256 ? stack : malloc(n * sizeof *s);
    if (!s) return sq_err_set(err, SQ_ENOMEM, "out of memory");
    size_t ns = 0;
    for (size_t i = 0; i < n;) { /* one symbol per UTF-8 character */
        size_t l = ((uint8_t)w[i] < 0x80) ? 1 : ((uint8_t)w[i] < 0xe0) ? 2 : 3;
        s[ns++] = (sym){w + i, l};
        i += l;
    }
    for (;;) {
        int32_t best = INT32_MAX, r;
        size_t at = 0;
        for (size_t i = 0; i + 1 < ns; i++)
            if (smap_get(&t->merges, s[i].s, s[i].n, s[i + 1].s, s[i + 1].n, &r) && r < best) {
                best = r;
                at = i;
            }
        if (best == INT32_MAX) break;
        s[at].n += s[at + 1].n; /* symbols are adjacent in w */
        memmove(s + at + 1, s + at + 2, (ns - at - 2) * sizeof *s);
        ns--;
    }
    sq_status st = SQ_OK;
    for (size_t i = 0; i < ns && !st; i++) {
        int32_t id;
        if (!smap_get(&t->vocab, s[i].s, s[i].n, NULL, 0, &id)) {
            st = sq_err_set(err, SQ_ECORRUPT, "tokenizer: symbol \"%.*s\" is not in the vocabulary", (int)s[i].n, s[i].s);
            break;
        }
        if (*cnt == *cap) {
            int32_t *ni = realloc(*ids, (*cap *= 2) * sizeof **ids);
            if (!ni) { st = sq_err_set(err, SQ_ENOMEM, "out of memory"); break; }
            *ids = ni;
        }
        (*ids)[(*cnt)++] = id;
    }
    if (!st && ns == 1 && !t->cache_full && smap_put(&t->cache, w, n, NULL, 0, (*ids)[*cnt - 1]) < 0) t->cache_full = 1;
    if (s != stack) free(s);
    return st;
}

/* Pre-tokenizes [from, to) of the code points and BPE-encodes each piece. */
static sq_status encode_span(sq_tokenizer *t, const uint32_t *cp, const size_t *off, const char *text, size_t from,
                             size_t to, int32_t **ids, uint64_t *cnt, uint64_t *cap, char *buf, sq_err *err) {
    size_t i = from;
    while (i < to) {
        size_t j = i;
        uint32_t c = cp[i];
        /* 's 't 're 've 'm 'll 'd */
        if (c == '\'' && i + 1 < to) {
            uint32_t a = cp[i + 1], b = i + 2 < to ? cp[i + 2] : 0;
            if (a == 's' || a == 't' || a == 'm' || a == 'd') j = i + 2;
            else if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) j = i + 3;
        }
        if (j == i) {
            size_t k = i + (c == ' ' && i + 1 < to ? 1 : 0); /* optional leading space */
            int (*cls[3])(uint32_t) = {is_letter, is_number, is_other};
            for (int a = 0; a < 3 && j == i; a++) {
                size_t s0 = cls[a](cp[k]) ? k : (cls[a](c) ? i : to);
                if (s0 == to) continue;
                size_t e = s0;
                while (e < to && cls[a](cp[e])) e++;
                j = e;
            }
        }
        if (j == i && is_space(c)) {
            size_t e = i;
            while (e < to && is_space(cp[e])) e++;
            /* \s+(?!\S): a run followed by a non-space gives back its last character */
            j = (e < to && e - i > 1) ? e - 1 : e;
        }
        if (j == i) j = i + 1; /* cannot happen: the alternatives cover every character */
        /* map the piece's bytes to byte-level characters */
        size_t nb = 0;
        for (size_t b = off[i]; b < off[j]; b++) {
            uint8_t ch = (uint8_t)text[b];
            memcpy(buf + nb, t->byte_char[ch], t->byte_len[ch]);
            nb += t->byte_len[ch];
        }
        sq_status st = bpe_word(t, buf, nb, ids, cnt, cap, err);
        if (st) return st;
        i = j;
    }
    return SQ_OK;
}

sq_status sq_tokenize(sq_tokenizer *t, const char *text, size_t len, int32_t **out, uint64_t *n, sq_err *err) {
    if (t->spm) { /* UTF-8 is still checked */
        for (size_t b = 0; b < len;) {
            uint32_t c;
            size_t l = utf8_get((const uint8_t *)text + b, len - b, &c);
            if (!l) return sq_err_set(err, SQ_ECORRUPT, "text: invalid UTF-8 at byte %zu", b);
            b += l;
        }
        return sq_spm_encode(t->spm, text, len, out, n, err);
    }
    uint32_t *cp = malloc((len + 1) * sizeof *cp);
    size_t *off = malloc((len + 1) * sizeof *off);
    char *buf = malloc(len * 3 + 4);
    uint64_t cap = 1024, cnt = 0;
    int32_t *ids = malloc(cap * sizeof *ids);
    sq_status st = SQ_OK;
    if (!cp || !off || !buf || !ids) { st = sq_err_set(err, SQ_ENOMEM, "out of memory for %zu bytes of text", len); goto out; }
    size_t ncp = 0;
    for (size_t b = 0; b < len;) {
        uint32_t c;
        size_t l = utf8_get((const uint8_t *)text + b, len - b, &c);
        if (!l) { st = sq_err_set(err, SQ_ECORRUPT, "text: invalid UTF-8 at byte %zu", b); goto out; }
        off[ncp] = b;
        cp[ncp++] = c;
        b += l;
    }
    off[ncp] = len;
    /* added tokens are matched first, anywhere in the text (longest first at a position) */
    size_t start = 0;
    for (size_t i = 0; i < ncp;) {
        size_t best = 0;
        int32_t bid = -1;
        for (size_t a = 0; a < t->n_added; a++)
            if (t->added[a].len > best && t->added[a].len <= len - off[i] && !memcmp(text + off[i], t->added[a].text, t->added[a].len)) {
                best = t->added[a].len;
                bid = t->added[a].id;
            }
        if (bid < 0) { i++; continue; }
        if ((st = encode_span(t, cp, off, text, start, i, &ids, &cnt, &cap, buf, err))) goto out;
        if (cnt == cap) {
            int32_t *ni = realloc(ids, (cap *= 2) * sizeof *ids);
            if (!ni) { st = sq_err_set(err, SQ_ENOMEM, "out of memory"); goto out; }
            ids = ni;
        }
        ids[cnt++] = bid;
        size_t e = i;
        while (e < ncp && off[e] < off[i] + best) e++;
        i = start = e;
    }
    st = encode_span(t, cp, off, text, start, ncp, &ids, &cnt, &cap, buf, err);
out:
    free(cp);
    free(off);
    free(buf);
    if (st) { free(ids); return st; }
    *out = ids;
    *n = cnt;
    return SQ_OK;
}

size_t sq_text_newlines(char *s, size_t len) {
    size_t k = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\r') {
            s[k++] = '\n';
            if (i + 1 < len && s[i + 1] == '\n') i++;
        } else {
            s[k++] = s[i];
        }
    }
    return k;
}

size_t sq_detokenize_one(const sq_tokenizer *t, int32_t id, char *out, size_t cap) {
    if (t->spm) {
        size_t pl, k = 0;
        const char *p = sq_spm_piece(t->spm, id, &pl);
        unsigned byte;
        if (!p) return 0;
        if (sq_spm_byte_piece(p, pl, &byte)) { if (cap) out[0] = (char)byte; return cap ? 1 : 0; }
        for (size_t i = 0; i < pl && k < cap; i++) {
            if (i + 3 <= pl && !memcmp(p + i, "\xe2\x96\x81", 3)) { out[k++] = ' '; i += 2; }
            else out[k++] = p[i];
        }
        return k;
    }
    if (id < 0 || (uint32_t)id >= t->n_ids || !t->id_text[id]) return 0;
    size_t k = 0;
    const uint8_t *s = (const uint8_t *)t->id_text[id];
    for (size_t i = 0; s[i] && k < cap;) { /* byte-level characters back to bytes */
        uint32_t c;
        size_t l = utf8_get(s + i, strlen((const char *)s + i), &c);
        if (!l) break;
        int b = -1;
        for (int x = 0; x < 256 && b < 0; x++) {
            uint32_t y;
            if (utf8_get((const uint8_t *)t->byte_char[x], t->byte_len[x], &y) && y == c) b = x;
        }
        out[k++] = b >= 0 ? (char)b : '?';
        i += l;
    }
    return k;
}
