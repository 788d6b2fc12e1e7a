/**
 * Demo data from `deployments/identity/config/demo-seed.yml` only (the single source): users and
 * clients, applied idempotently by name; `reset` deletes every demo user and client first.
 */
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { parse } from 'yaml';
import { z } from 'zod';
import { ConfigError, hashPassword, uuidv7, type Database } from '@cryptoutil/infra';
import { deleteDemoClients, findClient, insertClient } from '../data/client-repository.js';
import { deleteDemoUsers, findUserByUsername, insertUser } from '../data/user-repository.js';

const seedSchema = z.strictObject({
  demo_only: z.literal(true),
  users: z.array(
    z.strictObject({
      username: z.string().min(1),
      password: z.string().min(8),
      name: z.string().optional(),
      email: z.string().optional(),
      roles: z.array(z.string()).default([]),
      tenant_id: z.uuid().optional(),
    }),
  ),
  clients: z.array(
    z
      .looseObject({
        client_id: z.string().min(1),
        client_secret_file: z.string().optional(),
        trusted: z.boolean().default(false),
        tenant_id: z.uuid().optional(),
      })
      .refine((client) => !('client_secret' in client), 'client secrets belong in client_secret_file'),
  ),
});

export type DemoSeed = z.output<typeof seedSchema>;

export async function readDemoSeed(path: string): Promise<DemoSeed & { baseDir: string }> {
  const result = seedSchema.safeParse(parse(await readFile(path, 'utf8')));
  if (!result.success) {
    const issue = result.error.issues[0];
    throw new ConfigError(`${path}: ${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'invalid'}`);
  }
  return { ...result.data, baseDir: dirname(path) };
}

export interface SeedReport {
  users: string[];
  clients: string[];
}

export async function applyDemoSeed(
  db: Database,
  seed: DemoSeed & { baseDir: string },
  options: { reset: boolean },
): Promise<SeedReport> {
  if (options.reset) {
    await deleteDemoUsers(db);
    await deleteDemoClients(db);
  }
  const now = new Date().toISOString();
  const report: SeedReport = { users: [], clients: [] };
  for (const user of seed.users) {
    if (await findUserByUsername(db, user.username)) continue;
    await insertUser(
      db,
      {
        id: uuidv7(),
        username: user.username,
        passwordHash: await hashPassword(user.password),
        email: user.email ?? null,
        name: user.name ?? null,
        roles: user.roles,
        tenantId: user.tenant_id ?? null,
        enabled: true,
        totpRequired: false,
        demo: true,
      },
      now,
    );
    report.users.push(user.username);
  }
  for (const client of seed.clients) {
    if (await findClient(db, client.client_id)) continue;
    const { client_id: clientId, client_secret_file: secretFile, trusted, tenant_id: tenantId, ...metadata } = client;
    const secret = secretFile ? (await readFile(resolve(seed.baseDir, secretFile), 'utf8')).trim() : undefined;
    await insertClient(
      db,
      {
        clientId,
        metadata,
        secretHash: secret ? await hashPassword(secret) : null,
        trusted,
        tenantId: tenantId ?? null,
        demo: true,
      },
      now,
    );
    report.clients.push(clientId);
  }
  return report;
}
