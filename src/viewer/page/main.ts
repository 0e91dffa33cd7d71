/**
 * The viewer page: OpenSeadragon draws each layer as its own deep-zoom tiled image (tiles read at the scale shown,
 * so a huge section never loads whole); the sidebar holds the section slider, layer toggles and opacities, the swipe
 * between two maps, the readout under the cursor and the charts. All names from the server go in as text.
 */
import OpenSeadragon from 'openseadragon';
import type { LayerKind, Manifest, PointReadout } from '../protocol.js';
import { EmsegError } from '../../errors.js';
import { api } from './api.js';
import { drawStudy, drawTraining } from './charts.js';
import { OrthoViews } from './ortho.js';

/** Opacity each layer starts with, and whether it starts shown. */
const START: Record<LayerKind, { opacity: number; shown: boolean }> = {
  image: { opacity: 1, shown: true },
  map: { opacity: 0.7, shown: true },
  compare: { opacity: 0.7, shown: true },
  cells: { opacity: 0.45, shown: false },
  labels: { opacity: 1, shown: false },
  errors: { opacity: 1, shown: false },
};
const READOUT_DIGITS = 3;

interface LayerState {
  kind: LayerKind;
  shown: boolean;
  opacity: number;
  image?: OpenSeadragon.TiledImage;
}

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

const nextFrame = () => new Promise((r) => requestAnimationFrame(r));

function status(message: string): void {
  $('status').textContent = message;
}

class View {
  private z = 0;
  private swipe = 0.5;
  private showing = 0;
  /** Sections whose images are still being added (until then the old section's images are the ones drawn). */
  private switching = 0;
  private readonly viewer: OpenSeadragon.Viewer;
  readonly layers: LayerState[];
  private readonly maxLevel: number;
  /** The cell id drawn opaque on every section (others dimmed); undefined: none chosen. */
  highlight?: number;
  readonly ortho: OrthoViews;

  constructor(readonly m: Manifest) {
    this.maxLevel = Math.ceil(Math.log2(Math.max(m.width, m.height)));
    this.layers = m.layers.map((l) => ({ kind: l.kind, ...START[l.kind] }));
    this.ortho = new OrthoViews(m, () => this.layers, () => this.highlight);
    this.viewer = OpenSeadragon({
      element: $('viewer'), drawer: 'canvas', showNavigationControl: false, animationTime: 0, blendTime: 0,
      immediateRender: true, imageSmoothingEnabled: false, maxZoomPixelRatio: 16, visibilityRatio: 0.5,
      gestureSettingsMouse: { clickToZoom: false },
    } as OpenSeadragon.Options);
    // A refused tile (say, a label value outside the polarity) leaves a hole: say why, in the server's words.
    this.viewer.addHandler('tile-load-failed', (e) => {
      const url = (e as unknown as { tile?: { getUrl?: () => string } }).tile?.getUrl?.();
      if (url) void fetch(url).then((r) => r.json()).then((b: { message?: string }) => status(b.message ?? `cannot load ${url}`), () => status(`cannot load ${url}`));
    });
  }

  /** A custom tile source: OpenSeadragon's level maxLevel is full resolution, our level 0. */
  private tileSource(kind: LayerKind, z: number): object {
    const { width, height, tileSize, levels } = this.m;
    return { width, height, tileSize, tileOverlap: 0, maxLevel: this.maxLevel, minLevel: this.maxLevel - (levels - 1),
      getTileUrl: (level: number, x: number, y: number) =>
        api.tileUrl(kind, z, this.maxLevel - level, x, y, kind === 'cells' ? this.highlight : undefined) };
  }

  private add(l: LayerState, z: number): Promise<OpenSeadragon.TiledImage> {
    return new Promise((resolve, reject) => {
      this.viewer.addTiledImage({
        tileSource: this.tileSource(l.kind, z), opacity: l.shown ? l.opacity : 0,
        success: (e) => resolve((e as unknown as { item: OpenSeadragon.TiledImage }).item),
        error: () => reject(new EmsegError('tile-source', l.kind, `cannot show section ${z + 1}`)),
      });
    });
  }

