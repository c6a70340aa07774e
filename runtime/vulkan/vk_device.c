/* Loading libvulkan, choosing a physical device, and the device context:
 * queue, command buffer, fence, buffers. */
#include <ctype.h>
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#include "vk_internal.h"

const char *sq_vk_result_name(VkResult r) {
    switch (r) {
    case VK_SUCCESS: return "VK_SUCCESS";
    case VK_NOT_READY: return "VK_NOT_READY";
    case VK_TIMEOUT: return "VK_TIMEOUT";
    case VK_INCOMPLETE: return "VK_INCOMPLETE";
    case VK_ERROR_OUT_OF_HOST_MEMORY: return "VK_ERROR_OUT_OF_HOST_MEMORY";
    case VK_ERROR_OUT_OF_DEVICE_MEMORY: return "VK_ERROR_OUT_OF_DEVICE_MEMORY";
    case VK_ERROR_INITIALIZATION_FAILED: return "VK_ERROR_INITIALIZATION_FAILED";
    case VK_ERROR_DEVICE_LOST: return "VK_ERROR_DEVICE_LOST";
    case VK_ERROR_MEMORY_MAP_FAILED: return "VK_ERROR_MEMORY_MAP_FAILED";
    case VK_ERROR_LAYER_NOT_PRESENT: return "VK_ERROR_LAYER_NOT_PRESENT";
    case VK_ERROR_EXTENSION_NOT_PRESENT: return "VK_ERROR_EXTENSION_NOT_PRESENT";
    case VK_ERROR_FEATURE_NOT_PRESENT: return "VK_ERROR_FEATURE_NOT_PRESENT";
    case VK_ERROR_INCOMPATIBLE_DRIVER: return "VK_ERROR_INCOMPATIBLE_DRIVER (no Vulkan driver found)";
    case VK_ERROR_TOO_MANY_OBJECTS: return "VK_ERROR_TOO_MANY_OBJECTS";
    case VK_ERROR_OUT_OF_POOL_MEMORY: return "VK_ERROR_OUT_OF_POOL_MEMORY";
    default: return "VkResult error";
    }
}

sq_status sq_vk_fail(sq_err *err, VkResult r, const char *what) {
    sq_status st = (r == VK_ERROR_OUT_OF_HOST_MEMORY || r == VK_ERROR_OUT_OF_DEVICE_MEMORY) ? SQ_ENOMEM : SQ_EIO;
    return sq_err_set(err, st, "vulkan: %s failed: %s (%d)", what, sq_vk_result_name(r), (int)r);
}

/* ---------------- loader ---------------- */
static sq_status load_library(sq_vk *vk, sq_err *err) {
    const char *names[] = {"libvulkan.so.1", "libvulkan.so"};
    for (size_t i = 0; i < 2 && !vk->lib; i++) vk->lib = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
    if (!vk->lib)
        return sq_err_set(err, SQ_EUNSUPPORTED,
                          "vulkan: no Vulkan loader (libvulkan.so.1) on this machine; install libvulkan1 and a driver "
                          "(mesa-vulkan-drivers for a CPU device), or use the CPU backend");
    vk->f.vkGetInstanceProcAddr = (PFN_vkGetInstanceProcAddr)dlsym(vk->lib, "vkGetInstanceProcAddr");
    if (!vk->f.vkGetInstanceProcAddr) return sq_err_set(err, SQ_EUNSUPPORTED, "vulkan: libvulkan has no vkGetInstanceProcAddr");
#define SQ_VK_LOAD(fn) vk->f.fn = (PFN_##fn)vk->f.vkGetInstanceProcAddr(NULL, #fn);
    SQ_VK_GLOBAL_FNS(SQ_VK_LOAD)
#undef SQ_VK_LOAD
    if (!vk->f.vkCreateInstance) return sq_err_set(err, SQ_EUNSUPPORTED, "vulkan: the loader has no vkCreateInstance");
    return SQ_OK;
}

