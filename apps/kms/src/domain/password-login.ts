/**
 * One password check for every way a realm user signs in (HTTP Basic on the service API, the browser
 * login form). Realms are asked in the configured priority (file → database by default): the first realm
 * that knows the username decides, so the same name in a later realm is never tried. Unknown usernames
 * cost the same PBKDF2 work as known ones; repeated failures slow down, then lock the username for a while.
 * Failures are counted in the database, one statement each, so parallel guesses are all counted and every
 * instance honours the same lockout.
 */
import { timingSafeEqual } from 'node:crypto';
import { verifiedSecretCache, verifyDecoyPassword, type Queryable } from '@cryptoutil/infra';
import { clearLoginFailures, findLoginFailures, recordLoginFailure } from '../data/login-failure-repository.js';
import { findRealmUserByName, recordRealmUserLogin } from '../data/realm-user-repository.js';
import { scopesOfRoles, type Realms } from './realm.js';

export interface RealmPrincipal {
  /** `<realm id>/<user id>`. */
  subject: string;
  username: string;
  scopes: string[];
  tenants: string[];
}

export type LoginRefusalReason = 'invalid_credentials' | 'locked';

export class LoginRefused extends Error {
  constructor(readonly reason: LoginRefusalReason) {
    super(reason === 'locked' ? 'Too many failed sign-ins; try again later.' : 'Invalid username or password.');
    this.name = 'LoginRefused';
  }
}

export interface PasswordLoginOptions {
  realms: Realms;
  db: Queryable;
  lockout: { maxFailures: number; lockoutMs: number };
  now?: () => number;
  /** Delay per consecutive failure, capped at 2 s (default 200 ms). */
  failureDelayMs?: number;
}

export type PasswordLogin = (username: string, password: string) => Promise<RealmPrincipal>;

interface Candidate {
  subject: string;
  userId?: string;
  lastLoginAt?: string | null;
  username: string;
  enabled: boolean;
  passwordHash?: string | undefined;
  demoPassword?: string | undefined;
  scopes: string[];
  tenants: string[];
}

const LAST_LOGIN_RESOLUTION_MS = 60_000;

const sameText = (a: string, b: string) => {
  const left = Buffer.from(a, 'utf8');
  const right = Buffer.from(b, 'utf8');
  return left.length === right.length && timingSafeEqual(left, right);
};

/** The user that the first realm (in priority order) knows by this name. */
async function findCandidate(options: PasswordLoginOptions, username: string): Promise<Candidate | undefined> {
  for (const type of options.realms.priority) {
    if (type === 'file') {
      const user = options.realms.users.get(username);
      if (user) {
        return {
          subject: `${user.realmId}/${user.userId}`,
          username,
          enabled: true,
          passwordHash: user.passwordHash,
          demoPassword: user.demoPassword,
          scopes: user.scopes,
          tenants: user.tenants,
        };
      }
    } else if (type === 'database') {
      for (const realm of options.realms.databaseRealms.values()) {
        const user = await findRealmUserByName(options.db, realm.id, username);
        if (user) {
          return {
            subject: `${realm.id}/${user.id}`,
            userId: user.id,
            lastLoginAt: user.lastLoginAt,
            username,
            enabled: user.enabled,
            passwordHash: user.passwordHash,
            scopes: scopesOfRoles(realm, user.roles),
            tenants: user.tenants,
          };
        }
      }
    }
  }
  return undefined;
}

export function createPasswordLogin(options: PasswordLoginOptions): PasswordLogin {
  const now = options.now ?? Date.now;
  const delayMs = options.failureDelayMs ?? 200;
  const verify = verifiedSecretCache();

  return async (username, password) => {
    const state = await findLoginFailures(options.db, username);
    if (state && state.lockedUntilMs > now()) throw new LoginRefused('locked');
    const user = await findCandidate(options, username);
    const ok = !user
      ? await verifyDecoyPassword(password)
      : user.passwordHash
        ? await verify(user.passwordHash, password)
        : user.demoPassword !== undefined && sameText(user.demoPassword, password);
    if (!user || !ok || !user.enabled) {
      const { maxFailures, lockoutMs } = options.lockout;
      const count = await recordLoginFailure(options.db, username, maxFailures, now() + lockoutMs, now());
      await new Promise((done) => setTimeout(done, Math.min((count === 0 ? maxFailures : count) * delayMs, 2000)));
      throw new LoginRefused('invalid_credentials');
    }
    if (state) await clearLoginFailures(options.db, username);
    // Scripts sign in with Basic on every call: the last login is written at most once a minute.
    const last = user.lastLoginAt ? Date.parse(user.lastLoginAt) : 0;
    if (user.userId && now() - last >= LAST_LOGIN_RESOLUTION_MS) {
      await recordRealmUserLogin(options.db, user.userId, new Date(now()).toISOString());
    }
    return { subject: user.subject, username, scopes: user.scopes, tenants: user.tenants };
  };
}