  /** Shows section z: the new images go on top of the old ones, which are removed once the new ones are in. */
  async show(z: number): Promise<void> {
    const token = ++this.showing;
    this.z = z;
    this.switching++;
    let added: OpenSeadragon.TiledImage[];
    try {
      added = await Promise.all(this.layers.map((l) => this.add(l, z)));
    } finally {
      this.switching--;
    }
    if (token !== this.showing) {
      added.forEach((t) => this.viewer.world.removeItem(t));
      return;
    }
    this.layers.forEach((l, i) => {
      if (l.image) this.viewer.world.removeItem(l.image);
      l.image = added[i];
    });
    this.applyClip();
    sectionText(this.m, z);
    this.ortho.setSection(z);
    if (this.isShown('errors')) void this.errorCounts();
  }

  isShown(kind: LayerKind): boolean {
    return this.layers.some((l) => l.kind === kind && l.shown);
  }

  set(kind: LayerKind, change: Partial<Pick<LayerState, 'shown' | 'opacity'>>): void {
    const l = this.layers.find((x) => x.kind === kind)!;
    Object.assign(l, change);
    l.image?.setOpacity(l.shown ? l.opacity : 0);
    if (kind === 'errors' && l.shown) void this.errorCounts();
    this.ortho.refresh();
  }

  /** Highlights cell `id` (undefined: none) on this and every later section, and in the orthogonal views. */
  async setHighlight(id: number | undefined): Promise<void> {
    this.highlight = id;
    this.ortho.refresh();
    await this.show(this.z); // the cells tiles are asked for again, with the highlight in their URLs
  }

  /** Calls `act` with the image pixel of each click (not a drag) on the section. */
  onClick(act: (p: { x: number; y: number }) => void): void {
    this.viewer.addHandler('canvas-click', (e) => {
      const click = e as unknown as { quick: boolean; position: OpenSeadragon.Point };
      const r = $('viewer').getBoundingClientRect();
      const p = click.quick ? this.pageToImage(click.position.x + r.left, click.position.y + r.top) : undefined;
      if (p) act(p);
    });
  }

  setSwipe(fraction: number): void {
    this.swipe = fraction;
    this.applyClip();
  }

  /** The first map shows left of the swipe line, the second right of it. */
  private applyClip(): void {
    const compare = this.layers.find((l) => l.kind === 'compare')?.image;
    const map = this.layers.find((l) => l.kind === 'map')?.image;
    if (!compare || !map) return;
    const { width: w, height: h } = this.m;
    const at = Math.round(this.swipe * w);
    map.setClip(new OpenSeadragon.Rect(0, 0, at, h));
    compare.setClip(new OpenSeadragon.Rect(at, 0, w - at, h));
  }

  private async errorCounts(): Promise<void> {
    const z = this.z;
    const e = await api.errors(z);
    if (z === this.z) $('section-errors').textContent = `warping errors at threshold ${e.threshold}: ${e.splits} split, ${e.mergers} merger pixels`;
  }

  get section(): number {
    return this.z;
  }

