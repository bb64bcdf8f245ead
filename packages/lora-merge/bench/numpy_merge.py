#!/usr/bin/env python3
"""The NumPy comparison for merge.bench.ts: merge a PEFT LoRA adapter into a sharded safetensors checkpoint with
NumPy alone (no safetensors package: headers parsed by hand, tensors memory-mapped), W + s * (B @ A) in float32,
writing each output shard (same header) with write + fsync, as a straightforward Python merge script would.

usage: numpy_merge.py BASE_DIR ADAPTER_DIR OUT_DIR   (prints a JSON line: seconds, bytes, peak_rss_mib)
"""
import json
import os
import resource
import struct
import sys
import time

import numpy as np


def header(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        raw = f.read(n)
    return 8 + n, raw, json.loads(raw)


def tensor(mm, start, info):
    assert info["dtype"] == "F32"
    b, e = info["data_offsets"]
    return np.frombuffer(mm, dtype=np.float32, count=(e - b) // 4, offset=start + b).reshape(info["shape"])


def main():
    base, adapter, out = sys.argv[1:4]
    t0 = time.perf_counter()
    cfg = json.load(open(os.path.join(adapter, "adapter_config.json")))
    scale = cfg["lora_alpha"] / (cfg["r"] ** 0.5 if cfg.get("use_rslora") else cfg["r"])
    astart, _, ah = header(os.path.join(adapter, "adapter_model.safetensors"))
    amm = np.memmap(os.path.join(adapter, "adapter_model.safetensors"), dtype=np.uint8, mode="r")
    factors = {}
    for k, v in ah.items():
        if k.endswith(".lora_A.weight"):
            module = k[len("base_model.model."):-len(".lora_A.weight")]
            bkey = k.replace(".lora_A.", ".lora_B.")
            factors[module + ".weight"] = (tensor(amm, astart, v), tensor(amm, astart, ah[bkey]))
    os.makedirs(out, exist_ok=True)
    written = 0
    s = np.float32(scale)
    for name in sorted(os.listdir(base)):
        if not name.endswith(".safetensors"):
            continue
        start, raw, h = header(os.path.join(base, name))
        mm = np.memmap(os.path.join(base, name), dtype=np.uint8, mode="r")
        order = sorted((k for k in h if k != "__metadata__"), key=lambda k: h[k]["data_offsets"][0])
        with open(os.path.join(out, name), "wb") as f:
            f.write(struct.pack("<Q", len(raw)))
            f.write(raw)
            for k in order:
                w = tensor(mm, start, h[k])
                if k in factors:
                    a, b = factors[k]
                    w = w + (b @ a) * s  # PEFT: W + (B @ A) * scaling, in float32
                f.write(memoryview(np.ascontiguousarray(w)).cast("B"))
            f.flush()
            os.fsync(f.fileno())
        written += os.path.getsize(os.path.join(out, name))
        del mm
    secs = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": secs, "bytes": written, "peak_rss_mib": peak}))


if __name__ == "__main__":
    main()
