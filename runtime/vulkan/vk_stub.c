/* The Vulkan backend's entry points in a build configured with
 * -DSQUISH_VULKAN=OFF: every call reports that the backend is absent. */
#include "vk.h"
#include "vk_decode.h"

#define ABSENT(err) sq_err_set(err, SQ_EUNSUPPORTED, "vulkan: this squish was built without Vulkan (-DSQUISH_VULKAN=OFF)")

sq_status sq_vk_open(const char *sel, sq_vk **out, sq_err *err) {
    (void)sel;
    *out = NULL;
    return ABSENT(err);
}
void sq_vk_close(sq_vk *vk) { (void)vk; }
const char *sq_vk_describe(const sq_vk *vk) { (void)vk; return "none"; }
sq_status sq_vk_list(FILE *out, sq_err *err) { (void)out; return ABSENT(err); }
int sq_vk_supported(const sq_tview *t) { (void)t; return 0; }
sq_status sq_vk_upload(sq_vk *vk, const sq_tview *t, sq_vk_tensor **out, sq_err *err) {
    (void)vk; (void)t;
    *out = NULL;
    return ABSENT(err);
}
void sq_vk_tensor_free(sq_vk *vk, sq_vk_tensor *t) { (void)vk; (void)t; }
uint64_t sq_vk_tensor_device_bytes(const sq_vk_tensor *t) { (void)t; return 0; }
sq_status sq_vk_matmul(sq_vk *vk, const sq_vk_tensor *w, const float *x, uint32_t T, float *y, sq_err *err) {
    (void)vk; (void)w; (void)x; (void)T; (void)y;
    return ABSENT(err);
}
sq_status sq_vk_gemv_many(sq_vk *vk, const sq_vk_tensor *const *w, int n, const float *x, float *const *y, sq_err *err) {
    (void)vk; (void)w; (void)n; (void)x; (void)y;
    return ABSENT(err);
}
sq_status sq_vk_dequant(sq_vk *vk, const sq_vk_tensor *w, uint64_t r0, uint64_t r1, float *out, sq_err *err) {
    (void)vk; (void)w; (void)r0; (void)r1; (void)out;
    return ABSENT(err);
}
sq_status sq_vk_bench_copy(sq_vk *vk, uint64_t bytes, int reps, double *gbs, sq_err *err) {
    (void)vk; (void)bytes; (void)reps; (void)gbs;
    return ABSENT(err);
}
int sq_vk_has_integer_dot(const sq_vk *vk) { (void)vk; return 0; }
uint32_t sq_vk_subgroup(const sq_vk *vk) { (void)vk; return 0; }
int sq_vk_q8_supported(const sq_vk *vk, const sq_vk_tensor *w) { (void)vk; (void)w; return 0; }
int sq_vk_limbs_used(const sq_vk *vk, const sq_vk_tensor *w) { (void)vk; (void)w; return 0; }
sq_status sq_vk_gemv_q8(sq_vk *vk, const sq_vk_tensor *w, const float *x, float *y, sq_err *err) {
    (void)vk; (void)w; (void)x; (void)y;
    return ABSENT(err);
}
sq_status sq_vk_bench_gemv(sq_vk *vk, sq_vk_tensor *const *w, int n, int reps, int kernel, double *seconds, sq_err *err) {
    (void)vk; (void)w; (void)n; (void)reps; (void)kernel; (void)seconds;
    return ABSENT(err);
}
int sq_vk_decode_wanted(void) { return 0; }
sq_status sq_vk_decode_init(const sq_rt_model *m, uint32_t max_seq, sq_vk_decode **out, sq_err *err) {
    (void)m; (void)max_seq;
    *out = NULL;
    return ABSENT(err);
}
sq_status sq_vk_decode_step(sq_vk_decode *d, uint32_t pos, int32_t token, float *logits, sq_err *err) {
    (void)d; (void)pos; (void)token; (void)logits;
    return ABSENT(err);
}
void sq_vk_decode_free(sq_vk_decode *d) { (void)d; }
uint32_t sq_vk_decode_dispatches(const sq_vk_decode *d) { (void)d; return 0; }
uint32_t sq_vk_decode_profile(const sq_vk_decode *d, const sq_vk_prof_row **rows, uint32_t *steps, const char **note) {
    (void)d;
    *rows = NULL;
    *steps = 0;
    *note = NULL;
    return 0;
}
void sq_vk_decode_profile_reset(sq_vk_decode *d) { (void)d; }
sq_status sq_vk_decode_attach(const sq_rt_model *m, sq_rt_cache *c, sq_err *err) {
    (void)m; (void)err;
    c->gpu = NULL;
    return SQ_OK;
}
sq_status sq_vk_decode_cache_step(sq_rt_cache *c, int32_t token, float *logits, sq_err *err) {
    (void)c; (void)token; (void)logits;
    return ABSENT(err);
}
