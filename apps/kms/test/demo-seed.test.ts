import { expect, it } from '@jest/globals';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { describeEachDatabase } from '@cryptoutil/infra/testing';
import { KMS_MIGRATIONS } from '../src/data/schema.js';
import { demoCredentialTable, loadDemoSeed, seedDemo, type DemoUserStore } from '../src/domain/demo-seed.js';
import { listElasticKeys } from '../src/domain/elastic-key.js';
import { startTestKms } from './harness.js';

const SEED_FILE = fileURLToPath(new URL('../../../deployments/kms/config/demo-seed.yml', import.meta.url));

/** The cells of a Markdown table's rows, padding ignored (Prettier aligns the README's columns). */
const cells = (lines: string[]) =>
  lines.map((line) =>
    line
      .split('|')
      .slice(1, -1)
      .map((cell) => cell.trim().replace(/^-+$/, '---')),
  );

function memoryUsers(): DemoUserStore & { users: Map<string, { roles: string[]; tenants: string[] }> } {
  const users = new Map<string, { roles: string[]; tenants: string[] }>();
  return {
    users,
    async upsert(user) {
      users.set(user.username, { roles: user.roles, tenants: user.tenants });
    },
    async clear() {
      users.clear();
    },
  };
}

describeEachDatabase('KMS demo seed', (db) => {
  it('seeds the tenants, users and keys of the seed file, idempotently, and a reset makes fresh tenants', async () => {
    const kms = await startTestKms(await db.open(KMS_MIGRATIONS));
    const seed = await loadDemoSeed(SEED_FILE);
    const users = memoryUsers();
    const first = await seedDemo(kms.service, seed, users, { reset: false });
    expect(first.createdKeys).toHaveLength(seed.elastic_keys.length);
    expect(first.tenants.map((tenant) => tenant.name)).toEqual(['demo-tenant-a', 'demo-tenant-b']);
    for (const key of seed.elastic_keys) {
      const tenantId = first.tenants.find((tenant) => tenant.name === key.tenant)?.id as string;
      const page = await listElasticKeys(
        await kms.service.tenants.context(tenantId),
        { names: [key.name] },
        {
          page: 0,
          size: 5,
          sort: [],
        },
      );
      expect([key.name, page.total, page.items[0]?.materialKeyCount, page.items[0]?.status]).toEqual([
        key.name,
        1,
        key.versions,
        'active',
      ]);
    }
    const tenantA = first.tenants[0]?.id as string;
    expect(users.users.get('demo-user')).toEqual({ roles: ['user'], tenants: [tenantA] });
    const again = await seedDemo(kms.service, seed, users, { reset: false });
    expect(again.createdKeys).toEqual([]);
    expect(again.tenants).toEqual(first.tenants);
    const reset = await seedDemo(kms.service, seed, users, { reset: true });
    expect(reset.createdKeys).toHaveLength(seed.elastic_keys.length);
    expect(reset.tenants[0]?.id).not.toBe(tenantA);
    expect(await kms.service.tenants.find(tenantA)).toBeUndefined();
    for (const tenant of reset.tenants) await kms.service.tenants.remove(tenant.id);
  }, 60_000);
});

it('renders the credential table from the seed file', async () => {
  const table = demoCredentialTable(await loadDemoSeed(SEED_FILE));
  expect(table.split('\n')).toContain('| `demo-user` | `demo-user-password` | user | demo-tenant-a |');
  expect(table.split('\n')).toHaveLength(2 + 4);
});

it.each([
  ['README.md', '#### KMS demo credentials'],
  ['docs/DEMO-KMS.md', '## Credentials'],
])('shows the same credential table in %s as the seed file', async (file, title) => {
  const text = (await readFile(fileURLToPath(new URL(`../../../${file}`, import.meta.url)), 'utf8')).split('\n');
  const heading = text.indexOf(title);
  expect(heading).toBeGreaterThan(0);
  const start = text.findIndex((line, index) => index > heading && line.startsWith('|'));
  const end = text.findIndex((line, index) => index > start && !line.startsWith('|'));
  const expected = demoCredentialTable(await loadDemoSeed(SEED_FILE)).split('\n');
  expect(cells(text.slice(start, end))).toEqual(cells(expected));
});
