/**
 * Demo data (kms.md "Demo mode"), only from `deployments/kms/config/demo-seed.yml`: tenants by name (a
 * fresh UUIDv4 each when first seeded), a database realm with its roles and users (PBKDF2 hashes of the
 * published demo passwords), and real elastic keys of every family, some with several material keys.
 * Seeding is idempotent: what exists (by tenant and name) is kept. A reset deletes the demo tenants with
 * every key in them and the demo users, then seeds again.
 */
import { readFile } from 'node:fs/promises';
import { parse } from 'yaml';
import { z } from 'zod';
import { ConfigError, formatKey } from '@cryptoutil/infra';
import { createElasticKey, listElasticKeys } from './elastic-key.js';
import type { KmsService } from './kms-context.js';
import { generateMaterialKey } from './material-key.js';
import { KMS_KNOWN_SCOPES } from './scopes.js';

const name = z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/);

export const demoSeedSchema = z.strictObject({
  version: z.literal(1),
  tenants: z.array(z.strictObject({ name })).min(1),
  realm: z.strictObject({
    id: z.uuid(),
    name,
    roles: z.array(
      z.strictObject({
        name,
        description: z.string().default(''),
        permissions: z.array(z.string().refine((scope) => KMS_KNOWN_SCOPES.has(scope), 'unknown scope')).default([]),
        inherits: z.array(name).default([]),
      }),
    ),
  }),
  users: z.array(
    z.strictObject({
      username: name,
      password: z.string().min(8),
      roles: z.array(name).min(1),
      tenants: z.array(name).min(1),
    }),
  ),
  elastic_keys: z.array(
    z.strictObject({
      tenant: name,
      name,
      algorithm: z.string().min(1),
      description: z.string().default(''),
      versions: z.number().int().min(1).max(10).default(1),
    }),
  ),
});

export type DemoSeed = z.output<typeof demoSeedSchema>;

/** Reads and checks the seed file; every tenant a user or key names must be listed. */
export async function loadDemoSeed(path: string): Promise<DemoSeed> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new ConfigError(`${path}: cannot read the demo seed file (${(error as NodeJS.ErrnoException).code})`);
  }
  const result = demoSeedSchema.safeParse(parse(text));
  if (!result.success) {
    const issue = result.error.issues[0];
    throw new ConfigError(`${path}: ${issue ? formatKey(issue.path) : ''}: ${issue?.message ?? 'invalid'}`);
  }
  const tenants = new Set(result.data.tenants.map((tenant) => tenant.name));
  const named = [
    ...result.data.users.flatMap((user, i) => user.tenants.map((tenant) => [`users[${i}]`, tenant] as const)),
    ...result.data.elastic_keys.map((key, i) => [`elastic_keys[${i}]`, key.tenant] as const),
  ];
  for (const [where, tenant] of named) {
    if (!tenants.has(tenant)) throw new ConfigError(`${path}: ${where}: unknown tenant ${tenant}`);
  }
  return result.data;
}

/** How demo users reach the database realm (kept apart so the seed does not depend on its storage). */
export interface DemoUserStore {
  /** Creates or replaces a user of the realm with a PBKDF2 hash of `password`. */
  upsert(user: {
    realmId: string;
    username: string;
    password: string;
    roles: string[];
    tenants: string[];
  }): Promise<void>;
  /** Deletes every user of the realm. */
  clear(realmId: string): Promise<void>;
}

export interface SeededDemo {
  tenants: { name: string; id: string }[];
  createdKeys: string[];
}

const FIRST_PAGE = { page: 0, size: 1, sort: [] } as const;

export async function seedDemo(
  service: KmsService,
  seed: DemoSeed,
  users: DemoUserStore,
  options: { reset: boolean },
): Promise<SeededDemo> {
  if (options.reset) {
    for (const { name: tenantName } of seed.tenants) {
      const tenant = await service.tenants.findByName(tenantName);
      if (tenant) await service.tenants.remove(tenant.id);
    }
    await users.clear(seed.realm.id);
  }
  const tenantIds = new Map<string, string>();
  for (const { name: tenantName } of seed.tenants) {
    tenantIds.set(tenantName, (await service.tenants.ensureNamed(tenantName)).id);
  }
  const idOf = (tenantName: string) => tenantIds.get(tenantName) as string;
  for (const user of seed.users) {
    await users.upsert({
      realmId: seed.realm.id,
      username: user.username,
      password: user.password,
      roles: user.roles,
      tenants: user.tenants.map(idOf),
    });
  }
  const createdKeys: string[] = [];
  for (const key of seed.elastic_keys) {
    const ctx = await service.tenants.context(idOf(key.tenant));
    if ((await listElasticKeys(ctx, { names: [key.name] }, FIRST_PAGE)).total > 0) continue;
    const created = await createElasticKey(ctx, {
      name: key.name,
      description: key.description,
      algorithm: key.algorithm,
      provider: 'Internal',
      versioningAllowed: true,
      importAllowed: false,
    });
    for (let version = 2; version <= key.versions; version++) await generateMaterialKey(ctx, created.id);
    createdKeys.push(`${key.tenant}/${key.name}`);
  }
  return {
    tenants: seed.tenants.map(({ name: tenantName }) => ({ name: tenantName, id: idOf(tenantName) })),
    createdKeys,
  };
}

/** The demo credential table (Markdown) shown in the README and on the Swagger page; made from the seed. */
export function demoCredentialTable(seed: DemoSeed): string {
  return [
    '| user | password | roles | tenants |',
    '|---|---|---|---|',
    ...seed.users.map(
      (user) =>
        `| \`${user.username}\` | \`${user.password}\` | ${user.roles.join(', ')} | ${user.tenants.join(', ')} |`,
    ),
  ].join('\n');
}
