/**
 * The file realm (kms.md "Authentication and authorization"): `realms.yml` lists realms of users and
 * roles; a role grants permissions (KMS scopes) and inherits other roles. The file is checked whole at
 * startup and every problem names its entry (`realms[0].users[1]: duplicate username ops`).
 * Passwords are PBKDF2 hashes; plaintext `password` is accepted only in demo mode, with a warning.
 */
import { readFile } from 'node:fs/promises';
import { parse } from 'yaml';
import { z } from 'zod';
import { ConfigError, formatKey, isCanonicalUuid, isCanonicalUuidV4, isPasswordHash } from '@cryptoutil/infra';
import { KMS_KNOWN_SCOPES } from './scopes.js';

const scope = z.string().min(1);

export const realmFileSchema = z.strictObject({
  version: z.literal(1),
  /** Realm types in the order they are asked (default file, then database). */
  priority: z.array(z.enum(['file', 'database', 'oidc'])).default(['file', 'database', 'oidc']),
  realms: z
    .array(
      z.strictObject({
        id: z.string().describe('UUID'),
        name: z.string().min(1).max(128),
        description: z.string().max(1024).default(''),
        type: z.enum(['file', 'database', 'oidc']),
        enabled: z.boolean().default(true),
        roles: z
          .array(
            z.strictObject({
              name: z.string().min(1).max(128),
              description: z.string().max(1024).default(''),
              /** KMS scopes, coarse (`kms:write`) or fine (`kms:encrypt`). */
              permissions: z.array(scope).default([]),
              inherits: z.array(z.string().min(1)).default([]),
            }),
          )
          .default([]),
        users: z
          .array(
            z.strictObject({
              id: z.string().describe('UUIDv7'),
              username: z.string().regex(/^[A-Za-z0-9._@-]{1,128}$/),
              /** `$pbkdf2-sha256$i=600000$<b64 salt>$<b64 hash>`. */
              password_hash: z.string().optional(),
              /** Demo only (`--demo`): a plaintext password, refused otherwise. */
              password: z.string().min(8).optional(),
              email: z.string().optional(),
              roles: z.array(z.string().min(1)).default([]),
              /** Canonical UUIDv4 tenant ids this user acts for. */
              tenants: z.array(z.string()).default([]),
              enabled: z.boolean().default(true),
              metadata: z.record(z.string(), z.unknown()).default({}),
            }),
          )
          .default([]),
      }),
    )
    .default([]),
});

export type RealmFile = z.output<typeof realmFileSchema>;

/** A user ready to authenticate: the hash (or demo plaintext) and the scopes its roles grant. */
export interface RealmUser {
  realmId: string;
  userId: string;
  username: string;
  passwordHash?: string;
  demoPassword?: string;
  scopes: string[];
  roles: string[];
  tenants: string[];
}

export interface RoleDefinition {
  permissions: string[];
  inherits: string[];
}

/** A realm whose users live in `kms_realm_users`; its roles come from the realm file (or the demo seed). */
export interface DatabaseRealm {
  id: string;
  name: string;
  roles: ReadonlyMap<string, RoleDefinition>;
}

export interface Realms {
  priority: RealmFile['priority'];
  /** Enabled users of enabled file realms, by username; the first realm in file order wins a name. */
  users: ReadonlyMap<string, RealmUser>;
  /** Enabled database realms, asked in file order. */
  databaseRealms: ReadonlyMap<string, DatabaseRealm>;
  /** Lines to log as warnings on every start (plaintext demo passwords). */
  warnings: string[];
}

/** No realms at all (no realm file). */
export const NO_REALMS: Realms = {
  priority: ['file', 'database', 'oidc'],
  users: new Map(),
  databaseRealms: new Map(),
  warnings: [],
};

/** Permissions of a role and every role it inherits, transitively; a cycle is a configuration error. */
export function rolePermissions(
  roles: ReadonlyMap<string, RoleDefinition>,
  name: string,
  where: string,
  path: string[] = [],
): string[] {
  if (path.includes(name)) throw new ConfigError(`${where}: role inheritance cycle ${[...path, name].join(' → ')}`);
  const role = roles.get(name);
  if (!role) throw new ConfigError(`${where}: unknown role ${name}`);
  return [
    ...role.permissions,
    ...role.inherits.flatMap((parent) => rolePermissions(roles, parent, where, [...path, name])),
  ];
}

/** A realm's roles by name, each permission a KMS scope and every inherited role defined, no cycles. */
export function buildRoles(
  roles: readonly { name: string; permissions: string[]; inherits: string[] }[],
  at: string,
): Map<string, RoleDefinition> {
  const byName = new Map<string, RoleDefinition>();
  for (const [o, role] of roles.entries()) {
    if (byName.has(role.name)) throw new ConfigError(`${at}.roles[${o}]: duplicate role ${role.name}`);
    const unknown = role.permissions.find((permission) => !KMS_KNOWN_SCOPES.has(permission));
    if (unknown) throw new ConfigError(`${at}.roles[${o}]: unknown permission ${unknown}`);
    byName.set(role.name, { permissions: role.permissions, inherits: role.inherits });
  }
  for (const [o, role] of roles.entries()) rolePermissions(byName, role.name, `${at}.roles[${o}]`);
  return byName;
}

