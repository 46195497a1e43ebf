import * as grpc from '@grpc/grpc-js';
import type { EchoClientHandle } from '../../src/demo/echo.js';

export {
  EchoClientHandle,
  echoService,
  startGrpcBackend,
  type GrpcBackend,
} from '../../src/demo/echo.js';

/** Result of a steady RPC load. */
export interface LoadResult {
  ok: number;
  failed: number;
  errors: Map<string, number>;
  /** RPCs per backend name. */
  perBackend: Map<string, number>;
}

/**
 * Sends unary RPCs at `ratePerSec` for `durationMs` on one client (sequential schedule, RPCs may
 * overlap when `delayMs` > interval). Bounded in count and time.
 */
export async function steadyLoad(
  client: EchoClientHandle,
  ratePerSec: number,
  durationMs: number,
  delayMs = 0,
): Promise<LoadResult> {
  const result: LoadResult = { ok: 0, failed: 0, errors: new Map(), perBackend: new Map() };
  const total = Math.floor((ratePerSec * durationMs) / 1000);
  const interval = 1000 / ratePerSec;
  // A random phase per client: many clients started together would otherwise fire in lockstep.
  const start = Date.now() + Math.random() * interval;
  const inflight: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const due = start + i * interval;
    const wait = due - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    inflight.push(
      client.who(delayMs).then(
        (name) => {
          result.ok++;
          result.perBackend.set(name, (result.perBackend.get(name) ?? 0) + 1);
        },
        (err: grpc.ServiceError) => {
          result.failed++;
          const key = `${grpc.status[err.code] ?? err.code}: ${err.details ?? err.message}`;
          result.errors.set(key, (result.errors.get(key) ?? 0) + 1);
        },
      ),
    );
  }
  await Promise.all(inflight);
  return result;
}
