import { readdirSync, readFileSync } from 'node:fs';
import { open, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { sharedPath } from '../../../tools/shared.js';
import {
  arrayTypeFor,
  f16ToF32,
  f32ToBf16,
  f32ToF16,
  SAFETENSORS_DTYPES,
  type SafetensorsDtype,
} from '../src/dtype.js';
import {
  SafetensorsFile,
  SafetensorsWriter,
  safetensorsFileSize,
  type TensorToWrite,
  writeSafetensors,
} from '../src/safetensors.js';
import { expectError, useTempDir } from './formats-helpers.js';

/** A safetensors file from a header object (or raw header text) and data bytes; `length` overrides the prefix. */
async function writeRawFile(file: string, header: unknown, data: Uint8Array, length?: bigint): Promise<void> {
  const text = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header));
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(length ?? BigInt(text.length));
  await writeFile(file, Buffer.concat([prefix, text, data]));
}

const f32 = (n: number) => ({ dtype: 'F32', shape: [n] });

describe('safetensors', () => {
  const tmp = useTempDir();

  describe('reader validation', () => {
    const cases: {
      name: string;
      code: string;
      header: unknown;
      data: number;
      length?: bigint;
      mention?: string;
    }[] = [
      { name: 'bad JSON', code: 'SAFETENSORS_BAD_HEADER', header: '{"a": {"dtype": "F32",', data: 0 },
      { name: 'a JSON array', code: 'SAFETENSORS_BAD_HEADER', header: '[1, 2]', data: 0 },
      {
        name: 'non-string metadata',
        code: 'SAFETENSORS_BAD_HEADER',
        header: { __metadata__: { step: 3 } },
        data: 0,
        mention: '__metadata__',
      },
      {
        name: 'a negative shape',
        code: 'SAFETENSORS_BAD_HEADER',
        header: { w: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } },
        data: 4,
        mention: '"w"',
      },
      {
        name: 'missing data_offsets',
        code: 'SAFETENSORS_BAD_HEADER',
        header: { w: { dtype: 'F32', shape: [1] } },
        data: 4,
        mention: '"w"',
      },
      {
        name: 'an unknown dtype',
        code: 'SAFETENSORS_UNKNOWN_DTYPE',
        header: { w: { dtype: 'F12', shape: [1], data_offsets: [0, 4] } },
        data: 4,
        mention: '"w"',
      },
      {
        name: 'a size mismatch',
        code: 'SAFETENSORS_SIZE_MISMATCH',
        header: { w: { ...f32(3), data_offsets: [0, 8] } },
        data: 8,
        mention: '"w"',
      },
      {
        name: 'overlapping offsets',
        code: 'SAFETENSORS_OFFSETS_OVERLAP',
        header: { a: { ...f32(2), data_offsets: [0, 8] }, b: { ...f32(2), data_offsets: [4, 12] } },
        data: 12,
        mention: '"b"',
      },
      {
        name: 'a hole in the data',
        code: 'SAFETENSORS_OFFSETS_GAP',
        header: { a: { ...f32(1), data_offsets: [0, 4] }, b: { ...f32(1), data_offsets: [8, 12] } },
        data: 12,
        mention: '"b"',
      },
      {
        name: 'trailing bytes after the last tensor',
        code: 'SAFETENSORS_OFFSETS_GAP',
        header: { a: { ...f32(1), data_offsets: [0, 4] } },
        data: 8,
      },
      {
        name: 'offsets out of the file',
        code: 'SAFETENSORS_TRUNCATED',
        header: { a: { ...f32(1), data_offsets: [0, 4] }, b: { ...f32(4), data_offsets: [4, 20] } },
        data: 8,
        mention: '"b"',
      },
      {
        name: 'a header length larger than the file',
        code: 'SAFETENSORS_TRUNCATED',
        header: {},
        data: 0,
        length: 64n,
      },
      {
        name: 'a header length over the limit',
        code: 'SAFETENSORS_HEADER_TOO_LARGE',
        header: {},
        data: 0,
        length: 2n ** 62n,
      },
    ];
    for (const c of cases) {
      it(`rejects ${c.name} with ${c.code}`, async () => {
        const file = path.join(tmp(), 'bad.safetensors');
        await writeRawFile(file, c.header, new Uint8Array(c.data), c.length);
        const mentions = [file, ...(c.mention ? [c.mention] : [])];
        await expectError(SafetensorsFile.open(file), c.code, ...mentions);
      });
    }

    it('rejects a truncated file and a file shorter than 8 bytes', async () => {
      const file = path.join(tmp(), 'cut.safetensors');
      await writeSafetensors(file, { w: { dtype: 'F32', shape: [4], data: new Float32Array(4) } });
      const bytes = await readFile(file);
      await writeFile(file, bytes.subarray(0, bytes.length - 3));
      await expectError(SafetensorsFile.open(file), 'SAFETENSORS_TRUNCATED', file, '"w"');
      await writeFile(file, bytes.subarray(0, 5));
      await expectError(SafetensorsFile.open(file), 'SAFETENSORS_TRUNCATED', file);
      await expectError(SafetensorsFile.open(path.join(tmp(), 'none.safetensors')), 'FILE_NOT_FOUND', 'none');
    });

    it('accepts header entries in any order and sorts names by data offset', async () => {
      const file = path.join(tmp(), 'order.safetensors');
      const header = {
        z: { ...f32(1), data_offsets: [0, 4] },
        __metadata__: { k: 'v' },
        a: { ...f32(2), data_offsets: [4, 12] },
      };
      await writeRawFile(
        file,
        `${JSON.stringify(header)}   `,
        new Uint8Array(new Float32Array([1, 2, 3]).buffer),
      );
      const st = await SafetensorsFile.open(file);
      try {
        expect(st.names()).to.deep.equal(['z', 'a']);
        expect(st.metadata).to.deep.equal({ k: 'v' });
        expect(Array.from(await st.readFloat32('a'))).to.deep.equal([2, 3]);
        expect(st.info('a')).to.deep.equal({ dtype: 'F32', shape: [2], dataOffsets: [4, 12] });
      } finally {
        await st.close();
      }
    });
  });

  it('names the file and some available tensors for an unknown name', async () => {
    const file = path.join(tmp(), 't.safetensors');
    await writeSafetensors(file, {
      'model.layers.0.self_attn.q_proj.weight': { dtype: 'F32', shape: [1], data: new Float32Array(1) },
      'model.norm.weight': { dtype: 'F32', shape: [1], data: new Float32Array(1) },
    });
    const st = await SafetensorsFile.open(file);
    try {
      await expectError(
        st.readRaw('model.layers.9.self_attn.q_proj.weight'),
        'UNKNOWN_TENSOR',
        file,
        'model.layers.9.self_attn.q_proj.weight',
        'model.layers.0.self_attn.q_proj.weight',
      );
      await expectError(
        () => st.info('nope'),
        'UNKNOWN_TENSOR',
        'model.norm.weight',
        'model.layers.0.self_attn.q_proj.weight',
      );
    } finally {
      await st.close();
    }
  });

  it('writes the bytes of the Rust crate test vectors', async () => {
    const file = path.join(tmp(), 'v.safetensors');
    const data = Float32Array.from([0, 1, 2, 3, 4, 5]);
    await writeSafetensors(file, { 'attn.0': { dtype: 'F32', shape: [1, 2, 3], data } });
    const header = '{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}';
    const want = Buffer.concat([
      Buffer.from([64, 0, 0, 0, 0, 0, 0, 0]),
      Buffer.from(header),
      Buffer.from(data.buffer),
    ]);
    expect((await readFile(file)).equals(want)).to.equal(true);

    await writeSafetensors(file, { attn0: { dtype: 'F32', shape: [1, 1, 2, 3], data } });
    const padded = `{"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}}       `;
    const want2 = Buffer.concat([
      Buffer.from([72, 0, 0, 0, 0, 0, 0, 0]),
      Buffer.from(padded),
      Buffer.from(data.buffer),
    ]);
    expect((await readFile(file)).equals(want2)).to.equal(true);

    await writeSafetensors(file, {});
    expect(Array.from(await readFile(file))).to.deep.equal([
      8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32,
    ]);
    await writeSafetensors(file, {}, { framework: 'pt' });
    expect((await readFile(file)).toString('latin1')).to.equal(
      '(\0\0\0\0\0\0\0{"__metadata__":{"framework":"pt"}}     ',
    );
  });

  it('round-trips every dtype, laid out by dtype (descending) then name', async () => {
    const file = path.join(tmp(), 'all.safetensors');
    const tensors: Record<string, TensorToWrite> = {};
    SAFETENSORS_DTYPES.forEach((dtype: SafetensorsDtype, i) => {
      const Ctor = arrayTypeFor(dtype);
      const bytes = new Uint8Array(6 * Ctor.BYTES_PER_ELEMENT).map((_, j) => (j * 37 + i * 11) & 0xff);
      const data = new Ctor(bytes.buffer, 0, 6);
      tensors[`t.${dtype.toLowerCase()}`] = { dtype, shape: [2, 3], data };
      tensors[`a.${dtype.toLowerCase()}`] = { dtype, shape: [3, 2], data: bytes }; // raw bytes are accepted too
    });
    tensors.empty = { dtype: 'F32', shape: [0, 4], data: new Float32Array(0) };
    await writeSafetensors(file, tensors, { format: 'pt', note: 'ünïcode' });
    const st = await SafetensorsFile.open(file);
    try {
      expect(st.metadata).to.deep.equal({ format: 'pt', note: 'ünïcode' });
      const expectedOrder = [...SAFETENSORS_DTYPES]
        .reverse()
        .flatMap((d) => [`a.${d.toLowerCase()}`, ...(d === 'F32' ? ['empty'] : []), `t.${d.toLowerCase()}`]);
      expect(st.names()).to.deep.equal(expectedOrder);
      for (const [name, t] of Object.entries(tensors)) {
        const got = await st.read(name);
        expect(got.dtype).to.equal(t.dtype);
        expect(got.shape).to.deep.equal(t.shape);
        expect(got.data).to.be.instanceOf(arrayTypeFor(t.dtype));
        const want = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
        expect(Buffer.from(await st.readRaw(name)).equals(Buffer.from(want)), name).to.equal(true);
      }
      await expectError(st.readFloat32('t.i32'), 'SAFETENSORS_NOT_FLOAT', 't.i32');
    } finally {
      await st.close();
    }
  });

  it('reads every float dtype as F32', async () => {
    const file = path.join(tmp(), 'f.safetensors');
    const values = Float32Array.from([0.1, -1.5, 1e-6, 65000, -3.25e-5, 7]);
    await writeSafetensors(file, {
      f32: { dtype: 'F32', shape: [6], data: values },
      f64: { dtype: 'F64', shape: [2, 3], data: Float64Array.from(values) },
      f16: { dtype: 'F16', shape: [6], data: f32ToF16(values) },
      bf16: { dtype: 'BF16', shape: [3, 2], data: f32ToBf16(values) },
    });
    const st = await SafetensorsFile.open(file);
    try {
      expect(Array.from(await st.readFloat32('f32'))).to.deep.equal(Array.from(values));
      expect(Array.from(await st.readFloat32('f64'))).to.deep.equal(Array.from(values));
      expect(Array.from(await st.readFloat32('f16'))).to.deep.equal(Array.from(f16ToF32(f32ToF16(values))));
      const bf = await st.readFloat32('bf16');
      expect(Array.from(f32ToBf16(bf))).to.deep.equal(Array.from(f32ToBf16(values)));
      expect(bf[1]).to.equal(-1.5);
      const i64 = await st.read('f64');
      expect(i64.data).to.be.instanceOf(Float64Array);
    } finally {
      await st.close();
    }
  });

  it('rewrites the fixture adapter and BF16 model byte for byte', async function () {
    for (const rel of [
      'adapter/adapter_model.safetensors',
      'base-bf16/model.safetensors',
      'sft-step0-grads.safetensors',
    ]) {
      const src = sharedPath(this, 'fixtures', 'tiny-llama', ...rel.split('/'));
      const st = await SafetensorsFile.open(src);
      const tensors: Record<string, TensorToWrite> = {};
      for (const name of st.names()) tensors[name] = await st.read(name);
      const metadata = st.metadata;
      await st.close();
      const out = path.join(tmp(), 'copy.safetensors');
      await writeSafetensors(out, tensors, metadata);
      expect(readFileSync(out).equals(readFileSync(src)), rel).to.equal(true);
    }
  });

  it('streams tensors in any order into the same bytes, atomically', async () => {
    const specs = {
      b: { dtype: 'F32' as const, shape: [3] },
      a: { dtype: 'BF16' as const, shape: [2] },
      c: { dtype: 'I64' as const, shape: [1] },
    };
    const data = {
      b: Float32Array.from([1, 2, 3]),
      a: Uint16Array.from([0x3f80, 0x4000]),
      c: BigInt64Array.from([-5n]),
    };
    const ref = path.join(tmp(), 'ref.safetensors');
    await writeSafetensors(ref, {
      a: { ...specs.a, data: data.a },
      b: { ...specs.b, data: data.b },
      c: { ...specs.c, data: data.c },
    });
    const out = path.join(tmp(), 'stream.safetensors');
    const w = await SafetensorsWriter.create(out, specs);
    expect(w.order).to.deep.equal(['c', 'b', 'a']);
    await w.write('a', data.a);
    await w.write('b', data.b);
    await expectError(w.write('b', data.b), 'SAFETENSORS_WRITE', 'already written');
    await expectError(w.write('c', new Float32Array(2)), 'SAFETENSORS_WRITE', 'BigInt64Array');
    await expectError(w.write('c', new Uint8Array(4)), 'SAFETENSORS_SIZE_MISMATCH', '"c"');
    await expectError(w.write('zz', new Uint8Array(4)), 'SAFETENSORS_WRITE', 'zz');
    expect(readdirSync(tmp())).to.have.length(2); // ref + the temp file; the target does not exist yet
    await w.write('c', data.c);
    await w.finish();
    expect(readFileSync(out).equals(readFileSync(ref))).to.equal(true);
    expect(readdirSync(tmp()).sort()).to.deep.equal(['ref.safetensors', 'stream.safetensors']);
  });

  it('leaves nothing behind when tensors are missing or the data is wrong', async () => {
    const out = path.join(tmp(), 'x.safetensors');
    const w = await SafetensorsWriter.create(out, {
      a: { dtype: 'F32', shape: [2] },
      b: { dtype: 'F32', shape: [1] },
    });
    await w.write('a', new Float32Array(2));
    await expectError(w.finish(), 'SAFETENSORS_WRITE', 'never written', 'b');
    await expectError(
      writeSafetensors(out, { a: { dtype: 'F16', shape: [2], data: new Float32Array(2) } }),
      'SAFETENSORS_WRITE',
      'Uint16Array',
    );
    await expectError(
      writeSafetensors(out, { a: { dtype: 'F32', shape: [3], data: new Float32Array(2) } }),
      'SAFETENSORS_SIZE_MISMATCH',
      'needs 12 bytes, got 8',
    );
    await expectError(
      writeSafetensors(out, { a: { dtype: 'F9' as never, shape: [1], data: new Uint8Array(1) } }),
      'SAFETENSORS_UNKNOWN_DTYPE',
    );
    expect(readdirSync(tmp())).to.deep.equal([]);
  });

  it('reads tensors past 4 GiB with positioned reads (sparse file)', async () => {
    const file = path.join(tmp(), 'big.safetensors');
    const big = 5 * 2 ** 30;
    const header = Buffer.from(
      JSON.stringify({
        big: { dtype: 'U8', shape: [big], data_offsets: [0, big] },
        tail: { dtype: 'F32', shape: [2], data_offsets: [big, big + 8] },
      }),
    );
    const fh = await open(file, 'w');
    try {
      const prefix = Buffer.alloc(8);
      prefix.writeBigUInt64LE(BigInt(header.length));
      await fh.write(Buffer.concat([prefix, header]), 0, 8 + header.length, 0);
      await fh.write(Buffer.from(Float32Array.from([1.25, -7]).buffer), 0, 8, 8 + header.length + big);
    } finally {
      await fh.close();
    }
    const st = await SafetensorsFile.open(file);
    try {
      expect(st.fileSize).to.equal(8 + header.length + big + 8);
      expect(Array.from(await st.readFloat32('tail'))).to.deep.equal([1.25, -7]);
    } finally {
      await st.close();
    }
  });

  it('streams tensors in parts: readRawInto a reused buffer, writePart in order (same bytes as write)', async () => {
    const a = Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i));
    const b = Uint16Array.from({ length: 301 }, (_, i) => i * 7);
    const tensors: Record<string, TensorToWrite> = {
      a: { dtype: 'F32', shape: [10, 100], data: a },
      b: { dtype: 'BF16', shape: [301], data: b },
    };
    const whole = path.join(tmp(), 'whole.safetensors');
    const parts = path.join(tmp(), 'parts.safetensors');
    await writeSafetensors(whole, tensors, { format: 'pt' });
    const src = await SafetensorsFile.open(whole);
    const w = await SafetensorsWriter.create(
      parts,
      { a: { dtype: 'F32', shape: [10, 100] }, b: { dtype: 'BF16', shape: [301] } },
      { format: 'pt' },
    );
    try {
      const buf = new Uint8Array(1024);
      const pending: Promise<void>[] = [];
      for (const name of w.order) {
        const size = src.info(name).dataOffsets[1] - src.info(name).dataOffsets[0];
        for (let off = 0; off < size; off += 1024) {
          const part = new Uint8Array(Math.min(1024, size - off));
          await src.readRawInto(name, off, part);
          buf.set(part);
          pending.push(w.writePart(name, off, part)); // issued before the previous parts have landed
        }
      }
      await Promise.all(pending);
      await expectError(w.writePart('a', 0, new Uint8Array(4)), 'SAFETENSORS_WRITE', 'already written');
      await w.finish();
      expect(readFileSync(parts).equals(readFileSync(whole))).to.equal(true);
      const specs = {
        a: { dtype: 'F32' as const, shape: [10, 100] },
        b: { dtype: 'BF16' as const, shape: [301] },
      };
      expect(safetensorsFileSize(specs, { format: 'pt' })).to.equal(readFileSync(whole).length);
      let caught: unknown = null;
      await src.readRawInto('b', 600, new Uint8Array(4)).catch((e) => {
        caught = e;
      });
      expect(caught).to.be.instanceOf(RangeError);
    } finally {
      await src.close();
    }
    const w2 = await SafetensorsWriter.create(path.join(tmp(), 'x.safetensors'), {
      a: { dtype: 'F32', shape: [4] },
    });
    await expectError(w2.writePart('a', 4, new Uint8Array(4)), 'SAFETENSORS_WRITE', 'does not continue');
    await w2.writePart('a', 0, new Uint8Array(8));
    await expectError(w2.write('a', new Float32Array(4)), 'SAFETENSORS_WRITE', 'already written');
    await expectError(w2.finish(), 'SAFETENSORS_WRITE', 'never written');
  });
});
