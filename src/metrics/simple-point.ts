/**
 * Simple points for (4, 8) digital topology: 4-connected foreground, 8-connected background.
 *
 * Flipping a simple point changes no topology, so the warping error may flip it freely. The
 * test depends only on the 8 neighbours, so it is tabulated once for the 256 configurations.
 * (Fiji reaches the same answer through Bertrand's 3-D test on a one-plane patch; the two
 * agree on all 256 configurations.)
 */

/** Neighbour offsets (dx, dy) in ring order; bit k of a configuration is `RING[k]`. */
export const RING: ReadonlyArray<readonly [number, number]> = [
  [-1, -1], [0, -1], [1, -1], [1, 0], [1, 1], [0, 1], [-1, 1], [-1, 0],
];

/** Number of components of the ring cells whose bit equals `value`, counting only those with a cell accepted by `counts`. */
function ringComponents(config: number, value: number, eightConnected: boolean, counts: (k: number) => boolean): number {
  const comp = new Int8Array(8).fill(-1);
  let total = 0;
  for (let start = 0; start < 8; start++) {
    if (((config >> start) & 1) !== value || comp[start] >= 0) continue;
    const id = total++;
    comp[start] = id;
    const stack = [start];
    while (stack.length > 0) {
      const a = stack.pop()!;
      for (let b = 0; b < 8; b++) {
        if (comp[b] >= 0 || ((config >> b) & 1) !== value) continue;
        const dx = Math.abs(RING[a][0] - RING[b][0]);
        const dy = Math.abs(RING[a][1] - RING[b][1]);
        if (eightConnected ? dx <= 1 && dy <= 1 : dx + dy === 1) {
          comp[b] = id;
          stack.push(b);
        }
      }
    }
  }
  const seen = new Set<number>();
  for (let k = 0; k < 8; k++) if (comp[k] >= 0 && counts(k)) seen.add(comp[k]);
  return seen.size;
}

const isDirectNeighbour = (k: number): boolean => RING[k][0] === 0 || RING[k][1] === 0;

/** `SIMPLE[config]` is 1 iff T4 == 1 (foreground) and T8 == 1 (background). */
export const SIMPLE: Uint8Array = (() => {
  const table = new Uint8Array(256);
  for (let config = 0; config < 256; config++) {
    const t4 = ringComponents(config, 1, false, isDirectNeighbour);
    const t8 = ringComponents(config, 0, true, () => true);
    table[config] = t4 === 1 && t8 === 1 ? 1 : 0;
  }
  return table;
})();

/**
 * `FOREGROUND_TOUCHES[config]`: T4, the number of 4-connected foreground components of the ring that touch the
 * centre directly; `BACKGROUND_PARTS[config]`: T8, the number of 8-connected background components of the ring.
 * Used to name the topological change a non-simple flip would make (object or hole creation or deletion).
 */
export const FOREGROUND_TOUCHES: Uint8Array = Uint8Array.from({ length: 256 }, (_, c) => ringComponents(c, 1, false, isDirectNeighbour));
export const BACKGROUND_PARTS: Uint8Array = Uint8Array.from({ length: 256 }, (_, c) => ringComponents(c, 0, true, () => true));

/**
 * Ring configuration of pixel `p` in a binary image (0/1 values) with row stride `stride`.
 * The image must have a border of at least one pixel around `p` (callers pad with zeros).
 */
export function ringConfig(img: Uint8Array, p: number, stride: number): number {
  return (
    img[p - stride - 1] |
    (img[p - stride] << 1) |
    (img[p - stride + 1] << 2) |
    (img[p + 1] << 3) |
    (img[p + stride + 1] << 4) |
    (img[p + stride] << 5) |
    (img[p + stride - 1] << 6) |
    (img[p - 1] << 7)
  );
}

/** Whether pixel (x, y) of a `width` x `height` binary image is simple (outside pixels count as 0). */
export function isSimplePoint(img: ArrayLike<number>, width: number, height: number, x: number, y: number): boolean {
  let config = 0;
  for (let k = 0; k < 8; k++) {
    const nx = x + RING[k][0];
    const ny = y + RING[k][1];
    if (nx >= 0 && ny >= 0 && nx < width && ny < height && img[ny * width + nx] !== 0) config |= 1 << k;
  }
  return SIMPLE[config] === 1;
}
