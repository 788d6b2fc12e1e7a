/**
 * The provider's own events into Identity's audit log: every token endpoint grant issued or refused (with
 * its grant type and the OAuth error code), a refresh token presented twice, and every grant revoked
 * (logout, revocation, refresh-token reuse), and each token exchange (the client as actor, the user as subject).
 * Client ids and grant ids only, never tokens or secrets.
 */
import type Provider from 'oidc-provider';
import type { AuditLog } from '@cryptoutil/infra';
import { presentedClientId, recordEvent } from '../domain/audit-event.js';
import { TOKEN_EXCHANGE_GRANT } from './token-exchange.js';

interface EventContext {
  oidc?: {
    client?: { clientId?: string };
    params?: { grant_type?: unknown; client_id?: unknown };
    entities?: { AccessToken?: { accountId?: unknown; aud?: unknown } };
  };
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

export function auditProviderEvents(provider: Provider, audit: AuditLog): Provider {
  const append = (event: string, ctx: EventContext | undefined, reason: string | null, resource: string | null) =>
    recordEvent(audit, { event, actor: requestingClient(ctx), resource, reason });
  provider.on('grant.success', (ctx: EventContext) => {
    append('identity.token.issued', ctx, null, grantType(ctx));
    // RFC 8693: the client (actor) now holds a token for the user (subject) at the audience (resource).
    if (grantType(ctx) === TOKEN_EXCHANGE_GRANT) {
      const token = ctx.oidc?.entities?.AccessToken;
      recordEvent(audit, {
        event: 'identity.token.exchanged',
        actor: requestingClient(ctx),
        subject: typeof token?.accountId === 'string' ? token.accountId : null,
        resource: typeof token?.aud === 'string' ? token.aud : null,
        reason: null,
      });
    }
  });
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
  return provider;
}

function grantType(ctx: EventContext | undefined): string {
  const type = ctx?.oidc?.params?.grant_type;
  return typeof type === 'string' ? type.slice(0, 100) : 'unknown';
}
