/**
 * Hugging Face tokenizers: `tokenizer.json` (the fast-tokenizer file) run by `@huggingface/tokenizers`, plus the
 * settings transformers reads from `tokenizer_config.json`, `special_tokens_map.json` and `chat_template.jinja`.
 * Encoding and decoding match the Rust `tokenizers` library that transformers uses (checked on the Llama-2
 * tokenizer, see test/tokenizer.test.ts).
 */
import { existsSync, promises as fsp } from 'node:fs';
import path from 'node:path';
import * as tokenizersJs from '@huggingface/tokenizers';
import { ModelFormatError, PolyglotError } from './errors.js';
import { type ChatMessage, renderChatTemplate, resolveChatTemplate } from './template.js';

/** Misuse of a loaded tokenizer: a token or id that is not in its vocabulary, a missing chat template. */
export class TokenizerError extends PolyglotError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'TokenizerError';
  }
}

/** The parsed contents of a tokenizer's files; only `tokenizer` (tokenizer.json) is required. */
export interface TokenizerFilesJSON {
  /** Parsed `tokenizer.json`. */
  tokenizer: unknown;
  /** Parsed `tokenizer_config.json`. */
  config?: unknown;
  /** Parsed `special_tokens_map.json`; its entries override those of `tokenizer_config.json`, as in transformers. */
  specialTokensMap?: unknown;
  /** Text of `chat_template.jinja`; it overrides `chat_template` of `tokenizer_config.json`, as in transformers. */
  chatTemplate?: string;
  /** Where the files came from, for messages (a directory or file path). */
  source?: string;
}

/** Paths of a tokenizer's files; only `tokenizer` (tokenizer.json) is required. */
export interface TokenizerFilePaths {
  tokenizer: string;
  config?: string;
  specialTokensMap?: string;
  chatTemplate?: string;
}

export interface EncodeOptions {
  /** Add the special tokens of the tokenizer (Llama: BOS); default true, as transformers. */
  addSpecialTokens?: boolean;
}

export interface DecodeOptions {
  /** Drop special tokens (BOS, EOS, pad, …) before decoding; default false, as transformers. */
  skipSpecialTokens?: boolean;
}

export interface ApplyChatTemplateOptions {
  /** End with the opening of an assistant turn (HF `add_generation_prompt`); default false. */
  addGenerationPrompt?: boolean;
  /**
   * Which template: the name of one of the tokenizer's templates, a built-in name (see template.ts) or Jinja
   * source. Default: the tokenizer's default chat template.
   */
  chatTemplate?: string;
  /** Further template variables (HF passes `**kwargs` of apply_chat_template to the template). */
  vars?: Record<string, unknown>;
}

export interface SpecialToken {
  token: string;
  id: number;
}

/** What `polyglot model inspect` shows about a tokenizer. */
export interface TokenizerSummary {
  /** Model type of tokenizer.json: BPE, Unigram, WordPiece. */
  type: string;
  vocabSize: number;
  byteFallback: boolean;
  /** Pipeline components, e.g. `Sequence(Prepend, Replace)`; null where tokenizer.json has none. */
  normalizer: string | null;
  preTokenizer: string | null;
  decoder: string | null;
  bos: SpecialToken | null;
  eos: SpecialToken | null;
  unk: SpecialToken | null;
  pad: SpecialToken | null;
  /** Every special token (skipped by `decode(ids, { skipSpecialTokens: true })`), by id. */
  specialTokens: SpecialToken[];
  addBosToken: boolean;
  addEosToken: boolean;
  modelMaxLength: number | null;
  /** Names of the chat templates; `default` is the one `applyChatTemplate` uses. */
  chatTemplates: string[];
  hasChatTemplate: boolean;
}

type Json = Record<string, unknown>;

/*
 * The parts of tokenizers.js used here. Its bundled .d.ts files import each other without file extensions, which
 * NodeNext resolution cannot follow, so TypeScript would see `any`; these declarations restore the types.
 */
