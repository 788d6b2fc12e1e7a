import { describe, expect, it } from '@jest/globals';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { ConfigError, hashPassword } from '@cryptoutil/infra';
import { kmsConfigSchema } from '../src/config.js';
import { buildRealms, loadRealms, realmFileSchema } from '../src/domain/realm.js';

const CONFIG_DIR = fileURLToPath(new URL('../../../deployments/kms/config/', import.meta.url));
const REALM = '0b9c3e4a-5f61-4d2b-8a7c-9e0f1a2b3c4d';
const USER = '01a20f00-0000-7000-8000-000000000001';

const file = (realm: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
  realmFileSchema.parse({ version: 1, realms: [{ id: REALM, name: 'local', type: 'file', ...realm }], ...extra });

function refusal(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error('no error');
}

describe('file realm', () => {
  const hash = '$pbkdf2-sha256$i=1000$c2FsdHNhbHRzYWx0c2FsdA==$aGFzaGhhc2hoYXNoaGFzaA==';

  it('expands roles through inheritance into scopes', () => {
    const realms = buildRealms(
      file({
        roles: [
          { name: 'reader', permissions: ['kms:read'] },
          { name: 'signer', permissions: ['kms:sign'], inherits: ['reader'] },
          { name: 'lead', permissions: ['kms:pool:create'], inherits: ['signer'] },
        ],
        users: [{ id: USER, username: 'ops', password_hash: hash, roles: ['lead'] }],
      }),
      { demo: false },
    );
    expect(realms.users.get('ops')?.scopes.sort()).toEqual(['kms:pool:create', 'kms:read', 'kms:sign']);
    expect(realms.priority).toEqual(['file', 'database', 'oidc']);
  });

  it('names the bad entry: duplicate ids and usernames, unknown roles and permissions, cycles, bad hashes', () => {
    const user = { id: USER, username: 'ops', password_hash: hash };
    expect(
      refusal(() =>
        buildRealms(
          realmFileSchema.parse({
            version: 1,
            realms: [
              { id: REALM, name: 'a', type: 'file' },
              { id: REALM, name: 'b', type: 'file' },
            ],
          }),
          { demo: false },
        ),
      ),
    ).toBe(`realms[1]: duplicate id ${REALM}`);
    expect(
      refusal(() =>
        buildRealms(file({ users: [user, { ...user, id: '01a20f00-0000-7000-8000-000000000002' }] }), { demo: false }),
      ),
    ).toBe('realms[0].users[1]: duplicate username ops');
    expect(refusal(() => buildRealms(file({ users: [{ ...user, roles: ['ghost'] }] }), { demo: false }))).toBe(
      'realms[0].users[0]: unknown role ghost',
    );
    expect(
      refusal(() => buildRealms(file({ roles: [{ name: 'r', permissions: ['kms:everything'] }] }), { demo: false })),
    ).toBe('realms[0].roles[0]: unknown permission kms:everything');
    expect(
      refusal(() =>
        buildRealms(
          file({
            roles: [
              { name: 'a', inherits: ['b'] },
              { name: 'b', inherits: ['a'] },
            ],
            users: [{ ...user, roles: ['a'] }],
          }),
          { demo: false },
        ),
      ),
    ).toBe('realms[0].roles[0]: role inheritance cycle a → b → a');
    expect(
      refusal(() => buildRealms(file({ users: [{ ...user, password_hash: 'bcrypt$2b$xyz' }] }), { demo: false })),
    ).toMatch(/^realms\[0\]\.users\[0\]\.password_hash: not a/);
    expect(refusal(() => buildRealms(file({ users: [{ ...user, tenants: ['abc'] }] }), { demo: false }))).toBe(
      'realms[0].users[0].tenants: abc is not a canonical UUIDv4',
    );
    expect(realmFileSchema.safeParse({ version: 1, realms: [{ id: REALM, name: 'x', type: 'ldap' }] }).success).toBe(
      false,
    );
  });

  it('accepts plaintext passwords only in demo mode, with a warning', () => {
    const demoUser = { id: USER, username: 'demo-user', password: 'demo-user-password' };
    expect(refusal(() => buildRealms(file({ users: [demoUser] }), { demo: false }))).toBe(
      'realms[0].users[0].password: plaintext passwords are only accepted with --demo',
    );
    const realms = buildRealms(file({ users: [demoUser] }), { demo: true });
    expect(realms.users.get('demo-user')?.demoPassword).toBe('demo-user-password');
    expect(realms.warnings[0]).toMatch(/PLAINTEXT demo password/);
  });

  it('reads realms.yml, treats a missing file as empty, and names the file in errors', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'realms-'));
    expect((await loadRealms(join(dir, 'absent.yml'), { demo: false })).users.size).toBe(0);
    const bad = join(dir, 'bad.yml');
    await writeFile(bad, `version: 1\nrealms:\n  - id: ${REALM}\n    name: x\n    type: ldap\n`);
    await expect(loadRealms(bad, { demo: false })).rejects.toThrow(`${bad}: realms[0].type`);
    const cyclic = join(dir, 'dup.yml');
    await writeFile(
      cyclic,
      `version: 1\nrealms:\n  - {id: ${REALM}, name: a, type: file}\n  - {id: ${REALM}, name: b, type: file}\n`,
    );
    await expect(loadRealms(cyclic, { demo: false })).rejects.toThrow(`${cyclic}: realms[1]: duplicate id`);
  });

  it('ships a sample realms.yml that loads, and a JSON Schema that matches the parser', async () => {
    const sample = await loadRealms(join(CONFIG_DIR, 'realms.yml'), { demo: false });
    expect(sample.users.size).toBeGreaterThan(0);
    const shipped = JSON.parse(await readFile(join(CONFIG_DIR, 'realms.schema.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    expect(shipped).toEqual(JSON.parse(JSON.stringify(z.toJSONSchema(realmFileSchema, { io: 'input' }))));
  });

  it('refuses configured API keys and certificates with unknown scopes or plaintext keys', async () => {
    const base = { auth: { api_keys: [{ id: 'k', key_hash: await hashPassword('x', 1000), scopes: ['kms:nope'] }] } };
    expect(kmsConfigSchema.safeParse(base).success).toBe(false);
    expect(
      kmsConfigSchema.safeParse({ auth: { api_keys: [{ id: 'k', key_hash: 'plain-key', scopes: ['kms:read'] }] } })
        .success,
    ).toBe(false);
    expect(
      kmsConfigSchema.safeParse({ auth: { client_certificates: [{ common_name: 'batch', scopes: ['kms:encrypt'] }] } })
        .success,
    ).toBe(true);
  });
});
