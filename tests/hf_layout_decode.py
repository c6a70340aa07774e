#!/usr/bin/env python3
"""Decodes a Hugging Face GPTQ or AWQ checkpoint directory with numpy, from
the public layout descriptions (AutoGPTQ qlinear_cuda_old.py / GPTQModel,
AutoAWQ awq/modules/linear/gemm.py), without using squish's code, and writes
the weights as an unquantized model directory (float32 for every decoded
module, every other tensor as it is) with the same config.json minus its
quantization_config. squish-verify --reference OUT --max-abs 0 FILE.squizd
then checks that squish decodes FILE to exactly these weights.

usage: hf_layout_decode.py CHECKPOINT_DIR OUT_DIR

What the layouts say, as used here:
  GPTQ, bits b in {2, 3, 4, 8}, a linear layer with K inputs and N outputs:
    qweight int32 [K*b/32, N]: the codes of one output column, along the
      inputs; for b = 2, 4, 8 row r, field j (shift b*j) holds input
      r*(32/b) + j; for b = 3 every 32 inputs take 3 words: word 0 holds
      inputs 0-9 at shifts 0, 3, ..., 27 and the low 2 bits of input 10 at
      shift 30; word 1 the top bit of input 10 at bit 0, inputs 11-20 at
      shifts 1, 4, ..., 28 and the low bit of input 21 at bit 31; word 2 the
      top 2 bits of input 21 at bits 0-1 and inputs 22-31 at shifts 2, ..., 29.
    qzeros int32 [groups, N*b/32]: zero points packed the same way along N;
      checkpoint_format "gptq" (v1) stores zero - 1, "gptq_v2" the zero.
    scales float16 [groups, N]; g_idx int32 [K]: the group of each input.
    w[k, n] = scales[g_idx[k], n] * (q[k, n] - zero[g_idx[k], n]).
  AWQ GEMM, 4 bits: qweight int32 [K, N/8], qzeros int32 [K/G, N/8]: word w
    of a row holds columns 8w + [0, 2, 4, 6, 1, 3, 5, 7][i] at shifts 4i;
    zeros as they are; scales float16 [K/G, N]; group of input k = k // G.
"""
import json
import os
import re
import struct
import sys

import numpy as np

ST_DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": np.uint16, "I64": np.int64,
             "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8}


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b0, b1 = e["data_offsets"]
        arr = np.frombuffer(data[b0:b1], dtype=np.dtype(ST_DTYPES[e["dtype"]]).newbyteorder("<"))
        out[name] = (e["dtype"], arr.reshape(e["shape"]))
    return header.get("__metadata__", {}), out


