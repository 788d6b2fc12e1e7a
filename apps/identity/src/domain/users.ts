/**
 * User administration (identity.md "Admin API"): create, read, update, delete, list. Passwords arrive in
 * clear over the admin listener and are stored only as PBKDF2 hashes; nothing here ever returns a hash.
 */
import {
  ConflictError,
  NotFoundError,
  hashPassword,
  isUniqueViolation,
  uuidv7,
  type Database,
} from '@cryptoutil/infra';
import {
  deleteUser as deleteUserRow,
  findUserById,
  insertUser,
  listUsers as listUserRows,
  updateUser as updateUserRow,
  type UserRecord,
} from '../data/user-repository.js';
import {
  deleteWebAuthnCredential,
  listWebAuthnCredentials,
  type WebAuthnCredentialRecord,
} from '../data/webauthn-credential-repository.js';

export interface NewUser {
  username: string;
  password: string;
  email?: string | undefined;
  name?: string | undefined;
  roles?: string[] | undefined;
  tenantId?: string | undefined;
  enabled?: boolean | undefined;
  totpRequired?: boolean | undefined;
  passkeyRequired?: boolean | undefined;
}

export interface UserUpdate {
  password?: string | undefined;
  email?: string | null | undefined;
  name?: string | null | undefined;
  roles?: string[] | undefined;
  tenantId?: string | null | undefined;
  enabled?: boolean | undefined;
  /** Clears a lockout and the failure count. */
  unlock?: boolean | undefined;
  totpRequired?: boolean | undefined;
  resetTotp?: boolean | undefined;
  passkeyRequired?: boolean | undefined;
}

const notFound = (id: string) => new NotFoundError('user_not_found', { detail: `No user ${id}.` });

export async function createUser(db: Database, input: NewUser): Promise<UserRecord> {
  const id = uuidv7();
  try {
    await insertUser(
      db,
      {
        id,
        username: input.username,
        passwordHash: await hashPassword(input.password),
        email: input.email ?? null,
        name: input.name ?? null,
        roles: input.roles ?? [],
        tenantId: input.tenantId ?? null,
        enabled: input.enabled ?? true,
        totpRequired: input.totpRequired ?? false,
        passkeyRequired: input.passkeyRequired ?? false,
        demo: false,
      },
      new Date().toISOString(),
    );
  } catch (error) {
    if (isUniqueViolation(error)) {
      throw new ConflictError('username_taken', { detail: `A user named ${input.username} exists.` });
    }
    throw error;
  }
  return getUser(db, id);
}

export async function getUser(db: Database, id: string): Promise<UserRecord> {
  const user = await findUserById(db, id);
  if (!user) throw notFound(id);
  return user;
}

export async function updateUser(db: Database, id: string, input: UserUpdate): Promise<UserRecord> {
  const { password, ...changes } = input;
  const passwordHash = password === undefined ? undefined : await hashPassword(password);
  const updated = await updateUserRow(
    db,
    id,
    { ...changes, ...(passwordHash ? { passwordHash, unlock: true } : {}) },
    new Date().toISOString(),
  );
  if (!updated) throw notFound(id);
  return getUser(db, id);
}

export async function deleteUser(db: Database, id: string): Promise<void> {
  if (!(await deleteUserRow(db, id))) throw notFound(id);
}

export async function listUsers(db: Database, page: { page: number; size: number }) {
  const { users, total } = await listUserRows(db, { offset: page.page * page.size, limit: page.size });
  return { items: users, page: page.page, size: page.size, total };
}

/** A user's passkeys (404 for an unknown user). */
export async function listPasskeys(db: Database, userId: string): Promise<WebAuthnCredentialRecord[]> {
  await getUser(db, userId);
  return listWebAuthnCredentials(db, userId);
}

export async function deletePasskey(db: Database, userId: string, credentialId: string): Promise<void> {
  await getUser(db, userId);
  if (!(await deleteWebAuthnCredential(db, userId, credentialId))) {
    throw new NotFoundError('passkey_not_found', { detail: `No passkey ${credentialId} for user ${userId}.` });
  }
}
