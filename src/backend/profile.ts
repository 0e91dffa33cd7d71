import type { Profile } from '../util/profile.js';
import type { Backend } from './backend.js';

/** Step names of backend ops in a profile: `op:conv2d`, `op:concat`, ... */
export const OP_PREFIX = 'op:';

/**
 * The backend with every op timed into `profile` (tfjs's profile(), as a wrapper): the kernels run as they are, so
 * the profiled run computes the same values. Ops are synchronous on both backends, so wall time is the op's time.
 */
export function profiledBackend(backend: Backend, profile: Profile): Backend {
  return new Proxy(backend, {
    get(target, key, receiver) {
      const value = Reflect.get(target, key, receiver);
      if (typeof value !== 'function' || typeof key !== 'string') return value;
      return (...args: unknown[]) => profile.time(`${OP_PREFIX}${key}`, () => value.apply(target, args));
    },
  });
}

/** The backend, timed into `profile` when there is one. */
export function profiled(backend: Backend, profile: Profile | undefined): Backend {
  return profile ? profiledBackend(backend, profile) : backend;
}