interface HfDecoder {
  config: unknown;
  added_tokens: unknown[];
  end_of_word_suffix: string | null;
  decode_chain(tokens: string[]): string[];
}
interface HfTokenizer {
  decoder: HfDecoder | null;
  encode(text: string, options: { add_special_tokens: boolean }): { ids: number[] };
  decode(
    ids: number[],
    options: { skip_special_tokens: boolean; clean_up_tokenization_spaces: boolean },
  ): string;
  token_to_id(token: string): number | undefined;
  id_to_token(id: number): string | undefined;
  get_vocab(withAddedTokens: boolean): Map<string, number>;
}
const hfLib = tokenizersJs as unknown as {
  Tokenizer: new (tokenizerJson: Json, config: Json) => HfTokenizer;
  ByteFallbackDecoder: new (config: unknown) => HfDecoder;
  SequenceDecoder: new (config: unknown) => HfDecoder & { decoders: HfDecoder[] };
};

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** transformers writes model_max_length = int(1e30) when the model sets no limit. */
const NO_MAX_LENGTH = 1e18;

export class Tokenizer {
  /** Where the files came from (for messages). */
  readonly source: string;
  readonly vocabSize: number;
  readonly bosToken: string | null;
  readonly eosToken: string | null;
  readonly unkToken: string | null;
  readonly padToken: string | null;
  readonly bosId: number | null;
  readonly eosId: number | null;
  readonly unkId: number | null;
  readonly padId: number | null;
  /** Ids of the special tokens: added tokens marked special, the named ones (bos, eos, …) and additional ones. */
  readonly specialIds: ReadonlySet<number>;
  /** Whether `encode` (with special tokens) starts with BOS / ends with EOS. */
  readonly addBosToken: boolean;
  readonly addEosToken: boolean;
  /** model_max_length of tokenizer_config.json; null when unset (transformers' 1e30 placeholder included). */
  readonly modelMaxLength: number | null;
  /** All chat templates by name (a single template is named `default`). */
  readonly chatTemplates: Readonly<Record<string, string>>;

  private readonly hf: HfTokenizer;
  private readonly json: Json;
  /** When tokenizer_config.json sets add_bos_token / add_eos_token, they (not tokenizer.json) decide BOS/EOS. */
  private readonly ownSpecials: boolean;
  private readonly cleanUpSpaces: boolean;

