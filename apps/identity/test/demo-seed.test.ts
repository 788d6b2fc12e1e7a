import { expect, it } from '@jest/globals';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, verifyPassword } from '@cryptoutil/infra';
import { describeEachDatabase } from '@cryptoutil/infra/testing';
import { findClient } from '../src/data/client-repository.js';
import { OIDC_MIGRATIONS } from '../src/data/oidc-schema.js';
import { IDENTITY_MIGRATIONS } from '../src/data/schema.js';
import { findUserByUsername, recordLoginFailure } from '../src/data/user-repository.js';
import { applyDemoSeed, readDemoSeed } from '../src/domain/demo-seed.js';
import { KMS_SERVICE_SECRET, SEED } from './harness.js';

describeEachDatabase('Identity demo seed', (db) => {
  it('seeds from the seed file idempotently, secrets only as hashes, and resets on request', async () => {
    const database = await db.open([...IDENTITY_MIGRATIONS, ...OIDC_MIGRATIONS]);
    const seed = await readDemoSeed(SEED);
    const first = await applyDemoSeed(database, seed, { reset: false });
    expect(first).toEqual({
      users: ['demo-admin', 'demo-user'],
      clients: ['kms-service', 'demo-spa', 'demo-web', 'kms-console', 'demo-cli'],
    });
    expect(await applyDemoSeed(database, seed, { reset: false })).toEqual({ users: [], clients: [] });
    const service = await findClient(database, 'kms-service');
    expect(service?.secretHash).toMatch(/^\$pbkdf2-sha256\$i=600000\$/);
    expect(await verifyPassword(service!.secretHash!, KMS_SERVICE_SECRET)).toBe(true);
    expect(JSON.stringify(service)).not.toContain(KMS_SERVICE_SECRET);
    const user = await findUserByUsername(database, 'demo-user');
    await recordLoginFailure(database, user!.id, 3, null);
    expect(await applyDemoSeed(database, seed, { reset: true })).toEqual(first);
    expect((await findUserByUsername(database, 'demo-user'))?.failedLogins).toBe(0);
  });
});

it('refuses a seed file with a secret inline or without the demo marker', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'seed-'));
  const inline = join(dir, 'inline.yml');
  await writeFile(inline, 'demo_only: true\nusers: []\nclients:\n  - client_id: x\n    client_secret: plain\n');
  await expect(readDemoSeed(inline)).rejects.toBeInstanceOf(ConfigError);
  const unmarked = join(dir, 'unmarked.yml');
  await writeFile(unmarked, 'users: []\nclients: []\n');
  await expect(readDemoSeed(unmarked)).rejects.toThrow(/demo_only/);
});
