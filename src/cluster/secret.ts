import { readFile } from 'node:fs/promises';
import { ConfigError } from '../errors.js';
import { MIN_SECRET_BYTES } from './auth.js';

/**
 * Reads the shared peer secret (`--peer-secret-file`). Trailing whitespace and newlines are
 * dropped (`echo` and editors add one; a Kubernetes Secret may or may not have one). A missing,
 * unreadable, empty or too short file is a ConfigError naming the flag and the file.
 */
export async function readPeerSecret(file: string): Promise<Buffer> {
  let raw: Buffer;
  try {
    raw = await readFile(file);
  } catch (err) {
    throw new ConfigError(
      '--peer-secret-file',
      `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
  let end = raw.length;
  while (end > 0 && [0x20, 0x09, 0x0a, 0x0d].includes(raw[end - 1] as number)) end--;
  const secret = raw.subarray(0, end);
  if (secret.length === 0) throw new ConfigError('--peer-secret-file', `${file} is empty`);
  if (secret.length < MIN_SECRET_BYTES) {
    throw new ConfigError(
      '--peer-secret-file',
      `${file} holds ${secret.length} bytes; use at least ${MIN_SECRET_BYTES} (e.g. head -c 32 /dev/urandom | base64)`,
    );
  }
  return Buffer.from(secret);
}
