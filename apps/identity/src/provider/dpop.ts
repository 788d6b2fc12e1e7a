/**
 * DPoP at Identity (RFC 9449, identity.md "Beyond the anchors"): oidc-provider's `features.dPoP`, on for
 * every client; public clients must use it (`dpop_bound_access_tokens` defaults to true for them, see
 * client-metadata.ts, and the provider binds their refresh tokens to the proof key). Server nonces
 * (RFC 9449 §8) come from a secret every instance derives alike: `secrets.dpop_nonce_key` when set, else
 * the at-rest key through HKDF with its own label, so no new secret is needed and nonces from one
 * instance hold on another. Used proof `jti`s go through the persistent ReplayDetection model.
 */
import { hkdfSync } from 'node:crypto';
import type { Configuration } from 'oidc-provider';
import { DEFAULT_DPOP_ALGORITHMS } from '@cryptoutil/jose-authority';
import type { IdentityConfig } from '../config.js';

type DpopFeature = NonNullable<NonNullable<Configuration['features']>['dPoP']>;
type DpopAlgorithm = NonNullable<NonNullable<Configuration['enabledJWA']>['dPoPSigningAlgValues']>[number];

/** Proof algorithms accepted (and advertised as `dpop_signing_alg_values_supported`): the KMS's list. */
export const DPOP_SIGNING_ALGORITHMS = DEFAULT_DPOP_ALGORITHMS as readonly DpopAlgorithm[];

/** The 32-byte secret nonces are derived from (the same on every instance with the same secrets). */
export function dpopNonceSecret(secrets: IdentityConfig['secrets']): Buffer {
  const input = secrets.dpop_nonce_key ?? secrets.signing_key_encryption;
  return Buffer.from(hkdfSync('sha256', Buffer.from(input, 'utf8'), 'cryptoutil/identity', 'dpop-nonce', 32));
}

export function dpopFeature(config: IdentityConfig): DpopFeature {
  return {
    enabled: true,
    nonceSecret: dpopNonceSecret(config.secrets),
    requireNonce: () => config.dpop.require_nonce,
    allowReplay: false,
  };
}
