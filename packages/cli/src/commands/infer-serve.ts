import { LocalEngine, OpenAIServer } from '@polyglot/infer';
import { BACKEND_NAMES, type BackendName, loadTemplate } from '@polyglot/model';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { UsageError } from '../errors.js';
import { type Io, processIo } from '../io.js';
import { resolveKey } from '../secrets.js';
import { intArg, seedArg } from './infer.js';

/** The environment variable holding the server's API key (vLLM's is VLLM_API_KEY). */
export const SERVE_API_KEY_ENV = 'POLYGLOT_SERVE_API_KEY';

interface ServeOptions {
  model: string;
  adapter: Record<string, string>;
  host: string;
  port: number;
  servedModelName?: string;
  chatTemplate?: string;
  backend: BackendName;
  maxNumSeqs: number;
  maxModelTokens?: number;
  seed?: number;
  quiet?: boolean;
  apiKey?: string;
  apiKeyFile?: string;
  trustRequestChatTemplate?: boolean;
  maxBodyBytes?: number;
  maxPromptChars?: number;
  maxN?: number;
  maxLogprobs?: number;
  maxConnections?: number;
  maxWaiting?: number;
  headersTimeout?: number;
  requestTimeout?: number;
}

/** Whether `host` is a loopback address (only this machine can connect). */
const isLoopback = (host: string) =>
  host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);

/** `--adapter NAME=DIR`, repeatable (vLLM's `--lora-modules name=path`). */
function adapterArg(value: string, previous: Record<string, string> = {}): Record<string, string> {
  const eq = value.indexOf('=');
  if (eq <= 0 || eq === value.length - 1) {
    throw new InvalidArgumentError(
      `expected NAME=DIR (e.g. multi-6=adapters/multi-6), got ${JSON.stringify(value)}`,
    );
  }
  const name = value.slice(0, eq);
  if (Object.hasOwn(previous, name)) throw new InvalidArgumentError(`adapter ${name} is given twice`);
  return { ...previous, [name]: value.slice(eq + 1) };
}

