/* The .squizd container: round trips, the spec's toy file field by field,
 * and hostile inputs (truncations, bit flips, crafted fields). */
#include <math.h>
#include <signal.h>
#include <sys/resource.h>
#include <dirent.h>

#include "squish/codec.h"
#include "squish/container.h"
#include "squish/hash.h"
#include "testutil.h"

static uint64_t rd64(const uint8_t *p) { uint64_t v = 0; for (int i = 7; i >= 0; i--) v = v << 8 | p[i]; return v; }
static void wr64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static void wr32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }

/* Recomputes the index and header checksums so a crafted change reaches the parser. */
static void fix_checksums(uint8_t *b, size_t len) {
    uint64_t io = rd64(b + 104), is = rd64(b + 112);
    if (io <= len && is <= len - io) wr64(b + 120, sq_xxh64(b + io, (size_t)is, 0));
    uint64_t ao = rd64(b + 168), as = rd64(b + 176);
    if (ao <= len && as <= len - ao) wr64(b + 208, sq_xxh64(b + ao, (size_t)as, 0));
    wr64(b + 248, sq_xxh64(b, 248, 0));
}

/* Opens and fully verifies a buffer; returns the first failing status. */
static sq_status check_bytes(const uint8_t *b, size_t len) {
    const char *d = tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/x.squizd", d);
    ck_assert_int_eq(write_all_file(path, b, len), 0);
    sq_err err = {0};
    sq_status st;
    sq_file *f = sq_open(path, &err);
    if (!f) {
        st = err.status;
        ck_assert_msg(strstr(err.msg, path) != NULL, "error does not name the file: %s", err.msg);
    } else {
        st = sq_verify(f, NULL, NULL, &err);
        for (uint32_t i = 0; !st && i < sq_file_ntensors(f); i++) { /* decode everything that claims to be fine */
            sq_tview v;
            void *owned[SQ_CODEC_MAX_PARTS];
            const sq_tensor *t = sq_file_tensor(f, i);
            st = sq_tview_open(f, t, 0, &v, owned, &err);
            if (!st) {
                float *out = malloc((size_t)(v.rows * v.cols) * sizeof(float));
                sq_decode_rows(&v, 0, v.rows, out);
                free(out);
                for (int k = 0; k < SQ_CODEC_MAX_PARTS; k++) free(owned[k]);
            }
        }
        sq_close(f);
    }
    unlink(path);
    rmdir(d);
    ck_assert_msg(st <= SQ_EINTERNAL, "undocumented status %d", st);
    ck_assert_msg(st != SQ_EINTERNAL, "internal error on hostile input: %s", err.msg);
    return st;
}

static uint8_t *toy(size_t *len) {
    uint8_t *b = read_all(src_path("testdata/toy.squizd"), len);
    ck_assert_ptr_nonnull(b);
    return b;
}

/* ---------- round trip ---------- */
/* Three f32 tensors "tensor.0..2"; zstd requested on every other one. */
static void write_three(sq_writer *w, float data[3][300], uint64_t shapes[3][2]) {
    sq_err err;
    for (int t = 0; t < 3; t++) {
        char name[32];
        snprintf(name, sizeof name, "tensor.%d", t);
        ck_assert_int_eq(sq_writer_begin_tensor(w, name, 2, shapes[t], SQ_DT_F32, SQ_CODEC_F32, NULL, &err), 0);
        ck_assert_int_eq(sq_writer_add_part(w, "data", SQ_DT_F32, 2, shapes[t], data[t], sizeof data[t],
                                            t % 2 ? SQ_COMP_ZSTD : SQ_COMP_NONE, &err), 0);
        ck_assert_int_eq(sq_writer_end_tensor(w, &err), 0);
    }
}

