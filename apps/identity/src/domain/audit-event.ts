/**
 * Identity's audit events (deployments.md "Audit log"): one way to record them, ids only. A failure is an
 * event with a reason code; success has none. Recording never fails the caller: the request's answer waits
 * for its records and becomes `503 audit_unavailable` if one cannot be stored (infra's audited-answer).
 */
import { basicCredentials, type AuditLog } from '@cryptoutil/infra';

export interface IdentityEvent {
  event: string;
  /** Who: a user id, a client id, or what was presented (a tried username, an unauthenticated client id). */
  actor: string | null;
  /** On whose behalf, when the actor acted for someone else (token exchange: the user). */
  subject?: string | null;
  /** What it acted on: a client id, grant id, token `jti`, grant type. */
  resource: string | null;
  /** Null for success, else a stable code (`wrong_password`, `invalid_client`, …). */
  reason: string | null;
}

export function recordEvent(
  audit: AuditLog | undefined,
  { event, actor, subject, resource, reason }: IdentityEvent,
): void {
  void audit
    ?.append({
      event,
      actor,
      ...(subject ? { subject } : {}),
      tenant: null,
      resource,
      outcome: reason ? 'failure' : 'success',
      reason,
    })
    .catch(() => undefined);
}

/** The client id a request presented, authenticated or not: HTTP Basic user, else the claimed `client_id`. */
export function presentedClientId(authorization: string | undefined, claimed: unknown): string | null {
  const presented = basicCredentials(authorization, { formEncoded: true })?.user ?? claimed;
  return typeof presented === 'string' ? presented.slice(0, 200) : null;
}