static sq_status load_instance_fns(sq_vk *vk, sq_err *err) {
#define SQ_VK_LOAD(fn)                                                                                     \
    if (!(vk->f.fn = (PFN_##fn)vk->f.vkGetInstanceProcAddr(vk->inst, #fn)))                                \
        return sq_err_set(err, SQ_EUNSUPPORTED, "vulkan: the loader lacks %s", #fn);
    SQ_VK_INSTANCE_FNS(SQ_VK_LOAD)
#undef SQ_VK_LOAD
    return SQ_OK;
}

static sq_status load_device_fns(sq_vk *vk, sq_err *err) {
#define SQ_VK_LOAD(fn)                                                                                     \
    if (!(vk->f.fn = (PFN_##fn)vk->f.vkGetDeviceProcAddr(vk->dev, #fn)))                                   \
        return sq_err_set(err, SQ_EUNSUPPORTED, "vulkan: the device lacks %s", #fn);
    SQ_VK_DEVICE_FNS(SQ_VK_LOAD)
#undef SQ_VK_LOAD
    return SQ_OK;
}

static sq_status create_instance(sq_vk *vk, sq_err *err) {
    uint32_t api = VK_API_VERSION_1_0;
    if (vk->f.vkEnumerateInstanceVersion) vk->f.vkEnumerateInstanceVersion(&api);
    if (api < VK_API_VERSION_1_1)
        return sq_err_set(err, SQ_EUNSUPPORTED, "vulkan: the loader supports Vulkan %u.%u; squish needs 1.1",
                          VK_API_VERSION_MAJOR(api), VK_API_VERSION_MINOR(api));
    /* 1.3 where the loader has it: the q8 GEMV uses 1.3's integer dot products */
    VkApplicationInfo app = {.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO, .pApplicationName = "squish",
                             .pEngineName = "squish", .apiVersion = api >= VK_API_VERSION_1_3 ? VK_API_VERSION_1_3 : VK_API_VERSION_1_1};
    vk->inst_api = app.apiVersion;
    VkInstanceCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO, .pApplicationInfo = &app};
    VkResult r = vk->f.vkCreateInstance(&ci, NULL, &vk->inst);
    if (r == VK_ERROR_INCOMPATIBLE_DRIVER)
        return sq_err_set(err, SQ_EUNSUPPORTED,
                          "vulkan: no Vulkan driver found (install a driver, e.g. mesa-vulkan-drivers for a CPU "
                          "device), or use the CPU backend");
    if (r) return sq_vk_fail(err, r, "vkCreateInstance");
    return load_instance_fns(vk, err);
}

static const char *type_name(VkPhysicalDeviceType t) {
    switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return "discrete GPU";
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return "integrated GPU";
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return "virtual GPU";
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return "CPU";
    default: return "other";
    }
}

static int type_rank(VkPhysicalDeviceType t) {
    switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return 0;
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return 1;
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return 2;
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return 3;
    default: return 4;
    }
}

static int contains_ci(const char *hay, const char *needle) {
    size_t n = strlen(needle);
    for (; *hay; hay++) {
        size_t i = 0;
        while (i < n && hay[i] && tolower((unsigned char)hay[i]) == tolower((unsigned char)needle[i])) i++;
        if (i == n) return 1;
    }
    return n == 0;
}

static int compute_family(sq_vk *vk, VkPhysicalDevice pd) {
    uint32_t n = 0;
    vk->f.vkGetPhysicalDeviceQueueFamilyProperties(pd, &n, NULL);
    VkQueueFamilyProperties q[32];
    if (n > 32) n = 32;
    vk->f.vkGetPhysicalDeviceQueueFamilyProperties(pd, &n, q);
    for (uint32_t i = 0; i < n; i++)
        if (q[i].queueFlags & VK_QUEUE_COMPUTE_BIT) return (int)i;
    return -1;
}

/* Physical devices that can run squish (Vulkan 1.1, a compute queue). */
static sq_status enumerate(sq_vk *vk, VkPhysicalDevice *pd, uint32_t *n, sq_err *err) {
    uint32_t cnt = 16;
    VkResult r = vk->f.vkEnumeratePhysicalDevices(vk->inst, &cnt, pd);
    if (r && r != VK_INCOMPLETE) return sq_vk_fail(err, r, "vkEnumeratePhysicalDevices");
    uint32_t k = 0;
    for (uint32_t i = 0; i < cnt; i++) {
        VkPhysicalDeviceProperties p;
        vk->f.vkGetPhysicalDeviceProperties(pd[i], &p);
        if (p.apiVersion >= VK_API_VERSION_1_1 && compute_family(vk, pd[i]) >= 0) pd[k++] = pd[i];
    }
    *n = k;
    if (!k)
        return sq_err_set(err, SQ_EUNSUPPORTED,
                          "vulkan: no Vulkan 1.1 device with a compute queue (install a driver, e.g. "
                          "mesa-vulkan-drivers for a CPU device), or use the CPU backend");
    return SQ_OK;
}

static void describe(sq_vk *vk, const VkPhysicalDeviceProperties *p, char *out, size_t n) {
    snprintf(out, n, "%s (%s, Vulkan %u.%u.%u, vendor 0x%04x device 0x%04x)", p->deviceName, type_name(p->deviceType),
             VK_API_VERSION_MAJOR(p->apiVersion), VK_API_VERSION_MINOR(p->apiVersion), VK_API_VERSION_PATCH(p->apiVersion),
             p->vendorID, p->deviceID);
}

sq_status sq_vk_list(FILE *out, sq_err *err) {
    sq_vk vk = {0};
    sq_status st = load_library(&vk, err);
    if (!st) st = create_instance(&vk, err);
    VkPhysicalDevice pd[16];
    uint32_t n = 0;
    if (!st) st = enumerate(&vk, pd, &n, err);
    for (uint32_t i = 0; !st && i < n; i++) {
        VkPhysicalDeviceProperties p;
        vk.f.vkGetPhysicalDeviceProperties(pd[i], &p);
        char d[400];
        describe(&vk, &p, d, sizeof d);
        fprintf(out, "%u\t%s\n", i, d);
    }
    if (vk.inst) vk.f.vkDestroyInstance(vk.inst, NULL);
    if (vk.lib) dlclose(vk.lib);
    return st;
}

static sq_status choose(sq_vk *vk, const char *sel, sq_err *err) {
    VkPhysicalDevice pd[16];
    uint32_t n = 0;
    sq_status st = enumerate(vk, pd, &n, err);
    if (st) return st;
    if (!sel || !*sel) sel = getenv("SQUISH_VULKAN_DEVICE");
    int pick = -1;
    if (sel && *sel) {
        char *end;
        long idx = strtol(sel, &end, 10);
        if (!*end) {
            if (idx < 0 || idx >= (long)n)
                return sq_err_set(err, SQ_EUSAGE, "vulkan: device %ld does not exist (%u device%s: 0..%u)", idx, n,
                                  n == 1 ? "" : "s", n - 1);
            pick = (int)idx;
        } else {
            for (uint32_t i = 0; i < n && pick < 0; i++) {
                VkPhysicalDeviceProperties p;
                vk->f.vkGetPhysicalDeviceProperties(pd[i], &p);
                if (contains_ci(p.deviceName, sel)) pick = (int)i;
            }
            if (pick < 0) return sq_err_set(err, SQ_EUSAGE, "vulkan: no device's name contains \"%s\"", sel);
        }
    } else {
        int best = 99;
        for (uint32_t i = 0; i < n; i++) {
            VkPhysicalDeviceProperties p;
            vk->f.vkGetPhysicalDeviceProperties(pd[i], &p);
            if (type_rank(p.deviceType) < best) { best = type_rank(p.deviceType); pick = (int)i; }
        }
    }
    vk->phys = pd[pick];
    vk->f.vkGetPhysicalDeviceProperties(vk->phys, &vk->props);
    vk->f.vkGetPhysicalDeviceMemoryProperties(vk->phys, &vk->mem);
    vk->qfamily = (uint32_t)compute_family(vk, vk->phys);
    uint32_t qn = 0;
    vk->f.vkGetPhysicalDeviceQueueFamilyProperties(vk->phys, &qn, NULL);
    VkQueueFamilyProperties q[32];
    if (qn > 32) qn = 32;
    vk->f.vkGetPhysicalDeviceQueueFamilyProperties(vk->phys, &qn, q);
    vk->timestamp_bits = q[vk->qfamily].timestampValidBits;
    /* subgroup shuffles in compute shaders (Vulkan 1.1 reports them; every device here is 1.1+) */
    VkPhysicalDeviceSubgroupProperties sg = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES};
    VkPhysicalDeviceProperties2 p2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &sg};
    vk->f.vkGetPhysicalDeviceProperties2(vk->phys, &p2);
    const VkSubgroupFeatureFlags need = VK_SUBGROUP_FEATURE_BASIC_BIT | VK_SUBGROUP_FEATURE_SHUFFLE_BIT;
    if ((sg.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT) && (sg.supportedOperations & need) == need &&
        sg.subgroupSize >= 2 && !(sg.subgroupSize & (sg.subgroupSize - 1)))
        vk->sg_size = sg.subgroupSize;
    describe(vk, &vk->props, vk->desc, sizeof vk->desc);
    return SQ_OK;
}

static sq_status create_device(sq_vk *vk, sq_err *err) {
    float prio = 1.0f;
    VkDeviceQueueCreateInfo qci = {.sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO, .queueFamilyIndex = vk->qfamily,
                                   .queueCount = 1, .pQueuePriorities = &prio};
    VkDeviceCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO, .queueCreateInfoCount = 1, .pQueueCreateInfos = &qci};
    /* integer dot products (core in 1.3) for the q8 GEMV, when the device has them */
    VkPhysicalDeviceShaderIntegerDotProductFeatures dot = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_FEATURES};
    if (vk->inst_api >= VK_API_VERSION_1_3 && vk->props.apiVersion >= VK_API_VERSION_1_3) {
        VkPhysicalDeviceFeatures2 f2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &dot};
        vk->f.vkGetPhysicalDeviceFeatures2(vk->phys, &f2);
        if (dot.shaderIntegerDotProduct && !getenv("SQUISH_VULKAN_NO_Q8")) {
            dot.pNext = NULL;
            ci.pNext = &dot;
            vk->has_dot = 1;
        }
    }
    VkResult r = vk->f.vkCreateDevice(vk->phys, &ci, NULL, &vk->dev);
    if (r) return sq_vk_fail(err, r, "vkCreateDevice");
    sq_status st = load_device_fns(vk, err);
    if (st) return st;
    vk->f.vkGetDeviceQueue(vk->dev, vk->qfamily, 0, &vk->queue);
    VkCommandPoolCreateInfo pci = {.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
                                   .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT, .queueFamilyIndex = vk->qfamily};
    if ((r = vk->f.vkCreateCommandPool(vk->dev, &pci, NULL, &vk->cmd_pool))) return sq_vk_fail(err, r, "vkCreateCommandPool");
    VkCommandBufferAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO, .commandPool = vk->cmd_pool,
                                      .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY, .commandBufferCount = 1};
    if ((r = vk->f.vkAllocateCommandBuffers(vk->dev, &ai, &vk->cmd))) return sq_vk_fail(err, r, "vkAllocateCommandBuffers");
    VkFenceCreateInfo fci = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    if ((r = vk->f.vkCreateFence(vk->dev, &fci, NULL, &vk->fence))) return sq_vk_fail(err, r, "vkCreateFence");
    return SQ_OK;
}

