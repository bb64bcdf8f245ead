#!/usr/bin/env python3
"""The PyTorch side of bench/llama.bench.ts: a compact Llama (transformers' LlamaForCausalLM semantics: RMSNorm in
float32, Hugging Face rotary embeddings, grouped-query attention with repeat_kv, causal + padding mask, softmax in
float32, SwiGLU MLP, a KV cache extended by torch.cat) built from a Hugging Face checkpoint directory (config.json +
safetensors, sharded or not), timed on the shapes the bench gives it.

transformers is not installed here, so the model is written out; --reference checks it against the tiny-llama
fixture's reference.json (token log-probs within 1e-4 and greedy ids exact) before anything is timed, so that the
comparison is with a correct Llama.

Usage: llama_torch.py --model DIR --work WORK.json [--reference reference.json] [--threads 2] [--reps 3]
WORK.json: {"prefill": [[ids]...], "decode": {"1": [[ids]], "8": [[ids]...]}, "new_tokens": 64, "score": [ids]}
Prints one JSON object on stdout: figures, greedy ids, the reference check, peak RSS.
"""
import argparse
import json
import math
import os
import resource
import struct
import sys
import time

import torch
import torch.nn.functional as F

DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = bytearray(f.read())
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype = DTYPES.get(info["dtype"])
        if dtype is None:
            raise SystemExit(f"{path}: tensor {name} has unsupported dtype {info['dtype']}")
        start, end = info["data_offsets"]
        count = math.prod(info["shape"])
        t = torch.frombuffer(data, dtype=dtype, count=count, offset=start) if count else torch.empty(0, dtype=dtype)
        out[name] = t.reshape(info["shape"]).to(torch.float32).clone()
    return out


def read_checkpoint(model_dir):
    index = os.path.join(model_dir, "model.safetensors.index.json")
    files = (
        sorted(set(json.load(open(index))["weight_map"].values()))
        if os.path.exists(index)
        else ["model.safetensors"]
    )
    weights = {}
    for f in files:
        weights.update(read_safetensors(os.path.join(model_dir, f)))
    return weights


