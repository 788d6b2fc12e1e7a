/**
 * Who is calling the service API (kms.md, integration.md "Other service credentials"): Identity bearer
 * tokens, HTTP Basic for realm users, `Authorization: ApiKey <id>.<secret>` keys (only hashes in config),
 * and client certificates from the project CA mapped to principals. Methods are tried in the configured
 * order and the first success wins; when a credential was presented and refused, its reason is the answer,
 * otherwise `401 authentication_required`. Repeated wrong passwords slow down, then lock the username.
 */
import { timingSafeEqual } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import type { Request } from 'express';
import { basicCredentials, verifiedSecretCache, verifyDecoyPassword } from '@cryptoutil/infra';
import { TokenValidationError, bearerToken, type TokenValidator } from '@cryptoutil/jose-authority';
import type { Realms } from '../domain/realm.js';

export const AUTH_METHODS = ['bearer', 'basic', 'api_key', 'mtls'] as const;
export type AuthMethod = (typeof AUTH_METHODS)[number];

export interface KmsPrincipal {
  subject: string;
  method: AuthMethod;
  /** Granted scopes, before coarse scopes are expanded. */
  scopes: readonly string[];
  tenants: readonly string[];
}

export interface ApiKeyEntry {
  id: string;
  keyHash: string;
  scopes: readonly string[];
  tenant?: string | undefined;
}

export interface CertificateEntry {
  commonName: string;
  scopes: readonly string[];
  tenant?: string | undefined;
}

export interface AuthenticationOptions {
  methods: readonly AuthMethod[];
  validator?: TokenValidator | undefined;
  realms: Realms;
  apiKeys: readonly ApiKeyEntry[];
  certificates: readonly CertificateEntry[];
  lockout: { maxFailures: number; lockoutMs: number };
  now?: () => number;
}

export type Authenticate = (req: Request, requirement: { sensitive: boolean }) => Promise<KmsPrincipal>;

const FAILURE_DELAY_MS = 200;
const MAX_TRACKED_USERNAMES = 10_000;

const refused = (description: string) => new TokenValidationError('authentication_required', description);

function apiKeyCredential(req: Request): { id: string; secret: string } | undefined {
  const match = /^ApiKey +([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+) *$/i.exec(req.get('authorization') ?? '');
  return match?.[1] && match[2] ? { id: match[1], secret: match[2] } : undefined;
}

function certificateName(req: Request): string | undefined {
  const socket = req.socket as Partial<TLSSocket>;
  if (socket.authorized !== true || typeof socket.getPeerCertificate !== 'function') return undefined;
  const name = socket.getPeerCertificate().subject?.CN;
  return typeof name === 'string' ? name : undefined;
}

const sameText = (a: string, b: string) => {
  const left = Buffer.from(a, 'utf8');
  const right = Buffer.from(b, 'utf8');
  return left.length === right.length && timingSafeEqual(left, right);
};

export function createAuthenticator(options: AuthenticationOptions): Authenticate {
  const now = options.now ?? Date.now;
  const verify = verifiedSecretCache();
  const failures = new Map<string, { count: number; lockedUntil: number }>();
  const apiKeys = new Map(options.apiKeys.map((key) => [key.id, key]));
  const certificates = new Map(options.certificates.map((entry) => [entry.commonName, entry]));

  /** Keeps the failure counts bounded: the oldest entry that is not a lockout leaves first. */
  const forgetOldestUnlocked = () => {
    if (failures.size < MAX_TRACKED_USERNAMES) return;
    for (const [username, state] of failures) {
      if (state.lockedUntil <= now()) {
        failures.delete(username);
        return;
      }
    }
  };

  const basic = async (req: Request): Promise<KmsPrincipal | undefined> => {
    const credentials = basicCredentials(req.get('authorization'));
    if (!credentials) return undefined;
    const state = failures.get(credentials.user);
    if (state && state.lockedUntil > now()) throw refused('Too many failed sign-ins; try again later.');
    const user = options.realms.users.get(credentials.user);
    // An unknown username costs the same PBKDF2 work as a known one: timing does not reveal which exist.
    const ok = !user
      ? await verifyDecoyPassword(credentials.password)
      : user.passwordHash
        ? await verify(user.passwordHash, credentials.password)
        : user.demoPassword !== undefined && sameText(user.demoPassword, credentials.password);
    if (!user || !ok) {
      const count = (state?.count ?? 0) + 1;
      await new Promise((done) => setTimeout(done, Math.min(count * FAILURE_DELAY_MS, 2000)));
      const locked = count >= options.lockout.maxFailures;
      forgetOldestUnlocked();
      failures.set(credentials.user, {
        count: locked ? 0 : count,
        lockedUntil: locked ? now() + options.lockout.lockoutMs : 0,
      });
      throw refused('Invalid username or password.');
    }
    failures.delete(credentials.user);
    return { subject: `${user.realmId}/${user.userId}`, method: 'basic', scopes: user.scopes, tenants: user.tenants };
  };

  const apiKey = async (req: Request): Promise<KmsPrincipal | undefined> => {
    const credential = apiKeyCredential(req);
    if (!credential) return undefined;
    const entry = apiKeys.get(credential.id);
    if (!entry || !(await verify(entry.keyHash, credential.secret))) throw refused('Invalid API key.');
    return {
      subject: `api-key/${entry.id}`,
      method: 'api_key',
      scopes: entry.scopes,
      tenants: entry.tenant ? [entry.tenant] : [],
    };
  };

  const mtls = async (req: Request): Promise<KmsPrincipal | undefined> => {
    const name = certificateName(req);
    const entry = name === undefined ? undefined : certificates.get(name);
    if (!entry) return undefined;
    return {
      subject: `certificate/${entry.commonName}`,
      method: 'mtls',
      scopes: entry.scopes,
      tenants: entry.tenant ? [entry.tenant] : [],
    };
  };

  const bearer = async (req: Request, sensitive: boolean): Promise<KmsPrincipal | undefined> => {
    const token = bearerToken(req);
    if (token === undefined || !options.validator) return undefined;
    const principal = await options.validator.validate(token, { sensitive });
    return { subject: principal.subject, method: 'bearer', scopes: principal.scopes, tenants: principal.tenantIds };
  };

  return async (req, requirement) => {
    let firstRefusal: unknown;
    for (const method of options.methods) {
      try {
        const principal =
          method === 'bearer'
            ? await bearer(req, requirement.sensitive)
            : method === 'basic'
              ? await basic(req)
              : method === 'api_key'
                ? await apiKey(req)
                : await mtls(req);
        if (principal) return principal;
      } catch (error) {
        if (!(error instanceof TokenValidationError)) throw error;
        // The issuer being unreachable is an answer of its own, never hidden behind a later refusal.
        if (error.code === 'identity_unavailable') throw error;
        firstRefusal ??= error;
      }
    }
    throw firstRefusal ?? refused('Authenticate with a bearer token, HTTP Basic, an API key or a client certificate.');
  };
}
