/**
 * Elastic key use cases: a named pool of versioned material keys, moved through the status machine.
 * Material for a new key is generated (and wrapped by the barrier) before the transaction opens,
 * so slow RSA generation never holds a database lock.
 */
import { isUniqueViolation, uuidv7 } from '@cryptoutil/infra';
import { keySpecFor, parseKeyAlgorithm } from '@cryptoutil/jose-authority';
import {
  elasticKeysDueForDestroy,
  findElasticKey,
  insertElasticKey,
  lockElasticKey,
  listElasticKeys as listRecords,
  updateElasticKey as updateRecord,
  type ElasticKeyFilter,
  type ElasticKeyRecord,
} from '../data/elastic-key-repository.js';
import { destroyMaterial, insertMaterialKey } from '../data/material-key-repository.js';
import type { Page, PageRequest } from '../data/paging.js';
import { isPendingDelete, nextStatus, type ElasticKeyEvent } from './elastic-key-status.js';
import { elasticKeyNotFound, nameTaken, providerUnsupported } from './errors.js';
import type { KmsContext, KmsService } from './kms-context.js';
import { newMaterialKey } from './material-key.js';
import { applyVersionSettings, type VersionSettings } from './version-settings.js';

export interface CreateElasticKeyInput {
  name: string;
  description: string;
  algorithm: string;
  provider: string;
  versioningAllowed: boolean;
  importAllowed: boolean;
}

async function withUniqueName<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (isUniqueViolation(error)) throw nameTaken();
    throw error;
  }
}

export async function createElasticKey(ctx: KmsContext, input: CreateElasticKeyInput): Promise<ElasticKeyRecord> {
  const algorithm = parseKeyAlgorithm(input.algorithm);
  if (input.provider !== 'Internal') throw providerUnsupported();
  const id = uuidv7();
  const now = ctx.now().toISOString();
  const material = input.importAllowed ? undefined : await newMaterialKey(ctx, id, keySpecFor(algorithm), algorithm);
  const status = nextStatus('creating', input.importAllowed ? 'await_import' : 'material_generated');
  await withUniqueName(() =>
    ctx.db.transaction(async (tx) => {
      await insertElasticKey(tx, ctx.tables, {
        id,
        ...input,
        algorithm: algorithm.name,
        status,
        createdAt: now,
        updatedAt: now,
        deleteAfter: null,
      });
      if (material) await insertMaterialKey(tx, ctx.tables, material, 1);
    }),
  );
  return getElasticKey(ctx, id);
}

export async function getElasticKey(ctx: KmsContext, id: string): Promise<ElasticKeyRecord> {
  const key = await findElasticKey(ctx.db, ctx.tables, id);
  if (!key) throw elasticKeyNotFound();
  return key;
}

/**
 * Renames or re-describes a key and sets its version policy and rotation settings, checked in the
 * transaction against the key as it is then (a concurrent rotation cannot slip in between).
 */
export async function updateElasticKey(
  ctx: KmsContext,
  id: string,
  changes: { name: string; description: string } & VersionSettings,
): Promise<ElasticKeyRecord> {
  await withUniqueName(() =>
    ctx.db.transaction(async (tx) => {
      if (!(await lockElasticKey(tx, ctx.tables, id))) throw elasticKeyNotFound();
      const key = await findElasticKey(tx, ctx.tables, id);
      if (!key) throw elasticKeyNotFound();
      await updateRecord(tx, ctx.tables, id, {
        name: changes.name,
        description: changes.description,
        ...applyVersionSettings(key, changes),
        updatedAt: ctx.now().toISOString(),
      });
    }),
  );
  return getElasticKey(ctx, id);
}

export function listElasticKeys(
  ctx: KmsContext,
  filter: ElasticKeyFilter,
  page: PageRequest,
): Promise<Page<ElasticKeyRecord>> {
  return listRecords(ctx.db, ctx.tables, filter, page);
}

/** Applies a status event inside a transaction, so two concurrent changes cannot both pass the check. */
async function transition(ctx: KmsContext, id: string, event: ElasticKeyEvent): Promise<ElasticKeyRecord> {
  await ctx.db.transaction(async (tx) => {
    const key = await findElasticKey(tx, ctx.tables, id);
    if (!key) throw elasticKeyNotFound();
    const status = nextStatus(key.status, event);
    const now = ctx.now();
    const deleteAfter =
      event === 'delete'
        ? new Date(now.getTime() + ctx.deleteGracePeriodMs).toISOString()
        : event === 'undelete'
          ? null
          : undefined;
    await updateRecord(tx, ctx.tables, id, {
      status,
      updatedAt: now.toISOString(),
      ...(deleteAfter === undefined ? {} : { deleteAfter }),
    });
  });
  return getElasticKey(ctx, id);
}

export const disableElasticKey = (ctx: KmsContext, id: string) => transition(ctx, id, 'disable');
export const enableElasticKey = (ctx: KmsContext, id: string) => transition(ctx, id, 'enable');
export const deleteElasticKey = (ctx: KmsContext, id: string) => transition(ctx, id, 'delete');
export const undeleteElasticKey = (ctx: KmsContext, id: string) => transition(ctx, id, 'undelete');

/** Destroys the material of keys whose grace period is over (run periodically); returns their ids. */
export async function destroyExpiredElasticKeys(ctx: KmsContext): Promise<string[]> {
  const due = await elasticKeysDueForDestroy(ctx.db, ctx.tables, ctx.now().toISOString());
  const destroyed: string[] = [];
  for (const key of due) {
    await ctx.db.transaction(async (tx) => {
      const current = await findElasticKey(tx, ctx.tables, key.id);
      if (!current || !isPendingDelete(current.status)) return;
      await updateRecord(tx, ctx.tables, key.id, {
        status: nextStatus(current.status, 'start_destroy'),
        updatedAt: ctx.now().toISOString(),
      });
      await destroyMaterial(tx, ctx.tables, key.id);
      await updateRecord(tx, ctx.tables, key.id, { status: 'finished_delete', updatedAt: ctx.now().toISOString() });
    });
    destroyed.push(key.id);
  }
  return destroyed;
}

/** The destroy sweep over every tenant; returns the ids of the keys whose material was destroyed. */
export async function destroyExpiredInEveryTenant(service: KmsService): Promise<string[]> {
  const destroyed: string[] = [];
  for (const tenant of await service.tenants.list()) {
    destroyed.push(...(await destroyExpiredElasticKeys(await service.tenants.context(tenant.id))));
  }
  return destroyed;
}
