/**
 * Automatic rotation (kms.md "Automatic rotation"): a key with a `rotation_period` gets a new version
 * once its latest usable version is older than the period, without a request. Several instances may
 * sweep at once: each rotation is a compare-and-set on the latest version, so one wins and the others
 * find the key rotated.
 */
import { rotationCandidates } from '../data/elastic-key-repository.js';
import type { MaterialKeyRecord } from '../data/material-key-repository.js';
import { getElasticKey } from './elastic-key.js';
import type { KmsContext, KmsService } from './kms-context.js';
import { rotateAfter } from './material-key.js';
import { afterPeriod, parseRotationPeriod } from './rotation-period.js';

export interface ScheduledRotation {
  tenantId: string;
  elasticKeyId: string;
  materialKeyId: string;
  version: number;
}

/** What to do when one key cannot be rotated; by default the sweep stops with the error. */
export type RotationFailure = (elasticKeyId: string, error: unknown) => void;

const stop: RotationFailure = (_id, error) => {
  throw error;
};

/**
 * Rotates the keys of one tenant that are due at `ctx.now()`; returns the versions this call added.
 * With `onFailure` that does not throw, one key that cannot be rotated does not hold up the others.
 */
export async function rotateDueElasticKeys(
  ctx: KmsContext,
  onFailure: RotationFailure = stop,
): Promise<ScheduledRotation[]> {
  const now = ctx.now();
  const rotated: ScheduledRotation[] = [];
  for (const candidate of await rotationCandidates(ctx.db, ctx.tables)) {
    const since = candidate.latestVersionDate === null ? undefined : new Date(candidate.latestVersionDate);
    let material: MaterialKeyRecord | undefined;
    try {
      if (since && afterPeriod(since, parseRotationPeriod(candidate.rotationPeriod)) > now) continue;
      material = await rotateAfter(ctx, await getElasticKey(ctx, candidate.id), candidate.latestVersion);
    } catch (error) {
      onFailure(candidate.id, error);
      continue;
    }
    if (material) {
      rotated.push({
        tenantId: ctx.tenantId,
        elasticKeyId: candidate.id,
        materialKeyId: material.id,
        version: material.version,
      });
    }
  }
  return rotated;
}

/** The rotation sweep over every tenant. */
export async function rotateDueInEveryTenant(
  service: KmsService,
  onFailure: RotationFailure = stop,
): Promise<ScheduledRotation[]> {
  const rotated: ScheduledRotation[] = [];
  for (const tenant of await service.tenants.list()) {
    rotated.push(...(await rotateDueElasticKeys(await service.tenants.context(tenant.id), onFailure)));
  }
  return rotated;
}

export interface RotationSchedulerOptions {
  intervalMs: number;
  onRotated?: (rotations: ScheduledRotation[]) => void;
  /** A sweep that failed, or one key that could not be rotated (the sweep goes on with the others). */
  onError?: (error: unknown, elasticKeyId?: string) => void;
}

/**
 * Runs the rotation sweep every `intervalMs` in the KMS process (never two sweeps of one process at
 * once). The clock is the service's `now`, so tests move time instead of waiting for it.
 */
export class RotationScheduler {
  readonly #service: KmsService;
  readonly #options: RotationSchedulerOptions;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #waiting: ((rotations: ScheduledRotation[]) => void)[] = [];

  constructor(service: KmsService, options: RotationSchedulerOptions) {
    this.#service = service;
    this.#options = options;
  }

  start(): void {
    this.#timer ??= setInterval(() => this.#tick(), this.#options.intervalMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#running;
  }

  /** Resolves with the rotations of the next sweep that starts after this call. */
  nextSweep(): Promise<ScheduledRotation[]> {
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  #tick(): void {
    if (this.#running) return;
    const waiting = this.#waiting;
    this.#waiting = [];
    this.#running = rotateDueInEveryTenant(this.#service, (elasticKeyId, error) =>
      this.#options.onError?.(error, elasticKeyId),
    )
      .then(
        (rotations) => {
          if (rotations.length > 0) this.#options.onRotated?.(rotations);
          return rotations;
        },
        (error: unknown) => {
          this.#options.onError?.(error);
          return [];
        },
      )
      .then((rotations) => {
        for (const resolve of waiting) resolve(rotations);
      })
      .finally(() => (this.#running = undefined));
  }
}
