/**
 * Refresh-token reuse grace window (identity.md "Refresh rotation without races"). With a window of 0
 * (the default) the refresh_token grant is oidc-provider's own: one of any number of concurrent requests
 * rotates, every reuse revokes the grant. With a window, the first request to claim the rotation (a
 * compare-and-set on a row, so it holds across instances on one database) rotates; a request presenting
 * the same token within the window waits for that rotation and gets the SAME successor (and a fresh access
 * token) instead of revoking the grant. After the window a reuse revokes as before. The successor is held
 * only sealed under the at-rest key, and erased when the window ends.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { CanBePromise, KoaContextWithOIDC } from 'oidc-provider';
import type { Database } from '@cryptoutil/infra';
import { decryptJwe, encryptJwe, type JWK } from '@cryptoutil/jose-authority';
import {
  claimRefreshRotation,
  deleteEndedRefreshRotations,
  findRefreshRotation,
  recordRefreshSuccessor,
  releaseRefreshRotation,
} from '../data/refresh-rotation-repository.js';
import { storedOidcId } from '../data/oidc-adapter.js';

export interface RefreshGraceOptions {
  db: Database;
  /** The window in seconds; 0 leaves the grant as it is. */
  graceSeconds: number;
  /** Seals successors at rest (`atRestKey(..., 'refresh-successors')`). */
  key: JWK & { kid: string };
  now?: () => number;
}

type GrantHandler<C> = (ctx: C) => CanBePromise<void>;

const SEAL = { alg: 'dir', enc: 'A256GCM' } as const;
/** How long a request waits for a rotation under way before treating its token as reused. */
const MAX_WAIT_MS = 5_000;
const POLL_MS = 15;

/** Requests answered with an existing successor: the provider must not rotate it again. */
const replays = new WeakSet<object>();

/** oidc-provider's `rotateRefreshToken`: always, except for a request answered with an existing successor. */
export function rotatesRefreshToken(ctx: KoaContextWithOIDC): boolean {
  return !replays.has(ctx);
}

async function seal(key: RefreshGraceOptions['key'], tokenId: string, successor: string): Promise<string> {
  return encryptJwe(new TextEncoder().encode(successor), key, { ...SEAL, kid: key.kid, context: tokenId });
}

async function open(key: RefreshGraceOptions['key'], tokenId: string, sealed: string): Promise<string> {
  const { plaintext } = await decryptJwe(sealed, key, { ...SEAL, context: tokenId });
  return new TextDecoder().decode(plaintext);
}

type Waited = { successor: string } | { released: true } | undefined;

/** Waits for the rotation another request claimed: its successor, its release, or nothing (window over). */
async function awaitSuccessor(options: RefreshGraceOptions, tokenId: string): Promise<Waited> {
  const now = options.now ?? Date.now;
  const giveUpAt = now() + MAX_WAIT_MS;
  for (;;) {
    const rotation = await findRefreshRotation(options.db, tokenId);
    if (!rotation) return { released: true };
    if (rotation.expiresAt <= now()) {
      // Whoever finds a window over erases it (also done on a timer and by the maintenance sweep).
      await deleteEndedRefreshRotations(options.db, now());
      return undefined;
    }
    if (now() >= giveUpAt) return undefined;
    if (rotation.successor) return { successor: await open(options.key, tokenId, rotation.successor) };
    await sleep(POLL_MS);
  }
}

/** Wraps oidc-provider's refresh_token grant handler with the grace window. */
export function refreshGrace<C extends KoaContextWithOIDC>(
  options: RefreshGraceOptions,
  rotate: GrantHandler<C>,
): GrantHandler<C> {
  const windowMs = options.graceSeconds * 1000;
  if (windowMs === 0) return rotate;
  const now = options.now ?? Date.now;
  const { db } = options;
  return async (ctx) => {
    const params = ctx.oidc.params as { refresh_token?: unknown };
    const presented = params.refresh_token;
    if (typeof presented !== 'string' || presented === '') return rotate(ctx);
    const tokenId = storedOidcId('RefreshToken', presented);
    // A released claim (its request failed before rotating) lets the waiters claim again; a few times at most.
    for (let attempt = 0; attempt < 3; attempt += 1) {
      const windowEndsAt = now() + windowMs;
      if (await claimRefreshRotation(db, tokenId, now(), windowEndsAt)) {
        try {
          await rotate(ctx);
        } catch (error) {
          await releaseRefreshRotation(db, tokenId);
          throw error;
        }
        const successor = (ctx.body as { refresh_token?: unknown } | undefined)?.refresh_token;
        if (typeof successor === 'string' && successor !== presented) {
          await recordRefreshSuccessor(db, tokenId, await seal(options.key, tokenId, successor));
          // Erase it when the window ends (the maintenance sweep does it too, should this process stop).
          const erase = () => void deleteEndedRefreshRotations(db, now()).catch(() => undefined);
          setTimeout(erase, Math.max(0, windowEndsAt - now()) + 1).unref();
        }
        return;
      }
      const waited = await awaitSuccessor(options, tokenId);
      if (waited && 'successor' in waited) {
        params.refresh_token = waited.successor;
        replays.add(ctx);
        return rotate(ctx);
      }
      if (!waited) break;
    }
    // Not rotating now and no successor to hand out: the grant's own rules (a reuse revokes it).
    return rotate(ctx);
  };
}
