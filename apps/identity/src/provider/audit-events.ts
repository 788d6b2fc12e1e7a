/**
 * The provider's own events into Identity's audit log: every token endpoint grant issued or refused (with
 * its grant type and the OAuth error code), a refresh token presented twice, and every grant revoked
 * (logout, revocation, refresh-token reuse), and each back-channel logout delivered to a client or not. Client ids and grant ids only, never tokens or secrets.
 */
import type Provider from 'oidc-provider';
import type { AuditLog, Logger } from '@cryptoutil/infra';
import { presentedClientId, recordEvent } from '../domain/audit-event.js';

interface EventContext {
  oidc?: { client?: { clientId?: string }; params?: { grant_type?: unknown; client_id?: unknown } };
  headers?: { authorization?: string };
}

/** What oidc-provider's errors carry: the OAuth code, and its own words for what went wrong. */
interface OAuthError {
  error?: string;
  error_detail?: string;
}

/** The client that asked, authenticated or not (a refused client is named by the id it presented). */
function requestingClient(ctx: EventContext | undefined): string | null {
  return ctx?.oidc?.client?.clientId ?? presentedClientId(ctx?.headers?.authorization, ctx?.oidc?.params?.client_id);
}

export function auditProviderEvents(provider: Provider, audit: AuditLog, logger?: Logger): Provider {
  const append = (event: string, ctx: EventContext | undefined, reason: string | null, resource: string | null) =>
    recordEvent(audit, { event, actor: requestingClient(ctx), resource, reason });
  provider.on('grant.success', (ctx: EventContext) => append('identity.token.issued', ctx, null, grantType(ctx)));
  provider.on('grant.error', (ctx: EventContext, error: OAuthError) => {
    // A rotated refresh token presented again: oidc-provider revokes the whole grant (grant.revoked below).
    const reused = error.error_detail === 'refresh token already used';
    append(
      reused ? 'identity.token.reuse_detected' : 'identity.token.refused',
      ctx,
      error.error ?? 'invalid_request',
      grantType(ctx),
    );
  });
  provider.on('revocation.error', (ctx: EventContext, error: OAuthError) =>
    append('identity.token.revocation_refused', ctx, error.error ?? 'invalid_request', null),
  );
  provider.on('grant.revoked', (ctx: EventContext, grantId: string) =>
    append('identity.grant.revoked', ctx, null, grantId),
  );
  // Back-channel logout to a client (its logout token delivered, or not: the client's session may live on).
  const backchannel = (client: { clientId?: string } | undefined, reason: string | null) =>
    recordEvent(audit, {
      event: 'identity.logout.backchannel',
      actor: null,
      resource: client?.clientId ?? null,
      reason,
    });
  provider.on('backchannel.success', (_ctx: EventContext, client: { clientId?: string }) => backchannel(client, null));
  provider.on('backchannel.error', (_ctx: EventContext, error: unknown, client: { clientId?: string }) => {
    backchannel(client, 'delivery_failed');
    logger?.warn('back-channel logout not delivered', {
      client_id: client?.clientId,
      error: error instanceof Error ? error.message : String(error),
    });
  });
  return provider;
}

function grantType(ctx: EventContext | undefined): string {
  const type = ctx?.oidc?.params?.grant_type;
  return typeof type === 'string' ? type.slice(0, 100) : 'unknown';
}