START_TEST(round_trip) {
    const char *d = tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/rt.squizd", d);
    sq_err err = {0};
    sq_writer_opts o = {128, 5, 1};
    sq_writer *w = sq_writer_open(path, &o, &err);
    ck_assert_ptr_nonnull(w);
    sq_model_info info = {SQ_ARCH_QWEN2, 3, 64, 4, 2, 100, 128, 0.25f, {0}};
    for (int i = 0; i < 32; i++) info.calib_hash[i] = (uint8_t)(i * 7);
    sq_writer_set_model(w, &info);
    ck_assert_int_eq(sq_writer_set_metadata(w, "{\"a\": [1, 2, 3], \"text\": \"h\\u00e9llo\"}", &err), 0);
    /* three f32 tensors of different shapes; zstd on every other one */
    float data[3][300];
    for (int t = 0; t < 3; t++)
        for (int i = 0; i < 300; i++) data[t][i] = t == 1 ? 0.0f : (float)(i * (t + 1)) * 0.5f;
    uint64_t shapes[3][2] = {{10, 30}, {300, 1}, {3, 100}};
    write_three(w, data, shapes);
    ck_assert_int_ne(sq_writer_begin_tensor(w, "tensor.0", 1, shapes[0], SQ_DT_F32, SQ_CODEC_F32, NULL, &err), 0);
    sq_writer_abort(w);
    ck_assert_int_ne(access(path, F_OK), 0); /* aborted: nothing at the target */

    w = sq_writer_open(path, &o, &err);
    sq_writer_set_model(w, &info);
    sq_writer_set_metadata(w, "{\"a\": [1, 2, 3]}", &err);
    write_three(w, data, shapes);
    const char blob[] = "draft head bytes";
    ck_assert_int_eq(sq_writer_add_appendix(w, SQ_APPX_EAGLE_DRAFT, 0, blob, sizeof blob, SQ_COMP_NONE, &err), 0);
    ck_assert_int_eq(sq_writer_add_appendix(w, 999, 0, blob, sizeof blob, SQ_COMP_NONE, &err), 0);
    ck_assert_int_eq(sq_writer_commit(w, &err), 0);

    sq_file *f = sq_open(path, &err);
    ck_assert_msg(f != NULL, "%s", err.msg);
    const sq_header *h = sq_file_header(f);
    ck_assert_uint_eq(h->alignment, 128);
    ck_assert_uint_eq(h->arch, SQ_ARCH_QWEN2);
    ck_assert_uint_eq(h->n_layers, 3);
    ck_assert_uint_eq(h->vocab_size, 100);
    ck_assert(h->sparsity == 0.25f);
    ck_assert_uint_eq(h->calib_hash[31], (uint8_t)(31 * 7));
    ck_assert(h->avg_bpw == 32.0f);
    ck_assert_uint_eq(h->flags, SQ_FLAG_FLOAT | SQ_FLAG_ZSTD | SQ_FLAG_EAGLE_DRAFT);
    ck_assert_uint_eq(sq_file_ntensors(f), 3);
    ck_assert_str_eq(sq_file_metadata(f, &err), "{\"a\": [1, 2, 3]}");
    for (int t = 0; t < 3; t++) {
        const sq_tensor *ts = sq_file_tensor(f, (uint32_t)t);
        ck_assert_uint_eq(ts->dims[0], shapes[t][0]);
        const sq_part *p = sq_tensor_part(ts, "data");
        ck_assert_ptr_nonnull(p);
        ck_assert_uint_eq(p->offset % 128, 0);
        ck_assert_uint_eq(p->compression, t == 1 ? SQ_COMP_ZSTD : SQ_COMP_NONE); /* t=2 data does not compress */
        const void *ptr;
        void *owned;
        ck_assert_int_eq(sq_part_read(f, p, 0, &ptr, &owned, &err), 0);
        ck_assert_int_eq(memcmp(ptr, data[t], sizeof data[t]), 0);
        ck_assert((owned != NULL) == (p->compression == SQ_COMP_ZSTD));
        if (!owned) { /* zero copy: the pointer is inside the mapping */
            uint64_t size;
            const uint8_t *base = sq_file_bytes(f, &size);
            ck_assert_ptr_eq(ptr, base + p->offset);
        }
        free(owned);
    }
    ck_assert_uint_eq(sq_file_nappendix(f), 2);
    const void *ptr;
    void *owned;
    ck_assert_int_eq(sq_appendix_read(f, sq_file_appendix(f, 0), &ptr, &owned, &err), 0);
    ck_assert_int_eq(memcmp(ptr, blob, sizeof blob), 0);
    ck_assert_int_eq(sq_verify(f, NULL, NULL, &err), 0);
    sq_close(f);
    /* no temporary files left in the directory */
    DIR *dir = opendir(d);
    struct dirent *de;
    int n = 0;
    while ((de = readdir(dir))) n += de->d_name[0] != '.';
    closedir(dir);
    ck_assert_int_eq(n, 1);
    unlink(path);
    rmdir(d);
}
END_TEST