  /** Resolves once every shown layer has all the tiles it needs at this zoom, and they have been drawn. */
  async settled(): Promise<void> {
    await nextFrame(); // let OpenSeadragon's update loop see the latest change before asking what it has loaded
    for (;;) {
      const pending = this.layers.filter((l) => l.shown && l.image && !l.image.getFullyLoaded());
      // Tile downloads still in flight (of a layer just shown, or one about to be replaced) count too.
      const loading = (this.viewer as unknown as { imageLoader: { jobsInProgress: number } }).imageLoader.jobsInProgress;
      if (this.switching === 0 && pending.length === 0 && loading === 0 && this.layers.every((l) => l.image)) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    await nextFrame();
    await nextFrame();
  }

  /** Image pixel (x, y) to page coordinates (centre of the pixel). */
  imageToPage(x: number, y: number): { x: number; y: number } {
    const p = this.layers[0]!.image!.imageToViewerElementCoordinates(new OpenSeadragon.Point(x + 0.5, y + 0.5));
    const r = $('viewer').getBoundingClientRect();
    return { x: r.left + p.x, y: r.top + p.y };
  }

  pageToImage(px: number, py: number): { x: number; y: number } | undefined {
    const r = $('viewer').getBoundingClientRect();
    const image = this.layers[0]?.image;
    if (!image) return undefined;
    const p = image.viewerElementToImageCoordinates(new OpenSeadragon.Point(px - r.left, py - r.top));
    const x = Math.floor(p.x);
    const y = Math.floor(p.y);
    return x >= 0 && y >= 0 && x < this.m.width && y < this.m.height ? { x, y } : undefined;
  }

  zoom(factor: number): void {
    this.viewer.viewport.zoomBy(factor);
  }

  home(): void {
    this.viewer.viewport.goHome(true);
  }
}

function sectionText(m: Manifest, z: number): void {
  $('section-number').textContent = `${z + 1} / ${m.depth}`;
  const s = m.sections[z]!;
  $('section-files').textContent = Object.entries(s.files).map(([k, f]) => `${k}: ${f}`).join('\n');
  const e = s.evaluation;
  $('section-scores').textContent = e ? Object.entries(e).map(([k, v]) => `${k} ${Number(v).toPrecision(4)}`).join(', ') : '';
}

function layerControls(view: View, m: Manifest): void {
  const box = $('layers');
  for (const l of view.layers) {
    const row = document.createElement('div');
    row.className = 'layer';
    const toggle = Object.assign(document.createElement('input'), { type: 'checkbox', id: `toggle-${l.kind}`, checked: l.shown });
    const name = Object.assign(document.createElement('label'), { htmlFor: toggle.id, className: 'name' });
    name.textContent = `${l.kind}: ${m.layers.find((x) => x.kind === l.kind)!.name}`;
    const opacity = Object.assign(document.createElement('input'), { type: 'range', id: `opacity-${l.kind}`, min: '0', max: '1', step: '0.05', value: String(l.opacity) });
    opacity.setAttribute('aria-label', `${l.kind} opacity`);
    toggle.addEventListener('change', () => view.set(l.kind, { shown: toggle.checked }));
    opacity.addEventListener('input', () => view.set(l.kind, { opacity: Number(opacity.value) }));
    row.append(toggle, name, opacity);
    box.append(row);
  }
}

function showReadout(r: PointReadout): void {
  const rows: [string, string][] = [['x, y', `${r.x}, ${r.y}`]];
  if (r.intensity !== undefined) rows.push(['intensity', String(Number(r.intensity.toPrecision(6)))]);
  if (r.pMembrane !== undefined) rows.push(['P(membrane)', r.pMembrane.toFixed(READOUT_DIGITS)]);
  if (r.pMembraneCompare !== undefined) rows.push(['P(membrane), 2nd', r.pMembraneCompare.toFixed(READOUT_DIGITS)]);
  if (r.cell !== undefined) rows.push(['cell id', String(r.cell)]);
  if (r.label !== undefined) rows.push(['label', r.label]);
  $('readout').replaceChildren(...rows.flatMap(([k, v]) => {
    const dt = document.createElement('dt');
    const dd = document.createElement('dd');
    dt.textContent = k;
    dd.textContent = v;
    dd.dataset.field = k;
    return [dt, dd];
  }));
}

/** Readout under the cursor; one request at a time, the latest position wins. */
function trackCursor(view: View): void {
  let wanted: { x: number; y: number; z: number } | undefined;
  let busy = false;
  const pump = async (): Promise<void> => {
    if (busy || !wanted) return;
    busy = true;
    const w = wanted;
    wanted = undefined;
    try {
      showReadout(await api.point(w.z, w.x, w.y));
    } catch (err) {
      status(String(err));
    } finally {
      busy = false;
      void pump();
    }
  };
  $('viewer').addEventListener('mousemove', (e) => {
    const p = view.pageToImage(e.clientX, e.clientY);
    if (!p) return;
    wanted = { ...p, z: view.section };
    void pump();
  });
}

/** Click a cell: it is highlighted through every section and its size shown; the same cell again, or Esc, clears. */
function neuronPicking(view: View, m: Manifest): void {
  const hasCells = m.layers.some((l) => l.kind === 'cells');
  const text = $('neuron');
  const clear = () => {
    text.textContent = '';
    return view.setHighlight(undefined);
  };
  const pick = async (p: { x: number; y: number }): Promise<void> => {
    view.ortho.setPoint(p.x, p.y);
    if (!hasCells) return;
    const id = (await api.point(view.section, p.x, p.y)).cell;
    if (!id || id === view.highlight) return clear();
    if (!view.isShown('cells')) {
      $<HTMLInputElement>('toggle-cells').checked = true;
      view.set('cells', { shown: true });
    }
    text.textContent = `neuron ${id}: counting…`;
    const shown = view.setHighlight(id);
    const info = await api.neuron(id);
    if (view.highlight === id) text.textContent = `neuron ${id}: ${info.voxels} voxels, sections ${info.zMin + 1}–${info.zMax + 1}`;
    await shown;
  };
  view.onClick((p) => void pick(p).catch((err) => status(String(err))));
  window.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && view.highlight !== undefined) void clear().catch((err) => status(String(err)));
  });
}

