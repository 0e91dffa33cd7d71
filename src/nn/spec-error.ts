import { EmsegError } from '../errors.js';

/** A model spec that cannot be built: names the layer (index, name, type) and the field. */
export class SpecError extends EmsegError {
  constructor(message: string, readonly source?: string) {
    super('invalid-spec', source ?? '', message);
    this.name = 'SpecError';
  }
}
