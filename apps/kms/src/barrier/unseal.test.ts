import { randomBytes } from 'node:crypto';
import { DEV_UNSEAL_SECRET, UnsealError, assertAllShares, combinations, deriveUnsealKeys } from './unseal.js';

const policy = { mode: 'n-of-m' as const, threshold: 3, shares: 5 };
const secrets = Array.from({ length: 5 }, () => randomBytes(32));

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    if (error instanceof UnsealError) return error.code;
  }
  return undefined;
}

describe('unseal keys', () => {
  it('derives one key per 3-of-5 combination', () => {
    expect(combinations([1, 2, 3, 4, 5], 3)).toHaveLength(10);
    const keys = deriveUnsealKeys(policy, secrets);
    expect(keys).toHaveLength(10);
    expect(new Set(keys.map((k) => k.id)).size).toBe(10);
    expect(Buffer.from(keys[0]!.jwk.k, 'base64url')).toHaveLength(32);
  });

  it('lets any three of the five secrets, in any order, reproduce a key made from all five', () => {
    const all = new Set(deriveUnsealKeys(policy, secrets).map((k) => `${k.id}/${k.jwk.k}`));
    const subset = [secrets[4]!, secrets[0]!, secrets[2]!];
    const [key] = deriveUnsealKeys(policy, subset);
    expect(all.has(`${key!.id}/${key!.jwk.k}`)).toBe(true);
  });

  it('derives nothing in common from wrong secrets', () => {
    const all = new Set(deriveUnsealKeys(policy, secrets).map((k) => k.id));
    const wrong = deriveUnsealKeys(policy, [randomBytes(32), randomBytes(32), randomBytes(32)]);
    expect(wrong.some((k) => all.has(k.id))).toBe(false);
  });

  it('refuses too few, duplicated or short secrets and a bad threshold', () => {
    expect(codeOf(() => deriveUnsealKeys(policy, secrets.slice(0, 2)))).toBe('too_few_unseal_secrets');
    expect(codeOf(() => deriveUnsealKeys(policy, [secrets[0]!, secrets[0]!, secrets[1]!]))).toBe(
      'duplicate_unseal_secret',
    );
    expect(codeOf(() => deriveUnsealKeys(policy, [Buffer.from('short'), secrets[0]!, secrets[1]!]))).toBe(
      'weak_unseal_secret',
    );
    expect(codeOf(() => deriveUnsealKeys({ ...policy, threshold: 6 }, secrets))).toBe('invalid_unseal_policy');
  });

  it('uses one secret in simple mode and the fixed dev secret in dev mode', () => {
    expect(deriveUnsealKeys({ mode: 'simple', threshold: 1, shares: 1 }, [secrets[0]!])).toHaveLength(1);
    const dev = deriveUnsealKeys({ mode: 'dev', threshold: 1, shares: 1 }, []);
    const again = deriveUnsealKeys({ mode: 'simple', threshold: 1, shares: 1 }, [Buffer.from(DEV_UNSEAL_SECRET)]);
    expect(dev[0]!.jwk.k).toBe(again[0]!.jwk.k);
  });

  it('requires all shares to create or rotate the root', () => {
    expect(() => assertAllShares(policy, secrets)).not.toThrow();
    expect(codeOf(() => assertAllShares(policy, secrets.slice(0, 3)))).toBe('all_unseal_secrets_required');
  });
});
