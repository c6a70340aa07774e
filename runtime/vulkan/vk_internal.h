/* Internals of the Vulkan backend: the run-time loaded entry points, the
 * device context and buffer helpers. */
#ifndef SQUISH_VK_INTERNAL_H
#define SQUISH_VK_INTERNAL_H

#define VK_NO_PROTOTYPES
#include <vulkan/vulkan.h>

#include "vk.h"

#define SQ_VK_GLOBAL_FNS(X) X(vkCreateInstance) X(vkEnumerateInstanceVersion)
#define SQ_VK_INSTANCE_FNS(X)                                                                                       \
    X(vkDestroyInstance) X(vkEnumeratePhysicalDevices) X(vkGetPhysicalDeviceProperties)                             \
    X(vkGetPhysicalDeviceQueueFamilyProperties) X(vkGetPhysicalDeviceMemoryProperties) X(vkCreateDevice)            \
    X(vkGetDeviceProcAddr) X(vkGetPhysicalDeviceFeatures2) X(vkGetPhysicalDeviceProperties2)
#define SQ_VK_DEVICE_FNS(X)                                                                                         \
    X(vkDestroyDevice) X(vkGetDeviceQueue) X(vkCreateBuffer) X(vkDestroyBuffer) X(vkGetBufferMemoryRequirements)    \
    X(vkAllocateMemory) X(vkFreeMemory) X(vkBindBufferMemory) X(vkMapMemory) X(vkUnmapMemory)                       \
    X(vkCreateShaderModule) X(vkDestroyShaderModule) X(vkCreateDescriptorSetLayout) X(vkDestroyDescriptorSetLayout) \
    X(vkCreatePipelineLayout) X(vkDestroyPipelineLayout) X(vkCreateComputePipelines) X(vkDestroyPipeline)           \
    X(vkCreateDescriptorPool) X(vkDestroyDescriptorPool) X(vkResetDescriptorPool) X(vkAllocateDescriptorSets)       \
    X(vkUpdateDescriptorSets) X(vkCreateCommandPool) X(vkDestroyCommandPool) X(vkAllocateCommandBuffers) X(vkFreeCommandBuffers) \
    X(vkBeginCommandBuffer) X(vkEndCommandBuffer) X(vkResetCommandBuffer) X(vkCmdBindPipeline)                      \
    X(vkCmdBindDescriptorSets) X(vkCmdPushConstants) X(vkCmdDispatch) X(vkCmdPipelineBarrier) X(vkCmdCopyBuffer)   \
    X(vkCmdResetQueryPool) X(vkCmdWriteTimestamp) X(vkCreateQueryPool) X(vkDestroyQueryPool)                        \
    X(vkGetQueryPoolResults) X(vkQueueSubmit) X(vkCreateFence) X(vkDestroyFence) X(vkWaitForFences)                 \
    X(vkResetFences) X(vkDeviceWaitIdle)

typedef struct sq_vk_fns {
#define SQ_VK_DECL(f) PFN_##f f;
    PFN_vkGetInstanceProcAddr vkGetInstanceProcAddr;
    SQ_VK_GLOBAL_FNS(SQ_VK_DECL)
    SQ_VK_INSTANCE_FNS(SQ_VK_DECL)
    SQ_VK_DEVICE_FNS(SQ_VK_DECL)
#undef SQ_VK_DECL
} sq_vk_fns;

typedef struct vk_buf {
    VkBuffer buf;
    VkDeviceMemory mem;
    VkDeviceSize size;
    void *map; /* host-visible buffers stay mapped */
    VkDeviceSize off; /* a view into buf from this byte offset (vk_decode.c's activations); 0 for a whole buffer */
} vk_buf;

/* Shader programs (one SPIR-V module each) and their pipelines, created on
 * first use per set of specialization constants. */
