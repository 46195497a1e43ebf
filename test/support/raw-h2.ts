import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { CLIENT_PREFACE, Flag, FrameType, writeFrameHeader } from '../../src/h2/frame.js';

/**
 * Minimal raw HTTP/2 peers for byte-level tests: they write frames exactly as told and record
 * every frame they receive, so a test can see what the proxy put on the wire. Header block
 * payloads are opaque bytes (the proxy never reads them).
 */

export interface Frame {
  readonly type: number;
  readonly flags: number;
  readonly streamId: number;
  readonly payload: Buffer;
}

export function frame(
  type: number,
  flags: number,
  streamId: number,
  payload: Buffer = Buffer.alloc(0),
): Buffer {
  const b = Buffer.alloc(9 + payload.length);
  writeFrameHeader(b, 0, payload.length, type, flags, streamId);
  payload.copy(b, 9);
  return b;
}

export const settings = (): Buffer => frame(FrameType.SETTINGS, 0, 0);
export const settingsAck = (): Buffer => frame(FrameType.SETTINGS, Flag.ACK, 0);
export const headers = (id: number, flags: number, size = 16): Buffer =>
  frame(FrameType.HEADERS, flags, id, Buffer.alloc(size, 0x82));
export const continuation = (id: number, flags: number, size = 16): Buffer =>
  frame(FrameType.CONTINUATION, flags, id, Buffer.alloc(size, 0x84));
export const data = (id: number, flags: number, size = 32): Buffer =>
  frame(FrameType.DATA, flags, id, Buffer.alloc(size, 0x61));
export const ping = (payload: Buffer, ack = false): Buffer =>
  frame(FrameType.PING, ack ? Flag.ACK : 0, 0, payload);
export function goaway(lastStreamId: number, code = 0): Buffer {
  const p = Buffer.alloc(8);
  p.writeUInt32BE(lastStreamId, 0);
  p.writeUInt32BE(code, 4);
  return frame(FrameType.GOAWAY, 0, 0, p);
}

/** Splits a byte stream into frames (after an optional client preface). */
export class FrameRecorder {
  readonly frames: Frame[] = [];
  #buf = Buffer.alloc(0);
  #skipPreface: boolean;
  constructor(skipPreface: boolean) {
    this.#skipPreface = skipPreface;
  }
  push(chunk: Buffer): void {
    this.#buf = Buffer.concat([this.#buf, chunk]);
    if (this.#skipPreface) {
      if (this.#buf.length < CLIENT_PREFACE.length) return;
      this.#buf = this.#buf.subarray(CLIENT_PREFACE.length);
      this.#skipPreface = false;
    }
    while (this.#buf.length >= 9) {
      const len = this.#buf.readUIntBE(0, 3);
      if (this.#buf.length < 9 + len) return;
      this.frames.push({
        type: this.#buf[3] as number,
        flags: this.#buf[4] as number,
        streamId: this.#buf.readUInt32BE(5) & 0x7fffffff,
        payload: Buffer.from(this.#buf.subarray(9, 9 + len)),
      });
      this.#buf = this.#buf.subarray(9 + len);
    }
  }
  types(): string[] {
    const names = Object.fromEntries(Object.entries(FrameType).map(([k, v]) => [v, k]));
    return this.frames.map((f) => names[f.type] ?? `type${f.type}`);
  }
}

/** A raw client: sends the preface and SETTINGS, records what it receives. */
export interface RawClient {
  readonly socket: Socket;
  readonly received: FrameRecorder;
  send(...frames: Buffer[]): void;
  waitFor(what: string, check: (r: FrameRecorder) => boolean, timeoutMs?: number): Promise<void>;
}

export async function rawClient(host: string, port: number): Promise<RawClient> {
  const socket = connect({ host, port });
  await once(socket, 'connect');
  const received = new FrameRecorder(false);
  socket.on('data', (d: Buffer) => received.push(d));
  socket.on('error', () => {});
  socket.write(Buffer.concat([CLIENT_PREFACE, settings()]));
  return {
    socket,
    received,
    send: (...frames) => void socket.write(Buffer.concat(frames)),
    waitFor: (what, check, timeoutMs = 5000) => poll(what, () => check(received), timeoutMs),
  };
}

/** A raw server: sends SETTINGS on accept, records what it receives, and lets the test reply. */
export interface RawServer {
  readonly server: Server;
  /** One recorder and socket per accepted connection, in order. */
  readonly conns: { socket: Socket; received: FrameRecorder }[];
  close(): Promise<void>;
}

export async function rawServer(
  host: string,
  port: number,
  onFrame?: (f: Frame, socket: Socket) => void,
  /** Send SETTINGS on accept (default), or only once the client has sent something. */
  settingsOnAccept = true,
): Promise<RawServer> {
  const conns: RawServer['conns'] = [];
  const server = createServer((socket) => {
    const received = new FrameRecorder(true);
    conns.push({ socket, received });
    socket.on('error', () => {});
    let settingsSent = settingsOnAccept;
    if (settingsOnAccept) socket.write(settings());
    socket.on('data', (d: Buffer) => {
      if (!settingsSent) {
        settingsSent = true;
        socket.write(settings());
      }
      const before = received.frames.length;
      received.push(d);
      for (const f of received.frames.slice(before)) onFrame?.(f, socket);
    });
  });
  server.listen({ host, port });
  await once(server, 'listening');
  return {
    server,
    conns,
    close: async () => {
      for (const c of conns) c.socket.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

async function poll(what: string, check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