/* ---------- the spec's worked example ---------- */
START_TEST(toy_file_fields) {
    sq_err err = {0};
    sq_file *f = sq_open(src_path("testdata/toy.squizd"), &err);
    ck_assert_msg(f != NULL, "%s", err.msg);
    const sq_header *h = sq_file_header(f);
    /* values as annotated in spec/squizd.md, "Worked example" */
    ck_assert_uint_eq(h->major, 1);
    ck_assert_uint_eq(h->minor, 0);
    ck_assert_uint_eq(h->header_size, 256);
    ck_assert_uint_eq(h->alignment, 64);
    ck_assert_uint_eq(h->flags, SQ_FLAG_INT4 | SQ_FLAG_INT8 | SQ_FLAG_FLOAT | SQ_FLAG_SPARSE);
    ck_assert_uint_eq(h->incompat, 0);
    ck_assert_uint_eq(h->arch, SQ_ARCH_LLAMA);
    ck_assert_uint_eq(h->n_layers, 2);
    ck_assert_uint_eq(h->hidden_size, 8);
    ck_assert_uint_eq(h->n_heads, 2);
    ck_assert_uint_eq(h->n_kv_heads, 1);
    ck_assert_uint_eq(h->vocab_size, 16);
    ck_assert_uint_eq(h->intermediate_size, 32);
    ck_assert(h->avg_bpw == (float)((36.0 + 70.0 + 32.0) * 8.0 / (64 + 64 + 8)));
    ck_assert(h->sparsity == 0.0f);
    for (int i = 0; i < 32; i++) ck_assert_uint_eq(h->calib_hash[i], 0);
    ck_assert_uint_eq(h->n_tensors, 3);
    ck_assert_uint_eq(h->n_appendix, 1);
    ck_assert_uint_eq(h->data_offset, 256);
    ck_assert_uint_eq(h->data_size, 398);
    ck_assert_uint_eq(h->index_offset, 656);
    ck_assert_uint_eq(h->index_size, 672);
    ck_assert_uint_eq(h->meta_offset, 1328);
    ck_assert_uint_eq(h->meta_stored_size, 55);
    ck_assert_uint_eq(h->meta_raw_size, 55);
    ck_assert_uint_eq(h->meta_compression, 0);
    ck_assert_uint_eq(h->appendix_offset, 1384);
    ck_assert_uint_eq(h->appendix_size, 48);
    ck_assert_uint_eq(h->file_size, 1432);
    const char *names[3] = {"model.layers.0.mlp.down_proj.weight", "model.layers.1.mlp.down_proj.weight", "model.norm.weight"};
    const uint32_t codecs[3] = {SQ_CODEC_INT4, SQ_CODEC_INT8, SQ_CODEC_F32};
    const uint32_t nparts[3] = {2, 3, 1};
    const uint64_t offs[3][3] = {{256, 320, 0}, {384, 448, 512}, {576, 0, 0}};
    const uint64_t sizes[3][3] = {{32, 4, 0}, {64, 4, 2}, {32, 0, 0}};
    for (uint32_t i = 0; i < 3; i++) {
        const sq_tensor *t = sq_file_tensor(f, i);
        ck_assert_str_eq(t->name, names[i]);
        ck_assert_uint_eq(t->codec, codecs[i]);
        ck_assert_uint_eq(t->n_parts, nparts[i]);
        ck_assert_uint_eq(t->src_dtype, SQ_DT_F32);
        for (uint32_t k = 0; k < t->n_parts; k++) {
            ck_assert_uint_eq(t->parts[k].offset, offs[i][k]);
            ck_assert_uint_eq(t->parts[k].stored_size, sizes[i][k]);
        }
    }
    const sq_tensor *t0 = sq_file_tensor(f, 0);
    ck_assert_uint_eq(t0->params[SQ_P_GROUP], 32);
    ck_assert_uint_eq(t0->params[SQ_P_FLAGS], 0);
    ck_assert_uint_eq(t0->params[SQ_P_SCALE_DTYPE], SQ_DT_F16);
    ck_assert_uint_eq(t0->parts[0].checksum, 0xc436a54dfb8fb186ull); /* xxhsum -H64 of bytes 256..287 */
    const sq_tensor *t1 = sq_file_tensor(f, 1);
    ck_assert_uint_eq(t1->params[SQ_P_GROUP], SQ_GROUP_ROW);
    ck_assert_uint_eq(t1->params[SQ_P_FLAGS], SQ_PF_ASYM);
    ck_assert_str_eq(sq_file_metadata(f, &err), "{\"config\":{\"model_type\":\"llama\",\"num_hidden_layers\":2}}");
    const sq_appendix *a = sq_file_appendix(f, 0);
    ck_assert_uint_eq(a->type, SQ_APPX_SPARSITY);
    ck_assert_uint_eq(a->offset, 640);
    ck_assert_uint_eq(a->raw_size, 14);
    /* decoded weights of layer 0: w = i/8 - 2 is exact in int4 g32 sym (scale -2/-8 = 0.25) */
    sq_tview v;
    void *owned[SQ_CODEC_MAX_PARTS];
    ck_assert_int_eq(sq_tview_open(f, t0, 0, &v, owned, &err), 0);
    float out[64];
    sq_decode_rows(&v, 0, 2, out);
    for (int i = 0; i < 64; i++) {
        float want = (float)(i % 32) / 8.0f - 2.0f, step = 0.25f;
        ck_assert_msg(out[i] - want <= step / 2 && want - out[i] <= step / 2, "w[%d] = %g, want %g", i, out[i], want);
    }
    ck_assert_int_eq(sq_verify(f, NULL, NULL, &err), 0);
    sq_close(f);
}
END_TEST

