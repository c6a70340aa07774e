// The sums over a row group's invocations that end every GEMV (and the
// block-wide sums of decode.comp). Include after `shared float red[]`.
//
// Fallback (built without SQ_SUBGROUP): a tree in shared memory, level h
// adding red[me + h] into red[me] for lane < h, h = TPR/2 .. 1, one barrier a
// level. With SQ_SUBGROUP (the *_sg programs, chosen at run time where the
// device has subgroup shuffles in compute shaders and the workgroup is a
// multiple of the subgroup): the levels h >= the subgroup size stay in shared
// memory and the last ones are butterfly shuffles, which add the same two
// values in the same order at every level, so the result is bit-identical to
// the fallback's. It needs the invocations of a subgroup to be consecutive in
// gl_LocalInvocationID.x (as on every driver seen; tests/test_vulkan.c checks
// the identity against the fallback on the test device).
// (The extensions are enabled in common.glsl and decode.comp, ahead of any code.)

// Sums red[i * WG + me] (i < nv) over the TPR invocations of each row group
// (TPR a power of two; lane = me % TPR) into the group's lane 0. Starts with
// the barrier that makes every invocation's stores visible; called by every
// invocation of the workgroup.
void reduce_rows(uint nv, uint tpr, uint lane, uint me) {
    barrier();
    uint h = tpr / 2u;
#ifdef SQ_SUBGROUP
    for (; h >= gl_SubgroupSize; h >>= 1) {
        if (lane < h) [[unroll]] for (uint i = 0u; i < nv; i++) red[i * WG + me] += red[i * WG + me + h];
        barrier();
    }
    [[unroll]] for (uint i = 0u; i < nv; i++) {
        float v = red[i * WG + me];
        for (uint s = h; s > 0u; s >>= 1) v += subgroupShuffleXor(v, s);
        if (lane == 0u) red[i * WG + me] = v; // read back by this invocation only
    }
#else
    for (; h > 0u; h >>= 1) {
        if (lane < h) [[unroll]] for (uint i = 0u; i < nv; i++) red[i * WG + me] += red[i * WG + me + h];
        barrier();
    }
#endif
}