enum {
    VK_PROG_GEMV_CODES_NR1, VK_PROG_GEMV_CODES_NR2, VK_PROG_GEMV_CODES_NR4, VK_PROG_MATMUL_CODES, VK_PROG_GEMV_FLOAT,
    VK_PROG_MATMUL_FLOAT, VK_PROG_DEQUANT_CODES, VK_PROG_DEQUANT_FLOAT, VK_PROG_COPY, VK_PROG_GEMV_Q8, VK_PROG_GEMV_LIMBS,
    VK_PROG_READ,
    VK_PROG_GEMV_LATTICE, VK_PROG_MATMUL_LATTICE, VK_PROG_DEQUANT_LATTICE, VK_PROG_HADAMARD, /* vk_lattice.c */
    /* vk_codebook.c (AQLM) and vk_sparse.c (SpQR) */
    VK_PROG_GEMV_CODEBOOK_LUT, VK_PROG_CODEBOOK_SLABS, VK_PROG_GEMV_CODEBOOK, VK_PROG_MATMUL_CODEBOOK,
    VK_PROG_DEQUANT_CODEBOOK, VK_PROG_GEMV_SPARSE, VK_PROG_MATMUL_SPARSE, VK_PROG_DEQUANT_SPARSE,
    VK_PROG_GEMV_MIX, VK_PROG_MATMUL_MIX, VK_PROG_DEQUANT_MIX, /* vk_mix.c */
    VK_PROG_DECODE, /* vk_decode.c: the decode step's other operations */
    VK_PROG_GEMV_CODES_NR8, VK_PROG_GEMV_CODES_NR16, VK_PROG_GEMV_LIMBS_NR8, /* vk_ops.c: more rows per invocation */
    VK_PROG_COUNT
};
#define VK_MATMUL_TOKENS 8 /* activation rows per workgroup of the matmul programs (-DTT) */
#define VK_NSPEC 7 /* WG, BITS/DT, SCALE, ZERO, LUTN, RPW, PF (constant_id 0..6) */
typedef struct vk_pipe {
    int prog;
    uint32_t spec[VK_NSPEC];
    VkPipeline pipe;
} vk_pipe;

/* Push constants: mirrors `Push` in shaders/common.glsl. */
typedef struct vk_push {
    uint32_t rows, cols, nchunks, xstride;
    uint32_t codes, scales, zeros, aux;
    uint32_t srow, gshift, T, row_base;
    uint32_t grid_x, ystride, pad0, pad1;
    uint32_t crow, swz, ngroups, pad2; /* words per row of codes; workgroup order (see common.glsl) */
} vk_push;

struct sq_vk {
    void *lib;
    sq_vk_fns f;
    VkInstance inst;
    VkPhysicalDevice phys;
    VkPhysicalDeviceProperties props;
    VkPhysicalDeviceMemoryProperties mem;
    VkDevice dev;
    VkQueue queue;
    uint32_t qfamily, timestamp_bits, inst_api;
    VkCommandPool cmd_pool;
    VkCommandBuffer cmd;
    VkFence fence;
    VkDescriptorSetLayout dsl;
    VkPipelineLayout layout;
    VkDescriptorPool dpool;
    VkShaderModule mod[VK_PROG_COUNT];
    vk_pipe *pipes;
    int npipes;
    uint32_t wg; /* invocations per workgroup */
    int has_dot; /* shaderIntegerDotProduct enabled (the q8 and limb GEMVs) */
    uint32_t sg_size; /* subgroup size where compute shaders have subgroup shuffles (0: none) */
    int subgroup;     /* the GEMV/decode programs end in subgroup shuffles (reduce.glsl; vk_pipelines.c) */
    /* scratch: activations and results (device-local and host staging), value table */
    vk_buf x_dev, x_host, y_dev, y_host, staging, lut;
    double bench_done; /* vk_bench.c: host time its last submission completed (0: none yet) */
    uint64_t binds;    /* sq_vk_bind calls so far: one per dispatch recorded (vk_decode.c counts a token's) */
    char desc[400];
};

/* sq_vk_tensor.family beyond 0 (codes) and 1 (float): the codec family's own number */
#define VK_FAM_CODEBOOK SQ_FAMILY_CODEBOOK  /* vk_codebook.c */
#define VK_FAM_SPARSE SQ_FAMILY_SPARSE_DENSE /* vk_sparse.c */
#define VK_FAM_MIX SQ_FAMILY_MIXED /* vk_mix.c */

struct sq_vk_tensor {
    const sq_codec *codec;
    uint64_t rows, cols;
    int family; /* 0: codes (integer / table-driven), 1: float, else VK_FAM_* */
    uint32_t spec[VK_NSPEC]; /* BITS/DT, SCALE, ZERO, LUTN (indices 1..4) */
    vk_push push;            /* part offsets and group geometry */
    const float *lut_values; /* table-driven codecs */
    sq_tview xform;          /* rows, cols and the transform links, applied on the host */
    vk_buf buf;
    vk_buf lut; /* value table of a table-driven codec */
    uint32_t rht[2]; /* lattice family: word offsets in lut of the rht_in / rht_out links run on the device, 0 = none */
    /* families with their own host code (VK_FAM_*): set by their describe */
    vk_buf extra; /* a second device buffer they own (AQLM: the split GEMV's partial sums) */
    /* after the parts are in buf (off: each layout part's byte offset there) */
    sq_status (*upload)(sq_vk *vk, const sq_tview *v, sq_vk_tensor *t, const uint64_t *off, sq_err *err);
    /* records the GEMV/matmul in place of sq_vk_record_gemv's codes/float programs */
    sq_status (*record)(sq_vk *vk, const sq_vk_tensor *w, const vk_buf *x, const vk_buf *y, uint32_t T, sq_err *err);
    int dequant_prog;       /* its dequantize program (0: the codes/float one) */
    uint32_t dequant_items; /* and that program's invocations per row */
};