function navigation(view: View, m: Manifest): void {
  const slider = $<HTMLInputElement>('section');
  slider.max = String(m.depth - 1);
  const go = (z: number) => {
    const next = Math.min(m.depth - 1, Math.max(0, z));
    slider.value = String(next);
    if (next !== view.section) view.show(next).catch((err) => status(String(err)));
  };
  slider.addEventListener('input', () => go(Number(slider.value)));
  // Capture phase: OpenSeadragon's own keys (arrows pan) must not see the section keys.
  window.addEventListener('keydown', (e) => {
    const step = { ArrowRight: 1, k: 1, PageDown: 1, ArrowLeft: -1, j: -1, PageUp: -1 }[e.key];
    if (step !== undefined) go(view.section + step);
    else if (e.key === '+' || e.key === '=') view.zoom(1.5);
    else if (e.key === '-') view.zoom(1 / 1.5);
    else if (e.key === '0') view.home();
    else return;
    e.preventDefault();
    e.stopPropagation();
  }, { capture: true });
  if (m.layers.some((l) => l.kind === 'compare')) {
    $('swipe-box').hidden = false;
    $<HTMLInputElement>('swipe').addEventListener('input', (e) => view.setSwipe(Number((e.target as HTMLInputElement).value)));
  }
}

async function sideData(m: Manifest): Promise<void> {
  if (m.hasTraining) {
    $('training-box').hidden = false;
    drawTraining($('training'), await api.training());
  }
  if (m.hasStudy) {
    $('study-box').hidden = false;
    drawStudy($('study'), await api.study());
  }
}

/** What tests and the benchmark drive the page through. */
declare global {
  interface Window {
    emsegView?: {
      settled(): Promise<void>;
      imageToPage(x: number, y: number): { x: number; y: number };
      section(): number;
      /** The highlighted cell id, if any. */
      highlight(): number | undefined;
      /** Resolves once the orthogonal views shown have loaded. */
      orthoSettled(): Promise<void>;
      ready: boolean;
    };
  }
}

async function start(): Promise<void> {
  const m = await api.manifest();
  const errorsLine = document.createElement('p');
  errorsLine.id = 'section-errors';
  $('nav').append(errorsLine);
  const view = new View(m);
  layerControls(view, m);
  navigation(view, m);
  trackCursor(view);
  neuronPicking(view, m);
  await view.show(0);
  window.emsegView = { settled: () => view.settled(), imageToPage: (x, y) => view.imageToPage(x, y), section: () => view.section,
    highlight: () => view.highlight, orthoSettled: () => view.ortho.settled(), ready: true };
  await sideData(m);
}

start().catch((err) => status(String(err)));
