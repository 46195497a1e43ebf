import { readFile } from 'node:fs/promises';

/**
 * Which TCP ports something listens on in this network namespace, from /proc/net/tcp{,6}. Used
 * at start to tell a handover (the previous process still listens on the adopted ports: leave
 * them to it until this one knows its endpoints) from a stop and start (nobody listens: bind
 * at once, before anything else).
 */

/** TCP_LISTEN in the `st` column of /proc/net/tcp. */
const LISTEN = '0A';

/** The local ports of the LISTEN sockets in a /proc/net/tcp or tcp6 text. Pure; never throws. */
export function parseListeningPorts(text: string): Set<number> {
  const out = new Set<number>();
  for (const line of text.split('\n').slice(1)) {
    const cols = line.trim().split(/\s+/);
    if (cols.length < 4 || cols[3] !== LISTEN) continue;
    const local = cols[1] ?? '';
    const port = Number.parseInt(local.slice(local.lastIndexOf(':') + 1), 16);
    if (Number.isInteger(port) && port > 0 && port <= 65535) out.add(port);
  }
  return out;
}

/** The listening TCP ports of this namespace; empty when /proc cannot be read. */
export async function listeningPorts(): Promise<Set<number>> {
  const out = new Set<number>();
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    try {
      for (const p of parseListeningPorts(await readFile(file, 'utf8'))) out.add(p);
    } catch {
      // No /proc (or no IPv6): nothing known, so nothing is skipped.
    }
  }
  return out;
}
