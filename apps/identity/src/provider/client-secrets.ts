/**
 * Client secrets are stored as PBKDF2 hashes (identity.md), but oidc-provider compares
 * `client_secret` itself. Its clients therefore carry the hash as `client_secret`, and the comparison
 * is replaced by a PBKDF2 verification. Only `client_secret_basic`/`_post` use it; HMAC-signed client
 * assertions (`client_secret_jwt`) are not enabled, so the hash is never used as a key.
 */
import type Provider from 'oidc-provider';
import { isPasswordHash, verifiedSecretCache } from '@cryptoutil/infra';

/**
 * Client secrets are presented on every token and introspection call: a verified one is remembered
 * for a few minutes so a resource server's frequent introspections do not each cost a full PBKDF2.
 */
export const verifyClientSecret = verifiedSecretCache();

export function verifyHashedClientSecrets(provider: Provider): void {
  const prototype = provider.Client.prototype as unknown as {
    clientSecret?: string;
    compareClientSecret(actual: string): Promise<boolean>;
  };
  prototype.compareClientSecret = async function compareClientSecret(this: { clientSecret?: string }, actual: string) {
    const stored = this.clientSecret;
    if (typeof stored !== 'string' || !isPasswordHash(stored)) return false;
    return verifyClientSecret(stored, actual);
  };
}
