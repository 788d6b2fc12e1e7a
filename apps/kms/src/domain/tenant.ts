/**
 * Tenants (integration.md "Tenants"): canonical UUIDv4 ids, each with its own schema
 * (`tenant_<uuid>`: a PostgreSQL schema or an attached SQLite database) holding its elastic and material
 * keys. The directory creates a tenant's schema with the tenant, hands out per-tenant contexts (cached),
 * and keeps a `default` tenant for callers that carry no tenant (single-tenant deployments).
 */
import {
  ConflictError,
  NotFoundError,
  ValidationError,
  isCanonicalUuidV4,
  isUniqueViolation,
  migrate,
} from '@cryptoutil/infra';
import { randomUUID } from 'node:crypto';
import { KMS_TENANT_MIGRATIONS } from '../data/schema.js';
import {
  adoptUntenantedKeys,
  deleteTenant,
  findTenant,
  findTenantByName,
  insertTenant,
  listTenants,
  type TenantRecord,
} from '../data/tenant-repository.js';
import { tenantSchemaName, tenantTables } from '../data/tenant-tables.js';
import type { KmsBase, KmsContext } from './kms-context.js';

export const DEFAULT_TENANT_NAME = 'default';

export const tenantNotFound = (): NotFoundError => new NotFoundError('tenant_not_found', { detail: 'No such tenant.' });

export class TenantDirectory {
  readonly #base: KmsBase;
  readonly #contexts = new Map<string, Promise<KmsContext>>();
  #defaultTenant: TenantRecord | undefined;

  private constructor(base: KmsBase) {
    this.#base = base;
  }

  /** Opens the directory: the default tenant exists afterwards and holds any keys from before tenants. */
  static async open(base: KmsBase): Promise<TenantDirectory> {
    const directory = new TenantDirectory(base);
    const tenant = await directory.ensureNamed(DEFAULT_TENANT_NAME);
    directory.#defaultTenant = tenant;
    const { db, tables } = await directory.context(tenant.id);
    await db.transaction((tx) => adoptUntenantedKeys(tx, tables));
    return directory;
  }

  get defaultTenant(): TenantRecord {
    return this.#defaultTenant as TenantRecord;
  }

  /** Creates a tenant and its schema; a taken name is `409`. */
  async create(input: { id?: string; name: string }): Promise<TenantRecord> {
    const id = input.id ?? randomUUID();
    if (!isCanonicalUuidV4(id)) {
      throw new ValidationError('A tenant id is a canonical UUIDv4.', { code: 'invalid_tenant_id' });
    }
    const tenant = { id, name: input.name, createdAt: this.#base.now().toISOString() };
    try {
      await insertTenant(this.#base.db, tenant);
    } catch (error) {
      if (!isUniqueViolation(error)) throw error;
      throw new ConflictError('tenant_exists', { detail: 'A tenant with this id or name already exists.' });
    }
    await this.context(id);
    return tenant;
  }

  /** The tenant with this id, registered (named by its id) if it is new: tenants named by a trusted credential. */
  async ensure(id: string): Promise<TenantRecord> {
    const found = await findTenant(this.#base.db, id);
    if (found) return found;
    try {
      return await this.create({ id, name: id });
    } catch (error) {
      // Another request or instance registered it first.
      const raced = await findTenant(this.#base.db, id);
      if (raced) return raced;
      throw error;
    }
  }

  /** The tenant with this name, created with a fresh UUIDv4 if there is none. */
  async ensureNamed(name: string): Promise<TenantRecord> {
    const found = await findTenantByName(this.#base.db, name);
    if (found) return found;
    try {
      return await this.create({ name });
    } catch (error) {
      const raced = await findTenantByName(this.#base.db, name);
      if (raced) return raced;
      throw error;
    }
  }

  find(id: string): Promise<TenantRecord | undefined> {
    return findTenant(this.#base.db, id);
  }

  findByName(name: string): Promise<TenantRecord | undefined> {
    return findTenantByName(this.#base.db, name);
  }

  list(): Promise<TenantRecord[]> {
    return listTenants(this.#base.db);
  }

  /** The use-case context of a registered tenant; its schema is brought up to date once per process. */
  context(id: string): Promise<KmsContext> {
    let context = this.#contexts.get(id);
    if (!context) {
      context = this.#open(id);
      this.#contexts.set(id, context);
      context.catch(() => this.#contexts.delete(id));
    }
    return context;
  }

  /** The context of a tenant named by a trusted credential, registering the tenant first if it is new. */
  async provision(id: string): Promise<KmsContext> {
    const cached = this.#contexts.get(id);
    if (cached) return cached;
    await this.ensure(id);
    return this.context(id);
  }

  async #open(id: string): Promise<KmsContext> {
    if (!(await findTenant(this.#base.db, id))) throw tenantNotFound();
    const schema = tenantSchemaName(id);
    const db = await this.#base.db.schema(schema);
    await migrate(db, KMS_TENANT_MIGRATIONS, { schema });
    return { ...this.#base, db, tenantId: id, tables: tenantTables(schema) };
  }

  /** Deletes a tenant and its schema with every key in it. The default tenant stays. */
  async remove(id: string): Promise<void> {
    if (id === this.defaultTenant.id) {
      throw new ConflictError('tenant_is_default', { detail: 'The default tenant cannot be deleted.' });
    }
    if ((await deleteTenant(this.#base.db, id)) === 0) throw tenantNotFound();
    this.#contexts.delete(id);
    await this.#base.db.dropSchema(tenantSchemaName(id));
  }
}