class Llama:
    def __init__(self, model_dir):
        cfg = json.load(open(os.path.join(model_dir, "config.json")))
        self.hidden = cfg["hidden_size"]
        self.heads = cfg["num_attention_heads"]
        self.kv_heads = cfg.get("num_key_value_heads") or self.heads
        self.head_dim = cfg.get("head_dim") or self.hidden // self.heads
        self.layers = cfg["num_hidden_layers"]
        self.eps = cfg.get("rms_norm_eps", 1e-6)
        rope = cfg.get("rope_parameters") or {}
        scaling = cfg.get("rope_scaling") or {}
        rope_type = rope.get("rope_type") or scaling.get("rope_type") or scaling.get("type") or "default"
        if rope_type != "default":
            raise SystemExit(f"rope type {rope_type} not supported by this bench model")
        theta = rope.get("rope_theta", cfg.get("rope_theta", 10000.0))
        d = self.head_dim
        self.inv_freq = 1.0 / (theta ** (torch.arange(0, d, 2, dtype=torch.int64).float() / d))
        w = read_checkpoint(model_dir)
        self.embed = w["model.embed_tokens.weight"]
        self.norm = w["model.norm.weight"]
        self.lm_head = w.get("lm_head.weight")
        if self.lm_head is None or cfg.get("tie_word_embeddings"):
            self.lm_head = self.embed
        self.w = []
        for i in range(self.layers):
            p = f"model.layers.{i}."
            self.w.append(
                {
                    k: w[p + n + ".weight"]
                    for k, n in [
                        ("in_norm", "input_layernorm"),
                        ("post_norm", "post_attention_layernorm"),
                        ("q", "self_attn.q_proj"),
                        ("k", "self_attn.k_proj"),
                        ("v", "self_attn.v_proj"),
                        ("o", "self_attn.o_proj"),
                        ("gate", "mlp.gate_proj"),
                        ("up", "mlp.up_proj"),
                        ("down", "mlp.down_proj"),
                    ]
                }
            )
            for n in ["q", "k", "v", "o"]:
                b = w.get(p + f"self_attn.{n}_proj.bias")
                if b is not None:
                    self.w[i][n + "_b"] = b
        self.has_bias = any("q_b" in lw for lw in self.w)

    def rms_norm(self, x, weight):
        variance = x.pow(2).mean(-1, keepdim=True)
        return weight * (x * torch.rsqrt(variance + self.eps))

    @staticmethod
    def rotate_half(x):
        h = x.shape[-1] // 2
        return torch.cat((-x[..., h:], x[..., :h]), dim=-1)

    def forward(self, ids, mask, cache, last_only):
        """ids, mask: [B, T] (mask 1 = token, 0 = padding); cache: dict with 'k', 'v' (per layer), 'mask', 'pos'."""
        B, T = ids.shape
        # position ids: cumsum(mask) - 1 continuing from the cache (pads get the row's current position; masked)
        pos = cache["pos"][:, None] + mask.cumsum(-1) - 1
        pos = pos.clamp(min=0)
        cache["pos"] = cache["pos"] + mask.sum(-1)
        kmask = mask if cache["mask"] is None else torch.cat([cache["mask"], mask], dim=1)
        cache["mask"] = kmask
        start = kmask.shape[1] - T
        L = kmask.shape[1]
        freqs = pos[..., None].float() * self.inv_freq  # [B, T, d/2]
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos()[:, None], emb.sin()[:, None]  # [B, 1, T, d]
        causal = torch.arange(L)[None, :] <= (start + torch.arange(T))[:, None]  # [T, L]
        visible = causal[None, None] & kmask.bool()[:, None, None, :]  # [B, 1, T, L]
        add_mask = torch.zeros(visible.shape, dtype=torch.float32).masked_fill_(~visible, torch.finfo(torch.float32).min)
        group = self.heads // self.kv_heads
        d = self.head_dim
        scale = d**-0.5
        h = self.embed[ids]
        for i, lw in enumerate(self.w):
            x = self.rms_norm(h, lw["in_norm"])
            q = F.linear(x, lw["q"], lw.get("q_b")).view(B, T, self.heads, d).transpose(1, 2)
            k = F.linear(x, lw["k"], lw.get("k_b")).view(B, T, self.kv_heads, d).transpose(1, 2)
            v = F.linear(x, lw["v"], lw.get("v_b")).view(B, T, self.kv_heads, d).transpose(1, 2)
            q = q * cos + self.rotate_half(q) * sin
            k = k * cos + self.rotate_half(k) * sin
            if cache["k"][i] is not None:
                k = torch.cat([cache["k"][i], k], dim=2)
                v = torch.cat([cache["v"][i], v], dim=2)
            cache["k"][i], cache["v"][i] = k, v
            if group > 1:  # transformers' repeat_kv
                k = k[:, :, None].expand(B, self.kv_heads, group, L, d).reshape(B, self.heads, L, d)
                v = v[:, :, None].expand(B, self.kv_heads, group, L, d).reshape(B, self.heads, L, d)
            scores = torch.matmul(q, k.transpose(2, 3)) * scale + add_mask
            probs = torch.softmax(scores, dim=-1, dtype=torch.float32)
            attn = torch.matmul(probs, v).transpose(1, 2).reshape(B, T, self.heads * d)
            h = h + F.linear(attn, lw["o"], lw.get("o_b"))
            x = self.rms_norm(h, lw["post_norm"])
            h = h + F.linear(F.silu(F.linear(x, lw["gate"])) * F.linear(x, lw["up"]), lw["down"])
        if last_only:
            h = h[:, -1:]
        return F.linear(self.rms_norm(h, self.norm), self.lm_head)  # [B, T or 1, vocab]

    def new_cache(self, batch):
        return {"k": [None] * self.layers, "v": [None] * self.layers, "mask": None, "pos": torch.zeros(batch, dtype=torch.int64)}

    def prefill_last(self, prompts):
        """Left-pads the prompts into one batch; returns the last logits [B, vocab] and the cache."""
        T = max(len(p) for p in prompts)
        ids = torch.tensor([[0] * (T - len(p)) + p for p in prompts], dtype=torch.int64)
        mask = torch.tensor([[0] * (T - len(p)) + [1] * len(p) for p in prompts], dtype=torch.int64)
        cache = self.new_cache(len(prompts))
        return self.forward(ids, mask, cache, True)[:, -1], cache

    def greedy(self, prompts, new_tokens):
        logits, cache = self.prefill_last(prompts)
        out = [[] for _ in prompts]
        ones = torch.ones(len(prompts), 1, dtype=torch.int64)
        for step in range(new_tokens):
            nxt = logits.argmax(-1)
            for b, t in enumerate(nxt.tolist()):
                out[b].append(t)
            if step + 1 < new_tokens:
                logits = self.forward(nxt[:, None], ones, cache, True)[:, -1]
        return out

    def token_logprobs(self, ids):
        x = torch.tensor([ids], dtype=torch.int64)
        logits = self.forward(x, torch.ones_like(x), self.new_cache(1), False)[0]
        logp = torch.log_softmax(logits.double(), dim=-1)
        return [logp[t, ids[t + 1]].item() for t in range(len(ids) - 1)]


