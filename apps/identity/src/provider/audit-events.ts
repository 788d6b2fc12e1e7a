/**
 * The provider's own events into Identity's audit log: every token endpoint grant issued or refused (with
 * its grant type and the OAuth error code), a refresh token presented twice, and every grant revoked
 * (logout, revocation, refresh-token reuse), each token exchange (the client as actor, the user as subject), and
 * each back-channel logout delivered to a client or not. Client ids and grant ids only, never tokens or secrets.
 */
import type Provider from 'oidc-provider';
import type { AuditLog, Logger } from '@cryptoutil/infra';
import { presentedClientId, recordEvent } from '../domain/audit-event.js';
import { USER_CODE_REFUSED } from './device-flow.js';
import { TOKEN_EXCHANGE_GRANT } from './token-exchange.js';

interface EventContext {
  oidc?: {
    client?: { clientId?: string };
    params?: { grant_type?: unknown; client_id?: unknown };
    route?: string;
    session?: { accountId?: string };
    deviceCode?: { clientId?: string };
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

export function auditProviderEvents(provider: Provider, audit: AuditLog, logger?: Logger): Provider {
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
    // A device still waiting for its person polls every few seconds: that is no refusal worth a record.
    if (error.error === 'authorization_pending') return;
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
  auditDeviceFlow(provider, audit);
  return provider;
}

/** Maps the provider's names for a refused user code to the audit reason. */
const USER_CODE_REASONS: Record<string, string> = {
  NoCodeError: 'no_code',
  NotFoundError: 'unknown_code',
  ExpiredError: 'expired_code',
  AlreadyUsedError: 'used_code',
};

/**
 * Device authorization (RFC 8628): a device asked (the client), a person approved it (after signing in)
 * or denied it, or a user code was refused. Never the device code or the user code.
 */
function auditDeviceFlow(provider: Provider, audit: AuditLog): void {
  const deviceClient = (ctx: EventContext) => ctx.oidc?.client?.clientId ?? ctx.oidc?.deviceCode?.clientId ?? null;
  provider.on('device_authorization.success', (ctx: EventContext) =>
    recordEvent(audit, {
      event: 'identity.device.requested',
      actor: requestingClient(ctx),
      resource: null,
      reason: null,
    }),
  );
  provider.on('authorization.success', (ctx: EventContext) => {
    if (ctx.oidc?.route !== 'device_resume' && ctx.oidc?.route !== 'code_verification') return;
    recordEvent(audit, {
      event: 'identity.device.approved',
      actor: ctx.oidc.session?.accountId ?? null,
      resource: deviceClient(ctx),
      reason: null,
    });
  });
  // Our own event (see device-flow.ts): the provider's typings know only its own.
  (provider as unknown as NodeJS.EventEmitter).on(USER_CODE_REFUSED, (ctx: EventContext, reason: string) => {
    const denied = reason === 'AbortedError';
    recordEvent(audit, {
      event: denied ? 'identity.device.denied' : 'identity.device.user_code_refused',
      actor: ctx.oidc?.session?.accountId ?? null,
      resource: deviceClient(ctx),
      reason: denied ? 'access_denied' : (USER_CODE_REASONS[reason] ?? reason.slice(0, 100)),
    });
  });
}

function grantType(ctx: EventContext | undefined): string {
  const type = ctx?.oidc?.params?.grant_type;
  return typeof type === 'string' ? type.slice(0, 100) : 'unknown';
}
