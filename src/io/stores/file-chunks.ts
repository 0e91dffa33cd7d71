/** Chunk files written atomically into a local Zarr folder (the file store's writable zarrita store). */
import { rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import FileSystemStore from '@zarrita/storage/fs';
import { fromFsError } from '../errors.js';
import { makeDirs } from '../../util/mkdirs.js';
import { registerTemp, releaseTemp, sweepStaleTemps, tempPathFor } from '../../util/temp-files.js';

/**
 * A zarrita store whose writes are atomic (temporary name, then rename), so a killed writer leaves either
 * the old chunk or the new one, never half of one; readers and done markers can trust any chunk file present.
 * Temporaries carry the writer's pid (src/util/temp-files.ts): a signal removes them, and the next writer into a
 * folder sweeps the ones a SIGKILLed run left there, so a resumed output ends with no stray files.
 */
export class AtomicFileSystemStore extends FileSystemStore {
  override async set(key: `/${string}`, value: Uint8Array): Promise<void> {
    const target = join(this.root, key.slice(1));
    sweepStaleTemps(dirname(target));
    const tmp = tempPathFor(target);
    registerTemp(tmp);
    try {
      // zarrita's own recursive mkdir would report a read-only mount as ENOENT (see util/mkdirs.ts).
      await makeDirs(dirname(target));
      await super.set(`/${join(dirname(key.slice(1)), basename(tmp))}` as `/${string}`, value);
      await rename(tmp, target);
    } catch (err) {
      await rm(tmp, { force: true });
      throw fromFsError(err, target, 'writing');
    } finally {
      releaseTemp(tmp);
    }
  }
}
