#!/usr/bin/env python3
"""The PyTorch side of bench/sft.bench.ts: one LoRA training step of a compact Llama (transformers'
LlamaForCausalLM semantics: RMSNorm in float32, Hugging Face rotary embeddings, grouped-query attention with
repeat_kv, causal + padding mask, softmax in float32, SwiGLU) with PEFT-style LoRA layers (y = x W^T +
scale * B(A(dropout(x)))), the causal-LM loss (mean cross-entropy over the shifted labels that are not -100),
clip_grad_norm_ over the LoRA tensors and torch.optim.AdamW.

transformers and peft are not installed here, so both are written out; --reference checks the trainer against the
tiny-llama fixture's SFT recipe (loss, step-0 gradients of every LoRA tensor, 3 AdamW steps) before anything is
timed, so that the comparison is with a correct trainer.

Usage: sft_torch.py --model DIR --adapter DIR --work WORK.json [--reference FIXTURE_DIR] [--threads 2] [--reps 3]
WORK.json: {"input_ids": [[...]], "labels": [[...]], "lr": x, "max_grad_norm": x, "weight_decay": x}
Prints one JSON object on stdout.
"""
import argparse
import json
import math
import os
import resource
import struct
import time

import torch
import torch.nn.functional as F

DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}
PROJ = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = bytearray(f.read())
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, _ = info["data_offsets"]
        count = math.prod(info["shape"])
        t = torch.frombuffer(data, dtype=DTYPES[info["dtype"]], count=count, offset=start) if count else torch.empty(0)
        out[name] = t.reshape(info["shape"]).to(torch.float32).clone()
    return out


def read_checkpoint(model_dir):
    index = os.path.join(model_dir, "model.safetensors.index.json")
    files = sorted(set(json.load(open(index))["weight_map"].values())) if os.path.exists(index) else ["model.safetensors"]
    w = {}
    for f in files:
        w.update(read_safetensors(os.path.join(model_dir, f)))
    return w


class LoraLinear(torch.nn.Module):
    """A frozen linear layer with an optional PEFT LoRA adapter (parameters named as PEFT names them)."""

    def __init__(self, weight):
        super().__init__()
        self.weight = torch.nn.Parameter(weight, requires_grad=False)
        self.lora_A = None
        self.lora_B = None
        self.scale = 0.0
        self.dropout = 0.0

    def add_lora(self, a, b, scale, dropout):
        self.lora_A = torch.nn.Parameter(a.clone())
        self.lora_B = torch.nn.Parameter(b.clone())
        self.scale = scale
        self.dropout = dropout

    def forward(self, x):
        y = F.linear(x, self.weight)
        if self.lora_A is not None:
            xd = F.dropout(x, self.dropout, self.training) if self.dropout > 0 else x
            y = y + F.linear(F.linear(xd, self.lora_A), self.lora_B) * self.scale
        return y


