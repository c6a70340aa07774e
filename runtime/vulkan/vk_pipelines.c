/* The embedded SPIR-V programs (compiled by glslc at build time), the one
 * descriptor-set layout they share, and compute pipelines created on first
 * use for each set of specialization constants. */
#include <stdlib.h>
#include <string.h>

#include "vk_internal.h"

/* glslc -mfmt=c output: a brace-enclosed list of 32-bit words */
static const uint32_t spv_gemv_codes_nr1[] =
#include "gemv_codes_nr1.spv.h"
    ;
static const uint32_t spv_gemv_codes_nr2[] =
#include "gemv_codes_nr2.spv.h"
    ;
static const uint32_t spv_gemv_codes_nr4[] =
#include "gemv_codes_nr4.spv.h"
    ;
static const uint32_t spv_matmul_codes[] =
#include "matmul_codes.spv.h"
    ;
static const uint32_t spv_gemv_float[] =
#include "gemv_float.spv.h"
    ;
static const uint32_t spv_matmul_float[] =
#include "matmul_float.spv.h"
    ;
static const uint32_t spv_dequant_codes[] =
#include "dequant_codes.spv.h"
    ;
static const uint32_t spv_dequant_float[] =
#include "dequant_float.spv.h"
    ;
static const uint32_t spv_copy[] =
#include "copy.spv.h"
    ;
static const uint32_t spv_gemv_q8[] =
#include "gemv_q8.spv.h"
    ;
static const uint32_t spv_gemv_limbs[] =
#include "gemv_limbs.spv.h"
    ;
static const uint32_t spv_read[] =
#include "read.spv.h"
    ;
static const uint32_t spv_gemv_lattice[] =
#include "gemv_lattice.spv.h"
    ;
static const uint32_t spv_matmul_lattice[] =
#include "matmul_lattice.spv.h"
    ;
static const uint32_t spv_dequant_lattice[] =
#include "dequant_lattice.spv.h"
    ;
static const uint32_t spv_hadamard[] =
#include "hadamard.spv.h"
    ;
static const uint32_t spv_gemv_codebook_lut[] =
#include "gemv_codebook_lut.spv.h"
    ;
static const uint32_t spv_codebook_slabs[] =
#include "codebook_slabs.spv.h"
    ;
static const uint32_t spv_gemv_codebook[] =
#include "gemv_codebook.spv.h"
    ;
static const uint32_t spv_matmul_codebook[] =
#include "matmul_codebook.spv.h"
    ;
static const uint32_t spv_dequant_codebook[] =
#include "dequant_codebook.spv.h"
    ;
static const uint32_t spv_gemv_sparse[] =
#include "gemv_sparse.spv.h"
    ;
static const uint32_t spv_matmul_sparse[] =
#include "matmul_sparse.spv.h"
    ;
static const uint32_t spv_dequant_sparse[] =
#include "dequant_sparse.spv.h"
    ;
static const uint32_t spv_gemv_mix[] =
#include "gemv_mix.spv.h"
    ;
static const uint32_t spv_matmul_mix[] =
#include "matmul_mix.spv.h"
    ;
static const uint32_t spv_dequant_mix[] =
#include "dequant_mix.spv.h"
    ;
static const uint32_t spv_decode[] =
#include "decode.spv.h"
    ;
static const uint32_t spv_gemv_codes_nr8[] =
#include "gemv_codes_nr8.spv.h"
    ;
static const uint32_t spv_gemv_codes_nr16[] =
#include "gemv_codes_nr16.spv.h"
    ;
static const uint32_t spv_gemv_limbs_nr8[] =
#include "gemv_limbs_nr8.spv.h"
    ;

/* the programs that end in reduce.glsl's sums, built with subgroup shuffles */
static const uint32_t spv_gemv_codes_nr1_sg[] =
#include "gemv_codes_nr1_sg.spv.h"
    ;
static const uint32_t spv_gemv_codes_nr2_sg[] =
#include "gemv_codes_nr2_sg.spv.h"
    ;
static const uint32_t spv_gemv_codes_nr4_sg[] =
#include "gemv_codes_nr4_sg.spv.h"
    ;
static const uint32_t spv_matmul_codes_sg[] =
#include "matmul_codes_sg.spv.h"
    ;
static const uint32_t spv_gemv_float_sg[] =
#include "gemv_float_sg.spv.h"
    ;
static const uint32_t spv_matmul_float_sg[] =
#include "matmul_float_sg.spv.h"
    ;
static const uint32_t spv_gemv_q8_sg[] =
#include "gemv_q8_sg.spv.h"
    ;
