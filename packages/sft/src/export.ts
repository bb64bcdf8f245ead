/**
 * `polyglot sft export --to trl`: the same training run for the Python stack (TRL's SFTTrainer + PEFT, launched with
 * accelerate or DeepSpeed on as many GPUs as a cluster has). Writes `train_config.json` (every value of the run:
 * data files, formatting, LoRA, SFTConfig) and `train_trl.py`, a short script that reads it, prepares the data
 * exactly as `polyglot sft train` does (same tokenization, EOS, truncation, target masks, length order) as a
 * pre-tokenized dataset with a `completion_mask`, and saves a PEFT adapter that `polyglot merge` and
 * `polyglot infer` read.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '@polyglot/model';
import { resolveTargetModules } from './lora.js';
import type { SftArgs } from './options.js';

export const TRL_CONFIG_FILE = 'train_config.json';
export const TRL_SCRIPT_FILE = 'train_trl.py';

/** train_config.json: what the script reads. */
export interface TrlConfig {
  format: 'polyglot-sft-trl/1';
  model_name_or_path: string;
  init_adapter: string | null;
  data: { train: string; eval: string | null };
  formatting: {
    max_length: number;
    truncation: 'keep_start';
    add_eos: true;
    loss: SftArgs['loss'];
    chat_template: string | null;
    pad_token: 'pad_token, else eos_token';
    sort_by_length: boolean;
    shuffle: boolean;
    packing: boolean;
  };
  lora: {
    r: number;
    lora_alpha: number;
    lora_dropout: number;
    target_modules: string[];
    use_rslora: boolean;
    bias: 'none';
    task_type: 'CAUSAL_LM';
  };
  sft_config: {
    output_dir: string;
    learning_rate: number;
    lr_scheduler_type: string;
    warmup_ratio: number;
    warmup_steps: number;
    weight_decay: number;
    adam_beta1: number;
    adam_beta2: number;
    adam_epsilon: number;
    max_grad_norm: number;
    num_train_epochs: number;
    max_steps: number;
    per_device_train_batch_size: number;
    per_device_eval_batch_size: number;
    gradient_accumulation_steps: number;
    max_length: number;
    packing: boolean;
    padding_free: boolean;
    completion_only_loss: true;
    seed: number;
    data_seed: number;
    optim: 'adamw_torch';
    logging_steps: number;
    eval_strategy: 'steps' | 'no';
    eval_steps: number | null;
    save_strategy: 'steps' | 'no';
    save_steps: number;
    report_to: 'none';
    dataloader_drop_last: false;
  };
}

/** The TRL config equivalent to a run's arguments. */
export function trlConfig(args: SftArgs): TrlConfig {
  return {
    format: 'polyglot-sft-trl/1',
    model_name_or_path: args.model,
    init_adapter: args.initAdapter,
    data: { train: args.data, eval: args.evalData },
    formatting: {
      max_length: args.maxLength,
      truncation: 'keep_start',
      add_eos: true,
      loss: args.loss,
      chat_template: args.chatTemplate,
      pad_token: 'pad_token, else eos_token',
      sort_by_length: args.sortByLength,
      shuffle: args.shuffle,
      packing: args.packing,
    },
    lora: {
      r: args.loraR,
      lora_alpha: args.loraAlpha,
      lora_dropout: args.loraDropout,
      target_modules: resolveTargetModules(args.targetModules),
      use_rslora: args.useRslora,
      bias: 'none',
      task_type: 'CAUSAL_LM',
    },
    sft_config: {
      output_dir: args.out,
      learning_rate: args.lr,
      lr_scheduler_type: args.scheduler,
      warmup_ratio: args.warmupRatio,
      warmup_steps: args.warmupSteps,
      weight_decay: args.weightDecay,
      adam_beta1: args.adamBeta1,
      adam_beta2: args.adamBeta2,
      adam_epsilon: args.adamEpsilon,
      max_grad_norm: args.maxGradNorm,
      num_train_epochs: args.epochs,
      max_steps: args.maxSteps,
      per_device_train_batch_size: args.batchSize,
      per_device_eval_batch_size: args.batchSize,
      gradient_accumulation_steps: args.gradAccum,
      max_length: args.maxLength,
      packing: args.packing,
      padding_free: args.packing,
      completion_only_loss: true,
      seed: args.seed,
      data_seed: args.seed,
      optim: 'adamw_torch',
      logging_steps: 1,
      eval_strategy: args.evalData && args.evalSteps > 0 ? 'steps' : 'no',
      eval_steps: args.evalData && args.evalSteps > 0 ? args.evalSteps : null,
      save_strategy: args.saveSteps > 0 ? 'steps' : 'no',
      save_steps: args.saveSteps > 0 ? args.saveSteps : 500,
      report_to: 'none',
      dataloader_drop_last: false,
    },
  };
}