class Llama(torch.nn.Module):
    def __init__(self, model_dir):
        super().__init__()
        cfg = json.load(open(os.path.join(model_dir, "config.json")))
        self.hidden = cfg["hidden_size"]
        self.heads = cfg["num_attention_heads"]
        self.kv_heads = cfg.get("num_key_value_heads") or self.heads
        self.head_dim = cfg.get("head_dim") or self.hidden // self.heads
        self.n_layers = cfg["num_hidden_layers"]
        self.eps = cfg.get("rms_norm_eps", 1e-6)
        rope = cfg.get("rope_parameters") or {}
        theta = rope.get("rope_theta", cfg.get("rope_theta", 10000.0))
        d = self.head_dim
        self.inv_freq = 1.0 / (theta ** (torch.arange(0, d, 2, dtype=torch.int64).float() / d))
        w = read_checkpoint(model_dir)
        self.embed = w["model.embed_tokens.weight"]
        self.norm = w["model.norm.weight"]
        self.lm_head = w.get("lm_head.weight", self.embed)
        self.layers = torch.nn.ModuleList()
        for i in range(self.n_layers):
            p = f"model.layers.{i}."
            layer = torch.nn.Module()
            layer.in_norm = w[p + "input_layernorm.weight"]
            layer.post_norm = w[p + "post_attention_layernorm.weight"]
            for n in PROJ:
                part = "mlp" if n in ("gate_proj", "up_proj", "down_proj") else "self_attn"
                setattr(layer, n, LoraLinear(w[f"{p}{part}.{n}.weight"]))
            self.layers.append(layer)

    def module(self, name):
        m = __import__("re").match(r"^model\.layers\.(\d+)\.(?:self_attn|mlp)\.(\w+_proj)$", name)
        return getattr(self.layers[int(m.group(1))], m.group(2))

    def load_adapter(self, adapter_dir, dropout=0.0):
        cfg = json.load(open(os.path.join(adapter_dir, "adapter_config.json")))
        scale = cfg["lora_alpha"] / (math.sqrt(cfg["r"]) if cfg.get("use_rslora") else cfg["r"])
        t = read_safetensors(os.path.join(adapter_dir, "adapter_model.safetensors"))
        names = []
        for key in sorted(t):
            if key.endswith(".lora_A.weight"):
                mod = key[len("base_model.model."): -len(".lora_A.weight")]
                self.module(mod).add_lora(t[key], t[key.replace("lora_A", "lora_B")], scale, dropout)
                names.append(mod)
        return names

    def lora_parameters(self):
        """(PEFT name, parameter) pairs."""
        out = []
        for i, layer in enumerate(self.layers):
            for n in PROJ:
                m = getattr(layer, n)
                if m.lora_A is not None:
                    part = "mlp" if n in ("gate_proj", "up_proj", "down_proj") else "self_attn"
                    base = f"base_model.model.model.layers.{i}.{part}.{n}"
                    out.append((f"{base}.lora_A.default.weight", m.lora_A))
                    out.append((f"{base}.lora_B.default.weight", m.lora_B))
        return out

    def rms_norm(self, x, weight):
        variance = x.pow(2).mean(-1, keepdim=True)
        return weight * (x * torch.rsqrt(variance + self.eps))

    @staticmethod
    def rotate_half(x):
        h = x.shape[-1] // 2
        return torch.cat((-x[..., h:], x[..., :h]), dim=-1)

    def forward(self, ids, mask):
        B, T = ids.shape
        h = F.embedding(ids, self.embed)
        pos = torch.arange(T).float()
        freqs = torch.outer(pos, self.inv_freq)
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos()[None, None], emb.sin()[None, None]
        causal = torch.tril(torch.ones(T, T, dtype=torch.bool))
        allowed = causal[None, None] & mask.bool()[:, None, None, :]
        add = torch.zeros(B, 1, T, T).masked_fill(~allowed, torch.finfo(torch.float32).min)
        d, nh, nkv = self.head_dim, self.heads, self.kv_heads
        for layer in self.layers:
            x = self.rms_norm(h, layer.in_norm)
            q = layer.q_proj(x).view(B, T, nh, d).transpose(1, 2)
            k = layer.k_proj(x).view(B, T, nkv, d).transpose(1, 2)
            v = layer.v_proj(x).view(B, T, nkv, d).transpose(1, 2)
            q = q * cos + self.rotate_half(q) * sin
            k = k * cos + self.rotate_half(k) * sin
            k = k.repeat_interleave(nh // nkv, dim=1)
            v = v.repeat_interleave(nh // nkv, dim=1)
            scores = torch.matmul(q, k.transpose(2, 3)) / math.sqrt(d) + add
            probs = torch.softmax(scores, dim=-1, dtype=torch.float32)
            ctx = torch.matmul(probs, v).transpose(1, 2).reshape(B, T, nh * d)
            h = h + layer.o_proj(ctx)
            x = self.rms_norm(h, layer.post_norm)
            h = h + layer.down_proj(F.silu(layer.gate_proj(x)) * layer.up_proj(x))
        h = self.rms_norm(h, self.norm)
        return F.linear(h, self.lm_head)


def causal_lm_loss(logits, labels):
    """transformers' ForCausalLMLoss: mean cross-entropy over the shifted labels that are not -100 (float32)."""
    shift_logits = logits[:, :-1, :].float().reshape(-1, logits.shape[-1])
    shift_labels = labels[:, 1:].reshape(-1)
    return F.cross_entropy(shift_logits, shift_labels, ignore_index=-100, reduction="mean")


def check_reference(fixture):
    """The fixture's SFT recipe: loss and step-0 gradients, then 3 AdamW steps (losses, grad norms, adapter)."""
    ref = json.load(open(os.path.join(fixture, "sft-reference.json")))
    model = Llama(os.path.join(fixture, "base"))
    model.load_adapter(os.path.join(fixture, "sft-init-adapter"))
    ids = torch.tensor(ref["input_ids"])
    mask = torch.tensor(ref["attention_mask"])
    labels = torch.tensor(ref["labels"])
    params = model.lora_parameters()
    want = read_safetensors(os.path.join(fixture, "sft-step0-grads.safetensors"))
    opt = torch.optim.AdamW([p for _, p in params], lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.05)
    losses, norms, grad_rel = [], [], 0.0
    for step in range(3):
        loss = causal_lm_loss(model(ids, mask), labels)
        loss.backward()
        if step == 0:
            for name, p in params:
                g = want[name]
                grad_rel = max(grad_rel, float((p.grad - g).abs().max() / g.abs().max()))
        norms.append(float(torch.nn.utils.clip_grad_norm_([p for _, p in params], 0.3)))
        losses.append(float(loss))
        opt.step()
        opt.zero_grad()
    with torch.no_grad():
        after = float(causal_lm_loss(model(ids, mask), labels))
    loss_err = max([abs(a - b) for a, b in zip(losses, ref["loss_before_each_step"])] + [abs(after - ref["loss_after_all_steps"])])
    norm_err = max(abs(a - b) / b for a, b in zip(norms, ref["grad_norm_before_clip_each_step"]))
    return {"loss_max_abs_err": loss_err, "grad_norm_max_rel_err": norm_err, "step0_grad_max_rel_err": grad_rel}


def machine_busy_seconds():
    """Busy CPU seconds of the whole machine so far (/proc/stat), or None."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / 100
    except OSError:
        return None


def own_cpu_seconds():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--adapter", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--reference")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--max-steps", type=int, default=16)
    ap.add_argument("--busy-limit", type=float, default=0.25)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    out = {"torch": torch.__version__, "threads": torch.get_num_threads()}
    if a.reference:
        out["reference"] = check_reference(a.reference)
    work = json.load(open(a.work))
    model = Llama(a.model)
    model.load_adapter(a.adapter)
    model.train()
    ids = torch.tensor(work["input_ids"])
    labels = torch.tensor(work["labels"])
    mask = torch.ones_like(ids)
    params = [p for _, p in model.lora_parameters()]
    opt = torch.optim.AdamW(params, lr=work["lr"], weight_decay=work["weight_decay"])
    steps = []
    # The first step is a warm-up; then steps until a.reps of them ran while other processes left the machine
    # quiet (at most a.max_steps; the bench keeps the quietest).
    while len(steps) < a.max_steps and sum(1 for s in steps[1:] if s["others"] <= a.busy_limit) < a.reps:
        busy0, cpu0 = machine_busy_seconds(), own_cpu_seconds()
        t0 = time.perf_counter()
        loss = causal_lm_loss(model(ids, mask), labels)
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        norm = torch.nn.utils.clip_grad_norm_(params, work["max_grad_norm"])
        opt.step()
        opt.zero_grad()
        t3 = time.perf_counter()
        busy1, cpu1 = machine_busy_seconds(), own_cpu_seconds()
        others = 0.0 if busy0 is None or busy1 is None else max(0.0, (busy1 - busy0 - (cpu1 - cpu0)) / (t3 - t0))
        steps.append({"loss": float(loss), "grad_norm": float(norm), "forward_s": t1 - t0, "backward_s": t2 - t1,
                      "optimizer_s": t3 - t2, "step_s": t3 - t0, "others": others})
    out["steps"] = steps
    out["peak_rss_mib"] = peak_rss_mib()
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    out["cpu_s"] = cpu.ru_utime + cpu.ru_stime
    print(json.dumps(out))


if __name__ == "__main__":
    main()
