import assert from 'node:assert/strict';
import { EmsegError, type EmsegErrorCode } from '../../src/errors.js';

/**
 * An assert.throws / assert.rejects check: the error is an EmsegError of `code` about `path` (exactly, or ending in
 * `/path` for a file inside a temporary folder), and, where one check site tells several refusals of the same code and
 * path apart, its message matches `detail`. Tests identify errors by code and path, not by message text.
 */
export function refused(code: EmsegErrorCode, path?: string, detail?: RegExp): (err: unknown) => true {
  return (err) => {
    assert.ok(err instanceof EmsegError, `expected an EmsegError '${code}', got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (path !== undefined) assert.ok(err.path === path || err.path.endsWith(`/${path}`), `path '${err.path}', expected '${path}': ${err.message}`);
    if (detail) assert.match(err.message, detail);
    return true;
  };
}
