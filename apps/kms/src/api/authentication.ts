/**
 * Who is calling the service API (kms.md, integration.md "Other service credentials"): Identity access
 * tokens (`Bearer`, or `DPoP` with a proof for sender-constrained tokens, RFC 9449), HTTP Basic for realm users, `Authorization: ApiKey <id>.<secret>` keys (only hashes in config),
 * and client certificates from the project CA mapped to principals. Methods are tried in the configured
 * order and the first success wins; when a credential was presented and refused, its reason is the answer,
 * otherwise `401 authentication_required`.
 */
import type { TLSSocket } from 'node:tls';
import type { Request } from 'express';
import { basicCredentials, verifiedSecretCache } from '@cryptoutil/infra';
import {
  TokenValidationError,
  presentedToken,
  tokenPresentation,
  type TokenValidator,
} from '@cryptoutil/jose-authority';
import { countTokenValidation } from '../domain/crypto-metrics.js';
import { LoginRefused, type PasswordLogin } from '../domain/password-login.js';

export const AUTH_METHODS = ['bearer', 'basic', 'api_key', 'mtls'] as const;
export type AuthMethod = (typeof AUTH_METHODS)[number];

export interface KmsPrincipal {
  subject: string;
  /**
   * The client acting for `subject`, when a bearer token was delegated to it (RFC 8693 token exchange,
   * the token's `act.sub`); the audit records both.
   */
  actor?: string | undefined;
  /** `session`: the browser API's login session. */
  method: AuthMethod | 'session';
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
  /** The URL clients call the KMS at: DPoP proofs name it (`htu`). */
  publicUrl?: string | undefined;
  /** The realm password check (file and database realms, lockout). */
  login: PasswordLogin;
  apiKeys: readonly ApiKeyEntry[];
  certificates: readonly CertificateEntry[];
}

export type Authenticate = (req: Request, requirement: { sensitive: boolean }) => Promise<KmsPrincipal>;

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

export function createAuthenticator(options: AuthenticationOptions): Authenticate {
  const verify = verifiedSecretCache();
  const apiKeys = new Map(options.apiKeys.map((key) => [key.id, key]));
  const certificates = new Map(options.certificates.map((entry) => [entry.commonName, entry]));

  const basic = async (req: Request): Promise<KmsPrincipal | undefined> => {
    const credentials = basicCredentials(req.get('authorization'));
    if (!credentials) return undefined;
    try {
      const user = await options.login(credentials.user, credentials.password);
      return { subject: user.subject, method: 'basic', scopes: user.scopes, tenants: user.tenants };
    } catch (error) {
      if (error instanceof LoginRefused) throw refused(error.message);
      throw error;
    }
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
    const presented = presentedToken(req);
    if (presented === undefined || !options.validator) return undefined;
    try {
      const principal = await options.validator.validate(presented.token, {
        sensitive,
        ...tokenPresentation(req, presented.scheme, options.publicUrl),
      });
      countTokenValidation('valid');
      return {
        subject: principal.subject,
        ...(principal.actor ? { actor: principal.actor } : {}),
        method: 'bearer',
        scopes: principal.scopes,
        tenants: principal.tenantIds,
      };
    } catch (error) {
      if (error instanceof TokenValidationError) countTokenValidation(error.code);
      throw error;
    }
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