  private constructor(files: TokenizerFilesJSON) {
    this.source = files.source ?? '<tokenizer.json>';
    const src = this.source;
    if (!isObject(files.tokenizer) || !isObject(files.tokenizer.model)) {
      throw new ModelFormatError('TOKENIZER_INVALID', `${src}: tokenizer.json has no "model" object`);
    }
    if (files.config !== undefined && !isObject(files.config)) {
      throw new ModelFormatError(
        'TOKENIZER_CONFIG_INVALID',
        `${src}: tokenizer_config.json is not a JSON object`,
      );
    }
    if (files.specialTokensMap !== undefined && !isObject(files.specialTokensMap)) {
      throw new ModelFormatError(
        'TOKENIZER_CONFIG_INVALID',
        `${src}: special_tokens_map.json is not a JSON object`,
      );
    }
    checkTokenIds(files.tokenizer, src);
    this.json = {
      normalizer: null,
      pre_tokenizer: null,
      post_processor: null,
      decoder: null,
      ...files.tokenizer,
      added_tokens: files.tokenizer.added_tokens ?? [],
    };
    const config: Json = { ...files.config, ...files.specialTokensMap };
    this.cleanUpSpaces = config.clean_up_tokenization_spaces === true;
    try {
      this.hf = new hfLib.Tokenizer(this.json, {
        ...config,
        clean_up_tokenization_spaces: this.cleanUpSpaces,
      });
    } catch (e) {
      throw new ModelFormatError(
        'TOKENIZER_UNSUPPORTED',
        `${src}: tokenizer.json cannot be loaded: ${(e as Error).message}`,
        { cause: e },
      );
    }
    this.hf.decoder = withExactByteFallback(this.hf.decoder);
    this.vocabSize = this.hf.get_vocab(true).size;

    const named = (key: string) => {
      const content = tokenContent(config[key], `${src}: ${key}`);
      if (content === null) return { token: null, id: null };
      const id = this.hf.token_to_id(content);
      if (id === undefined) {
        throw new ModelFormatError(
          'TOKENIZER_CONFIG_INVALID',
          `${src}: ${key} ${JSON.stringify(content)} is not in the vocabulary of tokenizer.json`,
        );
      }
      return { token: content, id };
    };
    const bos = named('bos_token');
    const eos = named('eos_token');
    const unk = named('unk_token');
    const pad = named('pad_token');
    [this.bosToken, this.bosId] = [bos.token, bos.id];
    [this.eosToken, this.eosId] = [eos.token, eos.id];
    [this.unkToken, this.unkId] = [unk.token, unk.id];
    [this.padToken, this.padId] = [pad.token, pad.id];

    const special = new Set<number>();
    for (const t of this.json.added_tokens as { id: number; special?: boolean }[]) {
      if (t.special) special.add(t.id);
    }
    if (isObject(config.added_tokens_decoder)) {
      for (const [id, t] of Object.entries(config.added_tokens_decoder)) {
        if (isObject(t) && t.special === true) special.add(Number(id));
      }
    }
    for (const id of [bos.id, eos.id, unk.id, pad.id]) if (id !== null) special.add(id);
    for (const key of ['additional_special_tokens', 'extra_special_tokens']) {
      const list = config[key];
      const items = Array.isArray(list) ? list : isObject(list) ? Object.values(list) : [];
      for (const item of items) {
        const content = tokenContent(item, `${src}: ${key}`);
        const id = content === null ? undefined : this.hf.token_to_id(content);
        if (id !== undefined) special.add(id);
      }
    }
    this.specialIds = special;

    // What tokenizer.json's post-processor adds; add_bos_token / add_eos_token of the config override it.
    const probe = this.hf.encode('', { add_special_tokens: true }).ids;
    // Run the whole pipeline once, so that a corrupt component (a decoder of the wrong shape…) fails here, while
    // loading, as TOKENIZER_UNSUPPORTED naming the file, rather than at the first real text.
    this.hf.decode(this.hf.encode('Hello, wörld 1 😀', { add_special_tokens: true }).ids, {
      skip_special_tokens: false,
      clean_up_tokenization_spaces: this.cleanUpSpaces,
    });
    const postBos = this.bosId !== null && probe[0] === this.bosId;
    const postEos = this.eosId !== null && probe.slice(postBos ? 1 : 0).at(-1) === this.eosId;
    const flag = (v: unknown) => (typeof v === 'boolean' ? v : null);
    this.ownSpecials = flag(config.add_bos_token) !== null || flag(config.add_eos_token) !== null;
    this.addBosToken = flag(config.add_bos_token) ?? postBos;
    this.addEosToken = flag(config.add_eos_token) ?? postEos;
    for (const [key, on, token] of [
      ['add_bos_token', this.addBosToken, this.bosId],
      ['add_eos_token', this.addEosToken, this.eosId],
    ] as const) {
      if (on && token === null) {
        throw new ModelFormatError(
          'TOKENIZER_CONFIG_INVALID',
          `${src}: ${key} is true but there is no ${key.slice(4, 7)}_token`,
        );
      }
    }

    const max = config.model_max_length;
    this.modelMaxLength = typeof max === 'number' && Number.isFinite(max) && max < NO_MAX_LENGTH ? max : null;
    this.chatTemplates = parseChatTemplates(config.chat_template, files.chatTemplate, src);
  }

  /** From parsed JSON (see {@link TokenizerFilesJSON}). */
  static fromJSON(files: TokenizerFilesJSON): Tokenizer {
    return Tokenizer.construct(files);
  }

  /** The constructor, with any failure of a corrupt file (deep inside tokenizers.js) as our typed error. */
  private static construct(files: TokenizerFilesJSON): Tokenizer {
    try {
      return new Tokenizer(files);
    } catch (e) {
      if ((e as { isPolyglotError?: unknown })?.isPolyglotError === true) throw e;
      throw new ModelFormatError(
        'TOKENIZER_UNSUPPORTED',
        `${files.source ?? '<tokenizer.json>'}: tokenizer.json cannot be loaded: ${(e as Error)?.message ?? String(e)}`,
        { cause: e },
      );
    }
  }

  /** From file paths; only tokenizer.json is required. */
  static async fromFiles(paths: TokenizerFilePaths): Promise<Tokenizer> {
    return Tokenizer.construct({
      tokenizer: await readJson(paths.tokenizer),
      config: paths.config === undefined ? undefined : await readJson(paths.config),
      specialTokensMap:
        paths.specialTokensMap === undefined ? undefined : await readJson(paths.specialTokensMap),
      chatTemplate: paths.chatTemplate === undefined ? undefined : await readText(paths.chatTemplate),
      source: path.dirname(paths.tokenizer),
    });
  }

