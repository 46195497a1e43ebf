/**
 * One registry of error classes with stable codes. Codes never change meaning once released;
 * log lines and exit paths key on `code`, never on message text.
 */
export const ErrorCodes = {
  /** A CLI flag or config value is invalid. The CLI exits 2. */
  CONFIG: 'KLP_CONFIG',
  /** A manifests file could not be read or holds an invalid object. At start the CLI exits 1. */
  MANIFEST: 'KLP_MANIFEST',
  /** iptables-restore or iptables-save failed. */
  IPTABLES: 'KLP_IPTABLES',
  /** The Kubernetes API could not be reached or answered with an error. */
  KUBE_API: 'KLP_KUBE_API',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

/** Base class: every error the daemon raises on purpose carries a stable `code`. */
export class KubeLcProxyError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** A bad flag or config value. `flag` names it as the user typed it (e.g. `--drain-grace`). */
export class ConfigError extends KubeLcProxyError {
  readonly flag: string;
  constructor(flag: string, message: string) {
    super(ErrorCodes.CONFIG, `${flag}: ${message}`);
    this.flag = flag;
  }
}

/**
 * A manifests file problem. `file` is the path, `object` names the object (`Kind ns/name`, or
 * `document N` when it has no name yet), `field` is a dotted path inside it.
 */
export class ManifestError extends KubeLcProxyError {
  readonly file: string;
  readonly object: string | undefined;
  readonly field: string | undefined;
  constructor(
    file: string,
    object: string | undefined,
    field: string | undefined,
    message: string,
  ) {
    const where = [object, field].filter((s) => s !== undefined && s !== '').join(' ');
    super(ErrorCodes.MANIFEST, `${file}: ${where ? `${where}: ` : ''}${message}`);
    this.file = file;
    this.object = object;
    this.field = field;
  }
}

export class IptablesError extends KubeLcProxyError {
  constructor(message: string, options?: ErrorOptions) {
    super(ErrorCodes.IPTABLES, message, options);
  }
}

export class KubeApiError extends KubeLcProxyError {
  constructor(message: string, options?: ErrorOptions) {
    super(ErrorCodes.KUBE_API, message, options);
  }
}

/** A short, single-line description of any thrown value, for logs. */
export function describe(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    const text = code && !err.message.includes(code) ? `${code}: ${err.message}` : err.message;
    // fetch() and friends wrap the socket error that says what actually happened.
    return err.cause !== undefined && err.cause !== err ? `${text} (${describe(err.cause)})` : text;
  }
  return String(err);
}
