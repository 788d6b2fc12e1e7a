/**
 * Dependencies down (issue #10): PostgreSQL goes away (a TCP proxy in front of it drops every connection
 * and refuses new ones) and comes back. Meanwhile the token endpoint answers 503 temporarily_unavailable
 * with Retry-After, fast, and readiness reports the database; afterwards the same process serves again,
 * and a token issued before the outage is still valid.
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, fetch as undiciFetch } from 'undici';
import { createLogger, uuidv7 } from '@cryptoutil/infra';
import { TcpOutage, testPostgresUrl } from '@cryptoutil/infra/testing';
import { identityConfigSchema } from '../src/config.js';
import { startIdentity, type RunningIdentity } from '../src/server.js';
import { ADMIN_TOKEN, KMS_SERVICE_SECRET, SECRETS_WITH_ADMIN_TOKEN, SEED } from './harness.js';

const postgres = process.env.TEST_DATABASE_URL ? describe : describe.skip;
postgres('Identity while PostgreSQL is down', () => {
  let identity: RunningIdentity | undefined;
  let outage: TcpOutage | undefined;
  let agent: Agent | undefined;
  afterAll(async () => {
    await outage?.up(); // the database must be reachable for a clean close
    await identity?.close();
    await agent?.close();
    await outage?.down();
  });

  it('answers 503 fast, reports not ready, and recovers without a restart', async () => {
    const url = new URL((await testPostgresUrl())!);
    outage = new TcpOutage({ host: url.hostname, port: Number(url.port || 5432) });
    await outage.up();
    const proxied = new URL(url);
    proxied.hostname = '127.0.0.1';
    proxied.port = String(outage.port);
    const dir = await mkdtemp(join(tmpdir(), 'identity-outage-'));
    identity = await startIdentity({
      config: identityConfigSchema.parse({
        server: { public_port: 0, admin_port: 0 },
        database: {
          url: proxied.toString(),
          schema: `outage_${uuidv7().replace(/-/g, '_')}`,
          connect_timeout_seconds: 2,
        },
        tls: { dir: join(dir, 'tls') },
        secrets: SECRETS_WITH_ADMIN_TOKEN,
      }),
      logger: createLogger({ service: 'identity', silent: true }),
      version: 'test',
      dev: true,
      demoSeed: { path: SEED, reset: false },
    });
    agent = new Agent({ connect: { ca: identity.rootCaPem } });
    const token = async () => {
      const res = await undiciFetch(`${identity!.publicUrl}/token`, {
        method: 'POST',
        dispatcher: agent,
        headers: {
          authorization: `Basic ${Buffer.from(`kms-service:${KMS_SERVICE_SECRET}`).toString('base64')}`,
          'content-type': 'application/x-www-form-urlencoded',
        },
        body: 'grant_type=client_credentials&scope=kms:read',
      });
      return { status: res.status, retryAfter: res.headers.get('retry-after'), body: (await res.json()) as never };
    };
    const ready = async () => {
      const res = await undiciFetch(`${identity!.adminUrl}/admin/v1/readyz`, {
        dispatcher: agent,
        headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      });
      await res.arrayBuffer();
      return res.status;
    };
    const before = await token();
    expect(before.status).toBe(200);
    expect(await ready()).toBe(200);

    await outage.down();
    const started = Date.now();
    const during = await token();
    expect([during.status, during.retryAfter, during.body]).toEqual([
      503,
      '1',
      expect.objectContaining({ error: 'temporarily_unavailable' }),
    ]);
    expect(Date.now() - started).toBeLessThan(3000);
    expect(await ready()).toBe(503);

    await outage.up();
    const deadline = Date.now() + 15_000;
    while ((await ready()) !== 200 && Date.now() < deadline) await new Promise((done) => setTimeout(done, 200));
    expect((await token()).status).toBe(200);
  }, 60_000);
});
