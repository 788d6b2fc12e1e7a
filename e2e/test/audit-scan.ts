/**
 * Secret hygiene of the audit log (issue #8): when a stack stops, both products' audit chains are read
 * through their admin APIs, verified, and scanned for every secret the stack knows (admin token, unseal and
 * at-rest keys, client secrets, demo passwords, the tokens and plaintexts the tests used) and for anything
 * shaped like a token or key (a JWT/JWE, a long base64 run). UUIDs, hashes and grant ids are allowed.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface ScannedRecord {
  seq: number;
  event: string;
  [field: string]: unknown;
}

/** Fields that are hashes or correlation ids by construction. */
const ID_FIELDS = new Set(['seq', 'ts', 'hash', 'prev_hash', 'trace_id', 'request_id']);
/** A JWS/JWE compact header, or a base64url run long enough to be a key, token or secret. */
const TOKEN_SHAPED = [/eyJ[A-Za-z0-9_-]{8,}/, /[A-Za-z0-9+/_-]{40,}/];
/** Events whose resource is a grant id or a token's `jti`. */
const ID_RESOURCES = new Set(['identity.grant.revoked', 'identity.token.revoked']);
/** UUIDs (record, realm and user ids) are not secrets; they are taken out before the shape test. */
const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g;

/** The demo passwords and secret files the deployments ship (every stack uses them). */
export async function deploymentSecrets(root: string): Promise<string[]> {
  const found: string[] = [];
  for (const product of ['identity', 'kms']) {
    const seed = await readFile(join(root, `deployments/${product}/config/demo-seed.yml`), 'utf8');
    for (const match of seed.matchAll(/^\s*password:\s*(\S+)/gm)) found.push(match[1] ?? '');
    const dir = join(root, `deployments/${product}/secrets`);
    for (const file of await readdir(dir)) {
      if (file.endsWith('.secret')) found.push((await readFile(join(dir, file), 'utf8')).trim());
    }
  }
  return found.filter((secret) => secret.length >= 8);
}

/** Every finding as `<product> #<seq> <event>: <field> <what>`; empty when the records are clean. */
export function auditLeaks(product: string, records: ScannedRecord[], secrets: Iterable<string>): string[] {
  const known = [...new Set(secrets)].filter((secret) => secret.length >= 6);
  const findings: string[] = [];
  for (const record of records) {
    for (const [field, value] of Object.entries(record)) {
      if (typeof value !== 'string' || ID_FIELDS.has(field)) continue;
      const where = `${product} #${record.seq} ${record.event}: ${field}`;
      if (known.some((secret) => value.includes(secret))) findings.push(`${where} contains a known secret`);
      // Grant ids and token ids (`jti`) are long random ids, not credentials: the audit names tokens by them.
      if (ID_RESOURCES.has(record.event) && field === 'resource') continue;
      const withoutIds = value.replace(UUID, '.');
      if (TOKEN_SHAPED.some((shape) => shape.test(withoutIds))) findings.push(`${where} looks like a token or key`);
    }
  }
  return findings;
}

/** Every known secret found in a process's log output, as `<where> contains a known secret (<n> chars)`. */
export function logLeaks(where: string, output: string, secrets: Iterable<string>): string[] {
  return [...new Set(secrets)]
    .filter((secret) => secret.length >= 6 && output.includes(secret))
    .map((secret) => `${where} contains a known secret (${secret.length} chars)`);
}
