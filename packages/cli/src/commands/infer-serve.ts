import { LocalEngine, OpenAIServer } from '@polyglot/infer';
import { BACKEND_NAMES, type BackendName, loadTemplate } from '@polyglot/model';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { UsageError } from '../errors.js';
import { type Io, processIo } from '../io.js';
import { intArg, seedArg } from './infer.js';

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
}

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
    .option('--quiet', 'no request log on stderr')
    .action(async (opts: ServeOptions) => {
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
          limits: opts.maxModelTokens === undefined ? {} : { maxTokens: opts.maxModelTokens },
          log: opts.quiet ? undefined : (record) => io.stderr(`${JSON.stringify(record)}\n`),
        });
      } catch (e) {
        await engine.close();
        throw e;
      }
      const models = [server.servedModelName, ...engine.adapterNames].join(', ');
      io.stdout(
        `polyglot infer serve: listening on ${server.url} (models: ${models}; backend ${engine.info.backend})\n`,
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
