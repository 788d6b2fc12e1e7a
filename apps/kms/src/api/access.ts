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
const op = (scope: KmsScope, sensitive = true): Operation => ({ scope, sensitive });
const route = (method: string, path: string, operation: Rule[2]): Rule => [
  method,
  new RegExp(`^${path.replaceAll(':id', ID)}/?$`),
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
  route('GET', '/elastickey/:id/materialkey/:id', op('kms:key:read', false)),
  route('GET', '/elastickey/:id/materialkeys', op('kms:key:read', false)),
  route('GET', '/materialkeys', op('kms:key:read', false)),
  route('POST', '/elastickey/:id/materialkey/:id/revoke', op('kms:key:delete')),
  route('GET', '/elastickey/:id/jwks', op('kms:key:read', false)),
  route('POST', '/elastickey/:id/encrypt', op('kms:encrypt')),
  route('POST', '/elastickey/:id/decrypt', op('kms:decrypt')),
  route('POST', '/elastickey/:id/sign', op('kms:sign')),
  route('POST', '/elastickey/:id/verify', op('kms:verify', false)),
  route('POST', '/elastickey/:id/generate', op('kms:generate')),
];

/** The operation of a request under an API prefix, or undefined for a path the API does not have. */
export function operationOf(req: Request): Operation | undefined {
  for (const [method, path, operation] of ACCESS_RULES) {
    if (method === req.method && path.test(req.path))
      return typeof operation === 'function' ? operation(req) : operation;
  }
  return undefined;
}

export interface AccessControlOptions {
  authenticate: Authenticate;
  realm: string;
  errorDetail?: ErrorDetailLevel;
  /** Schemes offered next to Bearer in `WWW-Authenticate` (e.g. `Basic`, `ApiKey`). */
  otherSchemes?: readonly string[];
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
      sendTokenError(req, res, error, options);
    }
  };
}
