#version 450
// The decode step's operations other than the matrix products (vk_decode.c):
// RMSNorm (with the residual add before it), attention over the cache (with
// the rotary embeddings and the K/V cache append in the same dispatch), the SiLU-gated product, and the
// packing of an activation vector into a GEMV's input layout. One program;
// the operation is specialization constant 1 (OP_* of vk_decode.c). The
// arithmetic follows runtime/forward.c's sq_rt_step in float32.
#extension GL_EXT_control_flow_attributes : enable
#ifdef SQ_SUBGROUP // reduce.glsl's shuffles
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_shuffle : require
#endif

layout(constant_id = 0) const uint WG = 64;
layout(constant_id = 1) const uint OP = 0;
// ATTN: scores held in shared memory for caches of up to SMAX positions (1: in a[])
layout(constant_id = 2) const uint SMAX = 1;
layout(local_size_x_id = 0) in;

// binding 0: activations (word 0: the position being decoded), 1: constants
// (norm weights, biases, rotary table), 2 and 3: the K and V caches
layout(std430, binding = 0) coherent buffer Act { float a[]; };
layout(std430, binding = 0) coherent buffer ActU { uint au[]; };
layout(std430, binding = 1) readonly buffer Cst { float c[]; };
layout(std430, binding = 1) readonly buffer CstU { uint cu[]; }; // the same words (PACK's permutations)
layout(std430, binding = 2) coherent buffer KC { float kc[]; };
layout(std430, binding = 3) coherent buffer VC { float vc[]; };
// the same words four at a time (ATTN's dot products where hd % 4 == 0)
layout(std430, binding = 0) coherent buffer Act4 { vec4 a4[]; };
layout(std430, binding = 2) coherent buffer KC4 { vec4 kc4[]; };
layout(std430, binding = 3) coherent buffer VC4 { vec4 vc4[]; };

const uint NONE = 0xFFFFFFFFu;

// Mirrors dec_push in vk_decode.c; offsets are in words.
layout(push_constant) uniform Push {
    uint n, src, dst, dstp;    // length; input (ATTN: k), plain output, packed output (NONE: not written)
    uint lay, nch, add, addb;  // packed layout (0: plain, 1: interleaved by chunk) and its chunks; NORM: added vector, its bias (in c)
    uint wo, q, k, v;          // NORM: weights (in c); ATTN: rotary table (in c), q, scores, v (in a)
    uint nh, nkv, hd, cbase;   // heads, K/V heads, head dim; cache offset of this layer
    uint bq, bk, bv, fl;       // biases of q, k, v (in c; SILU: bq, bk of gate, up); f32 bits: eps / scale
} p;

// Element j of a vector in the GEMV input layout (see pack_float_x in vk_ops.c).
void store_packed(uint j, float val) {
    if (p.dstp == NONE) return;
    uint idx = j;
    if (p.lay == 1u) {
        uint ch = j >> 5, i = j & 31u;
        idx = ((i >> 2) * p.nch + ch) * 4u + (i & 3u);
    }
    a[p.dstp + idx] = val;
}

// Zeros past the vector's end (len values) up to whole chunks (invocation t of `count`).
void pad_packed(uint len, uint t, uint count) {
    for (uint j = len + t; j < p.nch * 32u; j += count) store_packed(j, 0.0);
}

shared float red[WG];
shared vec4 red4[WG]; // ATTN: partial sums of four output values per invocation
shared float ssc[SMAX];

#include "reduce.glsl"

// The sum and the maximum of v over the workgroup, in every invocation.
float reduce_sum(float v) {
    uint t = gl_LocalInvocationID.x;
    red[t] = v;
    reduce_rows(1u, WG, t, t);
    barrier();
    float r = red[0];
    barrier();
    return r;
}

float reduce_max(float v) {
    uint t = gl_LocalInvocationID.x;
    red[t] = v;
    barrier();
    uint s = WG / 2u;
#ifdef SQ_SUBGROUP
    for (; s >= gl_SubgroupSize; s >>= 1) {
        if (t < s) red[t] = max(red[t], red[t + s]);
        barrier();
    }
    v = red[t];
    for (; s > 0u; s >>= 1) v = max(v, subgroupShuffleXor(v, s));
    if (t == 0u) red[0] = v;
    barrier();
#else
    for (; s > 0u; s >>= 1) {
        if (t < s) red[t] = max(red[t], red[t + s]);
        barrier();
    }
#endif
    float r = red[0];
    barrier();
    return r;
}

// One workgroup: x (at src) += add + addb when add is given, then
// out = w * (x / rms(x)).
void op_norm() {
    uint t = gl_LocalInvocationID.x;
    float ss = 0.0;
    for (uint i = t; i < p.n; i += WG) {
        float x = a[p.src + i];
        if (p.add != NONE) {
            float y = a[p.add + i];
            if (p.addb != NONE) y += c[p.addb + i];
            x += y;
            a[p.src + i] = x;
        }
        ss += x * x;
    }
    ss = reduce_sum(ss);
    float inv = 1.0 / sqrt(ss / float(p.n) + uintBitsToFloat(p.fl));
    for (uint i = t; i < p.n; i += WG) {
        float o = c[p.wo + i] * (a[p.src + i] * inv);
        if (p.dst != NONE) a[p.dst + i] = o;
        store_packed(i, o);
    }
    pad_packed(p.n, t, WG);
}

