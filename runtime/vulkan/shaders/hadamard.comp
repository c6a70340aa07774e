#version 450
// The randomized Hadamard transform of xform/hadamard.h on T rows of n
// floats, in place, as passes over tiles held in shared memory
// (runtime/vulkan/vk_lattice.c plans them). A row is cut into blocks of
// d = K*M (n/d blocks: the fallback's blocking when n/d > 1); a block is K
// segments of M = 2^m. Each pass sees the row as columns of `len` elements
// `step` apart and transforms every column; a workgroup holds C columns.
// Two kinds of pass (constant MODE):
//   0 (WHT): the Sylvester transform of every segment, split into levels:
//     a segment is [M/(L*B)][L][B], a column is one (outer, B-index) line of
//     L elements B apart, and a level runs the butterflies h = B, 2B, ..,
//     L*B/2 (levels B = 1, L1, L1*L2, .. give every h in increasing order);
//   1 (KMIX): y[a*M + j] = sum_k H_K[a][k] z[k*M + j] (or H_K^T) for every
//     column j of every block, summed over k in order from 0.
// These are the CPU's butterflies and sums, operand for operand, so the
// result is the CPU's bit for bit (where no value is an f32 subnormal, which
// a device may flush). Flags: sign flips on load (the first pass of
// Ĥ·diag(s)), the 1/sqrt(d) scale and sign flips on store (the last pass).
#extension GL_EXT_control_flow_attributes : enable

layout(constant_id = 0) const uint WG = 64;
layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint MODE = 0;
#define SH 4096u // floats of the shared tile: 16 KiB, what every device has

layout(std430, binding = 1) readonly buffer Tab { uint tab[]; };
layout(std430, binding = 3) buffer X { float x[]; };

// mirrors had_push in vk_lattice.c (16 words, like every pipeline's push range). Column c starts at
// (c >> lgseg) * seglen + ((c & (2^lgseg - 1)) >> lgb) * lb + (c & (2^lgb - 1)); its element i is step * i further.
layout(push_constant) uniform Push {
    uint stride, seglen, lgseg, lgb;  // floats between rows; a segment (WHT) or block (KMIX): length, log2 columns
    uint lb, step, len, lglen;        // WHT: L*B; elements of a column: distance, count (L or K), log2 L
    uint lgc, ncol, signs, hk;        // log2 columns per tile, columns per row; word offsets in tab of the
                                      // sign bits and of H_K's bits (set: -1)
    uint flags, norm, grid_x, tiles;  // flags, 1/sqrt(d) bits, workgroups along x (more wrap into z), tiles per row
} p;

const uint F_SIGN_LOAD = 1u, F_NORM_STORE = 2u, F_SIGN_STORE = 4u, F_TRANSPOSE = 8u;

shared float tile[SH];

bool negative(uint pos) { return ((tab[p.signs + (pos >> 5)] >> (pos & 31u)) & 1u) != 0u; }

uint column_start(uint c) {
    const uint in_seg = c & ((1u << p.lgseg) - 1u);
    return (c >> p.lgseg) * p.seglen + (in_seg >> p.lgb) * p.lb + (in_seg & ((1u << p.lgb) - 1u));
}

void main() {
    const uint g = gl_WorkGroupID.x + gl_WorkGroupID.z * p.grid_x, lid = gl_LocalInvocationID.x;
    const uint row = g / p.tiles, c0 = (g % p.tiles) << p.lgc, C = 1u << p.lgc, n = p.len << p.lgc;
    // tile element e: element e >> lgc of column c0 + (e & (C - 1)); columns past the row stay 0 and are not stored
    for (uint e = lid; e < n; e += WG) {
        const uint c = c0 + (e & (C - 1u));
        float v = 0.0;
        if (c < p.ncol) {
            const uint pos = column_start(c) + (e >> p.lgc) * p.step;
            v = x[row * p.stride + pos];
            if ((p.flags & F_SIGN_LOAD) != 0u && negative(pos)) v = -v;
        }
        tile[e] = v;
    }
    barrier();
    if (MODE == 0u) {
        for (uint lh = 0u; lh < p.lglen; lh++) {
            const uint h = 1u << lh;
            for (uint q = lid; q < n / 2u; q += WG) { // pair q: column q & (C-1), elements i and i + h
                const uint j = q & (C - 1u), ii = q >> p.lgc, i = ((ii >> lh) << (lh + 1u)) | (ii & (h - 1u));
                const uint e1 = (i << p.lgc) | j, e2 = e1 + (h << p.lgc);
                const float u = tile[e1], v = tile[e2];
                tile[e1] = u + v;
                tile[e2] = u - v;
            }
            barrier();
        }
    }
    const bool tr = (p.flags & F_TRANSPOSE) != 0u;
    for (uint e = lid; e < n; e += WG) {
        const uint c = c0 + (e & (C - 1u)), a = e >> p.lgc;
        if (c >= p.ncol) continue;
        precise float v = tile[e];
        if (MODE == 1u) {
            const uint j = e & (C - 1u);
            v = 0.0;
            for (uint k = 0u; k < p.len; k++) {
                const uint bit = tr ? k * p.len + a : a * p.len + k;
                const float z = tile[(k << p.lgc) | j];
                v = ((tab[p.hk + (bit >> 5)] >> (bit & 31u)) & 1u) != 0u ? v - z : v + z;
            }
        }
        const uint pos = column_start(c) + a * p.step;
        if ((p.flags & F_NORM_STORE) != 0u) v *= uintBitsToFloat(p.norm);
        if ((p.flags & F_SIGN_STORE) != 0u && negative(pos)) v = -v;
        x[row * p.stride + pos] = v;
    }
}
