/**
 * Component-test harness: a KMS app over HTTPS (TLS 1.3, leaf from a fresh CA) on a real, migrated
 * database, driven with supertest that trusts only that CA.
 */
import https from 'node:https';
import type { RequestHandler } from 'express';
import request from 'supertest';
import { answerClientErrors, type Database } from '@cryptoutil/infra';
import { createCaHierarchy, issueLeaf, serverTlsOptions } from '@cryptoutil/tls';
import { createAdminApp } from '../src/api/admin.js';
import { createPublicApp, type PublicAppOptions } from '../src/api/app.js';
import { Barrier } from '../src/barrier/barrier.js';
import { deriveUnsealKeys } from '../src/barrier/unseal.js';
import { DEFAULT_DELETE_GRACE_PERIOD_MS, type KmsContext, type KmsService } from '../src/domain/kms-context.js';
import { TenantDirectory } from '../src/domain/tenant.js';
import { EncryptionUsage } from '../src/domain/encryption-usage.js';
import type { Realms } from '../src/domain/realm.js';

export const SECRETS = [1, 2, 3, 4, 5].map((n) => Buffer.from(`component-test-unseal-secret-number-${n}-of-five`));
export const POLICY = { mode: 'n-of-m', threshold: 3, shares: 5 } as const;

interface TestTls {
  rootPem: string;
  chain: string;
  key: string;
  /** A client certificate from the same CA, common name `batch-client`. */
  client: { chain: string; key: string };
}

let tls: Promise<TestTls> | undefined;
export function testTls(): Promise<TestTls> {
  tls ??= (async () => {
    const ca = await createCaHierarchy();
    const leaf = await issueLeaf(ca, { commonName: 'localhost', usage: 'server' });
    const client = await issueLeaf(ca, { commonName: 'batch-client', usage: 'client' });
    return {
      rootPem: ca.root.toString('pem'),
      chain: leaf.chainPem,
      key: leaf.keyPem,
      client: { chain: client.chainPem, key: client.keyPem },
    };
  })();
  return tls;
}

export interface TestKms {
  service: KmsService;
  /** The default tenant's context (callers without a tenant act in it). */
  ctx: KmsContext;
  clock: { now: Date };
  /** The public listener's server (not listening): tests that send many requests listen on it themselves. */
  publicServer: https.Server;
  api: (method: 'get' | 'post' | 'put' | 'delete', path: string) => request.Test;
  /** The browser API (`/browser/api/v1`). */
  browser: (method: 'get' | 'post' | 'put' | 'delete', path: string) => request.Test;
  admin: (method: 'get' | 'post' | 'patch' | 'delete', path: string) => request.Test;
}

export async function startTestKms(
  db: Database,
  options: Pick<PublicAppOptions, 'bodyLimitBytes' | 'browser' | 'audit' | 'rateLimits' | 'logger'> & {
    access?: RequestHandler;
    realms?: Realms;
  } = {},
): Promise<TestKms> {
  const barrier = await Barrier.unseal(db, deriveUnsealKeys(POLICY, SECRETS), { allSharesGiven: true });
  const clock = { now: new Date() };
  const base = {
    db,
    barrier,
    now: () => clock.now,
    deleteGracePeriodMs: DEFAULT_DELETE_GRACE_PERIOD_MS,
    usage: new EncryptionUsage(),
  };
  const service: KmsService = { ...base, tenants: await TenantDirectory.open(base) };
  const ctx = await service.tenants.context(service.tenants.defaultTenant.id);
  const { rootPem, chain, key } = await testTls();
  const server = https.createServer(
    serverTlsOptions({ chain, key, rootCa: rootPem, requestClientCert: true }),
    createPublicApp(service.tenants, {
      ...(options.bodyLimitBytes === undefined ? {} : { bodyLimitBytes: options.bodyLimitBytes }),
      ...(options.access ? { access: options.access } : {}),
      ...(options.browser ? { browser: options.browser } : {}),
      ...(options.audit ? { audit: options.audit } : {}),
      ...(options.rateLimits ? { rateLimits: options.rateLimits } : {}),
      ...(options.logger ? { logger: options.logger } : {}),
    }),
  );
  answerClientErrors(server);
  const adminServer = https.createServer(
    serverTlsOptions({ chain, key, rootCa: rootPem }),
    createAdminApp(service, {
      version: 'test',
      maxRssBytes: Number.MAX_SAFE_INTEGER,
      ...(options.realms ? { realms: options.realms } : {}),
      ...(options.audit ? { audit: options.audit } : {}),
    }),
  );
  return {
    service,
    ctx,
    clock,
    publicServer: server,
    api: (method, path) => request(server)[method](`/service/api/v1${path}`).ca(rootPem),
    browser: (method, path) => request(server)[method](`/browser/api/v1${path}`).ca(rootPem),
    admin: (method, path) => request(adminServer)[method](path).ca(rootPem),
  };
}
