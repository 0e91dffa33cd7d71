/** Learning-rate schedules: a pure function of the step, so a resumed run continues exactly. */
export type ScheduleConfig =
  | { kind: 'constant'; lr: number; warmupSteps?: number }
  | { kind: 'step'; lr: number; stepSize: number; gamma?: number; warmupSteps?: number }
  | { kind: 'cosine'; lr: number; totalSteps: number; minLr?: number; warmupSteps?: number };

export function learningRate(s: ScheduleConfig, step: number): number {
  const warm = s.warmupSteps ?? 0;
  if (step < warm) return (s.lr * (step + 1)) / warm;
  const t = step - warm;
  switch (s.kind) {
    case 'constant':
      return s.lr;
    case 'step':
      return s.lr * (s.gamma ?? 0.1) ** Math.floor(t / s.stepSize);
    case 'cosine': {
      const span = Math.max(1, s.totalSteps - warm);
      const min = s.minLr ?? 0;
      return min + 0.5 * (s.lr - min) * (1 + Math.cos(Math.PI * Math.min(1, t / span)));
    }
  }
}