BUSY_LIMIT = 0.2  # runs during which other processes used more cores than this are timed again
MAX_TRIES = 15
RUNS = {"kept": 0, "discarded": 0, "busyKept": 0}


def machine_busy_seconds():
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / 100
    except OSError:
        return None


def median_time(fn, reps):
    """Median wall time of reps runs after a warm-up, discarding runs disturbed by other processes (as the bench)."""
    w0 = time.perf_counter()
    fn()
    # /proc/stat counts in 10 ms ticks: a timed run repeats fn for at least ~0.3 s (the time is per call)
    calls = max(1, math.ceil(0.3 / max(1e-3, time.perf_counter() - w0)))
    timed = []
    for _ in range(MAX_TRIES):
        if sum(1 for _, o in timed if o <= BUSY_LIMIT) >= reps:
            break
        b0, c0, t0 = machine_busy_seconds(), time.process_time(), time.perf_counter()
        for _ in range(calls):
            fn()
        wall = time.perf_counter() - t0
        cpu = time.process_time() - c0
        b1 = machine_busy_seconds()
        others = 0.0 if b0 is None or b1 is None else (b1 - b0 - cpu) / wall
        timed.append((wall / calls, others))
    quiet = [t for t in timed if t[1] <= BUSY_LIMIT]
    RUNS["discarded"] += len(timed) - len(quiet)
    kept = (quiet if len(quiet) >= reps else sorted(timed, key=lambda t: t[1]))[:reps]
    RUNS["kept"] += len(kept)
    RUNS["busyKept"] += sum(1 for t in kept if t[1] > BUSY_LIMIT)
    times = sorted(t[0] for t in kept)
    return times[len(times) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--reference")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    work = json.load(open(args.work))
    result = {"torch": torch.__version__, "threads": torch.get_num_threads()}
    with torch.inference_mode():
        t0 = time.perf_counter()
        model = Llama(args.model)
        result["load_s"] = time.perf_counter() - t0
        if args.reference:
            ref = json.load(open(args.reference))
            worst = 0.0
            greedy_ok = True
            for case in ref["base"]:
                lp = model.token_logprobs(case["input_ids"])
                worst = max(worst, max(abs(a - b) for a, b in zip(lp, case["token_logprobs"])))
                new = model.greedy([case["input_ids"]], len(case["greedy_new_ids"]))[0]
                greedy_ok = greedy_ok and new == case["greedy_new_ids"]
            if "base_batched_greedy_left_padded" in ref:  # the five prompts as one left-padded batch
                batched = model.greedy([c["input_ids"] for c in ref["base"]], len(ref["base_batched_greedy_left_padded"][0]))
                greedy_ok = greedy_ok and batched == ref["base_batched_greedy_left_padded"]
            result["reference"] = {"cases": len(ref["base"]), "max_abs_logprob_diff": worst, "greedy_exact": greedy_ok}
            if worst > 1e-4 or not greedy_ok:
                print(json.dumps(result))
                print(f"llama_torch.py: the PyTorch model does not match {args.reference}: {result['reference']}", file=sys.stderr)
                sys.exit(2)
        if work.get("score"):
            result["score_logprobs"] = model.token_logprobs(work["score"])
        prompts = work["prefill"]
        n_prefill = sum(len(p) for p in prompts)
        secs = median_time(lambda: model.prefill_last(prompts), args.reps)
        result["prefill_tok_s"] = n_prefill / secs
        result["decode"] = {}
        new_tokens = work["new_tokens"]
        for batch, dprompts in work["decode"].items():
            ids = []
            secs = median_time(lambda: ids.append(model.greedy(dprompts, new_tokens)), args.reps)
            result["decode"][batch] = {"tok_s": len(dprompts) * new_tokens / secs, "ids": ids[-1]}
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result["peak_rss_mib"] = usage.ru_maxrss / 1024
    result["cpu_s"] = usage.ru_utime + usage.ru_stime
    result["runs"] = RUNS
    print(json.dumps(result))


if __name__ == "__main__":
    main()
