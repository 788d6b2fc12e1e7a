/**
 * Seals a credential the database must hold but not reveal (a device code the provider needs back, see
 * data/oidc-adapter.ts): a JWE (`dir`, A256GCM) under an at-rest key derived from the secret file, bound
 * to its purpose, so a copy of the database alone yields nothing usable.
 */
import { decryptJwe, encryptJwe } from '@cryptoutil/jose-authority';
import type { CredentialSealer } from '../data/oidc-adapter.js';
import type { AtRestKey } from './signing-keys.js';

const SEAL = { alg: 'dir', enc: 'A256GCM', context: 'identity/credential' } as const;

export function credentialSealer(key: AtRestKey): CredentialSealer {
  return {
    seal: (value) => encryptJwe(new TextEncoder().encode(value), key, { ...SEAL, kid: key.kid }),
    open: async (sealed) => new TextDecoder().decode((await decryptJwe(sealed, key, SEAL)).plaintext),
  };
}
