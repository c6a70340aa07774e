/* Names of enums shared by the container and the tools. */
#include <string.h>
#include <strings.h>

#include "squish/container.h"

static const char *const arch_names[SQ_ARCH_COUNT] = {
    "unknown", "llama", "mistral", "qwen2", "gemma", "deepseek", "phi", "mixtral", "qwen3"};

const char *sq_arch_name(uint32_t arch) { return arch < SQ_ARCH_COUNT ? arch_names[arch] : "invalid"; }

uint32_t sq_arch_from_name(const char *name) {
    if (!name) return SQ_ARCH_UNKNOWN;
    for (uint32_t i = 1; i < SQ_ARCH_COUNT; i++)
        if (!strcasecmp(name, arch_names[i])) return i;
    /* Hugging Face model_type aliases */
    if (!strcasecmp(name, "smollm") || !strcasecmp(name, "llama2c")) return SQ_ARCH_LLAMA;
    if (!strcasecmp(name, "gemma2") || !strcasecmp(name, "gemma3")) return SQ_ARCH_GEMMA;
    if (!strcasecmp(name, "deepseek_v2") || !strcasecmp(name, "deepseek_v3")) return SQ_ARCH_DEEPSEEK;
    if (!strcasecmp(name, "phi3")) return SQ_ARCH_PHI;
    return SQ_ARCH_UNKNOWN;
}

static const struct { const char *name; size_t size; } dtypes[SQ_DT_COUNT] = {
    {"invalid", 0}, {"f32", 4}, {"f16", 2}, {"bf16", 2}, {"f64", 8}, {"i8", 1}, {"u8", 1},
    {"i16", 2}, {"u16", 2}, {"i32", 4}, {"u32", 4}, {"i64", 8}, {"u64", 8}};

size_t sq_dtype_size(uint32_t dt) { return dt < SQ_DT_COUNT ? dtypes[dt].size : 0; }
const char *sq_dtype_name(uint32_t dt) { return dt < SQ_DT_COUNT ? dtypes[dt].name : "invalid"; }
