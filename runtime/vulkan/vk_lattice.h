/* The lattice family (QuIP#, spec/codecs.md §11) on the Vulkan backend:
 * E8P12 decode and the later stages (E81B or E8P12 residual, E8R nested)
 * fused with the GEMV (shaders/gemv_lattice.comp), its
 * dequantize shader, and the randomized Hadamard transforms of the
 * transform chain's rht_in / rht_out links run on the device
 * (shaders/hadamard.comp) instead of on the host. */
#ifndef SQUISH_VK_LATTICE_H
#define SQUISH_VK_LATTICE_H

#include "vk.h"

struct vk_buf;

/* sq_vk_tensor.family of lattice tensors (0: codes, 1: float). */
#define SQ_VK_FAMILY_LATTICE SQ_FAMILY_LATTICE

/* describe() of vk_tensor.c for the lattice family: fills t's family, spec
 * constants and push geometry; 0 when the backend has no kernel for v. */
int sq_vk_describe_lattice(const sq_tview *v, sq_vk_tensor *t);
/* After the parts are uploaded: the codebook tables and the Hadamard links'
 * signs (and Paley matrices) in t->lut, and those links taken off the
 * host's transform chain (t->xform) because the GEMV runs them. */
sq_status sq_vk_lattice_upload(sq_vk *vk, const sq_tview *v, sq_vk_tensor *t, sq_err *err);
/* sq_vk_record_gemv for lattice tensors: rht_in on x in place (T rows of
 * xstride floats), the GEMV/matmul into y, rht_out on y in place. */
sq_status sq_vk_record_gemv_lattice(sq_vk *vk, const sq_vk_tensor *w, const struct vk_buf *x, const struct vk_buf *y,
                                    uint32_t T, sq_err *err);
/* sq_vk_dequant for lattice tensors (the stored basis, as the CPU decoder). */
sq_status sq_vk_dequant_lattice(sq_vk *vk, const sq_vk_tensor *w, uint64_t r0, uint64_t r1, float *out, sq_err *err);

/* x <- Ĥ·diag(s)·x (inverse = 0) or x <- diag(s)·Ĥᵀ·x (inverse = 1) for T
 * rows of n floats on the device, s the bit-packed signs of a transform
 * link (xform/hadamard.h): what the lattice GEMV does to its activations
 * and results. The same bits as the CPU's sq_rht_apply / sq_rht_inverse
 * where no value is an f32 subnormal (a device may flush those). */
sq_status sq_vk_rht(sq_vk *vk, const uint8_t *signs, uint64_t n, int inverse, float *x, uint32_t T, sq_err *err);

#endif