static const uint32_t spv_gemv_limbs_sg[] =
#include "gemv_limbs_sg.spv.h"
    ;
static const uint32_t spv_gemv_lattice_sg[] =
#include "gemv_lattice_sg.spv.h"
    ;
static const uint32_t spv_matmul_lattice_sg[] =
#include "matmul_lattice_sg.spv.h"
    ;
static const uint32_t spv_gemv_codebook_sg[] =
#include "gemv_codebook_sg.spv.h"
    ;
static const uint32_t spv_matmul_codebook_sg[] =
#include "matmul_codebook_sg.spv.h"
    ;
static const uint32_t spv_gemv_sparse_sg[] =
#include "gemv_sparse_sg.spv.h"
    ;
static const uint32_t spv_matmul_sparse_sg[] =
#include "matmul_sparse_sg.spv.h"
    ;
static const uint32_t spv_gemv_mix_sg[] =
#include "gemv_mix_sg.spv.h"
    ;
static const uint32_t spv_matmul_mix_sg[] =
#include "matmul_mix_sg.spv.h"
    ;
static const uint32_t spv_decode_sg[] =
#include "decode_sg.spv.h"
    ;
static const uint32_t spv_gemv_codes_nr8_sg[] =
#include "gemv_codes_nr8_sg.spv.h"
    ;
static const uint32_t spv_gemv_codes_nr16_sg[] =
#include "gemv_codes_nr16_sg.spv.h"
    ;
static const uint32_t spv_gemv_limbs_nr8_sg[] =
#include "gemv_limbs_nr8_sg.spv.h"
    ;

#define PROG(n) {spv_##n, sizeof spv_##n}
static const struct {
    const uint32_t *code;
    size_t size;
} programs[VK_PROG_COUNT] = {
    PROG(gemv_codes_nr1), PROG(gemv_codes_nr2), PROG(gemv_codes_nr4), PROG(matmul_codes), PROG(gemv_float), PROG(matmul_float), PROG(dequant_codes), PROG(dequant_float), PROG(copy), PROG(gemv_q8),
    PROG(gemv_limbs), PROG(read),
    PROG(gemv_lattice), PROG(matmul_lattice), PROG(dequant_lattice), PROG(hadamard),
    PROG(gemv_codebook_lut), PROG(codebook_slabs), PROG(gemv_codebook), PROG(matmul_codebook), PROG(dequant_codebook),
    PROG(gemv_sparse), PROG(matmul_sparse), PROG(dequant_sparse),
    PROG(gemv_mix), PROG(matmul_mix), PROG(dequant_mix),
    PROG(decode),
    PROG(gemv_codes_nr8), PROG(gemv_codes_nr16), PROG(gemv_limbs_nr8),
};

#define PROG_SG(n, e) [VK_PROG_##e] = {spv_##n##_sg, sizeof spv_##n##_sg}
static const struct {
    const uint32_t *code;
    size_t size;
} programs_sg[VK_PROG_COUNT] = {
    PROG_SG(gemv_codes_nr1, GEMV_CODES_NR1),
    PROG_SG(gemv_codes_nr2, GEMV_CODES_NR2),
    PROG_SG(gemv_codes_nr4, GEMV_CODES_NR4),
    PROG_SG(matmul_codes, MATMUL_CODES),
    PROG_SG(gemv_float, GEMV_FLOAT),
    PROG_SG(matmul_float, MATMUL_FLOAT),
    PROG_SG(gemv_q8, GEMV_Q8),
    PROG_SG(gemv_limbs, GEMV_LIMBS),
    PROG_SG(gemv_lattice, GEMV_LATTICE),
    PROG_SG(matmul_lattice, MATMUL_LATTICE),
    PROG_SG(gemv_codebook, GEMV_CODEBOOK),
    PROG_SG(matmul_codebook, MATMUL_CODEBOOK),
    PROG_SG(gemv_sparse, GEMV_SPARSE),
    PROG_SG(matmul_sparse, MATMUL_SPARSE),
    PROG_SG(gemv_mix, GEMV_MIX),
    PROG_SG(matmul_mix, MATMUL_MIX),
    PROG_SG(decode, DECODE),
    PROG_SG(gemv_codes_nr8, GEMV_CODES_NR8),
    PROG_SG(gemv_codes_nr16, GEMV_CODES_NR16),
    PROG_SG(gemv_limbs_nr8, GEMV_LIMBS_NR8),
};

#define NBIND 4
#define POOL_SETS 4096

