import { describe } from '../errors.js';
import { syncFirewall, syncServiceRules, type IptablesOptions } from './apply.js';
import type { FirewallRange } from './firewall.js';
import { Syncer, type SyncReport } from '../lib/coalescing-runner.js';
import type { Logger } from '../log.js';
import type { Proxier } from '../proxy/proxier.js';

/** Counters of the iptables sync, read by the metrics at scrape time. */
export interface IptablesSyncStats {
  syncs: number;
  failures: number;
  /** REDIRECT rules in the chain after the last successful sync. */
  rules: number;
  /** Rules left out at the last sync (IPv6 ClusterIPs, duplicates), by reason. */
  readonly skipped: Map<string, number>;
}

/**
 * Keeps the KUBE-LC-SERVICES chain equal to the bound listeners: every change of listeners asks
 * for a sync, syncs are coalesced (`minIntervalMs`) and retried with backoff by the Syncer, and a
 * periodic sync repairs rules someone else removed.
 */
export class IptablesSync {
  readonly stats: IptablesSyncStats = { syncs: 0, failures: 0, rules: 0, skipped: new Map() };
  readonly #syncer: Syncer;
  readonly #log: Logger;
  readonly #loggedSkips = new Set<string>();
  #okSyncs = 0;

  constructor(opts: {
    proxier: Proxier;
    logger: Logger;
    iptables?: Partial<IptablesOptions>;
    minIntervalMs: number;
    /** The listener port range the firewall chain covers (see iptables/firewall.ts). */
    portRange: FirewallRange;
    /** Periodic resync. Default 60 s. */
    resyncIntervalMs?: number;
    onSync?: (report: SyncReport) => void;
  }) {
    this.#log = opts.logger.child({ component: 'iptables' });
    const ipt: IptablesOptions = { logger: this.#log, ...opts.iptables };
    this.#syncer = new Syncer({
      minIntervalMs: opts.minIntervalMs,
      maxIntervalMs: opts.resyncIntervalMs ?? 60_000,
      sync: async () => {
        // Firewall first: a port is never redirected to before it is closed to the outside.
        await syncFirewall(ipt, opts.portRange, opts.proxier.listenerPorts());
        const result = await syncServiceRules(ipt, opts.proxier.bindings());
        this.stats.skipped.clear();
        for (const s of result.skipped) {
          this.stats.skipped.set(s.reason, (this.stats.skipped.get(s.reason) ?? 0) + 1);
          const key = `${s.rule.servicePort} ${s.reason}`;
          if (!this.#loggedSkips.has(key)) {
            this.#loggedSkips.add(key);
            this.#log.warn(
              { servicePort: s.rule.servicePort, clusterIP: s.rule.clusterIP, reason: s.reason },
              'service port not redirected',
            );
          }
        }
        return result.rules;
      },
      onSync: (r) => {
        this.stats.syncs++;
        if (r.ok) {
          this.#okSyncs++;
          this.stats.rules = r.rules;
          this.#log.info(
            { rules: r.rules, seconds: Math.round(r.durationSeconds * 1000) / 1000 },
            'iptables synced',
          );
        } else {
          this.stats.failures++;
          this.#log.error(
            { err: describe(r.error), failuresInARow: this.#syncer.failures },
            'iptables sync failed; will retry',
          );
        }
        opts.onSync?.(r);
      },
    });
  }

  /** True once a sync has succeeded: the rules match the listeners bound by then. */
  get synced(): boolean {
    return this.#okSyncs > 0;
  }

  requestSync(): void {
    this.#syncer.requestSync();
  }

  stop(): Promise<void> {
    return this.#syncer.stop();
  }
}