/* The annotated hex dump in spec/squizd.md is the toy file, byte for byte. */
START_TEST(spec_hexdump_matches_toy) {
    size_t len, slen;
    uint8_t *b = toy(&len);
    char *spec = (char *)read_all(src_path("spec/squizd.md"), &slen);
    ck_assert_ptr_nonnull(spec);
    spec[slen] = 0;
    /* lines "OFFSET: HH HH ... | annotation" between the dump markers */
    char *p = strstr(spec, "<!-- hexdump:begin -->");
    char *end = strstr(spec, "<!-- hexdump:end -->");
    ck_assert_ptr_nonnull(p);
    ck_assert_ptr_nonnull(end);
    size_t got = 0;
    uint8_t *dump = malloc(len + 64);
    while (p < end) {
        char *nl = strchr(p, '\n');
        unsigned long off;
        int used;
        if (sscanf(p, "%lx:%n", &off, &used) == 1 && p[used] == ' ') {
            ck_assert_uint_eq(off, got);
            char *q = p + used;
            unsigned v;
            int k;
            while (q < nl && *q != '|' && sscanf(q, " %2x%n", &v, &k) == 1) {
                ck_assert_uint_lt(got, len + 1);
                dump[got++] = (uint8_t)v;
                q += k;
            }
        }
        p = nl + 1;
    }
    ck_assert_uint_eq(got, len);
    ck_assert_int_eq(memcmp(dump, b, len), 0);
    free(dump);
    free(spec);
    free(b);
}
END_TEST

/* ---------- hostile inputs ---------- */
START_TEST(every_truncation_is_rejected) {
    size_t len;
    uint8_t *b = toy(&len);
    for (size_t n = 0; n < len; n++) {
        sq_status st = check_bytes(b, n);
        ck_assert_msg(st == SQ_ECORRUPT, "truncation to %zu bytes gave status %d", n, st);
    }
    free(b);
}
END_TEST

