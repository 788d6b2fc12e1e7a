/** The admin API's snake_case shapes of users and clients. Never includes a password or secret hash. */
import type { ClientRecord } from '../data/client-repository.js';
import type { UserRecord } from '../data/user-repository.js';
import type { WebAuthnCredentialRecord } from '../data/webauthn-credential-repository.js';
import type { ClientWithSecret } from '../domain/clients.js';

export function userJson(user: UserRecord) {
  return {
    id: user.id,
    username: user.username,
    email: user.email,
    name: user.name,
    roles: user.roles,
    tenant_id: user.tenantId,
    enabled: user.enabled,
    locked_until: user.lockedUntil,
    totp_enrolled: user.totpSecret !== null,
    totp_required: user.totpRequired,
    passkey_required: user.passkeyRequired,
    demo: user.demo,
    created_at: user.createdAt,
    updated_at: user.updatedAt,
  };
}

/** A passkey: its id and use, never more than the public half (the key itself is not shown either). */
export function passkeyJson(credential: WebAuthnCredentialRecord) {
  return {
    id: credential.id,
    transports: credential.transports,
    sign_count: credential.signCount,
    created_at: credential.createdAt,
    last_used_at: credential.lastUsedAt,
  };
}

export function clientJson(client: ClientRecord) {
  return {
    ...client.metadata,
    client_id: client.clientId,
    trusted: client.trusted,
    tenant_id: client.tenantId,
    demo: client.demo,
    created_at: client.createdAt,
    updated_at: client.updatedAt,
  };
}

/** A client with its new secret, when one was just generated (the only time it is ever shown). */
export function clientWithSecretJson(result: ClientWithSecret) {
  return { ...clientJson(result.client), ...(result.clientSecret ? { client_secret: result.clientSecret } : {}) };
}

export function listJson<T, U>(
  list: { items: T[]; page: number; size: number; total: number },
  present: (item: T) => U,
) {
  return { items: list.items.map(present), page: list.page, size: list.size, total: list.total };
}
