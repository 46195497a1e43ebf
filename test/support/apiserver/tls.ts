import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A PEM certificate and its private key. */
export interface KeyPair {
  readonly cert: string;
  readonly key: string;
}

const cache = new Map<string, Promise<KeyPair>>();

function run(cmd: string, args: readonly string[], cwd: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { cwd, timeout: 20_000 }, (err, _stdout, stderr) => {
      if (err) reject(new Error(`${cmd} failed: ${err.message}\n${stderr}`));
      else resolve();
    });
  });
}

/**
 * A self-signed P-256 certificate for `IP:<ip>` (valid one day), made by the `openssl` CLI
 * (spawned without a shell) in a temporary folder that is removed at once: no key is ever
 * committed. The certificate is its own CA, so it doubles as `ca.crt`. Generated once per
 * process and address, and shared.
 */
export function selfSignedCertificate(ip = '127.0.0.1'): Promise<KeyPair> {
  const hit = cache.get(ip);
  if (hit) return hit;
  const made = (async () => {
    const dir = await mkdtemp(join(tmpdir(), 'klp-apiserver-tls-'));
    try {
      await run(
        'openssl',
        [
          'req',
          '-x509',
          '-newkey',
          'ec',
          '-pkeyopt',
          'ec_paramgen_curve:prime256v1',
          '-nodes',
          '-keyout',
          'key.pem',
          '-out',
          'cert.pem',
          '-days',
          '1',
          '-subj',
          '/CN=kube-lc-proxy stand-in apiserver',
          '-addext',
          `subjectAltName=IP:${ip}`,
        ],
        dir,
      );
      const [cert, key] = await Promise.all([
        readFile(join(dir, 'cert.pem'), 'utf8'),
        readFile(join(dir, 'key.pem'), 'utf8'),
      ]);
      return { cert, key };
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  })();
  cache.set(ip, made);
  made.catch(() => cache.delete(ip));
  return made;
}
