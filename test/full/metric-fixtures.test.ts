/** The metric fixtures' multi-page TIFFs (Adobe deflate) decode bit for bit to their raw twins in ../shared. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { readStack } from '../../src/io/index.js';
import type { StackData } from '../../src/image/stack.js';
import { sharedPath } from '../helpers/data.js';

function assertSameValues(actual: StackData, expected: StackData): void {
  assert.equal(actual.constructor, expected.constructor);
  assert.equal(actual.length, expected.length);
  for (let i = 0; i < expected.length; i++) {
    if (!Object.is(actual[i], expected[i])) assert.fail(`value ${i}: ${actual[i]} != ${expected[i]}`);
  }
}

test('Adobe-deflate multi-page TIFF fixtures decode to their raw .f32/.u8 twins', async () => {
  const FIXTURES = sharedPath('fixtures', 'isbi-metrics');
  const tifs = readdirSync(FIXTURES).filter((f) => f.endsWith('.tif'));
  assert.ok(tifs.length >= 2, `fixtures missing in ${FIXTURES}`);
  for (const f of tifs) {
    const stack = await readStack(join(FIXTURES, f));
    const twin = f === 'gt.tif' ? 'gt.u8' : f.replace(/\.tif$/, '.f32');
    const raw = readFileSync(join(FIXTURES, twin));
    const expected =
      f === 'gt.tif' ? new Uint8Array(raw) : new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length));
    assert.deepEqual([stack.width, stack.height, stack.depth], [256, 256, 5], f);
    assertSameValues(stack.data, expected);
  }
});
