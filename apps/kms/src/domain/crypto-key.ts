/** Loads an elastic key for a crypto operation: it must exist, be active and have the right use. */
import { parseKeyAlgorithm, type KeyAlgorithm } from '@cryptoutil/jose-authority';
import type { ElasticKeyRecord } from '../data/elastic-key-repository.js';
import { assertActive } from './elastic-key-status.js';
import { getElasticKey } from './elastic-key.js';
import { keyUsageMismatch } from './errors.js';
import type { KmsContext } from './kms-context.js';

export type EncryptionAlgorithm = Extract<KeyAlgorithm, { use: 'enc' }>;
export type SigningAlgorithm = Extract<KeyAlgorithm, { use: 'sig' }>;

/** An elastic key checked for encryption (active, `enc`), with its parsed algorithm. */
export interface EncryptionKey {
  key: ElasticKeyRecord;
  algorithm: EncryptionAlgorithm;
}

/** An elastic key checked for signing (active, `sig`), with its parsed algorithm. */
export interface SigningKey {
  key: ElasticKeyRecord;
  algorithm: SigningAlgorithm;
}

export async function encryptionKey(ctx: KmsContext, id: string): Promise<EncryptionKey> {
  const key = await getElasticKey(ctx, id);
  assertActive(key.status);
  const algorithm = parseKeyAlgorithm(key.algorithm);
  if (algorithm.use !== 'enc') throw keyUsageMismatch('enc');
  return { key, algorithm };
}

export async function signingKey(ctx: KmsContext, id: string): Promise<SigningKey> {
  const key = await getElasticKey(ctx, id);
  assertActive(key.status);
  const algorithm = parseKeyAlgorithm(key.algorithm);
  if (algorithm.use !== 'sig') throw keyUsageMismatch('sig');
  return { key, algorithm };
}