/* vk_codebook.c, vk_sparse.c: describe() of those families (0: no kernel) */
int sq_vk_describe_codebook(const sq_tview *v, sq_vk_tensor *t);
int sq_vk_describe_sparse(const sq_tview *v, sq_vk_tensor *t);
int sq_vk_describe_mix(const sq_tview *v, sq_vk_tensor *t);
/* vk_codebook.c: invocations per row (a power of two, 16..wg, SQUISH_VULKAN_TPR overrides)
 * giving each min_units or more of the row's units */
uint32_t sq_vk_threads_per_row(const sq_vk *vk, uint64_t units, uint32_t min_units);
/* vk_codebook.c: records the GEMV (T = 1) or matmul (T > 1) program of a
 * family whose shaders take rpw rows per workgroup in specialization
 * constant 5 (codebook, sparse, mix): binds the weights, aux (or NULL), x
 * and y, and dispatches the rows' workgroups by VK_MATMUL_TOKENS tokens. */
sq_status sq_vk_record_rows(sq_vk *vk, const sq_vk_tensor *w, const vk_buf *aux, const vk_buf *x, const vk_buf *y, uint32_t T,
                            int gemv_prog, int matmul_prog, uint32_t rpw, sq_err *err);
/* vk_tensor.c: copies n host bytes into a device buffer at byte offset off */
sq_status sq_vk_copy_in(sq_vk *vk, vk_buf *buf, uint64_t off, const void *src, uint64_t n, sq_err *err);

/* vk_device.c */
const char *sq_vk_result_name(VkResult r);
sq_status sq_vk_fail(sq_err *err, VkResult r, const char *what);
sq_status sq_vk_buf_create(sq_vk *vk, VkDeviceSize size, int host, vk_buf *b, sq_err *err);
void sq_vk_buf_free(sq_vk *vk, vk_buf *b);
/* Grows a scratch buffer to at least size bytes. */
sq_status sq_vk_buf_reserve(sq_vk *vk, vk_buf *b, VkDeviceSize size, int host, sq_err *err);
sq_status sq_vk_begin(sq_vk *vk, sq_err *err);
sq_status sq_vk_submit_wait(sq_vk *vk, sq_err *err);
void sq_vk_barrier(sq_vk *vk);

/* vk_ops.c: record the integer-dot GEMVs (x: the layout of gemv_q8.comp with 1
 * limb, the q8 rounding, or 4 limbs, the exact-activation GEMV). */
sq_status sq_vk_record_gemv_q8(sq_vk *vk, const sq_vk_tensor *w, const vk_buf *x, const vk_buf *y, sq_err *err);
sq_status sq_vk_record_gemv_limbs(sq_vk *vk, const sq_vk_tensor *w, const vk_buf *x, const vk_buf *y, sq_err *err);
/* vk_ops.c: bytes of that layout for w, and x (cols values; the input
 * transform applied here) written in it; *held = 0 where four limbs cannot
 * hold x (a non-finite value, or a block whose scale would be subnormal). */
VkDeviceSize sq_vk_idot_x_bytes(const sq_vk_tensor *w, uint32_t limbs);
sq_status sq_vk_pack_idot(const sq_vk_tensor *w, const float *x, uint32_t limbs, uint32_t *out, int *held, sq_err *err);
/* vk_ops.c: records a GEMV/matmul of T activation rows (x: T rows of nchunks*32 floats) into y [T][rows]. */
sq_status sq_vk_record_gemv(sq_vk *vk, const sq_vk_tensor *w, const vk_buf *x, const vk_buf *y, uint32_t T, sq_err *err);

/* vk_pipelines.c */
sq_status sq_vk_pipelines_init(sq_vk *vk, sq_err *err);
void sq_vk_pipelines_free(sq_vk *vk);
sq_status sq_vk_pipeline(sq_vk *vk, int prog, const uint32_t spec[VK_NSPEC], VkPipeline *out, sq_err *err);
/* The same with wg invocations per workgroup instead of vk->wg (a multiple of it, within the device's limit). */
sq_status sq_vk_pipeline_wg(sq_vk *vk, int prog, const uint32_t spec[VK_NSPEC], uint32_t wg, VkPipeline *out, sq_err *err);
/* Binds pipeline + a fresh descriptor set over (weights, lut, in, out) and pushes constants. */
sq_status sq_vk_bind(sq_vk *vk, VkPipeline pipe, const vk_buf *weights, const vk_buf *lut, const vk_buf *in,
                     VkDeviceSize in_size, const vk_buf *out, VkDeviceSize out_size, const vk_push *push, sq_err *err);
/* Dispatches n workgroups (wrapping into z beyond 65535) times gy; sets push->grid_x first. */
void sq_vk_grid(uint64_t n, uint32_t *gx, uint32_t *gz);

#endif
