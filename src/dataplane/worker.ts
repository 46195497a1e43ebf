/**
 * Entry of a data-path worker thread (see worker-plane.ts). Started by the main thread's
 * WorkerPool with a WorkerInit as workerData. An exception nobody catches ends this thread
 * only: the pool counts what it held and starts another in its place.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { createLogger } from '../log.js';
import type { FromWorker, ToWorker, WorkerInit } from './protocol.js';
import { WorkerPlane } from './worker-plane.js';

const port = parentPort;
if (port === null) throw new Error('the data-path worker runs in a worker thread');
const init = workerData as WorkerInit;
const logger = createLogger(init.logLevel).child({ worker: init.index });
const plane = new WorkerPlane(init, (m: FromWorker) => port.postMessage(m), logger);
port.on('message', (m: ToWorker) => plane.handle(m));
port.postMessage({ type: 'ready' } satisfies FromWorker);