START_TEST(bit_flips_are_detected) {
    /* every byte is covered: by a checksum, or as padding that must be zero
     * (between blobs and sections, after names; spec/squizd.md §8) */
    size_t len;
    uint8_t *b = toy(&len);
    for (size_t i = 0; i < len; i++) {
        uint8_t old = b[i];
        b[i] ^= (uint8_t)(1u << (i % 8));
        sq_status st = check_bytes(b, len);
        ck_assert_msg(st != SQ_OK, "flip at byte %zu not detected", i);
        b[i] = old;
    }
    free(b);
}
END_TEST

/* The conformance vectors through the library: a file squish-verify refuses
 * for a value rule (spec/codecs.md §10) opens, but none of its bad tensors
 * reaches a decoder (sq_tview_open, which the runtime uses, refuses it);
 * every tensor of a valid file opens and decodes to finite values. */
START_TEST(vectors_decode_or_are_refused) {
    size_t mlen;
    char *man = (char *)read_all(src_path("testdata/squizd-vectors/MANIFEST"), &mlen);
    ck_assert_ptr_nonnull(man);
    man[mlen] = 0;
    int n_valid = 0, n_values = 0;
    for (char *line = strtok(man, "\n"); line; line = strtok(NULL, "\n")) {
        char file[128], rule[16];
        int verify, inspect;
        if (line[0] == '#' || sscanf(line, "%127s %d %d %15s", file, &verify, &inspect, rule) != 4) continue;
        if (verify != 0 && rule[0] != 'V') continue;
        char path[512];
        snprintf(path, sizeof path, "testdata/squizd-vectors/%s", file);
        sq_err err = {0};
        sq_file *f = sq_open(src_path(path), &err);
        ck_assert_msg(f != NULL, "%s: %s", file, err.msg);
        int refused = 0;
        for (uint32_t i = 0; i < sq_file_ntensors(f); i++) {
            sq_tview v;
            void *owned[SQ_CODEC_MAX_PARTS];
            sq_status st = sq_tview_open(f, sq_file_tensor(f, i), 0, &v, owned, &err);
            if (st) {
                ck_assert_msg(verify != 0, "%s: valid, but %s", file, err.msg);
                ck_assert_int_eq(st, SQ_ECORRUPT);
                ck_assert_msg(strstr(err.msg, sq_file_tensor(f, i)->name) && strstr(err.msg, " part "),
                              "%s: the refusal does not name the tensor and part: %s", file, err.msg);
                refused++;
                continue;
            }
            float *out = malloc((size_t)(v.rows * v.cols) * sizeof(float));
            sq_decode_rows(&v, 0, v.rows, out);
            for (uint64_t k = 0; k < v.rows * v.cols; k++)
                ck_assert_msg(isfinite(out[k]), "%s: tensor %s decodes to %g at %llu", file, sq_file_tensor(f, i)->name,
                              (double)out[k], (unsigned long long)k);
            free(out);
            for (int k = 0; k < SQ_CODEC_MAX_PARTS; k++) free(owned[k]);
        }
        if (verify == 0) n_valid++;
        else {
            ck_assert_msg(refused == 1, "%s: %d tensors refused, want 1", file, refused);
            n_values++;
        }
        ck_assert_int_eq(sq_verify(f, NULL, NULL, &err), verify == 0 ? SQ_OK : SQ_ECORRUPT);
        sq_close(f);
    }
    ck_assert_int_ge(n_valid, 10);
    ck_assert_int_ge(n_values, 15);
    free(man);
}
END_TEST

START_TEST(bit_flips_with_fixed_checksums_never_crash) {
    /* the parser itself must reject (or safely accept) every field change */
    size_t len;
    uint8_t *b = toy(&len);
    uint64_t io = rd64(b + 104), is = rd64(b + 112);
    for (size_t i = 0; i < 248; i++)
        for (int bit = 0; bit < 8; bit += 3) {
            uint8_t *c = malloc(len);
            memcpy(c, b, len);
            c[i] ^= (uint8_t)(1u << bit);
            fix_checksums(c, len);
            check_bytes(c, len);
            free(c);
        }
    for (size_t i = io; i < io + is; i++) {
        uint8_t *c = malloc(len);
        memcpy(c, b, len);
        c[i] ^= (uint8_t)(1u << (i % 8));
        fix_checksums(c, len);
        check_bytes(c, len);
        free(c);
    }
    free(b);
}
END_TEST