def read_checkpoint(d):
    tensors = {}
    index = os.path.join(d, "model.safetensors.index.json")
    if os.path.exists(index):
        files = sorted(set(json.load(open(index))["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    for fn in files:
        meta, t = read_safetensors(os.path.join(d, fn))
        if meta.get("format") != "pt":
            raise SystemExit(f"{fn}: __metadata__ format is {meta.get('format')!r}, transformers needs 'pt'")
        tensors.update(t)
    return tensors


def unpack_gptq(words, bits, count):
    """words: uint32 [W, M] packed along axis 0 -> uint8 codes [count, M]."""
    words = words.astype(np.uint32)
    if bits in (2, 4, 8):
        per = 32 // bits
        shifts = (np.arange(per, dtype=np.uint32) * bits)[None, :, None]
        vals = (words[:, None, :] >> shifts) & np.uint32((1 << bits) - 1)  # [W, per, M]
        return vals.reshape(words.shape[0] * per, words.shape[1])[:count].astype(np.uint8)
    assert bits == 3
    w = words.reshape(-1, 3, words.shape[1])  # 32 values per 3 words
    w0, w1, w2 = w[:, 0], w[:, 1], w[:, 2]
    v = np.zeros((w.shape[0], 32, words.shape[1]), dtype=np.uint32)
    for j in range(10):
        v[:, j] = (w0 >> (3 * j)) & 7
    v[:, 10] = ((w0 >> 30) & 3) | ((w1 & 1) << 2)
    for j in range(10):
        v[:, 11 + j] = (w1 >> (3 * j + 1)) & 7
    v[:, 21] = ((w1 >> 31) & 1) | ((w2 & 3) << 1)
    for j in range(10):
        v[:, 22 + j] = (w2 >> (3 * j + 2)) & 7
    return v.reshape(-1, words.shape[1])[:count].astype(np.uint8)


AWQ_ORDER = [0, 2, 4, 6, 1, 3, 5, 7]


def unpack_awq(words):
    """words: int32 [R, N/8] -> uint8 [R, N]."""
    words = words.astype(np.uint32)
    out = np.zeros((words.shape[0], words.shape[1] * 8), dtype=np.uint8)
    for i in range(8):
        out[:, AWQ_ORDER[i]::8] = ((words >> np.uint32(4 * i)) & 15).astype(np.uint8)
    return out


def module_bits(qc, module):
    bits = qc["bits"]
    for key, over in (qc.get("dynamic") or {}).items():
        neg = key.startswith("-:")
        pat = key[2:] if key.startswith(("+:", "-:")) else key
        if re.match(pat, module):
            if not neg and "bits" in over:
                bits = over["bits"]
            break
    return bits


def to_f32(dtype, arr):
    if dtype == "BF16":
        return (arr.astype(np.uint32) << 16).view(np.float32)
    return arr.astype(np.float32)


def main():
    src, dst = sys.argv[1], sys.argv[2]
    cfg = json.load(open(os.path.join(src, "config.json")))
    qc = cfg.pop("quantization_config")
    t = read_checkpoint(src)
    out = {}
    modules = sorted(n[:-len(".qweight")] for n in t if n.endswith(".qweight"))
    used = set()
    for m in modules:
        qw_dt, qw = t[m + ".qweight"]
        qz_dt, qz = t[m + ".qzeros"]
        sc_dt, sc = t[m + ".scales"]
        assert qw_dt == "I32" and qz_dt == "I32" and sc_dt == "F16", (m, qw_dt, qz_dt, sc_dt)
        scales = sc.astype(np.float32)  # [groups, N]
        N = sc.shape[1]
        if qc["quant_method"] == "gptq":
            bits = module_bits(qc, m)
            gi_dt, g_idx = t[m + ".g_idx"]
            assert gi_dt == "I32"
            K = g_idx.shape[0]
            assert qw.shape == (K * bits // 32, N), (m, qw.shape)
            assert qz.shape == (sc.shape[0], N * bits // 32), (m, qz.shape)
            q = unpack_gptq(qw, bits, K)  # [K, N]
            z = unpack_gptq(qz.T, bits, N).T.astype(np.int32)  # [groups, N]
            if qc.get("checkpoint_format", "gptq") == "gptq":
                z = z + 1
            g = g_idx.astype(np.int64)
            used.update([m + ".g_idx"])
        else:
            assert qc["quant_method"] == "awq" and qc["bits"] == 4 and qc["version"] == "gemm"
            K = qw.shape[0]
            G = qc["group_size"] if qc["group_size"] > 0 else K
            assert qw.shape == (K, N // 8) and qz.shape == (K // G, N // 8) and sc.shape == (K // G, N), m
            q = unpack_awq(qw)
            z = unpack_awq(qz).astype(np.int32)
            g = np.arange(K) // G
        diff = (q.astype(np.int32) - z[g, :]).astype(np.float32)  # [K, N], exact small integers
        w = scales[g, :] * diff  # float32 products of a float16 scale and an integer: exact
        out[m + ".weight"] = ("F32", np.ascontiguousarray(w.T))
        used.update([m + ".qweight", m + ".qzeros", m + ".scales"])
    for name, (dt, arr) in t.items():
        if name in used:
            continue
        assert dt in ("F32", "F16", "BF16"), (name, dt)
        out[name] = (dt, arr)
    os.makedirs(dst, exist_ok=True)
    header, blobs, off = {}, [], 0
    for name in sorted(out):
        dt, arr = out[name]
        b = np.ascontiguousarray(arr).tobytes()
        header[name] = {"dtype": dt, "shape": list(arr.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    hj = json.dumps(header).encode()
    hj += b" " * (-len(hj) % 8)
    with open(os.path.join(dst, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(hj)) + hj + b"".join(blobs))
    json.dump(cfg, open(os.path.join(dst, "config.json"), "w"), indent=2)
    print(f"{len(modules)} modules decoded ({qc['quant_method']}), {len(out) - len(modules)} tensors copied")


if __name__ == "__main__":
    main()
