/* Compiles one compute SPIR-V module with the given specialization constants
 * (ids 0, 1, ...) on the first Vulkan device and prints the driver's pipeline
 * statistics (VK_KHR_pipeline_executable_properties), with "ir" also its
 * disassembly. Used by scripts/vk-isa.sh with Mesa's RADV on a null device,
 * which needs no GPU: a developer's tool, not part of the build.
 * usage: vk-isa FILE.spv [ir] SPEC0 SPEC1 ... */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vulkan/vulkan.h>
int main(int argc, char **argv) {
    FILE *f = fopen(argv[1], "rb"); fseek(f, 0, SEEK_END); long n = ftell(f); rewind(f);
    uint32_t *code = malloc(n); fread(code, 1, n, f); fclose(f);
    int ir = argc > 2 && !strcmp(argv[2], "ir"); int a0 = ir ? 3 : 2;
    uint32_t spec[16] = {0}; int ns = 0;
    for (int i = a0; i < argc && ns < 16; i++) spec[ns++] = (uint32_t)strtoul(argv[i], 0, 0);
    VkApplicationInfo app = {VK_STRUCTURE_TYPE_APPLICATION_INFO, 0, "vst", 1, "vst", 1, VK_API_VERSION_1_3};
    VkInstanceCreateInfo ici = {VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO, 0, 0, &app};
    VkInstance inst; if (vkCreateInstance(&ici, 0, &inst)) { puts("instance"); return 1; }
    uint32_t nd = 1; VkPhysicalDevice pd; vkEnumeratePhysicalDevices(inst, &nd, &pd);
    VkPhysicalDeviceProperties pp; vkGetPhysicalDeviceProperties(pd, &pp); fprintf(stderr, "%s\n", pp.deviceName);
    float prio = 1; VkDeviceQueueCreateInfo q = {VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO, 0, 0, 0, 1, &prio};
    VkPhysicalDevicePipelineExecutablePropertiesFeaturesKHR pef = {VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PIPELINE_EXECUTABLE_PROPERTIES_FEATURES_KHR, 0, 1};
    VkPhysicalDeviceVulkan13Features f13 = {VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_3_FEATURES, &pef}; f13.shaderIntegerDotProduct = 1;
    const char *ext[] = {"VK_KHR_pipeline_executable_properties"};
    VkDeviceCreateInfo dci = {VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO, &f13, 0, 1, &q, 0, 0, 1, ext};
    VkDevice dev; if (vkCreateDevice(pd, &dci, 0, &dev)) { puts("device"); return 1; }
    VkDescriptorSetLayoutBinding b[4]; for (int i = 0; i < 4; i++) b[i] = (VkDescriptorSetLayoutBinding){i, VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, 1, VK_SHADER_STAGE_COMPUTE_BIT};
    VkDescriptorSetLayoutCreateInfo lci = {VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO, 0, 0, 4, b};
    VkDescriptorSetLayout dsl; vkCreateDescriptorSetLayout(dev, &lci, 0, &dsl);
    VkPushConstantRange pcr = {VK_SHADER_STAGE_COMPUTE_BIT, 0, 64};
    VkPipelineLayoutCreateInfo plci = {VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO, 0, 0, 1, &dsl, 1, &pcr};
    VkPipelineLayout pl; vkCreatePipelineLayout(dev, &plci, 0, &pl);
    VkShaderModuleCreateInfo smi = {VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO, 0, 0, n, code};
    VkShaderModule sm; if (vkCreateShaderModule(dev, &smi, 0, &sm)) { puts("module"); return 1; }
    VkSpecializationMapEntry me[16]; for (int i = 0; i < ns; i++) me[i] = (VkSpecializationMapEntry){i, 4 * i, 4};
    VkSpecializationInfo si = {ns, me, 4 * ns, spec};
    VkComputePipelineCreateInfo ci = {VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO, 0,
        VK_PIPELINE_CREATE_CAPTURE_STATISTICS_BIT_KHR | VK_PIPELINE_CREATE_CAPTURE_INTERNAL_REPRESENTATIONS_BIT_KHR,
        {VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO, 0, 0, VK_SHADER_STAGE_COMPUTE_BIT, sm, "main", &si}, pl};
    VkPipeline pipe; if (vkCreateComputePipelines(dev, 0, 1, &ci, 0, &pipe)) { puts("pipeline"); return 1; }
    PFN_vkGetPipelineExecutableStatisticsKHR gs = (void *)vkGetDeviceProcAddr(dev, "vkGetPipelineExecutableStatisticsKHR");
    PFN_vkGetPipelineExecutableInternalRepresentationsKHR gi = (void *)vkGetDeviceProcAddr(dev, "vkGetPipelineExecutableInternalRepresentationsKHR");
    VkPipelineExecutableInfoKHR ei = {VK_STRUCTURE_TYPE_PIPELINE_EXECUTABLE_INFO_KHR, 0, pipe, 0};
    uint32_t cnt = 0; gs(dev, &ei, &cnt, 0);
    VkPipelineExecutableStatisticKHR st[64]; for (uint32_t i = 0; i < 64; i++) st[i] = (VkPipelineExecutableStatisticKHR){VK_STRUCTURE_TYPE_PIPELINE_EXECUTABLE_STATISTIC_KHR};
    gs(dev, &ei, &cnt, st);
    for (uint32_t i = 0; i < cnt; i++) {
        printf("%s=", st[i].name);
        switch (st[i].format) { case VK_PIPELINE_EXECUTABLE_STATISTIC_FORMAT_UINT64_KHR: printf("%llu ", (unsigned long long)st[i].value.u64); break;
        case VK_PIPELINE_EXECUTABLE_STATISTIC_FORMAT_INT64_KHR: printf("%lld ", (long long)st[i].value.i64); break;
        default: printf("? "); }
    }
    printf("\n");
    if (ir) {
        uint32_t nr = 0; gi(dev, &ei, &nr, 0);
        VkPipelineExecutableInternalRepresentationKHR r[8]; for (int i = 0; i < 8; i++) r[i] = (VkPipelineExecutableInternalRepresentationKHR){VK_STRUCTURE_TYPE_PIPELINE_EXECUTABLE_INTERNAL_REPRESENTATION_KHR};
        gi(dev, &ei, &nr, r);
        for (uint32_t i = 0; i < nr; i++) { r[i].pData = malloc(r[i].dataSize); }
        gi(dev, &ei, &nr, r);
        for (uint32_t i = 0; i < nr; i++) if (strstr(r[i].name, "ssembly")) printf("--- %s\n%s\n", r[i].name, (char *)r[i].pData);
    }
    return 0;
}
