/* Which instruction-set path the kernels take: the best the CPU has,
 * lowered by SQUISH_ISA. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "squish/codec.h"

const char *sq_isa_name(sq_isa isa) {
    static const char *const n[] = {"portable", "avx2", "avx512"};
    return isa < SQ_ISA_COUNT ? n[isa] : "?";
}

/* CPU features and SQUISH_ISA are read once per process: dispatch happens on
 * every kernel call (dozens per decoded token). */
static int isa_ok[SQ_ISA_COUNT];
static int vbmi_ok, gfni_ok; /* beyond the AVX-512 level: the byte-shuffle kernels (quip, spqr q8) */
static sq_isa isa_active;
static pthread_once_t isa_once = PTHREAD_ONCE_INIT;

static void isa_probe(void) {
    isa_ok[SQ_ISA_PORTABLE] = 1;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    /* every AVX2 CPU also has F16C, which the AVX2 kernels use (clang cannot test it here) */
    isa_ok[SQ_ISA_AVX2] = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    isa_ok[SQ_ISA_AVX512] = isa_ok[SQ_ISA_AVX2] && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                            __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
    vbmi_ok = isa_ok[SQ_ISA_AVX512] && __builtin_cpu_supports("avx512vbmi");
    gfni_ok = isa_ok[SQ_ISA_AVX512] && __builtin_cpu_supports("gfni");
#endif
    sq_isa best = SQ_ISA_PORTABLE;
    for (int i = SQ_ISA_COUNT - 1; i > 0; i--)
        if (isa_ok[i]) { best = (sq_isa)i; break; }
    const char *e = getenv("SQUISH_ISA");
    if (e && *e)
        for (int i = 0; i < SQ_ISA_COUNT; i++)
            if (!strcmp(e, sq_isa_name((sq_isa)i)) && i < (int)best) best = (sq_isa)i;
    isa_active = best;
}

int sq_isa_supported(sq_isa isa) {
    pthread_once(&isa_once, isa_probe);
    return isa < SQ_ISA_COUNT && isa_ok[isa];
}

sq_isa sq_isa_active(void) {
    pthread_once(&isa_once, isa_probe);
    return isa_active;
}

int sq_isa_avx512_vbmi(void) {
    pthread_once(&isa_once, isa_probe);
    return vbmi_ok;
}

int sq_isa_avx512_gfni(void) {
    pthread_once(&isa_once, isa_probe);
    return gfni_ok;
}