  /**
   * From a model directory as transformers' `save_pretrained` writes it: tokenizer.json, and where present
   * tokenizer_config.json, special_tokens_map.json and chat_template.jinja.
   */
  static async fromDir(dir: string): Promise<Tokenizer> {
    const file = (name: string) => path.join(dir, name);
    const optional = (name: string) => (existsSync(file(name)) ? file(name) : undefined);
    if (!existsSync(file('tokenizer.json'))) {
      const hint = existsSync(file('tokenizer.model'))
        ? 'only tokenizer.model (SentencePiece) is there; write tokenizer.json with transformers: ' +
          'AutoTokenizer.from_pretrained(dir).save_pretrained(dir)'
        : 'point to a Hugging Face model directory that has tokenizer.json';
      throw new ModelFormatError('TOKENIZER_FILE_MISSING', `${file('tokenizer.json')}: not found; ${hint}`);
    }
    return Tokenizer.fromFiles({
      tokenizer: file('tokenizer.json'),
      config: optional('tokenizer_config.json'),
      specialTokensMap: optional('special_tokens_map.json'),
      chatTemplate: optional('chat_template.jinja'),
    });
  }

  /** Token ids of `text`; with `addSpecialTokens` (default) the tokenizer's BOS/EOS as transformers adds them. */
  encode(text: string, { addSpecialTokens = true }: EncodeOptions = {}): number[] {
    if (!this.ownSpecials) {
      return this.guard('encode', () => this.hf.encode(text, { add_special_tokens: addSpecialTokens }).ids);
    }
    const ids = this.guard('encode', () => this.hf.encode(text, { add_special_tokens: false }).ids);
    if (!addSpecialTokens) return ids;
    if (this.addBosToken) ids.unshift(this.bosId!);
    if (this.addEosToken) ids.push(this.eosId!);
    return ids;
  }

  /** Token strings of `text` (special tokens only when asked for; default false). */
  tokenize(text: string, { addSpecialTokens = false }: EncodeOptions = {}): string[] {
    return this.encode(text, { addSpecialTokens }).map((id) => this.idToToken(id));
  }

  /** Text of `ids`; throws {@link TokenizerError} `UNKNOWN_TOKEN_ID` for an id outside the vocabulary. */
  decode(ids: readonly number[], { skipSpecialTokens = false }: DecodeOptions = {}): string {
    for (const id of ids) this.idToToken(id);
    const kept = skipSpecialTokens ? ids.filter((id) => !this.specialIds.has(id)) : [...ids];
    if (kept.length === 0) return '';
    return this.guard('decode', () =>
      this.hf.decode(kept, {
        skip_special_tokens: false,
        clean_up_tokenization_spaces: this.cleanUpSpaces,
      }),
    );
  }

  /** Runs tokenizers.js: a failure inside it (a corrupt tokenizer.json that loaded) is a typed error. */
  private guard<T>(what: string, f: () => T): T {
    try {
      return f();
    } catch (e) {
      if ((e as { isPolyglotError?: unknown })?.isPolyglotError === true) throw e;
      throw new TokenizerError(
        'TOKENIZER_FAILED',
        `${this.source}: tokenizer.json cannot ${what} this text: ${(e as Error)?.message ?? String(e)}`,
        { cause: e },
      );
    }
  }

  /** A streaming decoder: feed it generated ids one by one and print what it returns. */
  decodeStream(options: DecodeStreamOptions = {}): DecodeStream {
    return new DecodeStream(this, options);
  }

  /** Id of a token string (added tokens included); throws {@link TokenizerError} `UNKNOWN_TOKEN`. */
  tokenToId(token: string): number {
    const id = this.hf.token_to_id(token);
    if (id === undefined) {
      throw new TokenizerError(
        'UNKNOWN_TOKEN',
        `token ${JSON.stringify(token)} is not in the vocabulary of ${this.source}`,
      );
    }
    return id;
  }

  /** Whether the vocabulary has this token string. */
  hasToken(token: string): boolean {
    return this.hf.token_to_id(token) !== undefined;
  }