sq_status sq_vk_open(const char *sel, sq_vk **out, sq_err *err) {
    *out = NULL;
    sq_vk *vk = calloc(1, sizeof *vk);
    if (!vk) return sq_err_set(err, SQ_ENOMEM, "out of memory");
    sq_status st = load_library(vk, err);
    if (!st) st = create_instance(vk, err);
    if (!st) st = choose(vk, sel, err);
    if (!st) st = create_device(vk, err);
    if (!st) st = sq_vk_pipelines_init(vk, err);
    /* a small value table buffer (256 floats) bound when a codec needs none */
    if (!st) st = sq_vk_buf_create(vk, 256 * sizeof(float), 1, &vk->lut, err);
    if (st) {
        sq_vk_close(vk);
        return st;
    }
    *out = vk;
    return SQ_OK;
}

void sq_vk_close(sq_vk *vk) {
    if (!vk) return;
    if (vk->dev) {
        vk->f.vkDeviceWaitIdle(vk->dev);
        vk_buf *bufs[] = {&vk->x_dev, &vk->x_host, &vk->y_dev, &vk->y_host, &vk->staging, &vk->lut};
        for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) sq_vk_buf_free(vk, bufs[i]);
        sq_vk_pipelines_free(vk);
        if (vk->fence) vk->f.vkDestroyFence(vk->dev, vk->fence, NULL);
        if (vk->cmd_pool) vk->f.vkDestroyCommandPool(vk->dev, vk->cmd_pool, NULL);
        vk->f.vkDestroyDevice(vk->dev, NULL);
    }
    if (vk->inst) vk->f.vkDestroyInstance(vk->inst, NULL);
    if (vk->lib) dlclose(vk->lib);
    free(vk);
}

