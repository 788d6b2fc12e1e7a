/**
 * Browser sessions (kms.md "browser API"): created by a password login, stored in the database so every
 * instance sees them, ended by logout, idle expiry or absolute expiry. The cookie value is
 * `<UUIDv7 id>.<random secret>`; only a SHA-256 of the secret is stored, so a database reader cannot
 * act as a user. The CSRF token is an HMAC of the secret: every instance can check it without storing
 * it, and it cannot be computed without the HttpOnly cookie.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { uuidv7, type Queryable } from '@cryptoutil/infra';
import {
  deleteExpiredSessions,
  deleteSession,
  deleteSessionsOf,
  deleteSessionsOfIdentitySession,
  deleteIdentitySessionsOf,
  findSession,
  insertSession,
  touchSession,
  type SessionRecord,
} from '../data/session-repository.js';
import type { RealmPrincipal } from './password-login.js';

export interface SessionPolicy {
  idleTimeoutMs: number;
  absoluteTimeoutMs: number;
}

export interface ActiveSession {
  id: string;
  principal: RealmPrincipal;
  csrfToken: string;
  createdAt: string;
  expiresAt: string;
}

/** Activity is written at most this often, so reading keys does not write the database on every call. */
const TOUCH_RESOLUTION_MS = 60_000;
const COOKIE_VALUE = /^([0-9a-f-]{36})\.([A-Za-z0-9_-]{43})$/;

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
const csrfTokenOf = (secret: string) => createHmac('sha256', secret).update('kms csrf token').digest('base64url');

function sameText(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

const activeSession = (record: SessionRecord, secret: string): ActiveSession => ({
  id: record.id,
  principal: { subject: record.subject, username: record.username, scopes: record.scopes, tenants: record.tenants },
  csrfToken: csrfTokenOf(secret),
  createdAt: record.createdAt,
  expiresAt: record.expiresAt,
});

export class SessionStore {
  constructor(
    private readonly db: Queryable,
    private readonly policy: SessionPolicy,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /**
   * A new session for a signed-in user; the returned cookie value is the only copy of its secret.
   * `identitySid`: Identity's session id, when the user signed in there.
   */
  async create(
    principal: RealmPrincipal,
    options: { identitySid?: string } = {},
  ): Promise<{ cookieValue: string; session: ActiveSession }> {
    const secret = randomBytes(32).toString('base64url');
    const at = this.now();
    const record: SessionRecord = {
      id: uuidv7(),
      secretHash: sha256(secret),
      subject: principal.subject,
      username: principal.username,
      scopes: principal.scopes,
      tenants: principal.tenants,
      createdAt: at.toISOString(),
      lastSeenAt: at.toISOString(),
      expiresAt: new Date(at.getTime() + this.policy.absoluteTimeoutMs).toISOString(),
      identitySid: options.identitySid ?? null,
    };
    await insertSession(this.db, record);
    return { cookieValue: `${record.id}.${secret}`, session: activeSession(record, secret) };
  }

  /** The live session of a cookie value, or undefined (malformed, unknown, wrong secret, expired). */
  async resolve(cookieValue: string | undefined): Promise<ActiveSession | undefined> {
    const match = COOKIE_VALUE.exec(cookieValue ?? '');
    if (!match) return undefined;
    const [, id, secret] = match as unknown as [string, string, string];
    const record = await findSession(this.db, id);
    if (!record || !sameText(record.secretHash, sha256(secret))) return undefined;
    const now = this.now().getTime();
    const lastSeen = Date.parse(record.lastSeenAt);
    if (now >= Date.parse(record.expiresAt) || now - lastSeen >= this.policy.idleTimeoutMs) {
      await deleteSession(this.db, record.id);
      return undefined;
    }
    if (now - lastSeen >= TOUCH_RESOLUTION_MS) await touchSession(this.db, record.id, new Date(now).toISOString());
    return activeSession(record, secret);
  }

  /** Whether a presented CSRF token belongs to this cookie value's session. */
  static csrfTokenMatches(cookieValue: string, presented: string | undefined): boolean {
    const secret = COOKIE_VALUE.exec(cookieValue)?.[2];
    return secret !== undefined && presented !== undefined && sameText(csrfTokenOf(secret), presented);
  }

  async destroy(id: string): Promise<void> {
    await deleteSession(this.db, id);
  }

  /** Ends every session of a user (password, roles or tenants changed, user disabled or deleted). */
  async destroyAllOf(subject: string): Promise<number> {
    return deleteSessionsOf(this.db, subject);
  }

  /**
   * Ends the sessions an Identity session started (OIDC back-channel logout: `sid`, and `sub` when the
   * logout token names it); without a `sid`, every Identity-made session of `sub`.
   */
  async destroyByIdentityLogout(logout: { sid?: string; sub?: string }): Promise<number> {
    if (logout.sid !== undefined) return deleteSessionsOfIdentitySession(this.db, logout.sid, logout.sub);
    return logout.sub === undefined ? 0 : deleteIdentitySessionsOf(this.db, logout.sub);
  }

  async deleteExpired(): Promise<number> {
    const now = this.now();
    return deleteExpiredSessions(
      this.db,
      now.toISOString(),
      new Date(now.getTime() - this.policy.idleTimeoutMs).toISOString(),
    );
  }
}
