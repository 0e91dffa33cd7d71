/** The page's side of /api: typed fetches that turn a refusal into an Error carrying the server's message. */
import { EmsegError } from '../../errors.js';
import type { ApiError, ErrorMarks, Manifest, NeuronInfo, PointReadout, StudyChart, TrainingCurves } from '../protocol.js';

async function getJson<T>(url: string): Promise<T> {
  const res = await fetch(url);
  const body: unknown = await res.json();
  if (!res.ok) throw new EmsegError((body as ApiError).error, url, (body as ApiError).message);
  return body as T;
}

/** The highlighted cell id as a query (cells tiles only use it; the server ignores it elsewhere). */
const highlightQuery = (id: number | undefined) => (id === undefined ? '' : `?highlight=${id}`);

export const api = {
  manifest: () => getJson<Manifest>('/api/manifest'),
  point: (z: number, x: number, y: number) => getJson<PointReadout>(`/api/point?z=${z}&x=${x}&y=${y}`),
  errors: (z: number) => getJson<ErrorMarks>(`/api/errors/${z}`),
  training: () => getJson<TrainingCurves>('/api/training'),
  study: () => getJson<StudyChart>('/api/study'),
  neuron: (id: number) => getJson<NeuronInfo>(`/api/neuron?id=${id}`),
  tileUrl: (kind: string, z: number, level: number, x: number, y: number, highlight?: number) =>
    `/api/tile/${kind}/${z}/${level}/${x}/${y}.png${highlightQuery(highlight)}`,
  orthoUrl: (kind: string, axis: 'xz' | 'yz', at: number, highlight?: number) => `/api/ortho/${kind}/${axis}/${at}.png${highlightQuery(highlight)}`,
};