const char *sq_vk_describe(const sq_vk *vk) { return vk->desc; }
int sq_vk_has_integer_dot(const sq_vk *vk) { return vk->has_dot; }
uint32_t sq_vk_subgroup(const sq_vk *vk) { return vk->subgroup ? vk->sg_size : 0; }

/* ---------------- buffers ---------------- */
static int mem_type(const sq_vk *vk, uint32_t bits, VkMemoryPropertyFlags want, VkMemoryPropertyFlags nice) {
    int fallback = -1;
    for (uint32_t i = 0; i < vk->mem.memoryTypeCount; i++) {
        VkMemoryPropertyFlags f = vk->mem.memoryTypes[i].propertyFlags;
        if (!(bits & (1u << i)) || (f & want) != want) continue;
        if ((f & nice) == nice) return (int)i;
        if (fallback < 0) fallback = (int)i;
    }
    return fallback;
}

sq_status sq_vk_buf_create(sq_vk *vk, VkDeviceSize size, int host, vk_buf *b, sq_err *err) {
    memset(b, 0, sizeof *b);
    if (size == 0) size = 16;
    if (size > vk->props.limits.maxStorageBufferRange)
        return sq_err_set(err, SQ_ENOMEM, "vulkan: a buffer of %llu bytes exceeds the device's storage buffer range (%u)",
                          (unsigned long long)size, vk->props.limits.maxStorageBufferRange);
    VkBufferCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO, .size = size,
                             .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
                                      VK_BUFFER_USAGE_TRANSFER_DST_BIT,
                             .sharingMode = VK_SHARING_MODE_EXCLUSIVE};
    VkResult r = vk->f.vkCreateBuffer(vk->dev, &ci, NULL, &b->buf);
    if (r) return sq_vk_fail(err, r, "vkCreateBuffer");
    VkMemoryRequirements req;
    vk->f.vkGetBufferMemoryRequirements(vk->dev, b->buf, &req);
    int t = host ? mem_type(vk, req.memoryTypeBits, VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT,
                            VK_MEMORY_PROPERTY_HOST_CACHED_BIT)
                 : mem_type(vk, req.memoryTypeBits, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT, 0);
    if (t < 0) t = mem_type(vk, req.memoryTypeBits, 0, 0);
    if (t < 0) {
        sq_vk_buf_free(vk, b);
        return sq_err_set(err, SQ_EUNSUPPORTED, "vulkan: no memory type for a %s buffer", host ? "host" : "device");
    }
    VkMemoryAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO, .allocationSize = req.size,
                               .memoryTypeIndex = (uint32_t)t};
    if ((r = vk->f.vkAllocateMemory(vk->dev, &ai, NULL, &b->mem))) {
        sq_vk_buf_free(vk, b);
        return sq_vk_fail(err, r, "vkAllocateMemory");
    }
    if ((r = vk->f.vkBindBufferMemory(vk->dev, b->buf, b->mem, 0))) {
        sq_vk_buf_free(vk, b);
        return sq_vk_fail(err, r, "vkBindBufferMemory");
    }
    b->size = size;
    /* device memory that the host can see (lavapipe, integrated GPUs, resizable BAR) is mapped too */
    if (vk->mem.memoryTypes[t].propertyFlags & VK_MEMORY_PROPERTY_HOST_COHERENT_BIT) {
        if ((r = vk->f.vkMapMemory(vk->dev, b->mem, 0, VK_WHOLE_SIZE, 0, &b->map))) {
            sq_vk_buf_free(vk, b);
            return sq_vk_fail(err, r, "vkMapMemory");
        }
    } else if (host) {
        sq_vk_buf_free(vk, b);
        return sq_err_set(err, SQ_EUNSUPPORTED, "vulkan: no host-coherent memory");
    }
    return SQ_OK;
}

