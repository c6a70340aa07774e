/* Vulkan compute backend of the reference runtime: weights uploaded once from
 * the tensors' stored parts (the same packed bytes the CPU kernels read), a
 * GEMV/matmul and a dequantize shader per codec family (integer and
 * table-driven codes; plain floats), and the benchmark's copy shader.
 *
 * libvulkan is loaded at run time (dlopen), so the tools start and the CPU
 * path works on machines without a Vulkan loader or device; sq_vk_open then
 * fails with SQ_EUNSUPPORTED and a message that says what is missing. */
#ifndef SQUISH_VK_H
#define SQUISH_VK_H

#include <stdint.h>
#include <stdio.h>

#include "squish/codec.h"
#include "squish/error.h"

typedef struct sq_vk sq_vk;
typedef struct sq_vk_tensor sq_vk_tensor;

/* Opens a device. sel: NULL or "" = $SQUISH_VULKAN_DEVICE, else automatic
 * (first discrete GPU, then integrated, virtual, CPU); a number picks that
 * index of sq_vk_list's order, other text the first device whose name
 * contains it (case-insensitive). */
sq_status sq_vk_open(const char *sel, sq_vk **out, sq_err *err);
void sq_vk_close(sq_vk *vk);
/* "NAME (TYPE, Vulkan X.Y.Z, driver ...)" */
const char *sq_vk_describe(const sq_vk *vk);
/* Prints one line per device: index, type, name, API version. */
sq_status sq_vk_list(FILE *out, sq_err *err);

/* 1 if the backend has kernels for this tensor's codec and parameters. */
int sq_vk_supported(const sq_tview *t);
/* Uploads the tensor's parts (input transforms stay on the host: activations
 * are permuted/scaled before upload, as the CPU matmul does; the lattice
 * family's Hadamard links run on the device, vk_lattice.h). */
sq_status sq_vk_upload(sq_vk *vk, const sq_tview *t, sq_vk_tensor **out, sq_err *err);
void sq_vk_tensor_free(sq_vk *vk, sq_vk_tensor *t);
/* Bytes of device memory holding t's parts (with any row padding, SQUISH_VULKAN_ROWPAD). */
uint64_t sq_vk_tensor_device_bytes(const sq_vk_tensor *t);

/* Y[T][rows] = X[T][cols] * W^T on the device (X in the layer's original
 * input order). Summation order differs from the CPU kernels; results are
 * reproducible on one device. */
sq_status sq_vk_matmul(sq_vk *vk, const sq_vk_tensor *w, const float *x, uint32_t T, float *y, sq_err *err);
/* y[i] = W_i x for n tensors of one input vector x (each W_i's cols values):
 * the GEMVs sq_vk_matmul would run (T = 1), the same bits, in one submission
 * (a decode step's q/k/v or gate/up: one host round trip instead of n). */
sq_status sq_vk_gemv_many(sq_vk *vk, const sq_vk_tensor *const *w, int n, const float *x, float *const *y, sq_err *err);
/* Decodes rows [r0, r1) to f32 in stored column order (bit-exact with the
 * CPU decoder where no value is an f32 subnormal). */
sq_status sq_vk_dequant(sq_vk *vk, const sq_vk_tensor *w, uint64_t r0, uint64_t r1, float *out, sq_err *err);

/* Integer-activation GEMV (T = 1) of 4- and 8-bit integer codecs, on devices
 * with integer dot products (Vulkan 1.3): x is rounded to int8 in blocks of
 * 32 (sq_act_q8_init) and the result equals the CPU's q8 kernels up to float
 * summation order. sq_vk_q8_supported says whether it runs for w here. */
int sq_vk_has_integer_dot(const sq_vk *vk);
/* The subgroup size when the GEMV and decode programs end their sums in
 * subgroup shuffles, 0 when in shared memory alone (the device lacks
 * shuffles in compute shaders, the workgroup is not a multiple of the
 * subgroup, or SQUISH_VULKAN_SUBGROUP=0). The results are bit-identical
 * either way (shaders/reduce.glsl). */
uint32_t sq_vk_subgroup(const sq_vk *vk);
int sq_vk_q8_supported(const sq_vk *vk, const sq_vk_tensor *w);
/* Whether sq_vk_matmul with T = 1 runs the exact-activation integer-dot GEMV
 * for w here (4- and 8-bit integer codecs on devices with integer dot
 * products, by default on GPUs; SQUISH_VULKAN_LIMBS=0|1 turns it off or on,
 * also on CPU devices): x is split per block of 32 into a
 * scale and four int8 limbs, x = d (l1 + l2 2^-7 + l3 2^-14 + l4 2^-21) to
 * within 2^-22 d, so the result is the float GEMV's within its tolerance. */
int sq_vk_limbs_used(const sq_vk *vk, const sq_vk_tensor *w);
sq_status sq_vk_gemv_q8(sq_vk *vk, const sq_vk_tensor *w, const float *x, float *y, sq_err *err);

/* Benchmark helpers, timed on the device (timestamp queries where the queue
 * has them, otherwise the host clock around submit and wait). */
/* Copies a buffer of `bytes` `reps` times; *gbs = (read + written bytes) / s. */
sq_status sq_vk_bench_copy(sq_vk *vk, uint64_t bytes, int reps, double *gbs, sq_err *err);
/* What sq_vk_bench_gemv runs per tensor: the GEMV (T = 1) sq_vk_matmul
 * would run, the q8 GEMV, or a shader that only reads the tensor's buffer
 * (the same bytes, dispatched the same way: the ceiling for that size). */
enum { SQ_VK_BENCH_GEMV, SQ_VK_BENCH_Q8, SQ_VK_BENCH_READ };
/* That kernel over the n tensors in turn (a barrier between each), `reps`
 * rounds; *seconds per call. */
sq_status sq_vk_bench_gemv(sq_vk *vk, sq_vk_tensor *const *w, int n, int reps, int kernel, double *seconds, sq_err *err);

#endif