  /** Token string of an id; throws {@link TokenizerError} `UNKNOWN_TOKEN_ID`. */
  idToToken(id: number): string {
    const token = Number.isInteger(id) ? this.hf.id_to_token(id) : undefined;
    if (token === undefined) {
      throw new TokenizerError(
        'UNKNOWN_TOKEN_ID',
        `token id ${id} is not in the vocabulary of ${this.source} (${this.vocabSize} tokens)`,
      );
    }
    return token;
  }

  /** The default chat template (tokenizer_config.json `chat_template` or chat_template.jinja), or null. */
  get chatTemplate(): string | null {
    return this.chatTemplates.default ?? null;
  }

  /**
   * Render `messages` with a chat template, as transformers' `apply_chat_template`: the template gets
   * `messages`, `add_generation_prompt`, the special tokens (`bos_token`, `eos_token`, `unk_token`, `pad_token`)
   * and `vars`. With `tokenize: true` the text is encoded without adding special tokens (the template writes
   * them), as transformers does.
   */
  applyChatTemplate(
    messages: ChatMessage[],
    options: ApplyChatTemplateOptions & { tokenize: true },
  ): number[];
  applyChatTemplate(
    messages: ChatMessage[],
    options?: ApplyChatTemplateOptions & { tokenize?: false },
  ): string;
  applyChatTemplate(
    messages: ChatMessage[],
    options: ApplyChatTemplateOptions & { tokenize?: boolean } = {},
  ): string | number[] {
    const template = this.pickChatTemplate(options.chatTemplate);
    const special: Record<string, string> = {};
    for (const [key, value] of [
      ['bos_token', this.bosToken],
      ['eos_token', this.eosToken],
      ['unk_token', this.unkToken],
      ['pad_token', this.padToken],
    ] as const) {
      if (value !== null) special[key] = value;
    }
    const text = renderChatTemplate(template, {
      ...special,
      ...options.vars,
      messages,
      addGenerationPrompt: options.addGenerationPrompt ?? false,
    });
    return options.tokenize ? this.encode(text, { addSpecialTokens: false }) : text;
  }

  private pickChatTemplate(choice: string | undefined): { name: string; source: string } {
    if (choice === undefined) {
      const source = this.chatTemplate;
      if (source === null) {
        const names = Object.keys(this.chatTemplates);
        throw new TokenizerError(
          'NO_CHAT_TEMPLATE',
          names.length > 0
            ? `${this.source}: several chat templates (${names.join(', ')}) and none named "default"; pick one`
            : `${this.source}: the tokenizer has no chat template; pass one (a built-in name such as "chatml", ` +
                'or Jinja source)',
        );
      }
      return { name: `${this.source} chat template`, source };
    }
    const own = this.chatTemplates[choice];
    if (own !== undefined) return { name: `${this.source} chat template "${choice}"`, source: own };
    return resolveChatTemplate(choice);
  }

  /** A summary for `polyglot model inspect`. */
  summary(): TokenizerSummary {
    const model = this.json.model as Json;
    const pair = (token: string | null, id: number | null) => (token === null ? null : { token, id: id! });
    return {
      type: typeof model.type === 'string' ? model.type : 'unknown',
      vocabSize: this.vocabSize,
      byteFallback: model.byte_fallback === true,
      normalizer: describeComponent(this.json.normalizer),
      preTokenizer: describeComponent(this.json.pre_tokenizer),
      decoder: describeComponent(this.json.decoder),
      bos: pair(this.bosToken, this.bosId),
      eos: pair(this.eosToken, this.eosId),
      unk: pair(this.unkToken, this.unkId),
      pad: pair(this.padToken, this.padId),
      specialTokens: [...this.specialIds]
        .sort((a, b) => a - b)
        .map((id) => ({ token: this.idToToken(id), id })),
      addBosToken: this.addBosToken,
      addEosToken: this.addEosToken,
      modelMaxLength: this.modelMaxLength,
      chatTemplates: Object.keys(this.chatTemplates),
      hasChatTemplate: this.chatTemplate !== null,
    };
  }
}

export interface DecodeStreamOptions {
  /** Default true: a stream shows text, not `</s>`. */
  skipSpecialTokens?: boolean;
  /** Ids that come before the generated ones (the prompt): they give the first new token its context. */
  promptIds?: readonly number[];
}

