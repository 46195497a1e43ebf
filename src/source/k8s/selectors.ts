/** The label that hands a Service (and, copied by the controller, its slices) to a proxy. */
export const SERVICE_PROXY_NAME_LABEL = 'service.kubernetes.io/service-proxy-name';

/** This proxy's name in that label. */
export const DEFAULT_PROXY_NAME = 'kube-lc-proxy';

/** kube-proxy's own selector: every Service no other proxy claimed, headless ones excluded. */
export const ALL_SERVICES_SELECTOR =
  '!service.kubernetes.io/service-proxy-name,!service.kubernetes.io/headless';

/**
 * The label selector for both informers (Services and EndpointSlices carry the same labels):
 * Services labelled for `proxyName`, or with `allServices` the ones kube-proxy would take.
 */
export function labelSelectorFor(opts: { allServices?: boolean; proxyName?: string }): string {
  if (opts.allServices) return ALL_SERVICES_SELECTOR;
  return `${SERVICE_PROXY_NAME_LABEL}=${opts.proxyName ?? DEFAULT_PROXY_NAME}`;
}