/* Byte positions of fields in the toy file, taken from a parse of it. */
typedef struct toy_at {
    uint64_t t0_rec, t0_name, p0_rec, p1_rec;
} toy_at;

static toy_at toy_positions(void) {
    sq_err err;
    sq_file *f = sq_open(src_path("testdata/toy.squizd"), &err);
    ck_assert_ptr_nonnull(f);
    const sq_tensor *t = sq_file_tensor(f, 0);
    toy_at a = {t->rec_offset, t->rec_offset + 48 + 8 * t->ndim, t->parts[0].rec_offset, t->parts[1].rec_offset};
    sq_close(f);
    return a;
}

static sq_status crafted(void (*edit)(uint8_t *b, toy_at a)) {
    size_t len;
    uint8_t *b = toy(&len);
    edit(b, toy_positions());
    fix_checksums(b, len);
    sq_status st = check_bytes(b, len);
    free(b);
    return st;
}
static void e_version2(uint8_t *b, toy_at a) { (void)a; b[4] = 2; }
static void e_incompat(uint8_t *b, toy_at a) { (void)a; b[24] = 1; }
static void e_ntensors_huge(uint8_t *b, toy_at a) { (void)a; wr32(b + 96, 0xffffffffu); }
static void e_index_offset_overflow(uint8_t *b, toy_at a) { (void)a; wr64(b + 104, UINT64_MAX - 10); }
static void e_meta_huge(uint8_t *b, toy_at a) { (void)a; wr64(b + 136, UINT64_MAX); }
static void e_alignment(uint8_t *b, toy_at a) { (void)a; wr32(b + 12, 48); }
static void e_part_offset_past_end(uint8_t *b, toy_at a) { wr64(b + a.p0_rec + 8, 1ull << 62); }
static void e_part_offset_overflow(uint8_t *b, toy_at a) { wr64(b + a.p0_rec + 8, UINT64_MAX - 63); }
static void e_name_len_huge(uint8_t *b, toy_at a) { b[a.t0_rec + 4] = 0xff; b[a.t0_rec + 5] = 0xff; }
static void e_name_nul(uint8_t *b, toy_at a) { b[a.t0_name + 3] = 0; }
static void e_unknown_codec(uint8_t *b, toy_at a) { b[a.t0_rec + 8] = 0xee; }
static void e_required_appendix(uint8_t *b, toy_at a) { (void)a; uint64_t p = rd64(b + 168); wr32(b + p, 77); wr32(b + p + 4, 1); }
static void e_optional_appendix(uint8_t *b, toy_at a) { /* unknown type, and no SPARSE flag any more */
    (void)a;
    uint64_t p = rd64(b + 168);
    wr32(b + p, 77);
    b[17] &= (uint8_t)~(SQ_FLAG_SPARSE >> 8);
}
static void e_raw_size_lie(uint8_t *b, toy_at a) { wr64(b + a.p0_rec + 24, 1ull << 50); }
static void e_record_len(uint8_t *b, toy_at a) { wr32(b + a.t0_rec, 0xfffffff8u); }
static void e_nparts_zero(uint8_t *b, toy_at a) { b[a.t0_rec + 10] = 0; }
static void e_ndim_huge(uint8_t *b, toy_at a) { b[a.t0_rec + 6] = 200; }
static void e_flags_wrong(uint8_t *b, toy_at a) { (void)a; b[16] ^= 0x04; }
static void e_overlap(uint8_t *b, toy_at a) { wr64(b + a.p1_rec + 8, rd64(b + a.p0_rec + 8)); }
static void e_part_dims(uint8_t *b, toy_at a) { wr64(b + a.p0_rec + 40, 3); wr64(b + a.p0_rec + 24, 3 * 16); wr64(b + a.p0_rec + 16, 48); }

