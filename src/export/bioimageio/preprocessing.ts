import type { IntensitySpec } from '../../image/intensity.js';
import { fullScale, type SampleType } from '../../image/stack.js';
import type { YamlValue } from './yaml.js';

/** The image axes emseg normalises over: each 2-d section on its own. */
const SECTION_AXES = ['y', 'x'];
/** emseg clips every rule with bounds to [0,1]. */
const CLIP_TO_UNIT = { id: 'clip', kwargs: { min: 0, max: 1 } };
const TO_FLOAT = { id: 'ensure_dtype', kwargs: { dtype: 'float32' } };

/**
 * bioimage.io preprocessing steps equal to an emseg intensity rule (src/image/intensity.ts) for inputs of `type`:
 * dtype/auto divide by the type's full range (scale_linear), a fixed LOW,HIGH range is scale_linear plus clip,
 * min-max and percentiles are scale_range over each section. Percentile interpolation may differ slightly between
 * emseg and a consumer (bioimageio.core uses numpy's).
 */
export function preprocessingFor(spec: IntensitySpec, type: SampleType): YamlValue[] {
  switch (spec.kind) {
    case 'auto':
    case 'dtype':
      return type === 'float32' ? [TO_FLOAT] : [TO_FLOAT, { id: 'scale_linear', kwargs: { gain: 1 / fullScale(type), offset: 0 } }];
    case 'range': {
      const gain = 1 / (spec.high - spec.low);
      return [TO_FLOAT, { id: 'scale_linear', kwargs: { gain, offset: -spec.low * gain } }, CLIP_TO_UNIT];
    }
    case 'min-max':
      return [TO_FLOAT, { id: 'scale_range', kwargs: { axes: SECTION_AXES, min_percentile: 0, max_percentile: 100 } }];
    case 'percentiles':
      return [TO_FLOAT, { id: 'scale_range', kwargs: { axes: SECTION_AXES, min_percentile: spec.low,
        max_percentile: spec.high } }, CLIP_TO_UNIT];
  }
}