/** How many ids before the unread ones are decoded again as context (as vLLM's detokenizer). */
const STREAM_CONTEXT = 5;

/**
 * Incremental detokenization for streaming, as vLLM's detokenizer and Hugging Face's `DecodeStream` do: each
 * step decodes a short window of ids twice (with and without the new ones) and returns the text the new ids
 * add, holding it back while it ends in an incomplete UTF-8 character (U+FFFD) — so a character split over
 * several byte-fallback tokens comes out whole, and SentencePiece's word-initial `▁` becomes a space only where
 * the full decode has one. The concatenation of all returned text (plus {@link DecodeStream.flush}) equals
 * `decode(ids)` of the generated ids.
 */
export class DecodeStream {
  private readonly all: number[];
  private prefixOffset: number;
  private readOffset: number;
  private readonly skip: boolean;

  constructor(
    private readonly tokenizer: Tokenizer,
    { skipSpecialTokens = true, promptIds = [] }: DecodeStreamOptions = {},
  ) {
    this.skip = skipSpecialTokens;
    this.all = [...promptIds];
    this.readOffset = this.all.length;
    this.prefixOffset = Math.max(0, this.readOffset - STREAM_CONTEXT);
  }

  /** The ids so far (prompt included). */
  get ids(): readonly number[] {
    return this.all;
  }

  /** Add one generated id; returns the text that became final ('' while a character is incomplete). */
  step(id: number): string {
    this.tokenizer.idToToken(id);
    this.all.push(id);
    const { prefix, full } = this.window();
    if (full.length <= prefix.length || full.endsWith('\uFFFD')) return '';
    this.prefixOffset = this.readOffset;
    this.readOffset = this.all.length;
    return full.slice(prefix.length);
  }

  /** The text held back (an incomplete character at the end, decoded with U+FFFD); call once at the end. */
  flush(): string {
    const { prefix, full } = this.window();
    this.prefixOffset = this.readOffset;
    this.readOffset = this.all.length;
    return full.length > prefix.length ? full.slice(prefix.length) : '';
  }

  private window(): { prefix: string; full: string } {
    const options = { skipSpecialTokens: this.skip };
    return {
      prefix: this.tokenizer.decode(this.all.slice(this.prefixOffset, this.readOffset), options),
      full: this.tokenizer.decode(this.all.slice(this.prefixOffset), options),
    };
  }
}

/**
 * The Rust ByteFallback decoder: a run of `<0xNN>` tokens that is not valid UTF-8 becomes one U+FFFD per byte.
 * (tokenizers.js decodes such a run with TextDecoder, which yields one U+FFFD per maximal invalid subsequence and
 * keeps the valid characters of the run.)
 */
class ExactByteFallbackDecoder extends hfLib.ByteFallbackDecoder {
  private readonly utf8 = new TextDecoder('utf-8', { fatal: true });

  override decode_chain(tokens: string[]): string[] {
    const out: string[] = [];
    let bytes: number[] = [];
    const flushBytes = () => {
      if (bytes.length === 0) return;
      try {
        out.push(this.utf8.decode(Uint8Array.from(bytes)));
      } catch {
        for (let i = 0; i < bytes.length; i++) out.push('\uFFFD');
      }
      bytes = [];
    };
    for (const token of tokens) {
      const byte = /^<0x[0-9A-Fa-f]{2}>$/.test(token) ? Number.parseInt(token.slice(3, 5), 16) : null;
      if (byte === null) {
        flushBytes();
        out.push(token);
      } else {
        bytes.push(byte);
      }
    }
    flushBytes();
    return out;
  }
}

function withExactByteFallback(decoder: HfDecoder | null): HfDecoder | null {
  if (decoder instanceof hfLib.SequenceDecoder) {
    decoder.decoders = decoder.decoders.map((d) => withExactByteFallback(d)!);
  } else if (decoder instanceof hfLib.ByteFallbackDecoder) {
    const exact = new ExactByteFallbackDecoder(decoder.config);
    exact.added_tokens = decoder.added_tokens;
    exact.end_of_word_suffix = decoder.end_of_word_suffix;
    return exact;
  }
  return decoder;
}

