import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * The README's and the tutorial's fixed addresses (`127.0.0.1:9901` for metrics, the one
 * `kube-lc-proxy status` reads by default, and examples/echo.yaml's `127.0.0.50:8080` and
 * `127.0.0.11-15:9000`) can serve one test at a time, across test files and across checkouts
 * on the same machine. A test that binds them holds this lock: a directory in the temporary
 * folder (mkdir is atomic), owned by a pid; a lock whose owner process is gone is taken over.
 */
const LOCK = join(tmpdir(), 'kube-lc-proxy-fixed-addresses.lock');

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Waits (up to `timeoutMs`, polling every 100 ms) for the lock and resolves with its release
 * function. Throws naming the holder when the wait times out.
 */
export async function lockFixedAddresses(timeoutMs = 120_000): Promise<() => Promise<void>> {
  const deadline = Date.now() + timeoutMs;
  const token = `${process.pid} ${Date.now()} ${Math.random()}`;
  for (;;) {
    try {
      await mkdir(LOCK);
      await writeFile(join(LOCK, 'owner'), token);
      return async () => {
        const owner = await readFile(join(LOCK, 'owner'), 'utf8').catch(() => '');
        if (owner === token) await rm(LOCK, { recursive: true, force: true });
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const owner = await readFile(join(LOCK, 'owner'), 'utf8').catch(() => '');
    const pid = Number(owner.split(' ')[0]);
    if (owner !== '' && Number.isInteger(pid) && !alive(pid)) {
      await rm(LOCK, { recursive: true, force: true });
      continue;
    }
    if (Date.now() > deadline) {
      throw new Error(`the fixed test addresses stay locked by "${owner}" (${LOCK})`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}
