import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { exportTrl, resolveArgs, TRL_CONFIG_FILE, TRL_SCRIPT_FILE, type TrlConfig } from '../src/index.js';

const PY = '/usr/bin/python3';

describe('export --to trl', () => {
  let tmp: string;
  before(() => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'sft-export-'));
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  for (const variant of ['paper defaults', 'every flag changed'] as const) {
    it(`writes a config whose every value is the run's (${variant}) and a script that compiles`, async () => {
      const out = path.join(tmp, variant.replace(/ /g, '-'));
      const args = resolveArgs(
        variant === 'paper defaults'
          ? { model: '/models/llama-2-7b', data: 'data/guanaco/mono.jsonl', out }
          : {
              model: '/models/llama-3-8b',
              data: 'train.jsonl',
              out,
              evalData: 'eval.jsonl',
              initAdapter: '/adapters/start',
              loraR: 16,
              loraAlpha: 32,
              loraDropout: 0.1,
              targetModules: ['q_proj', 'v_proj'],
              useRslora: true,
              lr: 2e-4,
              scheduler: 'linear',
              warmupRatio: 0.1,
              warmupSteps: 7,
              weightDecay: 0.01,
              adamBeta1: 0.8,
              adamBeta2: 0.95,
              adamEpsilon: 1e-6,
              maxGradNorm: 1,
              epochs: 2,
              maxSteps: 123,
              batchSize: 2,
              gradAccum: 8,
              maxLength: 512,
              loss: 'completion',
              chatTemplate: 'chatml',
              sortByLength: false,
              shuffle: false,
              packing: true,
              seed: 1234,
              evalSteps: 50,
              saveSteps: 100,
            },
      );
      const { configFile, scriptFile } = await exportTrl(args, out);
      expect(configFile).to.equal(path.join(out, TRL_CONFIG_FILE));
      expect(scriptFile).to.equal(path.join(out, TRL_SCRIPT_FILE));
      const cfg = JSON.parse(readFileSync(configFile, 'utf8')) as TrlConfig;
      const targets =
        args.targetModules === 'all-linear'
          ? ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj']
          : args.targetModules;
      const evaluating = args.evalData !== null && args.evalSteps > 0;
      expect(cfg).to.deep.equal({
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
          target_modules: targets,
          use_rslora: args.useRslora,
          bias: 'none',
          task_type: 'CAUSAL_LM',
        },
        sft_config: {
          output_dir: out,
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
          eval_strategy: evaluating ? 'steps' : 'no',
          eval_steps: evaluating ? args.evalSteps : null,
          save_strategy: args.saveSteps > 0 ? 'steps' : 'no',
          save_steps: args.saveSteps,
          report_to: 'none',
          dataloader_drop_last: false,
        },
      });
      if (variant === 'paper defaults') {
        // The paper's settings (PAPER.md) reach the Python stack unchanged.
        expect(cfg.lora).to.include({ r: 64, lora_alpha: 16, lora_dropout: 0.05 });
        expect(cfg.sft_config).to.include({
          learning_rate: 1e-5,
          lr_scheduler_type: 'cosine',
          warmup_ratio: 0.03,
          weight_decay: 0.05,
          max_grad_norm: 0.3,
          num_train_epochs: 10,
          per_device_train_batch_size: 4,
          gradient_accumulation_steps: 4,
          max_length: 1024,
          packing: false,
        });
        expect(cfg.formatting).to.include({ sort_by_length: true, loss: 'auto' });
      }
      expect(statSync(scriptFile).mode & 0o111).to.not.equal(0);
      if (existsSync(PY)) {
        const r = spawnSync(PY, ['-m', 'py_compile', scriptFile], { encoding: 'utf8' });
        expect(r.status, r.stderr).to.equal(0);
      }
      const script = readFileSync(scriptFile, 'utf8');
      for (const needle of [
        'SFTConfig(**cfg["sft_config"])',
        'LoraConfig(**cfg["lora"])',
        'SFTTrainer',
        'completion_mask',
      ]) {
        expect(script).to.include(needle);
      }
    });
  }
});
