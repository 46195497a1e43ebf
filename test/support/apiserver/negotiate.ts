/**
 * What representation a request asked for in its Accept header. kubectl asks for server-side
 * printing with `application/json;as=Table;v=v1;g=meta.k8s.io` first (then v1beta1, then plain
 * JSON), and for aggregated discovery with
 * `application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList`. Parameter order does
 * not matter; the first acceptable entry wins, as in apiserver content negotiation.
 */
export type Representation = 'object' | 'table' | 'discovery-v2';

interface MediaRange {
  readonly type: string;
  readonly params: ReadonlyMap<string, string>;
}

function parseAccept(accept: string | undefined): MediaRange[] {
  if (!accept) return [];
  return accept.split(',').map((part) => {
    const [type = '', ...rest] = part.split(';').map((s) => s.trim());
    const params = new Map<string, string>();
    for (const p of rest) {
      const i = p.indexOf('=');
      if (i > 0) params.set(p.slice(0, i).trim(), p.slice(i + 1).trim());
    }
    return { type: type.toLowerCase(), params };
  });
}

/** The first representation in `accept` this server can produce for `allowed`, else 'object'. */
export function negotiate(
  accept: string | undefined,
  allowed: readonly Representation[],
): Representation {
  for (const m of parseAccept(accept)) {
    if (m.type !== 'application/json' && m.type !== '*/*' && m.type !== 'application/*') continue;
    const as = m.params.get('as');
    if (as === undefined) return 'object';
    const g = m.params.get('g');
    const v = m.params.get('v');
    if (as === 'Table' && g === 'meta.k8s.io' && v === 'v1' && allowed.includes('table')) {
      return 'table';
    }
    if (
      as === 'APIGroupDiscoveryList' &&
      g === 'apidiscovery.k8s.io' &&
      v === 'v2' &&
      allowed.includes('discovery-v2')
    ) {
      return 'discovery-v2';
    }
  }
  return 'object';
}

/** The Content-Type of a reply in `r`. */
export function contentTypeOf(r: Representation): string {
  if (r === 'table') return 'application/json;as=Table;v=v1;g=meta.k8s.io';
  if (r === 'discovery-v2')
    return 'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList';
  return 'application/json';
}
