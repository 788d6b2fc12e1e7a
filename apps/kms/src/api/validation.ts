/**
 * Request parsing for the routers: strict zod schemas (unknown fields are refused), canonical UUID path
 * parameters, repeatable query parameters, sort and paging. Every failure is a 400 naming the field.
 */
import type { Request } from 'express';
import { UnsupportedMediaTypeError, ValidationError, isCanonicalUuid } from '@cryptoutil/infra';
import type { PageRequest, SortOrder } from '../data/paging.js';

/** The longest `context` a JWE may be bound to. */
export const MAX_CONTEXT_LENGTH = 1024;

export function uuidParam(req: Request, name: string): string {
  const value = req.params[name];
  if (typeof value !== 'string' || !isCanonicalUuid(value)) {
    throw new ValidationError(`${name} must be a canonical UUID.`, { code: 'invalid_id', extensions: { field: name } });
  }
  return value;
}

/** A query parameter given zero, one or several times, as a list. */
export function queryList(req: Request, name: string): string[] {
  const value = req.query[name];
  if (value === undefined) return [];
  const values = Array.isArray(value) ? value : [value];
  if (!values.every((item): item is string => typeof item === 'string')) {
    throw new ValidationError(`${name} must be a plain value.`, { code: 'invalid_query', extensions: { field: name } });
  }
  return values;
}

export function queryString(req: Request, name: string): string | undefined {
  const values = queryList(req, name);
  if (values.length > 1) {
    throw new ValidationError(`${name} may be given once.`, { code: 'invalid_query', extensions: { field: name } });
  }
  return values[0];
}

export function queryBoolean(req: Request, name: string): boolean | undefined {
  const value = queryString(req, name);
  if (value === undefined) return undefined;
  if (value !== 'true' && value !== 'false') {
    throw new ValidationError(`${name} must be true or false.`, { code: 'invalid_query', extensions: { field: name } });
  }
  return value === 'true';
}

export function queryUuids(req: Request, name: string): string[] {
  const values = queryList(req, name);
  for (const value of values) {
    if (!isCanonicalUuid(value)) {
      throw new ValidationError(`${name} must be canonical UUIDs.`, {
        code: 'invalid_query',
        extensions: { field: name },
      });
    }
  }
  return values;
}

export function queryDate(req: Request, name: string): string | undefined {
  const value = queryString(req, name);
  if (value === undefined) return undefined;
  const date = new Date(value);
  if (!/^\d{4}-\d{2}-\d{2}/.test(value) || Number.isNaN(date.getTime())) {
    throw new ValidationError(`${name} must be an ISO 8601 date.`, {
      code: 'invalid_query',
      extensions: { field: name },
    });
  }
  return date.toISOString();
}

function integer(req: Request, name: string, fallback: number, min: number, max: number): number {
  const value = queryString(req, name);
  if (value === undefined) return fallback;
  const number = Number(value);
  if (!/^\d+$/.test(value) || number < min || number > max) {
    throw new ValidationError(`${name} must be an integer from ${min} to ${max}.`, {
      code: 'invalid_query',
      extensions: { field: name },
    });
  }
  return number;
}

export function pageRequest(req: Request, sortFields: readonly string[]): PageRequest {
  const sort = queryList(req, 'sort').map((item): SortOrder => {
    const [field = '', direction = ''] = item.split(':');
    if (!sortFields.includes(field) || (direction !== 'ASC' && direction !== 'DESC')) {
      throw new ValidationError(`sort must be field:ASC or field:DESC with field one of ${sortFields.join(', ')}.`, {
        code: 'invalid_query',
        extensions: { field: 'sort' },
      });
    }
    return { field, direction };
  });
  return { page: integer(req, 'page', 0, 0, 1_000_000), size: integer(req, 'size', 25, 1, 1000), sort };
}

/** Request bytes for encrypt/sign: `application/octet-stream` or `text/plain`. */
export function bodyBytes(req: Request): Uint8Array {
  if (Buffer.isBuffer(req.body)) return req.body;
  if (typeof req.body === 'string' && req.is('text/plain')) return Buffer.from(req.body, 'utf8');
  throw new UnsupportedMediaTypeError('Send the data as application/octet-stream or text/plain.');
}

/** A compact JWE or JWS sent as `text/plain` (or `application/jose`). */
export function bodyCompact(req: Request): string {
  if (typeof req.body === 'string' && req.is('text/plain')) return req.body.trim();
  if (Buffer.isBuffer(req.body) && req.is('application/jose')) return req.body.toString('utf8').trim();
  throw new UnsupportedMediaTypeError('Send the JWE or JWS compact serialization as text/plain.');
}

export function hasBody(req: Request): boolean {
  return Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding'] !== undefined;
}

const BASE64URL = /^[A-Za-z0-9_-]*$/;

/** Bytes sent as base64url (RFC 4648 §5; trailing `=` padding tolerated); anything else is `invalid_base64url`. */
export function base64urlBytes(text: string, field: string): Uint8Array {
  const unpadded = text.length % 4 === 0 ? text.replace(/={1,2}$/, '') : text;
  if (!BASE64URL.test(unpadded) || unpadded.length % 4 === 1) {
    throw new ValidationError(`${field} must be base64url (RFC 4648 §5).`, {
      code: 'invalid_base64url',
      extensions: { field },
    });
  }
  return Buffer.from(unpadded, 'base64url');
}
