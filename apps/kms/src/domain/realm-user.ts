/**
 * Users of database realms (kms.md "Authentication and authorization"): created, changed and deleted by
 * an administrator (admin listener), stored in `kms_realm_users` with a PBKDF2 hash of the password.
 * Roles must be roles of the realm; tenants canonical UUIDv4. A change to the password, roles, tenants
 * or enabled flag ends the user's browser sessions, so the new rights apply at once.
 */
import {
  ConflictError,
  NotFoundError,
  ValidationError,
  hashPassword,
  isCanonicalUuidV4,
  isUniqueViolation,
  uuidv7,
  type Database,
} from '@cryptoutil/infra';
import {
  deleteRealmUser,
  deleteRealmUsers,
  findRealmUser,
  findRealmUserByName,
  insertRealmUser,
  listRealmUsers,
  updateRealmUser,
  type RealmUserRecord,
} from '../data/realm-user-repository.js';
import { deleteSessionsOf, deleteSessionsOfRealm } from '../data/session-repository.js';
import type { DemoUserStore } from './demo-seed.js';
import type { DatabaseRealm, Realms } from './realm.js';

export interface RealmUserInput {
  username: string;
  password: string;
  email?: string | undefined;
  roles: string[];
  tenants: string[];
  enabled: boolean;
  metadata: Record<string, unknown>;
  metadataSchema?: string | undefined;
}

export type RealmUserChange = { [K in keyof RealmUserInput]?: RealmUserInput[K] | undefined };

export interface RealmUserDeps {
  db: Database;
  realms: Realms;
  now: () => Date;
}

export const realmNotFound = (): NotFoundError =>
  new NotFoundError('realm_not_found', { detail: 'No enabled database realm with this id.' });

export const realmUserNotFound = (): NotFoundError =>
  new NotFoundError('realm_user_not_found', { detail: 'No user with this id in this realm.' });

function databaseRealm(deps: RealmUserDeps, realmId: string): DatabaseRealm {
  const realm = deps.realms.databaseRealms.get(realmId);
  if (!realm) throw realmNotFound();
  return realm;
}

function checkRolesAndTenants(realm: DatabaseRealm, change: RealmUserChange): void {
  const unknownRole = change.roles?.find((role) => !realm.roles.has(role));
  if (unknownRole !== undefined) {
    throw new ValidationError(`Role ${unknownRole} is not a role of realm ${realm.name}.`, {
      code: 'unknown_role',
      extensions: { field: 'roles' },
    });
  }
  const badTenant = change.tenants?.find((tenant) => !isCanonicalUuidV4(tenant));
  if (badTenant !== undefined) {
    throw new ValidationError('tenants must be canonical UUIDv4s.', {
      code: 'invalid_tenant_id',
      extensions: { field: 'tenants' },
    });
  }
}

const usernameTaken = () =>
  new ConflictError('username_taken', { detail: 'The realm already has a user with this username.' });

export async function createRealmUser(
  deps: RealmUserDeps,
  realmId: string,
  input: RealmUserInput,
): Promise<RealmUserRecord> {
  const realm = databaseRealm(deps, realmId);
  checkRolesAndTenants(realm, input);
  const at = deps.now().toISOString();
  const user: RealmUserRecord = {
    id: uuidv7(),
    realmId,
    username: input.username,
    passwordHash: await hashPassword(input.password),
    email: input.email ?? null,
    roles: input.roles,
    tenants: input.tenants,
    enabled: input.enabled,
    metadata: input.metadata,
    metadataSchema: input.metadataSchema ?? null,
    createdAt: at,
    updatedAt: at,
    lastLoginAt: null,
  };
  try {
    await insertRealmUser(deps.db, user);
  } catch (error) {
    if (isUniqueViolation(error)) throw usernameTaken();
    throw error;
  }
  return user;
}

export async function getRealmUser(deps: RealmUserDeps, realmId: string, id: string): Promise<RealmUserRecord> {
  databaseRealm(deps, realmId);
  const user = await findRealmUser(deps.db, realmId, id);
  if (!user) throw realmUserNotFound();
  return user;
}

export async function listUsersOfRealm(
  deps: RealmUserDeps,
  realmId: string,
  page: { page: number; size: number },
): Promise<{ items: RealmUserRecord[]; total: number }> {
  databaseRealm(deps, realmId);
  return listRealmUsers(deps.db, realmId, { offset: page.page * page.size, limit: page.size });
}

/** Changes the given fields; the username is fixed (it names the user in logs and sessions). */
export async function changeRealmUser(
  deps: RealmUserDeps,
  realmId: string,
  id: string,
  change: Omit<RealmUserChange, 'username'>,
): Promise<RealmUserRecord> {
  const realm = databaseRealm(deps, realmId);
  checkRolesAndTenants(realm, change);
  const user = await getRealmUser(deps, realmId, id);
  const updated: RealmUserRecord = {
    ...user,
    ...(change.password === undefined ? {} : { passwordHash: await hashPassword(change.password) }),
    ...(change.email === undefined ? {} : { email: change.email }),
    ...(change.roles === undefined ? {} : { roles: change.roles }),
    ...(change.tenants === undefined ? {} : { tenants: change.tenants }),
    ...(change.enabled === undefined ? {} : { enabled: change.enabled }),
    ...(change.metadata === undefined ? {} : { metadata: change.metadata }),
    ...(change.metadataSchema === undefined ? {} : { metadataSchema: change.metadataSchema }),
    updatedAt: deps.now().toISOString(),
  };
  await deps.db.transaction(async (tx) => {
    if ((await updateRealmUser(tx, updated)) === 0) throw realmUserNotFound();
    const rightsChanged = ['password', 'roles', 'tenants', 'enabled'].some(
      (field) => change[field as keyof typeof change] !== undefined,
    );
    if (rightsChanged) await deleteSessionsOf(tx, `${realmId}/${id}`);
  });
  return updated;
}

export async function removeRealmUser(deps: RealmUserDeps, realmId: string, id: string): Promise<void> {
  databaseRealm(deps, realmId);
  await deps.db.transaction(async (tx) => {
    if ((await deleteRealmUser(tx, realmId, id)) === 0) throw realmUserNotFound();
    await deleteSessionsOf(tx, `${realmId}/${id}`);
  });
}

/**
 * The demo seed's users in the database realm. An existing user keeps its password hash (hashing costs
 * 600,000 PBKDF2 iterations per user and start); its roles and tenants follow the seed.
 */
export function databaseDemoUserStore(deps: Omit<RealmUserDeps, 'realms'>): DemoUserStore {
  return {
    async upsert(user) {
      const existing = await findRealmUserByName(deps.db, user.realmId, user.username);
      const at = deps.now().toISOString();
      if (existing) {
        await updateRealmUser(deps.db, { ...existing, roles: user.roles, tenants: user.tenants, updatedAt: at });
        return;
      }
      await insertRealmUser(deps.db, {
        id: uuidv7(),
        realmId: user.realmId,
        username: user.username,
        passwordHash: await hashPassword(user.password),
        email: null,
        roles: user.roles,
        tenants: user.tenants,
        enabled: true,
        metadata: { demo: true },
        metadataSchema: null,
        createdAt: at,
        updatedAt: at,
        lastLoginAt: null,
      });
    },
    async clear(realmId) {
      await deps.db.transaction(async (tx) => {
        await deleteRealmUsers(tx, realmId);
        await deleteSessionsOfRealm(tx, realmId);
      });
    },
  };
}