// Rotary embedding of pair i of x0 (element i) and x1 (element i + hd/2) at pos.
vec2 rope_pair(float x0, float x1, uint pos, uint i) {
    uint half_ = p.hd / 2u;
    float cs = c[p.wo + (pos * half_ + i) * 2u], sn = c[p.wo + (pos * half_ + i) * 2u + 1u];
    return vec2(x0 * cs - x1 * sn, x1 * cs + x0 * sn);
}

// Attention's first part, for head h (one workgroup) and its K/V head kvh:
// biases and rotary embeddings of q (in place: head h is this workgroup's
// alone) and k, and the append of k and v to the cache at pos. Every
// workgroup of a K/V head writes that head's cache row with the same values,
// so each reads back its own writes after the barrier (the caches are
// coherent). q at p.q, k at p.src, v at p.v, rotary table at p.wo.
void rope_head(uint h, uint kvh, uint pos) {
    uint t = gl_LocalInvocationID.x, half_ = p.hd / 2u, row = p.cbase + pos * p.nkv * p.hd;
    for (uint e = t; e < 2u * half_ + p.hd; e += WG) { // q pairs, k pairs, v values
        if (e < 2u * half_) {
            bool isq = e < half_;
            uint i = isq ? e : e - half_, j = (isq ? h : kvh) * p.hd + i;
            uint base = isq ? p.q : p.src, bo = isq ? p.bq : p.bk;
            float x0 = a[base + j], x1 = a[base + j + half_];
            if (bo != NONE) {
                x0 += c[bo + j];
                x1 += c[bo + j + half_];
            }
            vec2 r = rope_pair(x0, x1, pos, i);
            if (isq) {
                a[base + j] = r.x;
                a[base + j + half_] = r.y;
            } else {
                kc[row + j] = r.x;
                kc[row + j + half_] = r.y;
            }
        } else {
            uint j = kvh * p.hd + e - 2u * half_;
            float x = a[p.v + j];
            if (p.bv != NONE) x += c[p.bv + j];
            vc[row + j] = x;
        }
    }
    memoryBarrierBuffer();
    barrier();
}

// One workgroup per head: rope_head, then softmax(q k^T * scale) v over positions 0..pos;
// the scores in shared memory (SMAX >= p.n, the cache's length) or else
// through a[p.k + head * p.n].
float score(uint so, uint s) { return SMAX >= p.n ? ssc[s] : a[so + s]; }
void set_score(uint so, uint s, float v) {
    if (SMAX >= p.n) ssc[s] = v;
    else a[so + s] = v;
}

// q . k for q at word qo and k at kb (both multiples of 4 where hd % 4 == 0):
// 16-byte loads, four independent sums so that the loads overlap.
float dot_qk(uint qo, uint kb) {
    if ((p.hd & 3u) != 0u) {
        float d = 0.0;
        for (uint i = 0u; i < p.hd; i++) d += a[qo + i] * kc[kb + i];
        return d;
    }
    uint q4 = qo >> 2, k4 = kb >> 2, n4 = p.hd >> 2, i = 0u;
    vec4 s0 = vec4(0.0), s1 = vec4(0.0), s2 = vec4(0.0), s3 = vec4(0.0);
    for (; i + 4u <= n4; i += 4u) {
        s0 += a4[q4 + i] * kc4[k4 + i];
        s1 += a4[q4 + i + 1u] * kc4[k4 + i + 1u];
        s2 += a4[q4 + i + 2u] * kc4[k4 + i + 2u];
        s3 += a4[q4 + i + 3u] * kc4[k4 + i + 3u];
    }
    for (; i < n4; i++) s0 += a4[q4 + i] * kc4[k4 + i];
    vec4 v = (s0 + s1) + (s2 + s3);
    return (v.x + v.y) + (v.z + v.w);
}

// Element i of the unnormalized output: sum over positions s = g, g + ng, ..
// (< n) of score * v, four positions per step so that their loads overlap.
float weigh_v(uint so, uint vb, uint kvd, uint i, uint g, uint ng, uint n) {
    float o0 = 0.0, o1 = 0.0, o2 = 0.0, o3 = 0.0;
    uint s = g;
    for (; s + 3u * ng < n; s += 4u * ng) {
        o0 += score(so, s) * vc[vb + s * kvd + i];
        o1 += score(so, s + ng) * vc[vb + (s + ng) * kvd + i];
        o2 += score(so, s + 2u * ng) * vc[vb + (s + 2u * ng) * kvd + i];
        o3 += score(so, s + 3u * ng) * vc[vb + (s + 3u * ng) * kvd + i];
    }
    for (; s < n; s += ng) o0 += score(so, s) * vc[vb + s * kvd + i];
    return (o0 + o1) + (o2 + o3);
}

