import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../engine/core/backend.js';
import { float16ToFloat32, float32ToBfloat16, float32ToFloat16, bfloat16ToFloat32 } from '../engine/core/float16.js';
import { computeLogits } from '../engine/cli/logits.js';
import { loadModel } from '../engine/io/load-model.js';
import { describeDiff, fixtureDir, maxAbsDiff, readGolden, tttFixtures } from './helpers/fixtures.js';
import { fixtureConfig, fixtureTensors, writeTempModel } from './helpers/temp-model.js';

beforeAll(async () => {
  await selectBackend('wasm');
});

const roundTo = { F16: (v: number) => float16ToFloat32(float32ToFloat16(v)), BF16: (v: number) => bfloat16ToFloat32(float32ToBfloat16(v)) };

describe('half-precision checkpoints', () => {
  for (const name of tttFixtures) {
    it.each(['F16', 'BF16'] as const)(`${name} loads from %s weights`, async (dtype) => {
      const golden = readGolden(name);
      const ids = Int32Array.from(golden.input_ids);
      const tensors = [...fixtureTensors(name).values()];
      const half = writeTempModel(fixtureConfig(name), tensors, dtype);
      // the same rounded values written as F32: loading F16/BF16 must decode to exactly these
      const rounded = writeTempModel(fixtureConfig(name), tensors.map((t) => ({ ...t, data: t.data.map(roundTo[dtype]) })), 'F32');
      try {
        const fromHalf = await loadModel(half.dir);
        const fromRounded = await loadModel(rounded.dir);
        const a = await computeLogits(fromHalf.model, ids);
        const b = await computeLogits(fromRounded.model, ids);
        fromHalf.model.dispose();
        fromRounded.model.dispose();
        const V = golden.logits_shape[1];
        expect(maxAbsDiff(a, b, V).max).toBeLessThanOrEqual(1e-5);
        // and still close to the full-precision reference, within what the rounding of the weights allows
        const d = maxAbsDiff(a, golden.logits, V);
        expect(d.max, describeDiff(d)).toBeLessThan(dtype === 'F16' ? 0.02 : 0.2);
      } finally {
        half.cleanup();
        rounded.cleanup();
      }
    });
  }
});

describe('bad checkpoints', () => {
  const name = 'ttt-linear-mamba-backbone';

  it('names a missing tensor', async () => {
    const tensors = fixtureTensors(name);
    tensors.delete('model.layers.1.seq_modeling_block.W1');
    const m = writeTempModel(fixtureConfig(name), tensors.values());
    try {
      await expect(loadModel(m.dir)).rejects.toThrow(/model\.safetensors: missing tensor model\.layers\.1\.seq_modeling_block\.W1/);
    } finally {
      m.cleanup();
    }
  });

  it('names a mis-shaped tensor with both shapes', async () => {
    const tensors = fixtureTensors(name);
    const b1 = tensors.get('model.layers.0.seq_modeling_block.b1')!;
    tensors.set(b1.name, { ...b1, shape: [4, 16] });
    const m = writeTempModel(fixtureConfig(name), tensors.values());
    try {
      await expect(loadModel(m.dir)).rejects.toThrow('wrong shape: model.layers.0.seq_modeling_block.b1 is [4, 16], config.json implies [4, 1, 16]');
    } finally {
      m.cleanup();
    }
  });

  it('names unexpected tensors', async () => {
    const tensors = fixtureTensors(name);
    tensors.set('model.layers.0.extra.weight', { name: 'model.layers.0.extra.weight', shape: [2], data: new Float32Array(2) });
    const m = writeTempModel(fixtureConfig(name), tensors.values());
    try {
      await expect(loadModel(m.dir)).rejects.toThrow(/unexpected tensor model\.layers\.0\.extra\.weight/);
    } finally {
      m.cleanup();
    }
  });

  it('reports a config that disagrees with the weights in one error', async () => {
    const m = writeTempModel({ ...fixtureConfig(name), num_attention_heads: 8 }, fixtureTensors(name).values());
    try {
      const error = await loadModel(m.dir).catch((e: Error) => e);
      expect(error).toBeInstanceOf(Error);
      const message = (error as Error).message;
      expect(message).toMatch(/wrong shape: .*model\.layers\.0\.seq_modeling_block\.W1 is \[4, 16, 16\], config\.json implies \[8, 8, 8\]/);
      expect(message).toMatch(/and \d+ more$/);
      expect(message.split('\n')).toHaveLength(1);
    } finally {
      m.cleanup();
    }
  });

  it('names a truncated weights file', async () => {
    const m = writeTempModel(fixtureConfig(name), fixtureTensors(name).values());
    try {
      const path = join(m.dir, 'model.safetensors');
      const bytes = readFileSync(path);
      writeFileSync(path, bytes.subarray(0, bytes.length - 100));
      await expect(loadModel(m.dir)).rejects.toThrow(/model\.safetensors: not a valid safetensors file \(truncated: data needs \d+ bytes, file has \d+\)/);
    } finally {
      m.cleanup();
    }
  });

  it('rejects config values of the wrong type and unknown model types', async () => {
    const wrongType = writeTempModel({ ...fixtureConfig(name), mini_batch_size: '16' }, fixtureTensors(name).values());
    const unknown = writeTempModel({ ...fixtureConfig(name), architecture: 'rwkv' }, fixtureTensors(name).values());
    try {
      await expect(loadModel(wrongType.dir)).rejects.toThrow(/config\.json: "mini_batch_size" should be a number, got "16"/);
      await expect(loadModel(unknown.dir)).rejects.toThrow(/config\.json: unsupported model type "rwkv" \(known: ttt/);
    } finally {
      wrongType.cleanup();
      unknown.cleanup();
    }
  });

  it('rejects token ids outside the vocabulary, naming the position', async () => {
    const { model } = await loadModel(fixtureDir(name));
    try {
      await expect(computeLogits(model, Int32Array.from([1, 2, 96, 3]))).rejects.toThrow("input_ids: token 96 at position 2 is outside the model's vocabulary (0..95)");
    } finally {
      model.dispose();
    }
  });
});