/** The script: reads train_config.json beside it; see the module comment. */
export const TRL_SCRIPT = `#!/usr/bin/env python3
"""LoRA SFT with TRL + PEFT, equivalent to the polyglot run this folder was exported from.

Written by 'polyglot sft export --to trl'. Settings: train_config.json beside this file.
Needs torch, transformers, peft, trl >= 0.20 (SFTConfig.max_length, completion_mask) and accelerate.

    accelerate launch train_trl.py                      # one node, the GPUs accelerate is configured for
    accelerate launch --config_file ds_zero2.yaml train_trl.py   # DeepSpeed ZeRO

The data is prepared as polyglot prepares it: "text" records encoded with the tokenizer's special tokens, loss on
every token; "prompt"/"completion" records encoded as prompt + completion, loss on the completion; "messages"
records rendered with the chat template (no special tokens added), loss on the assistant turns; EOS appended where
missing; the first max_length tokens kept. The result is a pre-tokenized dataset (input_ids + completion_mask), so
TRL does not tokenize again. With the per-device batch multiplied by the number of GPUs, divide
gradient_accumulation_steps accordingly to keep the global batch of the polyglot run.
"""
import json
import os
import sys

import torch
from datasets import Dataset
from peft import LoraConfig, PeftModel, get_peft_model
from torch.utils.data import SequentialSampler
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import SFTConfig, SFTTrainer

HERE = os.path.dirname(os.path.abspath(__file__))


def load_config():
    with open(os.path.join(HERE, "train_config.json"), encoding="utf-8") as f:
        cfg = json.load(f)
    if cfg.get("format") != "polyglot-sft-trl/1":
        sys.exit("train_config.json: not a polyglot sft export (format polyglot-sft-trl/1)")
    return cfg


def read_jsonl(path):
    rows = []
    with open(path, encoding="utf-8-sig") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    rows.append((n, json.loads(line)))
                except json.JSONDecodeError as e:
                    sys.exit(f"{path}:{n}: invalid JSON ({e})")
    if not rows:
        sys.exit(f"{path}: no records")
    return rows


def starts_with(ids, prefix):
    return ids[: len(prefix)] == prefix


def format_record(rec, tok, fmt, where):
    loss = fmt["loss"]
    chat = {"chat_template": fmt["chat_template"]} if fmt["chat_template"] else {}
    if "messages" in rec:
        msgs = rec["messages"]
        render = lambda m, gen: tok.apply_chat_template(m, tokenize=True, add_generation_prompt=gen, **chat)
        ids = list(render(msgs, False))
        spans = []
        for i, m in enumerate(msgs):
            if m["role"] == "assistant":
                spans.append([min(len(render(msgs[:i], True)), len(ids)), min(len(render(msgs[: i + 1], False)), len(ids))])
    elif "prompt" in rec or "completion" in rec:
        prompt = tok(rec["prompt"])["input_ids"]
        ids = tok(rec["prompt"] + rec["completion"])["input_ids"]
        spans = [[min(len(prompt), len(ids)), len(ids)]]
    elif "text" in rec:
        if loss == "completion":
            sys.exit(f"{where}: loss 'completion' needs prompt/completion or messages records")
        ids = tok(rec["text"])["input_ids"]
        spans = [[0, len(ids)]]
    else:
        sys.exit(f"{where}: no usable field (text, prompt/completion or messages)")
    if fmt["add_eos"] and tok.eos_token_id is not None and (not ids or ids[-1] != tok.eos_token_id):
        if spans and spans[-1][1] == len(ids):
            spans[-1][1] = len(ids) + 1
        ids = ids + [tok.eos_token_id]
    mask = [1] * len(ids) if loss == "full" else [0] * len(ids)
    if loss != "full":
        for a, b in spans:
            for t in range(a, b):
                mask[t] = 1
    mask[0] = 0
    n = fmt["max_length"]
    return {"input_ids": ids[:n], "completion_mask": mask[:n]}


def dataset(path, tok, fmt, sort):
    rows = [format_record(rec, tok, fmt, f"{path}:{n}") for n, rec in read_jsonl(path)]
    if sort:
        rows = sorted(rows, key=lambda r: len(r["input_ids"]))  # stable, ascending, as polyglot
    return Dataset.from_list(rows)


class OrderedSFTTrainer(SFTTrainer):
    """Keeps the dataset order (polyglot sorts by length; the Trainer would shuffle)."""

    def _get_train_sampler(self, *args, **kwargs):
        return SequentialSampler(self.train_dataset)


def main():
    cfg = load_config()
    fmt = cfg["formatting"]
    tok = AutoTokenizer.from_pretrained(cfg["model_name_or_path"])
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token  # the paper: pad = EOS
    train = dataset(cfg["data"]["train"], tok, fmt, fmt["sort_by_length"])
    evals = dataset(cfg["data"]["eval"], tok, fmt, True) if cfg["data"]["eval"] else None
    model = AutoModelForCausalLM.from_pretrained(cfg["model_name_or_path"], torch_dtype="auto")
    if cfg["init_adapter"]:
        model = PeftModel.from_pretrained(model, cfg["init_adapter"], is_trainable=True)
        for m in model.modules():
            if hasattr(m, "lora_dropout"):
                for d in m.lora_dropout.values():
                    if isinstance(d, torch.nn.Dropout):
                        d.p = cfg["lora"]["lora_dropout"]
    else:
        model = get_peft_model(model, LoraConfig(**cfg["lora"]))
    args = SFTConfig(**cfg["sft_config"])
    ordered = fmt["sort_by_length"] or not fmt["shuffle"]
    cls = OrderedSFTTrainer if ordered else SFTTrainer
    trainer = cls(model=model, args=args, train_dataset=train, eval_dataset=evals, processing_class=tok)
    trainer.train()
    trainer.save_model(cfg["sft_config"]["output_dir"])  # adapter_config.json + adapter_model.safetensors


if __name__ == "__main__":
    main()
`;

/** Writes train_config.json and train_trl.py into `dir`; returns their paths and the config. */
export async function exportTrl(
  args: SftArgs,
  dir: string,
): Promise<{ config: TrlConfig; configFile: string; scriptFile: string }> {
  const config = trlConfig(args);
  await fsp.mkdir(dir, { recursive: true });
  const configFile = path.join(dir, TRL_CONFIG_FILE);
  const scriptFile = path.join(dir, TRL_SCRIPT_FILE);
  await writeFileAtomic(configFile, `${JSON.stringify(config, null, 2)}\n`);
  await writeFileAtomic(scriptFile, TRL_SCRIPT);
  await fsp.chmod(scriptFile, 0o755);
  return { config, configFile, scriptFile };
}