// The same for elements 4c .. 4c + 3 (vb4, kvd4: vb, kvd in vec4s).
vec4 weigh_v4(uint so, uint vb4, uint kvd4, uint c, uint g, uint ng, uint n) {
    vec4 o0 = vec4(0.0), o1 = vec4(0.0), o2 = vec4(0.0), o3 = vec4(0.0);
    uint s = g;
    for (; s + 3u * ng < n; s += 4u * ng) {
        o0 += score(so, s) * vc4[vb4 + s * kvd4 + c];
        o1 += score(so, s + ng) * vc4[vb4 + (s + ng) * kvd4 + c];
        o2 += score(so, s + 2u * ng) * vc4[vb4 + (s + 2u * ng) * kvd4 + c];
        o3 += score(so, s + 3u * ng) * vc4[vb4 + (s + 3u * ng) * kvd4 + c];
    }
    for (; s < n; s += ng) o0 += score(so, s) * vc4[vb4 + s * kvd4 + c];
    return (o0 + o1) + (o2 + o3);
}

void op_attn() {
    uint t = gl_LocalInvocationID.x, h = gl_WorkGroupID.x, pos = au[0], n = pos + 1u;
    uint kvd = p.nkv * p.hd, kvh = h / (p.nh / p.nkv), qo = p.q + h * p.hd, so = p.k + h * p.n;
    uint ko = p.cbase + kvh * p.hd;
    rope_head(h, kvh, pos);
    float scale = uintBitsToFloat(p.fl), mx = -1.0 / 0.0;
    for (uint s = t; s < n; s += WG) {
        float d = dot_qk(qo, ko + s * kvd) * scale;
        set_score(so, s, d);
        mx = max(mx, d);
    }
    mx = reduce_max(mx);
    float sum = 0.0;
    for (uint s = t; s < n; s += WG) {
        float e = exp(score(so, s) - mx);
        set_score(so, s, e);
        sum += e;
    }
    sum = reduce_sum(sum);
    memoryBarrierBuffer(); // every invocation's scores before any reads them
    memoryBarrierShared();
    barrier();
    // the positions split over ng groups of hd/4 invocations (16-byte loads)
    // or of hd invocations, their sums added in red4[] or red[]
    if ((p.hd & 3u) == 0u && p.hd <= 4u * WG) {
        uint q4 = p.hd >> 2, ng = WG / q4, g = t / q4;
        red4[t] = g < ng ? weigh_v4(so, ko >> 2, kvd >> 2, t % q4, g, ng, n) : vec4(0.0);
        barrier();
        for (uint i = t; i < p.hd; i += WG) {
            float o = 0.0;
            for (uint k = 0u; k < ng; k++) o += red4[k * q4 + (i >> 2)][i & 3u];
            o /= sum;
            if (p.dst != NONE) a[p.dst + h * p.hd + i] = o;
            store_packed(h * p.hd + i, o);
        }
        if (h == 0u) pad_packed(p.nh * p.hd, t, WG);
        return;
    }
    uint ng = p.hd <= WG ? WG / p.hd : 1u;
    if (ng > 1u) {
        uint i = t % p.hd, g = t / p.hd;
        red[t] = g < ng ? weigh_v(so, ko, kvd, i, g, ng, n) : 0.0;
        barrier();
        if (t < p.hd) {
            float o = 0.0;
            for (uint k = 0u; k < ng; k++) o += red[k * p.hd + t];
            o /= sum;
            if (p.dst != NONE) a[p.dst + h * p.hd + t] = o;
            store_packed(h * p.hd + t, o);
        }
    } else {
        for (uint i = t; i < p.hd; i += WG) {
            float o = weigh_v(so, ko, kvd, i, 0u, 1u, n) / sum;
            if (p.dst != NONE) a[p.dst + h * p.hd + i] = o;
            store_packed(h * p.hd + i, o);
        }
    }
    if (h == 0u) pad_packed(p.nh * p.hd, t, WG);
}

// g = silu(g + bg) * (u + bu), g at src and u at add.
void op_silu() {
    uint g = gl_GlobalInvocationID.x;
    if (g < p.n) {
        float x = a[p.src + g], y = a[p.add + g];
        if (p.bq != NONE) x += c[p.bq + g];
        if (p.bk != NONE) y += c[p.bk + g];
        float o = x / (1.0 + exp(-x)) * y;
        if (p.dst != NONE) a[p.dst + g] = o;
        store_packed(g, o);
    } else if (g < p.nch * 32u) {
        store_packed(g, 0.0);
    }
}

// The vector at src in the packed layout (its padding zeroed), through the
// layer's input links where it has them (sq_xform_input): xs[j] =
// x[perm[j]] / in_scale[j], perm at wo and in_scale at addb in c (NONE: absent).
void op_pack() {
    uint g = gl_GlobalInvocationID.x;
    if (g >= p.nch * 32u) return;
    float v = 0.0;
    if (g < p.n) {
        v = a[p.src + (p.wo != NONE ? cu[p.wo + g] : g)];
        if (p.addb != NONE) v = v / c[p.addb + g];
    }
    store_packed(g, v);
}

void main() {
    if (OP == 0u) op_norm();
    else if (OP == 2u) op_attn();
    else if (OP == 3u) op_silu();
    else op_pack();
}