/** The scopes that `roles` grant in a realm; a role the realm does not define grants nothing. */
export function scopesOfRoles(realm: DatabaseRealm, roles: readonly string[]): string[] {
  const known = roles.filter((role) => realm.roles.has(role));
  return [...new Set(known.flatMap((role) => rolePermissions(realm.roles, role, `realm ${realm.name}`)))];
}

/** Adds a database realm (the demo seed's) to a realm configuration; its id must be new. */
export function withDatabaseRealm(
  realms: Realms,
  realm: { id: string; name: string; roles: readonly { name: string; permissions: string[]; inherits: string[] }[] },
): Realms {
  if (realms.databaseRealms.has(realm.id)) throw new ConfigError(`realm ${realm.id}: duplicate id`);
  const databaseRealms = new Map(realms.databaseRealms);
  databaseRealms.set(realm.id, {
    id: realm.id,
    name: realm.name,
    roles: buildRoles(realm.roles, `realm ${realm.name}`),
  });
  return { ...realms, databaseRealms };
}

/** Checks a parsed realm file; throws a `ConfigError` naming the first bad entry. */
export function buildRealms(file: RealmFile, options: { demo: boolean }): Realms {
  const users = new Map<string, RealmUser>();
  const databaseRealms = new Map<string, DatabaseRealm>();
  const warnings: string[] = [];
  const realmIds = new Set<string>();
  const realmNames = new Set<string>();
  for (const [r, realm] of file.realms.entries()) {
    const at = `realms[${r}]`;
    if (!isCanonicalUuid(realm.id)) throw new ConfigError(`${at}.id: must be a canonical UUID`);
    if (realmIds.has(realm.id)) throw new ConfigError(`${at}: duplicate id ${realm.id}`);
    realmIds.add(realm.id);
    if (realmNames.has(realm.name)) throw new ConfigError(`${at}: duplicate name ${realm.name}`);
    realmNames.add(realm.name);
    const roles = buildRoles(realm.roles, at);
    if (realm.type === 'database') {
      if (realm.users.length > 0) {
        throw new ConfigError(`${at}.users: a database realm keeps its users in kms_realm_users, not in the file`);
      }
      if (realm.enabled) databaseRealms.set(realm.id, { id: realm.id, name: realm.name, roles });
      continue;
    }
    const names = new Set<string>();
    const userIds = new Set<string>();
    for (const [u, user] of realm.users.entries()) {
      const where = `${at}.users[${u}]`;
      if (!isCanonicalUuid(user.id)) throw new ConfigError(`${where}.id: must be a canonical UUID`);
      if (userIds.has(user.id)) throw new ConfigError(`${where}: duplicate id ${user.id}`);
      if (names.has(user.username)) throw new ConfigError(`${where}: duplicate username ${user.username}`);
      userIds.add(user.id);
      names.add(user.username);
      if (user.password_hash !== undefined && !isPasswordHash(user.password_hash)) {
        throw new ConfigError(`${where}.password_hash: not a $pbkdf2-sha256$i=<n>$<salt>$<hash> hash`);
      }
      if (user.password !== undefined && !options.demo) {
        throw new ConfigError(`${where}.password: plaintext passwords are only accepted with --demo`);
      }
      if ((user.password_hash === undefined) === (user.password === undefined)) {
        throw new ConfigError(`${where}: give exactly one of password_hash and password`);
      }
      const badTenant = user.tenants.find((tenant) => !isCanonicalUuidV4(tenant));
      if (badTenant !== undefined) throw new ConfigError(`${where}.tenants: ${badTenant} is not a canonical UUIDv4`);
      const scopes = [...new Set(user.roles.flatMap((role) => rolePermissions(roles, role, where)))];
      if (user.password !== undefined) {
        warnings.push(`${where} (${user.username}) has a PLAINTEXT demo password: never use this realm file for real`);
      }
      if (!realm.enabled || !user.enabled || realm.type !== 'file' || users.has(user.username)) continue;
      users.set(user.username, {
        realmId: realm.id,
        userId: user.id,
        username: user.username,
        ...(user.password_hash ? { passwordHash: user.password_hash } : {}),
        ...(user.password ? { demoPassword: user.password } : {}),
        scopes,
        roles: user.roles,
        tenants: user.tenants,
      });
    }
  }
  return { priority: file.priority, users, databaseRealms, warnings };
}

/** Reads and checks `realms.yml`; a missing file is an empty realm configuration. */
export async function loadRealms(path: string | undefined, options: { demo: boolean }): Promise<Realms> {
  if (path === undefined) return buildRealms(realmFileSchema.parse({ version: 1 }), options);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      return buildRealms(realmFileSchema.parse({ version: 1 }), options);
    }
    throw error;
  }
  const result = realmFileSchema.safeParse(parse(text));
  if (!result.success) {
    const issue = result.error.issues[0];
    throw new ConfigError(`${path}: ${issue ? formatKey(issue.path) : ''}: ${issue?.message ?? 'invalid'}`);
  }
  try {
    return buildRealms(result.data, options);
  } catch (error) {
    if (error instanceof ConfigError) throw new ConfigError(`${path}: ${error.message}`);
    throw error;
  }
}
