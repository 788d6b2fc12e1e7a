/**
 * Client secrets are stored as PBKDF2 hashes (identity.md), but oidc-provider compares
 * `client_secret` itself. Its clients therefore carry the hash as `client_secret`, and the comparison
 * is replaced by a PBKDF2 verification. Only `client_secret_basic`/`_post` use it; HMAC-signed client
 * assertions (`client_secret_jwt`) are not enabled, so the hash is never used as a key.
 */
import type Provider from 'oidc-provider';
import { isPasswordHash, verifyPassword } from '@cryptoutil/infra';

export function verifyHashedClientSecrets(provider: Provider): void {
  const prototype = provider.Client.prototype as unknown as {
    clientSecret?: string;
    compareClientSecret(actual: string): Promise<boolean>;
  };
  prototype.compareClientSecret = async function compareClientSecret(this: { clientSecret?: string }, actual: string) {
    const stored = this.clientSecret;
    if (typeof stored !== 'string' || !isPasswordHash(stored)) return false;
    return verifyPassword(stored, actual);
  };
}