/** `polyglot infer serve`: an OpenAI-compatible server over the local engine, until SIGTERM/SIGINT. */
export function registerServe(infer: Command, io: Io = processIo): void {
  infer
    .command('serve')
    .description(
      'OpenAI-compatible HTTP server over the local engine (/v1/models, /v1/completions with echo/logprobs, ' +
        '/v1/chat/completions, streaming); adapters selected by model name; continuous batching; stops ' +
        'gracefully on SIGTERM/SIGINT',
    )
    .requiredOption('--model <dir>', 'Hugging Face model directory')
    .option(
      '--adapter <name=dir>',
      'a PEFT LoRA adapter served as model NAME (repeatable; vLLM --lora-modules)',
      adapterArg,
      {},
    )
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--port <n>', 'port (0: any free one)', intArg('--port', 0), 8000)
    .option(
      '--served-model-name <name>',
      "the base model's name in the API (default: the model dir's basename)",
    )
    .option(
      '--chat-template <file>',
      "chat template for /v1/chat/completions: a Jinja file or a built-in name (default: the tokenizer's)",
    )
    .addOption(
      new Option('--backend <name>', 'TensorFlow.js backend').choices([...BACKEND_NAMES]).default('auto'),
    )
    .option(
      '--max-num-seqs <n>',
      'most sequences decoding at once (continuous batch)',
      intArg('--max-num-seqs', 1),
      64,
    )
    .option(
      '--max-model-tokens <n>',
      'largest max_tokens a request may ask (default: the model length)',
      intArg('--max-model-tokens', 1),
    )
    .option('--seed <n>', 'seed of the generator that seeds requests without a seed', seedArg)
    .option(
      '--api-key-file <file>',
      `require "Authorization: Bearer KEY" (all but /health), KEY the file's first line (or set $${SERVE_API_KEY_ENV})`,
    )
    .option(
      '--api-key <key>',
      `as --api-key-file, the key itself (discouraged: it shows in ps; use the file or $${SERVE_API_KEY_ENV})`,
    )
    .option(
      '--trust-request-chat-template',
      'let requests send their own chat_template (Jinja runs in the server; only for trusted clients)',
    )
    .option(
      '--max-body-bytes <n>',
      'largest request body (413 beyond; default 4 MiB)',
      intArg('--max-body-bytes', 1),
    )
    .option(
      '--max-prompt-chars <n>',
      'most prompt characters per request (default 16 × the model length)',
      intArg('--max-prompt-chars', 1),
    )
    .option('--max-n <n>', 'largest n (default 16)', intArg('--max-n', 1))
    .option('--max-logprobs <n>', 'largest logprobs / top_logprobs (default 20)', intArg('--max-logprobs', 1))
    .option(
      '--max-connections <n>',
      'connections served at once; more get 503 (default 512)',
      intArg('--max-connections', 1),
    )
    .option(
      '--max-waiting <n>',
      'requests queued for the batch; more get 503 (default 4096)',
      intArg('--max-waiting', 1),
    )
    .option(
      '--headers-timeout <secs>',
      'time to send the request headers; slower clients get 408 (default 10)',
      intArg('--headers-timeout', 1),
    )
    .option(
      '--request-timeout <secs>',
      'time to send a whole request (default 30)',
      intArg('--request-timeout', 1),
    )
    .option('--quiet', 'no request log on stderr')
    .action(async (opts: ServeOptions) => {
      const warn = (m: string) => io.stderr(`polyglot infer serve: warning: ${m}\n`);
      const apiKey = resolveKey({
        flag: '--api-key',
        value: opts.apiKey,
        file: opts.apiKeyFile,
        env: SERVE_API_KEY_ENV,
        warn,
      });
      if (apiKey !== undefined && /\s/.test(apiKey)) {
        throw new UsageError('--api-key-file: the key must not contain white space');
      }
      if (apiKey === undefined && !isLoopback(opts.host)) {
        warn(
          `listening on ${opts.host} without an API key: anyone who can reach it can use it (give --api-key-file FILE)`,
        );
      }
      const limits = {
        maxTokens: opts.maxModelTokens,
        maxBodyBytes: opts.maxBodyBytes,
        maxPromptChars: opts.maxPromptChars,
        maxN: opts.maxN,
        maxLogprobs: opts.maxLogprobs,
        maxConnections: opts.maxConnections,
        maxWaiting: opts.maxWaiting,
        headersTimeoutMs: opts.headersTimeout === undefined ? undefined : opts.headersTimeout * 1000,
        requestTimeoutMs: opts.requestTimeout === undefined ? undefined : opts.requestTimeout * 1000,
      };
      if ((limits.headersTimeoutMs ?? 0) > (limits.requestTimeoutMs ?? 30_000)) {
        throw new UsageError('--headers-timeout must not exceed --request-timeout');
      }
      let chatTemplate: string | undefined;
      if (opts.chatTemplate !== undefined) {
        const template = await loadTemplate(opts.chatTemplate);
        if (template.kind !== 'chat') {
          throw new UsageError(
            `--chat-template ${opts.chatTemplate}: a text template (it does not read \`messages\`); give a chat ` +
              'template (a Jinja file over messages, or a built-in name such as guanaco)',
          );
        }
        chatTemplate = template.source;
      }
      const engine = await LocalEngine.load({
        model: opts.model,
        adapter: Object.keys(opts.adapter).length > 0 ? opts.adapter : undefined,
        backend: opts.backend,
        chatTemplate,
        maxNumSeqs: opts.maxNumSeqs,
        seed: opts.seed ?? null,
      });
      let server: OpenAIServer;
      try {
        server = await OpenAIServer.start({
          engine,
          host: opts.host,
          port: opts.port,
          servedModelName: opts.servedModelName,
          limits,
          apiKey,
          trustRequestChatTemplate: opts.trustRequestChatTemplate ?? false,
          log: opts.quiet ? undefined : (record) => io.stderr(`${JSON.stringify(record)}\n`),
        });
      } catch (e) {
        await engine.close();
        throw e;
      }
      const models = [server.servedModelName, ...engine.adapterNames].join(', ');
      io.stdout(
        `polyglot infer serve: listening on ${server.url} (models: ${models}; backend ${engine.info.backend}; ` +
          `${apiKey === undefined ? 'no API key' : 'API key required'})\n`,
      );
      // Until a signal: stop accepting, let the requests in flight finish, free the engine, return (exit 0).
      await new Promise<void>((resolve) => {
        const stop = (signal: string) => {
          process.off('SIGTERM', onTerm);
          process.off('SIGINT', onInt);
          io.stderr(`polyglot infer serve: ${signal}: finishing the requests in flight, then stopping\n`);
          resolve();
        };
        const onTerm = () => stop('SIGTERM');
        const onInt = () => stop('SIGINT');
        process.once('SIGTERM', onTerm);
        process.once('SIGINT', onInt);
      });
      await server.close();
      await engine.close();
    });
}
