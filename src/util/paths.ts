/**
 * Paths as emseg records them in metadata, never as absolute machine paths (/home/alice/..., C:\Users\...), which
 * say nothing once the files move to another machine or mount and tell every reader where someone keeps their data:
 * - in a volume's own metadata (OME-Zarr attributes): relative to the volume, like its done markers, so the record
 *   still leads to the input when the project folder moves or is mounted elsewhere (recordedPath);
 * - in a model's meta.json and in the command lines exports keep: relative to the folder the command ran in, as a
 *   user types them (typedPath). Those records are copied between folders (`emseg pack`, packages), which would
 *   break a path relative to the record.
 */
import { basename, isAbsolute, relative, resolve, sep } from 'node:path';

const posix = (p: string) => p.split(sep).join('/');

/**
 * `path` relative to the folder `dir` ('/' separators); its base name when no relative path exists (another drive, or
 * `dir` is a URL: an output in a bucket records the local files it came from by name only).
 */
export function recordedPath(path: string, dir: string): string {
  if (/^[a-z][a-z0-9+.-]+:\/\//i.test(dir)) return basename(path);
  const rel = relative(resolve(dir), resolve(path));
  if (isAbsolute(rel)) return basename(path);
  return rel === '' ? '.' : posix(rel);
}

/** `path` as typed when relative; an absolute one relative to the current folder (its base name when none exists). */
export function typedPath(path: string): string {
  if (!isAbsolute(path)) return path;
  return recordedPath(path, process.cwd());
}

/** Command-line arguments as recorded: every one that is an absolute path (alone, or after `--flag=`) as typedPath. */
export function typedArgs(args: readonly string[]): string[] {
  return args.map((a) => {
    const m = /^(--[^=]+=)(.*)$/.exec(a);
    return m ? `${m[1]}${typedPath(m[2]!)}` : typedPath(a);
  });
}

/** A command line as recorded (typedArgs joined with spaces). */
export function typedCommand(args: readonly string[]): string {
  return typedArgs(args).join(' ');
}
