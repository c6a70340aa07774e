// Shared by every squish compute shader: the descriptor layout (one for all
// pipelines) and the push constants. See runtime/vulkan/vk_internal.h.
#extension GL_EXT_control_flow_attributes : enable
#ifdef SQ_SUBGROUP // reduce.glsl's shuffles
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_shuffle : require
#endif

layout(constant_id = 0) const uint WG = 64;   // invocations per workgroup
layout(local_size_x_id = 0) in;

// binding 0: the tensor's parts, each at a 16-byte aligned word offset
layout(std430, binding = 0) readonly buffer Weights { uint w[]; };
layout(std430, binding = 0) readonly buffer Weights4 { uvec4 w4[]; }; // the same bytes, 16-byte loads
layout(std430, binding = 0) readonly buffer Weights2 { uvec2 w2[]; }; // and 8-byte loads
// binding 1: value table of table-driven codecs (NF4, mini-floats)
layout(std430, binding = 1) readonly buffer Lut { float lut[]; };

layout(push_constant) uniform Push {
    uint rows, cols, nchunks, xstride;  // xstride: floats per activation row (nchunks*32, zero padded)
    uint codes, scales, zeros, aux;     // word offsets of the parts inside w[]
    uint srow, gshift, T, row_base;     // scale index of (r, chunk k) = r*srow + (k >> gshift); row_base: dequant slice
    uint grid_x, ystride, pad0, pad1;   // workgroups along x (rows wrap into z); floats per output row
    uint crow, swz, ngroups, pad2;      // codes.glsl: words per row of codes; the workgroup order below
} p;

// Workgroup index over a 3-D grid (x wraps into z for more than 65535 groups).
// With p.swz > 1 the first p.ngroups of them are permuted, group g doing the
// work of (g * swz) mod ngroups (swz odd and coprime to ngroups, chosen on
// the host; g * swz < 2^32): the order in which the rows are streamed.
uint flat_group() {
    uint g = gl_WorkGroupID.x + gl_WorkGroupID.z * p.grid_x;
    return p.swz > 1u && g < p.ngroups ? (g * p.swz) % p.ngroups : g;
}

// f16 bits to f32, exactly (subnormals included, whatever the device's
// denormal mode: the arithmetic below stays in normal f32 range).
float half_bits(uint h) {
    uint s = (h & 0x8000u) << 16, e = (h >> 10) & 31u, m = h & 1023u;
    if (e == 0u) {
        float v = float(m) * uintBitsToFloat(0x33800000u); // m * 2^-24, exact
        return s != 0u ? -v : v;
    }
    if (e == 31u) return uintBitsToFloat(s | 0x7F800000u | (m << 13));
    return uintBitsToFloat(s | ((e + 112u) << 23) | (m << 13));
}
