import type { Backend } from '../backend/backend.js';
import { sectionMapping } from '../image/intensity.js';
import { Int8Calibrator } from '../infer/int8.js';
import { openVolume } from '../io/registry.js';
import { volumeSlices } from '../io/volume-slices.js';
import type { LoadedModel } from '../models/model-dir.js';
import type { Int8Calibration } from '../nn/int8.js';
import { sectionFrom } from '../infer/section.js';
import { predictIntensity } from './intensity.js';
import { withNeighbours } from './neighbours.js';

/** What `emseg predict --int8 --calibrate <images>` calibrates on. */
export interface Int8Job {
  /** The calibration images: any volume openVolume reads (a few sections like the ones predicted). */
  calibrate: string;
  tile: number;
  intensity?: string;
  toGrey?: boolean;
  notice?: (message: string) => void;
}

/**
 * Calibrates int8 prediction of the models (nn/int8.ts) on every section of the calibration images, read and
 * scaled as predicted sections are (the models' intensity rule or --intensity, their neighbours for 2.5-d models),
 * on the prediction's tile grid. Returns one calibration per model.
 */
export async function calibrateInt8(job: Int8Job, models: LoadedModel[], backend: Backend, radius: number): Promise<Int8Calibration[]> {
  const reader = await openVolume(job.calibrate, { colour: job.toGrey ? 'to-grey' : 'reject', stream: true });
  try {
    const { spec } = predictIntensity(models, reader.dtype, job.calibrate, job.intensity);
    const calibrator = new Int8Calibrator(models, backend, job.tile);
    for await (const { planes } of withNeighbours(volumeSlices(reader), reader.shape[0], radius)) {
      calibrator.add(planes.map((s) => sectionFrom(s.data, s.height, s.width, sectionMapping(spec, s.data, s))));
    }
    job.notice?.(`int8: calibrated on ${calibrator.count} section${calibrator.count === 1 ? '' : 's'} of ${job.calibrate}`);
    return calibrator.calibrations();
  } finally {
    await reader.close();
  }
}
