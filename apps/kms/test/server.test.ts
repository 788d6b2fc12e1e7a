import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { Agent, request } from 'undici';
import { createLogger } from '@cryptoutil/infra';
import { loadOrCreateCa, loadOrIssueLeaf } from '@cryptoutil/tls';
import { kmsConfigSchema } from '../src/config.js';
import { startKms } from '../src/server.js';

let dir: string;
let client: Agent;
const lines: string[] = [];
const logger = createLogger({
  service: 'kms',
  level: 'debug',
  stream: new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString());
      done();
    },
  }),
});

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kms-server-'));
  const ca = await loadOrCreateCa(join(dir, 'tls'));
  const leaf = await loadOrIssueLeaf(join(dir, 'tls'), 'client', ca, { commonName: 'client', usage: 'client' });
  client = new Agent({ connect: { ca: ca.rootPem, cert: leaf.chainPem, key: leaf.keyPem } });
});
afterAll(() => client.close());

function config(overrides: Record<string, unknown> = {}) {
  return kmsConfigSchema.parse({
    server: { public_port: 0, admin_port: 0, readiness_max_rss_mb: 1_000_000 },
    database: { url: 'sqlite::memory:' },
    tls: { dir: join(dir, 'tls') },
    unseal: { mode: 'dev' },
    ...overrides,
  });
}

it('has secure, local defaults', () => {
  const defaults = kmsConfigSchema.parse({});
  expect(defaults.server).toMatchObject({ bind_address: '127.0.0.1', public_port: 8081, admin_port: 9081 });
  expect(defaults.unseal).toMatchObject({ mode: 'n-of-m', threshold: 3, shares: 5 });
  expect(defaults.database.url).toBe('sqlite:.data/kms.sqlite');
  expect(defaults.keys.delete_grace_period_seconds).toBe(7 * 24 * 3600);
});

it('serves both listeners on TLS 1.3, the admin one with mTLS, and stops cleanly', async () => {
  const kms = await startKms({ config: config(), logger, version: 'test' });
  try {
    expect(kms.publicUrl).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const ready = await request(`${kms.adminUrl}/admin/v1/readyz`, { dispatcher: client });
    expect(ready.statusCode).toBe(200);
    expect(await ready.body.json()).toMatchObject({ status: 'ok', checks: { barrier: { status: 'ok' } } });
    const list = await request(`${kms.publicUrl}/service/api/v1/elastickeys`, { dispatcher: client });
    expect(list.statusCode).toBe(200);
    await list.body.dump();
    const old = new Agent({ connect: { ca: kms.rootCaPem, maxVersion: 'TLSv1.2' } });
    await expect(request(`${kms.publicUrl}/service/api/v1/elastickeys`, { dispatcher: old })).rejects.toThrow();
    await old.close();
  } finally {
    await kms.close();
  }
  expect(lines.join('')).toMatch(/UNSEAL MODE dev/);
  expect(kms.service.barrier.sealed).toBe(true);
});

it('speaks plain HTTP only when asked, with a warning, and runs the shutdown hook', async () => {
  let shutdownRequested = false;
  const kms = await startKms({
    config: config(),
    logger,
    version: 'test',
    dev: true,
    insecureHttp: true,
    onShutdownRequest: () => (shutdownRequested = true),
  });
  try {
    expect(kms.adminUrl).toMatch(/^http:\/\//);
    const res = await request(`${kms.adminUrl}/admin/v1/shutdown`, { method: 'POST' });
    expect(res.statusCode).toBe(202);
    await res.body.dump();
    expect(shutdownRequested).toBe(true);
  } finally {
    await kms.close();
  }
  expect(lines.join('')).toMatch(/--dev-insecure-http/);
});

it('closes the database when unsealing fails', async () => {
  await expect(
    startKms({ config: config({ unseal: { mode: 'n-of-m', secrets: [] } }), logger, version: 'test' }),
  ).rejects.toMatchObject({ code: 'too_few_unseal_secrets' });
});

it('refuses to listen beyond loopback while the API has no authentication', async () => {
  await expect(
    startKms({ config: config({ server: { bind_address: '0.0.0.0' } }), logger, version: 'test' }),
  ).rejects.toMatchObject({ key: 'server.bind_address' });
});