sq_status sq_vk_pipelines_init(sq_vk *vk, sq_err *err) {
    VkResult r;
    /* 128 invocations (measured a little faster than 256 on an H100); 64 is
     * the floor where a device allows less. SQUISH_VULKAN_WG overrides. */
    vk->wg = vk->props.limits.maxComputeWorkGroupInvocations >= 128 ? 128 : 64;
    const char *e = getenv("SQUISH_VULKAN_WG");
    if (e && (!strcmp(e, "64") || !strcmp(e, "128") || !strcmp(e, "256")) &&
        (uint32_t)atoi(e) <= vk->props.limits.maxComputeWorkGroupInvocations)
        vk->wg = (uint32_t)atoi(e);
    /* subgroup shuffles for the last levels of the GEMV sums where the device
     * has them and a workgroup is whole subgroups; SQUISH_VULKAN_SUBGROUP=0
     * keeps the shared-memory tree (the same bits, see shaders/reduce.glsl) */
    e = getenv("SQUISH_VULKAN_SUBGROUP");
    vk->subgroup = vk->sg_size && vk->wg % vk->sg_size == 0 && !(e && !strcmp(e, "0"));
    for (int i = 0; i < VK_PROG_COUNT; i++) {
        if ((i == VK_PROG_GEMV_Q8 || i == VK_PROG_GEMV_LIMBS || i == VK_PROG_GEMV_LIMBS_NR8) && !vk->has_dot)
            continue; /* needs integer dot products */
        int sg = vk->subgroup && programs_sg[i].code;
        VkShaderModuleCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
                                       .codeSize = sg ? programs_sg[i].size : programs[i].size,
                                       .pCode = sg ? programs_sg[i].code : programs[i].code};
        if ((r = vk->f.vkCreateShaderModule(vk->dev, &ci, NULL, &vk->mod[i]))) return sq_vk_fail(err, r, "vkCreateShaderModule");
    }
    VkDescriptorSetLayoutBinding b[NBIND];
    for (int i = 0; i < NBIND; i++)
        b[i] = (VkDescriptorSetLayoutBinding){.binding = (uint32_t)i, .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                                              .descriptorCount = 1, .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT};
    VkDescriptorSetLayoutCreateInfo lci = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO, .bindingCount = NBIND,
                                           .pBindings = b};
    if ((r = vk->f.vkCreateDescriptorSetLayout(vk->dev, &lci, NULL, &vk->dsl))) return sq_vk_fail(err, r, "vkCreateDescriptorSetLayout");
    VkPushConstantRange pcr = {.stageFlags = VK_SHADER_STAGE_COMPUTE_BIT, .offset = 0, .size = sizeof(vk_push)};
    VkPipelineLayoutCreateInfo plci = {.sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO, .setLayoutCount = 1,
                                       .pSetLayouts = &vk->dsl, .pushConstantRangeCount = 1, .pPushConstantRanges = &pcr};
    if ((r = vk->f.vkCreatePipelineLayout(vk->dev, &plci, NULL, &vk->layout))) return sq_vk_fail(err, r, "vkCreatePipelineLayout");
    VkDescriptorPoolSize ps = {.type = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, .descriptorCount = POOL_SETS * NBIND};
    VkDescriptorPoolCreateInfo dci = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO, .maxSets = POOL_SETS,
                                      .poolSizeCount = 1, .pPoolSizes = &ps};
    if ((r = vk->f.vkCreateDescriptorPool(vk->dev, &dci, NULL, &vk->dpool))) return sq_vk_fail(err, r, "vkCreateDescriptorPool");
    return SQ_OK;
}

void sq_vk_pipelines_free(sq_vk *vk) {
    for (int i = 0; i < vk->npipes; i++) vk->f.vkDestroyPipeline(vk->dev, vk->pipes[i].pipe, NULL);
    free(vk->pipes);
    vk->pipes = NULL;
    vk->npipes = 0;
    if (vk->dpool) vk->f.vkDestroyDescriptorPool(vk->dev, vk->dpool, NULL);
    if (vk->layout) vk->f.vkDestroyPipelineLayout(vk->dev, vk->layout, NULL);
    if (vk->dsl) vk->f.vkDestroyDescriptorSetLayout(vk->dev, vk->dsl, NULL);
    for (int i = 0; i < VK_PROG_COUNT; i++)
        if (vk->mod[i]) vk->f.vkDestroyShaderModule(vk->dev, vk->mod[i], NULL);
}

