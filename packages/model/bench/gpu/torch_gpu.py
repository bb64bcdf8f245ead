#!/usr/bin/env python3
"""The PyTorch side of bench/gpu/webgpu-gpu.ts: the same shapes, float32 with TF32 off, on the same GPU.

A plain-torch Llama (transformers' LlamaForCausalLM semantics: RMSNorm, rotary embeddings, grouped-query attention
through F.scaled_dot_product_attention as transformers' default sdpa path, SwiGLU, a KV cache extended by
torch.cat) with random weights made on the device, and LoRA (r 8, alpha 16, on q/k/v/o/gate/up/down) as extra
parameters trained with torch.optim.AdamW. Figures, as webgpu-gpu.ts measures them:
- prefill: B×T tokens through the model, last logits only, median of 3 after a warm-up;
- decode: greedy, 64 new tokens after a 32-token prompt, argmax on the device with no host sync per token (the
  fastest eager loop), decode time = total − prefill;
- LoRA step: forward + backward + clip + AdamW on 4×256, median of 3 after a warm-up.
Usage: torch_gpu.py CONFIG OUT.json [--device cuda|cpu] [--budget SECONDS]
"""
import argparse
import json
import os
import time

import torch
import torch.nn.functional as F

CONFIGS = {
    "tiny": dict(hidden=64, inter=176, layers=2, heads=4, kv=2, vocab=32000),
    "small": dict(hidden=512, inter=1408, layers=8, heads=8, kv=4, vocab=32000),
    "1b": dict(hidden=2048, inter=5632, layers=16, heads=32, kv=8, vocab=32000),
    "7b": dict(hidden=4096, inter=11008, layers=32, heads=32, kv=32, vocab=32000),
}
SHAPES = dict(prefill=(4, 256), decode_prompt=32, new_tokens=64, sft=(4, 256), r=8, alpha=16)
PROJ = ["q", "k", "v", "o", "gate", "up", "down"]


class Llama:
    def __init__(self, c, device, lora_r=0, lora_alpha=16):
        g = torch.Generator(device=device).manual_seed(0)
        H, I, L = c["hidden"], c["inter"], c["layers"]
        self.nh, self.nkv, self.d = c["heads"], c["kv"], H // c["heads"]
        self.eps = 1e-5
        self.device = device

        def w(*shape):
            return torch.randn(*shape, generator=g, device=device) * 0.02

        self.embed = w(c["vocab"], H)
        self.lm_head = w(c["vocab"], H)
        self.norm = torch.ones(H, device=device)
        dims = dict(q=(self.nh * self.d, H), k=(self.nkv * self.d, H), v=(self.nkv * self.d, H), o=(H, self.nh * self.d), gate=(I, H), up=(I, H), down=(H, I))
        self.layers = []
        self.lora_params = []
        self.scale = lora_alpha / lora_r if lora_r else 0.0
        for _ in range(L):
            lw = {"in_norm": torch.ones(H, device=device), "post_norm": torch.ones(H, device=device)}
            for p in PROJ:
                lw[p] = w(*dims[p])
                if lora_r:
                    a = (torch.randn(lora_r, dims[p][1], generator=g, device=device) * 0.01).requires_grad_()
                    b = (torch.randn(dims[p][0], lora_r, generator=g, device=device) * 0.01).requires_grad_()
                    lw[p + "_lora"] = (a, b)
                    self.lora_params += [a, b]
            self.layers.append(lw)
        self.inv_freq = 1.0 / (10000 ** (torch.arange(0, self.d, 2, device=device).float() / self.d))

    def rms(self, x, weight):
        return weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))

    @staticmethod
    def rot(x):
        h = x.shape[-1] // 2
        return torch.cat((-x[..., h:], x[..., :h]), dim=-1)

    def lin(self, x, lw, p):
        y = F.linear(x, lw[p])
        if p + "_lora" in lw:
            a, b = lw[p + "_lora"]
            y = y + F.linear(F.linear(x, a), b) * self.scale
        return y

    def forward(self, ids, cache=None, last_only=False):
        B, T = ids.shape
        start = 0 if cache is None or cache["k"][0] is None else cache["k"][0].shape[2]
        pos = torch.arange(start, start + T, device=self.device)
        freqs = pos[:, None].float() * self.inv_freq
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos()[None, None], emb.sin()[None, None]
        h = self.embed[ids]
        group = self.nh // self.nkv
        for i, lw in enumerate(self.layers):
            x = self.rms(h, lw["in_norm"])
            q = self.lin(x, lw, "q").view(B, T, self.nh, self.d).transpose(1, 2)
            k = self.lin(x, lw, "k").view(B, T, self.nkv, self.d).transpose(1, 2)
            v = self.lin(x, lw, "v").view(B, T, self.nkv, self.d).transpose(1, 2)
            q = q * cos + self.rot(q) * sin
            k = k * cos + self.rot(k) * sin
            if cache is not None:
                if cache["k"][i] is not None:
                    k = torch.cat([cache["k"][i], k], dim=2)
                    v = torch.cat([cache["v"][i], v], dim=2)
                cache["k"][i], cache["v"][i] = k, v
            if group > 1:
                k = k.repeat_interleave(group, dim=1)
                v = v.repeat_interleave(group, dim=1)
            a = sdpa(q, k, v, T > 1)
            h = h + self.lin(a.transpose(1, 2).reshape(B, T, -1), lw, "o")
            x = self.rms(h, lw["post_norm"])
            h = h + self.lin(F.silu(self.lin(x, lw, "gate")) * self.lin(x, lw, "up"), lw, "down")
        if last_only:
            h = h[:, -1:]
        return F.linear(self.rms(h, self.norm), self.lm_head)


