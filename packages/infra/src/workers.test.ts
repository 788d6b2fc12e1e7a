import { describe, expect, it } from '@jest/globals';
import { availableParallelism } from 'node:os';
import { ConfigError } from './errors.js';
import { createLogger } from './logger.js';
import {
  assertShareableDatabase,
  isFirstWorker,
  isSupervisor,
  superviseWhenClustered,
  workerCount,
  workerNumber,
  workersSchema,
} from './workers.js';

describe('workers setting', () => {
  it('defaults to one process, takes a number or auto (one per usable CPU)', () => {
    expect(workersSchema.parse(undefined)).toBe(1);
    expect(workerCount(workersSchema.parse('auto'))).toBe(availableParallelism());
    expect(workerCount(workersSchema.parse(3))).toBe(3);
    expect(() => workersSchema.parse(0)).toThrow();
    expect(() => workersSchema.parse('many')).toThrow();
  });

  it('supervises only above one worker, and refuses a database the workers could not share', () => {
    expect(isSupervisor(1)).toBe(false);
    expect(isSupervisor(2)).toBe(true); // jest runs tests outside any cluster: this process is a primary
    expect(workerNumber()).toBeUndefined();
    expect(() => assertShareableDatabase(2, 'sqlite::memory:')).toThrow(ConfigError);
    expect(() => assertShareableDatabase(1, 'sqlite::memory:')).not.toThrow();
    expect(() => assertShareableDatabase(2, 'sqlite:.data/kms.sqlite')).not.toThrow();
  });

  it('leaves a single process to serve, as the first worker, and refuses an unshareable database before forking', async () => {
    const logger = createLogger({ service: 'test', silent: true });
    expect(isFirstWorker()).toBe(true);
    await expect(
      superviseWhenClustered({ workers: 1, databaseUrl: 'sqlite::memory:', logger, service: 'test' }),
    ).resolves.toBe(false);
    await expect(
      superviseWhenClustered({ workers: 2, databaseUrl: 'sqlite::memory:', logger, service: 'test' }),
    ).rejects.toThrow(ConfigError);
  });
});