sq_status sq_vk_pipeline(sq_vk *vk, int prog, const uint32_t spec_in[VK_NSPEC], VkPipeline *out, sq_err *err) {
    return sq_vk_pipeline_wg(vk, prog, spec_in, vk->wg, out, err);
}

sq_status sq_vk_pipeline_wg(sq_vk *vk, int prog, const uint32_t spec_in[VK_NSPEC], uint32_t wg, VkPipeline *out,
                            sq_err *err) {
    uint32_t spec[VK_NSPEC];
    memcpy(spec, spec_in, sizeof spec);
    spec[0] = wg;
    for (int i = 0; i < vk->npipes; i++)
        if (vk->pipes[i].prog == prog && !memcmp(vk->pipes[i].spec, spec, sizeof spec)) {
            *out = vk->pipes[i].pipe;
            return SQ_OK;
        }
    VkSpecializationMapEntry me[VK_NSPEC];
    for (uint32_t i = 0; i < VK_NSPEC; i++) me[i] = (VkSpecializationMapEntry){i, i * 4, 4};
    VkSpecializationInfo si = {.mapEntryCount = VK_NSPEC, .pMapEntries = me, .dataSize = sizeof spec, .pData = spec};
    VkComputePipelineCreateInfo ci = {
        .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
        .stage = {.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO, .stage = VK_SHADER_STAGE_COMPUTE_BIT,
                  .module = vk->mod[prog], .pName = "main", .pSpecializationInfo = &si},
        .layout = vk->layout};
    vk_pipe *np = realloc(vk->pipes, (size_t)(vk->npipes + 1) * sizeof *np);
    if (!np) return sq_err_set(err, SQ_ENOMEM, "out of memory");
    vk->pipes = np;
    VkPipeline p;
    VkResult r = vk->f.vkCreateComputePipelines(vk->dev, VK_NULL_HANDLE, 1, &ci, NULL, &p);
    if (r) return sq_vk_fail(err, r, "vkCreateComputePipelines");
    vk->pipes[vk->npipes].prog = prog;
    memcpy(vk->pipes[vk->npipes].spec, spec, sizeof spec);
    vk->pipes[vk->npipes++].pipe = p;
    *out = p;
    return SQ_OK;
}

sq_status sq_vk_bind(sq_vk *vk, VkPipeline pipe, const vk_buf *weights, const vk_buf *lut, const vk_buf *in,
                     VkDeviceSize in_size, const vk_buf *out, VkDeviceSize out_size, const vk_push *push, sq_err *err) {
    VkDescriptorSetAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO, .descriptorPool = vk->dpool,
                                      .descriptorSetCount = 1, .pSetLayouts = &vk->dsl};
    VkDescriptorSet set;
    VkResult r = vk->f.vkAllocateDescriptorSets(vk->dev, &ai, &set);
    if (r) return sq_vk_fail(err, r, "vkAllocateDescriptorSets");
    /* unused bindings get the value-table buffer: every binding stays valid */
    const vk_buf *bufs[NBIND] = {weights ? weights : &vk->lut, lut ? lut : &vk->lut, in ? in : &vk->lut, out ? out : &vk->lut};
    VkDeviceSize sizes[NBIND] = {weights ? weights->size : VK_WHOLE_SIZE, VK_WHOLE_SIZE, in ? in_size : VK_WHOLE_SIZE,
                                 out ? out_size : VK_WHOLE_SIZE};
    VkDescriptorBufferInfo bi[NBIND];
    VkWriteDescriptorSet wr[NBIND];
    for (int i = 0; i < NBIND; i++) {
        bi[i] = (VkDescriptorBufferInfo){bufs[i]->buf, bufs[i]->off, sizes[i]};
        wr[i] = (VkWriteDescriptorSet){.sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET, .dstSet = set, .dstBinding = (uint32_t)i,
                                       .descriptorCount = 1, .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                                       .pBufferInfo = &bi[i]};
    }
    vk->f.vkUpdateDescriptorSets(vk->dev, NBIND, wr, 0, NULL);
    vk->f.vkCmdBindPipeline(vk->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, pipe);
    vk->f.vkCmdBindDescriptorSets(vk->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, vk->layout, 0, 1, &set, 0, NULL);
    vk->f.vkCmdPushConstants(vk->cmd, vk->layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, sizeof *push, push);
    vk->binds++;
    return SQ_OK;
}

void sq_vk_grid(uint64_t n, uint32_t *gx, uint32_t *gz) {
    uint64_t x = n < 65535 ? n : 65535;
    if (x == 0) x = 1;
    *gx = (uint32_t)x;
    *gz = (uint32_t)((n + x - 1) / x);
}
