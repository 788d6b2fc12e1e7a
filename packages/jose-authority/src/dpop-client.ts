/**
 * The client side of DPoP (RFC 9449 §4): a proof for one request, signed by the client's own key pair,
 * for servers of ours that call others (the demo relying party) and for tests.
 */
import { randomUUID } from 'node:crypto';
import { SignJWT, exportJWK, type CryptoKey } from 'jose';
import { accessTokenHash, normaliseHtu } from './dpop-proof.js';

export interface DpopKeyPair {
  privateKey: CryptoKey;
  publicKey: CryptoKey;
}

export interface DpopProofClaims {
  /** The request method. */
  htm: string;
  /** The request URL; query and fragment are left out. */
  htu: string;
  /** The access token the request carries (`ath`). */
  accessToken?: string;
  /** The server's last `DPoP-Nonce`. */
  nonce?: string;
}

/** A `DPoP` header value: ES256 with the pair's public key in the header, a fresh `jti`, `iat` now. */
export async function createDpopProof(keys: DpopKeyPair, claims: DpopProofClaims): Promise<string> {
  const { kty, crv, x, y } = await exportJWK(keys.publicKey);
  return new SignJWT({
    jti: randomUUID(),
    htm: claims.htm,
    htu: normaliseHtu(claims.htu) ?? claims.htu,
    iat: Math.floor(Date.now() / 1000),
    ...(claims.accessToken === undefined ? {} : { ath: accessTokenHash(claims.accessToken) }),
    ...(claims.nonce === undefined ? {} : { nonce: claims.nonce }),
  })
    .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: { kty, crv, x, y } })
    .sign(keys.privateKey);
}
