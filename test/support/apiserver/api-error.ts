import { qualifiedResource, type KindSpec } from './kinds/index.js';

/**
 * A failure the API server reports with a metav1.Status body: thrown by the store and the
 * request handlers, written by the server. Messages and details follow apimachinery's
 * `k8s.io/apimachinery/pkg/api/errors` constructors word for word, since clients (kubectl)
 * print them as they are.
 */
export class ApiError extends Error {
  readonly code: number;
  readonly reason: string;
  readonly details: Record<string, unknown> | undefined;
  constructor(code: number, reason: string, message: string, details?: Record<string, unknown>) {
    super(message);
    this.code = code;
    this.reason = reason;
    this.details = details;
  }

  /** The Status object for the reply body. */
  toStatus(): Record<string, unknown> {
    return {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: this.message,
      reason: this.reason,
      ...(this.details !== undefined ? { details: this.details } : {}),
      code: this.code,
    };
  }
}

function detailsOf(spec: KindSpec, name: string): Record<string, unknown> {
  return { name, ...(spec.group !== '' ? { group: spec.group } : {}), kind: spec.resource };
}

/** 404 `services "x" not found`. */
export function notFound(spec: KindSpec, name: string): ApiError {
  return new ApiError(
    404,
    'NotFound',
    `${qualifiedResource(spec)} "${name}" not found`,
    detailsOf(spec, name),
  );
}

/** 409 `services "x" already exists`. */
export function alreadyExists(spec: KindSpec, name: string): ApiError {
  return new ApiError(
    409,
    'AlreadyExists',
    `${qualifiedResource(spec)} "${name}" already exists`,
    detailsOf(spec, name),
  );
}

/** The optimistic-lock message of the generic registry (OptimisticLockErrorMsg). */
export const OPTIMISTIC_LOCK_MESSAGE =
  'the object has been modified; please apply your changes to the latest version and try again';

/** 409 Conflict: `Operation cannot be fulfilled on leases.coordination.k8s.io "x": <why>`. */
export function conflict(spec: KindSpec, name: string, why = OPTIMISTIC_LOCK_MESSAGE): ApiError {
  return new ApiError(
    409,
    'Conflict',
    `Operation cannot be fulfilled on ${qualifiedResource(spec)} "${name}": ${why}`,
    detailsOf(spec, name),
  );
}

/**
 * 422 Invalid with one field cause: `Kind "x" is invalid: field: Invalid value: v: why`. The
 * registry names the resource instead of the kind for some checks (pass `kind`). `shownValue`
 * is the value as Go's `%#v` prints it (`"x"` for a string, `0x0` for a uint64 zero).
 */
export function invalid(
  spec: KindSpec,
  name: string,
  field: string,
  shownValue: string,
  why: string,
  type: 'FieldValueInvalid' | 'FieldValueRequired' = 'FieldValueInvalid',
  kind: string = spec.kind,
): ApiError {
  const cause =
    type === 'FieldValueRequired'
      ? `Required value: ${why}`
      : `Invalid value: ${shownValue}: ${why}`;
  const qualifiedKind = spec.group === '' ? kind : `${kind}.${spec.group}`;
  return new ApiError(422, 'Invalid', `${qualifiedKind} "${name}" is invalid: ${field}: ${cause}`, {
    ...detailsOf(spec, name),
    kind,
    causes: [{ reason: type, message: cause, field }],
  });
}

/** 400 BadRequest with a message. */
export function badRequest(message: string): ApiError {
  return new ApiError(400, 'BadRequest', message);
}
