/** s3:// URLs: `s3://bucket/key/prefix`, split, joined and named as the store (s3.ts) and the output guards use them. */
import { EmsegIoError } from '../errors.js';

export const isS3Url = (path: string): boolean => /^s3:\/\//i.test(path);

export interface S3Location {
  bucket: string;
  /** The key (or key prefix) inside the bucket, without leading or trailing '/'; '' for the bucket itself. */
  key: string;
}

/** Bucket names as S3 allows them (3-63 of lowercase letters, digits, '.', '-'; compatible stores allow '_'). */
const BUCKET_NAME = /^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$/;

/** `s3://bucket/a/b/` -> { bucket, key: 'a/b' }; refuses a URL without a valid bucket name. */
export function parseS3Url(url: string): S3Location {
  const m = /^s3:\/\/([^/]*)\/?(.*)$/i.exec(url);
  const bucket = m?.[1] ?? '';
  if (!BUCKET_NAME.test(bucket)) throw new EmsegIoError('invalid-option', url, `"${bucket}" is not a bucket name (s3://bucket/prefix; 3-63 lowercase letters, digits, ".", "-")`);
  return { bucket, key: normalKey(m![2]!.split('/')) };
}

function normalKey(segments: string[]): string {
  const out: string[] = [];
  for (const s of segments) {
    if (s === '' || s === '.') continue;
    if (s === '..') out.pop();
    else out.push(s);
  }
  return out.join('/');
}

export const s3Url = (l: S3Location): string => `s3://${l.bucket}${l.key ? `/${l.key}` : ''}`;

/** `s3://b/vol.zarr` + '0', '.zarray' (parts are '/'-separated key parts; '..' goes up, never above the bucket). */
export function joinS3(url: string, ...parts: string[]): string {
  const { bucket, key } = parseS3Url(url);
  return s3Url({ bucket, key: normalKey([...key.split('/'), ...parts.flatMap((p) => p.split('/'))]) });
}

export const parentS3 = (url: string): string => joinS3(url, '..');
export const s3Name = (url: string): string => parseS3Url(url).key.split('/').at(-1) ?? '';