void sq_vk_buf_free(sq_vk *vk, vk_buf *b) {
    if (b->map) vk->f.vkUnmapMemory(vk->dev, b->mem);
    if (b->buf) vk->f.vkDestroyBuffer(vk->dev, b->buf, NULL);
    if (b->mem) vk->f.vkFreeMemory(vk->dev, b->mem, NULL);
    memset(b, 0, sizeof *b);
}

sq_status sq_vk_buf_reserve(sq_vk *vk, vk_buf *b, VkDeviceSize size, int host, sq_err *err) {
    if (b->buf && b->size >= size) return SQ_OK;
    sq_vk_buf_free(vk, b);
    VkDeviceSize n = 1 << 16;
    while (n < size) n *= 2;
    return sq_vk_buf_create(vk, n, host, b, err);
}

/* ---------------- command submission ---------------- */
sq_status sq_vk_begin(sq_vk *vk, sq_err *err) {
    VkResult r = vk->f.vkResetCommandBuffer(vk->cmd, 0);
    if (!r) r = vk->f.vkResetDescriptorPool(vk->dev, vk->dpool, 0);
    VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
                                   .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT};
    if (!r) r = vk->f.vkBeginCommandBuffer(vk->cmd, &bi);
    return r ? sq_vk_fail(err, r, "recording a command buffer") : SQ_OK;
}

sq_status sq_vk_submit_wait(sq_vk *vk, sq_err *err) {
    VkResult r = vk->f.vkEndCommandBuffer(vk->cmd);
    VkSubmitInfo si = {.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO, .commandBufferCount = 1, .pCommandBuffers = &vk->cmd};
    if (!r) r = vk->f.vkQueueSubmit(vk->queue, 1, &si, vk->fence);
    if (!r) r = vk->f.vkWaitForFences(vk->dev, 1, &vk->fence, VK_TRUE, UINT64_MAX);
    if (!r) r = vk->f.vkResetFences(vk->dev, 1, &vk->fence);
    return r ? sq_vk_fail(err, r, "running commands on the device") : SQ_OK;
}

/* Every write before is visible to every read and write after (compute and transfer). */
void sq_vk_barrier(sq_vk *vk) {
    VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                          .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
                          .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT |
                                           VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT};
    VkPipelineStageFlags s = VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT;
    vk->f.vkCmdPipelineBarrier(vk->cmd, s, s, 0, 1, &mb, 0, NULL, 0, NULL);
}