/**
 * Token ids of tokenizer.json's vocabulary and added tokens must be non-negative integers near the number of
 * tokens the file defines: tokenizers.js sizes arrays by the largest id (and walks them), so one corrupt id of
 * 800 million would allocate and loop without bound.
 */
function checkTokenIds(tokenizer: Json, src: string): void {
  let maxId = -1;
  const id = (v: unknown, what: string) => {
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
      throw new ModelFormatError(
        'TOKENIZER_INVALID',
        `${src}: tokenizer.json ${what} has id ${JSON.stringify(v)}; token ids are non-negative integers`,
      );
    }
    if (v > maxId) maxId = v;
  };
  const model = tokenizer.model as Json;
  let count = 0;
  if (Array.isArray(model.vocab)) {
    count = model.vocab.length; // Unigram: ids are positions
  } else if (isObject(model.vocab)) {
    for (const [token, v] of Object.entries(model.vocab)) {
      id(v, `model.vocab token ${JSON.stringify(token)}`);
      count++;
    }
  }
  const added = tokenizer.added_tokens;
  if (added !== undefined && added !== null) {
    if (!Array.isArray(added)) {
      throw new ModelFormatError('TOKENIZER_INVALID', `${src}: tokenizer.json "added_tokens" must be a list`);
    }
    added.forEach((t, i) => {
      if (!isObject(t)) {
        throw new ModelFormatError(
          'TOKENIZER_INVALID',
          `${src}: tokenizer.json added_tokens[${i}] is not an object`,
        );
      }
      id(t.id, `added_tokens[${i}]`);
    });
    count += added.length;
  }
  const limit = 2 * count + 1024;
  if (maxId >= limit) {
    throw new ModelFormatError(
      'TOKENIZER_INVALID',
      `${src}: tokenizer.json has token id ${maxId}, far beyond the ${count} tokens it defines (a corrupt file?)`,
    );
  }
}

/** A token in tokenizer_config.json: a string, an AddedToken object `{"content": …}`, or null. */
function tokenContent(value: unknown, where: string): string | null {
  if (value === null || value === undefined) return null;
  if (typeof value === 'string') return value;
  if (isObject(value) && typeof value.content === 'string') return value.content;
  throw new ModelFormatError(
    'TOKENIZER_CONFIG_INVALID',
    `${where}: expected a token string or an AddedToken object {"content": …}, got ${JSON.stringify(value)}`,
  );
}

/** `chat_template`: a string, or a list of `{name, template}`; chat_template.jinja overrides the default. */
function parseChatTemplates(
  value: unknown,
  jinjaFile: string | undefined,
  src: string,
): Record<string, string> {
  const templates: Record<string, string> = {};
  if (typeof value === 'string') {
    templates.default = value;
  } else if (Array.isArray(value)) {
    for (const entry of value) {
      if (!isObject(entry) || typeof entry.name !== 'string' || typeof entry.template !== 'string') {
        throw new ModelFormatError(
          'TOKENIZER_CONFIG_INVALID',
          `${src}: tokenizer_config.json chat_template list entries must be {"name": string, "template": string}`,
        );
      }
      templates[entry.name] = entry.template;
    }
  } else if (value !== undefined && value !== null) {
    throw new ModelFormatError(
      'TOKENIZER_CONFIG_INVALID',
      `${src}: tokenizer_config.json chat_template must be a string or a list of {"name", "template"}`,
    );
  }
  if (jinjaFile !== undefined) templates.default = jinjaFile;
  return templates;
}

/** `Sequence(Prepend, Replace)` for a component config of tokenizer.json. */
function describeComponent(config: unknown): string | null {
  if (!isObject(config)) return null;
  const type = typeof config.type === 'string' ? config.type : '?';
  const parts = config.normalizers ?? config.pretokenizers ?? config.decoders ?? config.processors;
  return Array.isArray(parts) ? `${type}(${parts.map(describeComponent).join(', ')})` : type;
}

async function readText(file: string): Promise<string> {
  try {
    return await fsp.readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new ModelFormatError('TOKENIZER_FILE_MISSING', `${file}: not found`, { cause: e });
    }
    throw e;
  }
}

async function readJson(file: string): Promise<unknown> {
  const text = await readText(file);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ModelFormatError('TOKENIZER_JSON_INVALID', `${file}: invalid JSON: ${(e as Error).message}`, {
      cause: e,
    });
  }
}