START_TEST(crafted_fields_give_documented_errors) {
    ck_assert_int_eq(crafted(e_version2), SQ_EUNSUPPORTED);
    ck_assert_int_eq(crafted(e_incompat), SQ_EUNSUPPORTED);
    ck_assert_int_eq(crafted(e_ntensors_huge), SQ_ECORRUPT);
    ck_assert_int_eq(crafted(e_index_offset_overflow), SQ_ECORRUPT);
    ck_assert_int_eq(crafted(e_meta_huge), SQ_ECORRUPT);
    ck_assert_int_eq(crafted(e_alignment), SQ_ECORRUPT);
    ck_assert_int_eq(crafted(e_part_offset_past_end), SQ_ECORRUPT);
    ck_assert_int_eq(crafted(e_name_len_huge), SQ_ECORRUPT);
    ck_assert_int_eq(crafted(e_name_nul), SQ_ECORRUPT);
    ck_assert_int_eq(crafted(e_unknown_codec), SQ_EUNSUPPORTED);
    ck_assert_int_eq(crafted(e_required_appendix), SQ_EUNSUPPORTED);
    ck_assert_int_eq(crafted(e_optional_appendix), SQ_OK);
    ck_assert_int_eq(crafted(e_raw_size_lie), SQ_ECORRUPT);
    ck_assert_int_eq(crafted(e_record_len), SQ_ECORRUPT);
    ck_assert_int_eq(crafted(e_nparts_zero), SQ_ECORRUPT);
    ck_assert_int_eq(crafted(e_ndim_huge), SQ_ECORRUPT);
    ck_assert_int_eq(crafted(e_flags_wrong), SQ_ECORRUPT);
    ck_assert_int_eq(crafted(e_overlap), SQ_ECORRUPT);
    ck_assert_int_eq(crafted(e_part_offset_overflow), SQ_ECORRUPT);
    ck_assert_int_eq(crafted(e_part_dims), SQ_ECORRUPT);
}
END_TEST

/* ---------- the writer under a file-size limit (a full disk) ---------- */
START_TEST(full_disk_leaves_nothing) {
    const char *d = tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/out.squizd", d);
    ck_assert_int_eq(write_all_file(path, "previous", 8), 0); /* an existing output stays untouched */
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit rl = {4096, 4096};
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
    sq_err err = {0};
    sq_writer *w = sq_writer_open(path, NULL, &err);
    ck_assert_ptr_nonnull(w);
    static float big[4096];
    uint64_t dims[2] = {64, 64};
    sq_status st = sq_writer_begin_tensor(w, "t", 2, dims, SQ_DT_F32, SQ_CODEC_F32, NULL, &err);
    if (!st) st = sq_writer_add_part(w, "data", SQ_DT_F32, 2, dims, big, sizeof big, SQ_COMP_NONE, &err);
    ck_assert_int_eq(st, SQ_EIO);
    ck_assert_msg(strstr(err.msg, path) && strstr(err.msg, "write failed"), "%s", err.msg);
    sq_writer_abort(w);
    size_t n;
    char *prev = (char *)read_all(path, &n);
    ck_assert_uint_eq(n, 8);
    ck_assert_int_eq(memcmp(prev, "previous", 8), 0);
    free(prev);
    DIR *dir = opendir(d);
    struct dirent *de;
    int files = 0;
    while ((de = readdir(dir))) files += de->d_name[0] != '.';
    closedir(dir);
    ck_assert_int_eq(files, 1); /* the temporary file is gone */
    unlink(path);
    rmdir(d);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("container");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, round_trip);
    tcase_add_test(tc, toy_file_fields);
    tcase_add_test(tc, spec_hexdump_matches_toy);
    tcase_add_test(tc, every_truncation_is_rejected);
    tcase_add_test(tc, bit_flips_are_detected);
    tcase_add_test(tc, vectors_decode_or_are_refused);
    tcase_add_test(tc, bit_flips_with_fixed_checksums_never_crash);
    tcase_add_test(tc, crafted_fields_give_documented_errors);
    tcase_add_test(tc, full_disk_leaves_nothing);
    suite_add_tcase(s, tc);
    return s;
}
RUN_SUITE(suite())
