/**
 * OAuth client administration (identity.md "Admin API"): create, read, update, delete, list, and
 * secret rotation. A generated secret is shown once, in the answer that created it, and stored only as
 * a PBKDF2 hash. Metadata is checked by oidc-provider's own client schema before it is stored, so a
 * client that was accepted here also loads at the token endpoint.
 */
import { randomBytes } from 'node:crypto';
import {
  ConflictError,
  NotFoundError,
  ValidationError,
  hashPassword,
  isUniqueViolation,
  uuidv4,
  type Database,
} from '@cryptoutil/infra';
import {
  deleteClient as deleteClientRow,
  findClient,
  insertClient,
  listClients as listClientRows,
  updateClient as updateClientRow,
  type ClientRecord,
} from '../data/client-repository.js';
import { providerClientMetadata } from '../provider/client-metadata.js';

/** Checks metadata the way the provider will when it loads the client; throws with a description. */
export type ClientMetadataValidator = (metadata: Record<string, unknown>) => Promise<void>;

export interface NewClient {
  clientId?: string | undefined;
  metadata: Record<string, unknown>;
  trusted?: boolean | undefined;
  tenantId?: string | undefined;
}

export interface ClientUpdate {
  /** Metadata fields to change; the others keep their values. */
  metadata?: Record<string, unknown> | undefined;
  trusted?: boolean | undefined;
  tenantId?: string | null | undefined;
}

export interface ClientWithSecret {
  client: ClientRecord;
  /** Only when a secret was generated: shown once. */
  clientSecret?: string;
}

const SECRET_AUTH_METHODS = new Set(['client_secret_basic', 'client_secret_post']);
/** A stand-in hash so validation sees a confidential client as having a secret. */
const PLACEHOLDER_HASH = '$pbkdf2-sha256$i=600000$AAAA$AAAA';

const notFound = (clientId: string) => new NotFoundError('client_not_found', { detail: `No client ${clientId}.` });

export function usesSecret(metadata: Record<string, unknown>): boolean {
  const method = metadata.token_endpoint_auth_method;
  return method === undefined || (typeof method === 'string' && SECRET_AUTH_METHODS.has(method));
}

export function generateClientSecret(): string {
  return randomBytes(32).toString('base64url');
}

async function validated(
  validate: ClientMetadataValidator,
  clientId: string,
  metadata: Record<string, unknown>,
): Promise<void> {
  try {
    await validate(
      providerClientMetadata({ clientId, metadata, secretHash: usesSecret(metadata) ? PLACEHOLDER_HASH : null }),
    );
  } catch (error) {
    const description =
      error instanceof Error && 'error_description' in error ? String(error.error_description) : 'invalid metadata';
    throw new ValidationError(description, { code: 'invalid_client_metadata' });
  }
}

export async function createClient(
  db: Database,
  validate: ClientMetadataValidator,
  input: NewClient,
): Promise<ClientWithSecret> {
  const clientId = input.clientId ?? uuidv4();
  await validated(validate, clientId, input.metadata);
  const clientSecret = usesSecret(input.metadata) ? generateClientSecret() : undefined;
  try {
    await insertClient(
      db,
      {
        clientId,
        metadata: input.metadata,
        secretHash: clientSecret ? await hashPassword(clientSecret) : null,
        trusted: input.trusted ?? false,
        tenantId: input.tenantId ?? null,
        demo: false,
      },
      new Date().toISOString(),
    );
  } catch (error) {
    if (isUniqueViolation(error))
      throw new ConflictError('client_id_taken', { detail: `A client ${clientId} exists.` });
    throw error;
  }
  return { client: await getClient(db, clientId), ...(clientSecret ? { clientSecret } : {}) };
}

export async function getClient(db: Database, clientId: string): Promise<ClientRecord> {
  const client = await findClient(db, clientId);
  if (!client) throw notFound(clientId);
  return client;
}

/**
 * Changes metadata fields, trust or tenant. Moving a client to a secret method gives it a new secret (returned
 * once); moving it away from one drops the stored hash.
 */
export async function updateClient(
  db: Database,
  validate: ClientMetadataValidator,
  clientId: string,
  input: ClientUpdate,
): Promise<ClientWithSecret> {
  const current = await getClient(db, clientId);
  let clientSecret: string | undefined;
  let secretHash: string | null | undefined;
  const metadata = input.metadata ? { ...current.metadata, ...input.metadata } : undefined;
  if (metadata) {
    await validated(validate, clientId, metadata);
    if (!usesSecret(metadata)) secretHash = null;
    else if (!current.secretHash) {
      clientSecret = generateClientSecret();
      secretHash = await hashPassword(clientSecret);
    }
  }
  await updateClientRow(
    db,
    clientId,
    { metadata, trusted: input.trusted, tenantId: input.tenantId, secretHash },
    new Date().toISOString(),
  );
  return { client: await getClient(db, clientId), ...(clientSecret ? { clientSecret } : {}) };
}

/** A new secret replaces the old one at once; the old one stops working for new token requests. */
export async function rotateClientSecret(db: Database, clientId: string): Promise<ClientWithSecret> {
  const current = await getClient(db, clientId);
  if (!usesSecret(current.metadata)) {
    throw new ConflictError('no_client_secret', { detail: `Client ${clientId} does not authenticate with a secret.` });
  }
  const clientSecret = generateClientSecret();
  await updateClientRow(db, clientId, { secretHash: await hashPassword(clientSecret) }, new Date().toISOString());
  return { client: await getClient(db, clientId), clientSecret };
}

export async function deleteClient(db: Database, clientId: string): Promise<void> {
  if (!(await deleteClientRow(db, clientId))) throw notFound(clientId);
}

export async function listClients(db: Database, page: { page: number; size: number }) {
  const { clients, total } = await listClientRows(db, { offset: page.page * page.size, limit: page.size });
  return { items: clients, page: page.page, size: page.size, total };
}
