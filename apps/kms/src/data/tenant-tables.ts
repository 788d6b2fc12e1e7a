/**
 * A tenant's tables live in its own schema (integration.md "Tenants"): PostgreSQL schema or attached
 * SQLite database `tenant_<uuid with '-' → '_'>`. Queries name them through these fragments, so a
 * statement can only ever reach the one tenant it was built for.
 */
import { sql, type SQL } from 'drizzle-orm';
import { assertSchemaName } from '@cryptoutil/infra';

export interface TenantTables {
  schema: string;
  elasticKeys: SQL;
  materialKeys: SQL;
  importWrappingKeys: SQL;
}

export function tenantSchemaName(tenantId: string): string {
  return assertSchemaName(`tenant_${tenantId.toLowerCase().replaceAll('-', '_')}`);
}

export function tenantTables(schema: string): TenantTables {
  assertSchemaName(schema);
  return {
    schema,
    elasticKeys: sql.raw(`"${schema}".kms_elastic_keys`),
    materialKeys: sql.raw(`"${schema}".kms_material_keys`),
    importWrappingKeys: sql.raw(`"${schema}".kms_import_wrapping_keys`),
  };
}