def sdpa(q, k, v, causal):
    if hasattr(F, "scaled_dot_product_attention"):
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    # torch < 2.0 (the rehearsal on a CPU machine): the same product written out.
    s = (q @ k.transpose(-1, -2)) / q.shape[-1] ** 0.5
    if causal:
        T, L = s.shape[-2], s.shape[-1]
        s = s.masked_fill(torch.ones(T, L, dtype=torch.bool, device=s.device).triu(L - T + 1), float("-inf"))
    return s.softmax(-1) @ v


def sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def median(fn, device, reps=3):
    fn()
    sync(device)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2], times


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("config")
    ap.add_argument("out")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--budget", type=float, default=240)
    args = ap.parse_args()
    t00 = time.perf_counter()
    left = lambda: args.budget - (time.perf_counter() - t00)  # noqa: E731
    dev = args.device
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    c = CONFIGS[args.config]
    out = {"engine": "pytorch", "torch": torch.__version__, "device": torch.cuda.get_device_name() if dev == "cuda" else "cpu", "config": args.config, "dtype": "float32", "tf32": False}

    def save():
        with open(args.out + ".tmp", "w") as f:
            json.dump(out, f, indent=2)
        os.replace(args.out + ".tmp", args.out)

    g = torch.Generator(device="cpu").manual_seed(1)
    t0 = time.perf_counter()
    with torch.no_grad():
        model = Llama(c, dev)
    sync(dev)
    out["load_s"] = time.perf_counter() - t0
    PB, PT = SHAPES["prefill"]
    V = c["vocab"]
    with torch.inference_mode():
        ids = torch.randint(3, V, (PB, PT), generator=g).to(dev)
        s, all_ = median(lambda: model.forward(ids, last_only=True), dev)
        out["prefill"] = {"s": s, "all": all_, "tok_s": PB * PT / s}
        save()
        print(f"[torch {args.config}] prefill {PB}x{PT}: {PB * PT / s:.0f} tok/s", flush=True)
        N = SHAPES["new_tokens"]
        out["decode"] = {}
        for B in [1, 8]:
            if left() < 20:
                break
            prompt = torch.randint(3, V, (B, SHAPES["decode_prompt"]), generator=g).to(dev)

            def prefill_only():
                cache = {"k": [None] * c["layers"], "v": [None] * c["layers"]}
                return model.forward(prompt, cache, last_only=True).argmax(-1)

            def greedy():
                cache = {"k": [None] * c["layers"], "v": [None] * c["layers"]}
                nxt = model.forward(prompt, cache, last_only=True)[:, -1].argmax(-1)
                toks = [nxt]
                for _ in range(N - 1):
                    nxt = model.forward(nxt[:, None], cache, last_only=True)[:, -1].argmax(-1)
                    toks.append(nxt)
                return torch.stack(toks, 1).cpu()

            pf, _ = median(prefill_only, dev)
            tot, _ = median(greedy, dev)
            ds = max(1e-9, tot - pf)
            out["decode"][f"b{B}"] = {"prefill_s": pf, "total_s": tot, "decode_s": ds, "tok_s": B * (N - 1) / ds, "ms_per_step": ds / (N - 1) * 1000}
            save()
            print(f"[torch {args.config}] decode b{B}: {B * (N - 1) / ds:.1f} tok/s", flush=True)
    del model
    if dev == "cuda":
        torch.cuda.empty_cache()
    if left() > 20:
        model = Llama(c, dev, lora_r=SHAPES["r"], lora_alpha=SHAPES["alpha"])
        SB, ST = SHAPES["sft"]
        opt = torch.optim.AdamW(model.lora_params, lr=1e-3, weight_decay=0.05)
        ids = torch.randint(3, V, (SB, ST), generator=g).to(dev)
        losses = []

        def step():
            logits = model.forward(ids)
            loss = F.cross_entropy(logits[:, :-1].reshape(-1, V), ids[:, 1:].reshape(-1))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.lora_params, 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
            losses.append(loss.item())

        if dev == "cuda":
            torch.cuda.reset_peak_memory_stats()
        s, all_ = median(step, dev)
        out["sft_step"] = {"s": s, "all": all_, "losses": losses}
        if dev == "cuda":
            out["sft_peak_gb"] = torch.cuda.max_memory_allocated() / 1e9
        save()
        print(f"[torch {args.config}] LoRA step {SB}x{ST}: {s:.3f} s", flush=True)
    out["wall_s"] = time.perf_counter() - t00
    save()


if __name__ == "__main__":
    main()
