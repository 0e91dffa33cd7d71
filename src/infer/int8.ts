import type { Backend } from '../backend/backend.js';
import { Int8Recorder, type Int8Calibration } from '../nn/int8.js';
import type { PlanNode } from '../nn/plan.js';
import type { Tensor } from '../tensor/tensor.js';
import { Predictor, type ModelWeights } from './predict.js';
import type { SectionSource } from './section.js';

/**
 * Calibrates int8 prediction (nn/int8.ts) on a few sections: each is predicted in float32 on the predictor's own
 * tile grid, and every model records the input range of its int8 candidates. Nothing is written.
 */
export class Int8Calibrator {
  private readonly predictor: Predictor;
  private readonly recorders: Int8Recorder[];
  private sections = 0;

  constructor(models: readonly ModelWeights[], backend: Backend, private readonly tile: number) {
    this.predictor = new Predictor(models, backend);
    this.recorders = models.map(() => new Int8Recorder());
  }

  /** One calibration section (a model reading several sections takes them in order, as Predictor.bands does). */
  add(planes: SectionSource | readonly SectionSource[]): void {
    const observe = (m: number, node: PlanNode, x: Tensor) => this.recorders[m]!.observe(node, x);
    const bands = this.predictor.bands(planes, { tile: this.tile, observe });
    while (!bands.next().done) {
      // the maps are not needed: the recorders saw every convolution's input
    }
    this.sections++;
  }

  /** How many sections were added. */
  get count(): number {
    return this.sections;
  }

  /** One calibration per model, in order (PredictorOptions.int8). */
  calibrations(): Int8Calibration[] {
    return this.recorders.map((r) => r.calibration());
  }
}
