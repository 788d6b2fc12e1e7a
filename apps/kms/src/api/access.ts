/**
 * Who may call which operation (integration.md): each route of the service API maps to one fine scope,
 * and to whether it is sensitive (its token's revocation is checked in the default mode: everything
 * except reads and verify). One table, so a test can prove every documented route has an entry.
 */
import type { Request, RequestHandler } from 'express';
import { TokenValidationError, assertScope, sendTokenError, type ErrorDetailLevel } from '@cryptoutil/jose-authority';
import { KMS_SCOPE_IMPLICATIONS } from '../domain/scopes.js';
import type { Authenticate } from './authentication.js';
import type { KmsScope } from '../domain/scopes.js';
import { hasBody } from './validation.js';

export interface Operation {
  scope: KmsScope;
  sensitive: boolean;
}

type Rule = [method: string, path: RegExp, operation: Operation | ((req: Request) => Operation)];

const ID = '[^/]+';
const op = (scope: KmsScope, sensitive = true): Operation => ({
  scope,
  sensitive,
});
const route = (method: string, path: string, operation: Rule[2]): Rule => [
  method,
  new RegExp(`^${path.replaceAll(':id', ID).replaceAll(':name', ID)}/?$`),
  operation,
];

export const ACCESS_RULES: readonly Rule[] = [
  route('POST', '/elastickey', op('kms:pool:create')),
  route('GET', '/elastickeys', op('kms:pool:read', false)),
  route('GET', '/elastickey/:id', op('kms:pool:read', false)),
  route('PUT', '/elastickey/:id', op('kms:pool:update')),
  route('POST', '/elastickey/:id/(enable|disable)', op('kms:pool:update')),
  route('DELETE', '/elastickey/:id', op('kms:pool:delete')),
  route('POST', '/elastickey/:id/undelete', op('kms:pool:delete')),
  // Destroys material for good: only kms:admin implies it.
  route('POST', '/elastickey/:id/trim', op('kms:key:trim')),
  // Generating a material key is a rotation; sending one (a JWK body) is an import.
  route('POST', '/elastickey/:id/materialkey', (req) => op(hasBody(req) ? 'kms:key:create' : 'kms:key:rotate')),
  // The import wrapping key is public, but only importers need it (and its first use generates it).
  route('GET', '/elastickey/:id/wrappingkey', op('kms:key:create', false)),
  route('GET', '/elastickey/:id/materialkey/:id', op('kms:key:read', false)),
  route('GET', '/elastickey/:id/materialkeys', op('kms:key:read', false)),
  route('GET', '/materialkeys', op('kms:key:read', false)),
  route('POST', '/elastickey/:id/materialkey/:id/revoke', op('kms:key:delete')),
  route('GET', '/elastickey/:id/jwks', op('kms:key:read', false)),
  route('POST', '/elastickey/:id/encrypt', op('kms:encrypt')),
  route('POST', '/elastickey/:id/decrypt', op('kms:decrypt')),
  route('POST', '/elastickey/:id/rewrap', op('kms:rewrap')),
  route('POST', '/elastickey/:id/sign', op('kms:sign')),
  route('POST', '/elastickey/:id/verify', op('kms:verify', false)),
  route('POST', '/elastickey/:id/generate', op('kms:generate')),
  // A batch needs the scope of its operation, once per call.
  route('POST', '/elastickey/:id/encrypt/batch', op('kms:encrypt')),
  route('POST', '/elastickey/:id/decrypt/batch', op('kms:decrypt')),
  route('POST', '/elastickey/:id/rewrap/batch', op('kms:rewrap')),
  route('POST', '/elastickey/:id/sign/batch', op('kms:sign')),
  route('POST', '/elastickey/:id/verify/batch', op('kms:verify', false)),
];

/** Where the Vault Transit compatible router is mounted (Vault's `/v1` API, mount path fixed at `transit`). */
export const VAULT_TRANSIT_PREFIX = '/v1/transit';

/** The Vault Transit paths (relative to `VAULT_TRANSIT_PREFIX`), with the native API's scope for each. */
export const VAULT_TRANSIT_ACCESS_RULES: readonly Rule[] = [
  route('POST', '/keys/:name', op('kms:pool:create')),
  route('GET', '/keys/:name', op('kms:pool:read', false)),
  route('POST', '/keys/:name/rotate', op('kms:key:rotate')),
  route('POST', '/encrypt/:name', op('kms:encrypt')),
  route('POST', '/decrypt/:name', op('kms:decrypt')),
  route('POST', '/rewrap/:name', op('kms:rewrap')),
  route('POST', '/datakey/(plaintext|wrapped)/:name', op('kms:generate')),
  route('POST', '/sign/:name(/:name)?', op('kms:sign')),
  route('POST', '/verify/:name(/:name)?', op('kms:verify', false)),
];

/** The operation of a request under an API prefix, or undefined for a path the API does not have. */
export function operationOf(req: Request): Operation | undefined {
  const rules = req.baseUrl === VAULT_TRANSIT_PREFIX ? VAULT_TRANSIT_ACCESS_RULES : ACCESS_RULES;
  for (const [method, path, operation] of rules) {
    if (method === req.method && path.test(req.path))
      return typeof operation === 'function' ? operation(req) : operation;
  }
  return undefined;
}

/** `res.locals` flag of a router that shapes its own errors, so refusals go to its error handler. */
export const OWN_ERROR_SHAPE = 'ownErrorShape';

export interface AccessControlOptions {
  authenticate: Authenticate;
  realm: string;
  errorDetail?: ErrorDetailLevel;
  /** Schemes offered next to Bearer in `WWW-Authenticate` (e.g. `Basic`, `ApiKey`). */
  otherSchemes?: readonly string[];
  /** DPoP proof algorithms accepted: a `DPoP` challenge with them follows `Bearer` (RFC 9449 §7.1). */
  dpopAlgorithms?: readonly string[];
}

/** Requires a principal whose (expanded) scopes include the operation's; unknown paths go on to the 404. */
export function accessControl(options: AccessControlOptions): RequestHandler {
  return async (req, res, next) => {
    const operation = operationOf(req);
    if (!operation) return next();
    try {
      const principal = await options.authenticate(req, { sensitive: operation.sensitive });
      // Known before the scope check, so a refusal is recorded against who asked.
      res.locals.principal = principal;
      assertScope(principal.scopes, operation.scope, KMS_SCOPE_IMPLICATIONS);
      next();
    } catch (error) {
      if (!(error instanceof TokenValidationError)) return next(error);
      res.locals.problemCode = error.code;
      // A router with its own error shape (Vault Transit) answers the refusal in its error handler.
      if (res.locals[OWN_ERROR_SHAPE] === true) return next(error);
      sendTokenError(req, res, error, options);
    }
  };
}
