/**
 * Types of the h2 session API, kept apart so the session file stays about behaviour. Import them
 * from session.ts, which re-exports them.
 */
import type { OpaqueReason } from './frame-rules.js';

/**
 * `detecting` until both the client preface and the server's first SETTINGS have been seen,
 * then `h2c`; `opaque` as soon as either side shows something that cannot be HTTP/2. Opaque is
 * final.
 */
export type H2Mode = 'detecting' | 'h2c' | 'opaque';

/**
 * Where `fromServer` should stop: `none` never stops, `boundary` at the first injectable frame
 * boundary, `ping-ack` right after a server PING ACK frame that ends at an injectable point.
 */
export type InjectionPoint = 'none' | 'boundary' | 'ping-ack';

/** Direction whose bytes made a session opaque. */
export type H2Side = 'client' | 'server';

/** Options of `H2Session`. */
export interface H2SessionOptions {
  /** The 8 octets of the PING this proxy sends after its GOAWAY; unique to the proxy. */
  pingPayload: Uint8Array;
  /** Open streams tracked before the session gives up and goes opaque. Default 10,000. */
  maxTrackedStreams?: number;
}

/** Plain copy of a session's state, for tests and /debug/state. Never aliased to the session. */
export interface H2SessionSnapshot {
  mode: H2Mode;
  opaqueReason: OpaqueReason | undefined;
  opaqueSide: H2Side | undefined;
  wasH2c: boolean;
  openStreams: number;
  highestClientStreamId: number;
  serverGoawaySeen: boolean;
  clientPingsSeen: number;
  ourPingAcked: boolean;
  /** Client frames removed because they were the ACK of our PING (normally 0 or 1). */
  ourPingAcksRemoved: number;
  streamsEndedNormally: number;
  streamsEndedByReset: number;
  /** Times `injected()` was called. */
  injections: number;
  /** Octets passed to `fromClient` while not opaque (held octets included). */
  clientBytes: number;
  /** Octets `fromServer` consumed while not opaque. */
  serverBytes: number;
  /** Frame headers decoded per direction (the client's counts from its SETTINGS). */
  clientFrames: number;
  serverFrames: number;
  /** A HEADERS/PUSH_PROMISE block is waiting for its CONTINUATION with END_HEADERS. */
  clientHeaderBlockOpen: boolean;
  serverHeaderBlockOpen: boolean;
  /** Client octets held back (see `fromClient`). */
  heldBytes: number;
  /** `canInjectNow()` at the time of the snapshot. */
  canInjectNow: boolean;
}
