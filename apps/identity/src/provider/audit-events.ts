/**
 * The provider's own events into Identity's audit log: every token endpoint grant issued (with its grant
 * type) and every grant revoked (logout, revocation, refresh-token reuse). Client ids and grant ids only,
 * never tokens.
 */
import type Provider from 'oidc-provider';
import type { AuditLog } from '@cryptoutil/infra';

interface EventContext {
  oidc?: { client?: { clientId?: string }; params?: { grant_type?: unknown } };
}

export function auditProviderEvents(provider: Provider, audit: AuditLog): Provider {
  const append = (
    event: string,
    ctx: EventContext | undefined,
    outcome: 'success' | 'failure',
    reason: string | null,
    resource: string | null,
  ) =>
    void audit
      .append({ event, actor: ctx?.oidc?.client?.clientId ?? null, tenant: null, resource, outcome, reason })
      .catch(() => undefined);
  provider.on('grant.success', (ctx: EventContext) =>
    append('identity.token.issued', ctx, 'success', null, String(ctx.oidc?.params?.grant_type ?? 'unknown')),
  );
  provider.on('grant.revoked', (ctx: EventContext, grantId: string) =>
    append('identity.grant.revoked', ctx, 'success', null, grantId),
  );
  return provider;
}
