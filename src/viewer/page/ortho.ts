/**
 * The xz and yz views: orthogonal planes of the volume through the last point clicked, one image per shown layer
 * stacked as on the section view (same colours, same opacities), a line at the section shown. The server cuts each
 * plane from only the chunks it crosses; the page asks only for the layers shown.
 */
import type { LayerKind, Manifest } from '../protocol.js';
import { api } from './api.js';

/** Layers with orthogonal views (the marks are per section; the second map is compared by swipe only). */
const ORTHO_KINDS: readonly LayerKind[] = ['image', 'map', 'cells', 'labels'];
const AXES = ['xz', 'yz'] as const;
type Axis = (typeof AXES)[number];
/**
 * A view is drawn at least this fraction of its width tall: a stack of a few dozen sections, 2048 pixels wide, would
 * otherwise be a sliver (and EM sections are usually thicker than a pixel is wide, so a stretch in z is closer to the
 * true shape).
 */
const MIN_HEIGHT_PER_WIDTH = 0.25;

export interface OrthoLayer {
  kind: LayerKind;
  shown: boolean;
  opacity: number;
}

export class OrthoViews {
  private at?: { x: number; y: number };
  private readonly images = new Map<string, HTMLImageElement>();
  private readonly lines = new Map<Axis, HTMLDivElement>();
  /** The clicked point's column in each view (x in xz, y in yz). */
  private readonly marks = new Map<Axis, HTMLDivElement>();
  /** Off: no plane is asked for (on a PNG/TIFF stack a plane decodes every section). */
  private enabled = true;

  constructor(
    private readonly m: Manifest,
    private readonly layers: () => readonly OrthoLayer[],
    private readonly highlight: () => number | undefined,
  ) {
    for (const axis of AXES) {
      const box = document.getElementById(`ortho-${axis}`)!;
      const across = axis === 'xz' ? m.width : m.height;
      box.style.aspectRatio = `${across} / ${Math.max(m.depth, across * MIN_HEIGHT_PER_WIDTH)}`;
      for (const l of m.layers) {
        if (!ORTHO_KINDS.includes(l.kind)) continue;
        const img = document.createElement('img');
        img.id = `ortho-${axis}-${l.kind}`;
        img.alt = `${axis} view of ${l.kind}`;
        img.hidden = true;
        box.append(img);
        this.images.set(img.id, img);
      }
      const line = document.createElement('div');
      line.className = 'zline';
      box.append(line);
      this.lines.set(axis, line);
      const mark = document.createElement('div');
      mark.className = 'xline';
      mark.hidden = true;
      box.append(mark);
      this.marks.set(axis, mark);
    }
    const toggle = document.getElementById('ortho-on') as HTMLInputElement;
    toggle.addEventListener('change', () => {
      this.enabled = toggle.checked;
      for (const axis of AXES) document.getElementById(`ortho-${axis}`)!.parentElement!.hidden = !this.enabled;
      this.refresh();
    });
  }

  /** The point the planes go through: xz at row y, yz at column x. */
  setPoint(x: number, y: number): void {
    this.at = { x, y };
    document.getElementById('ortho-at')!.textContent = `xz at y = ${y}, yz at x = ${x}`;
    for (const [axis, mark] of this.marks) {
      mark.hidden = false;
      mark.style.left = axis === 'xz' ? `${((x + 0.5) / this.m.width) * 100}%` : `${((y + 0.5) / this.m.height) * 100}%`;
    }
    this.refresh();
  }

  /** Moves the line to section z. */
  setSection(z: number): void {
    for (const line of this.lines.values()) line.style.top = `${((z + 0.5) / this.m.depth) * 100}%`;
  }

  /** Asks for the planes of the shown layers (again after a layer, the highlight or the point changed). */
  refresh(): void {
    if (!this.at || !this.enabled) return;
    for (const axis of AXES) {
      for (const l of this.layers()) {
        const img = this.images.get(`ortho-${axis}-${l.kind}`);
        if (!img) continue;
        img.hidden = !l.shown;
        img.style.opacity = String(l.opacity);
        if (!l.shown) continue;
        const url = api.orthoUrl(l.kind, axis, axis === 'xz' ? this.at.y : this.at.x, l.kind === 'cells' ? this.highlight() : undefined);
        if (img.getAttribute('src') !== url) img.src = url;
      }
    }
  }

  /** Resolves once every shown plane has loaded (or failed). */
  async settled(): Promise<void> {
    const pending = [...this.images.values()].filter((img) => !img.hidden && img.getAttribute('src') !== null);
    await Promise.all(pending.map((img) => img.decode().catch(() => undefined)));
  }
}
