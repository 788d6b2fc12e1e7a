import { describe, expect, it } from '@jest/globals';
import { AppError, NotFoundError, ValidationError } from '@cryptoutil/infra';
import {
  VAULT_KEY_TYPES,
  batchStatus,
  decodeBase64,
  decodeContext,
  joseAlgorithmFor,
  parseVaultValue,
  runBatch,
  vaultKeyType,
  vaultValue,
} from './vault-transit.js';

describe('Vault Transit translation', () => {
  it('maps every supported Vault type to a JOSE algorithm and back', () => {
    for (const [type, algorithm] of Object.entries(VAULT_KEY_TYPES)) {
      expect(joseAlgorithmFor(type)).toBe(algorithm);
      expect(vaultKeyType(algorithm)).toBe(type);
    }
  });

  it('names keys made with the native API by their shape, or by their JOSE algorithm', () => {
    expect(vaultKeyType('RS384')).toBe('rsa-3072');
    expect(vaultKeyType('A256GCM/RSA-OAEP-512')).toBe('rsa-4096');
    expect(vaultKeyType('HS256')).toBe('hmac');
    expect(vaultKeyType('A256GCM/A256KW')).toBe('A256GCM/A256KW');
  });

  it('refuses unknown and unsupported types with a reason', () => {
    expect(() => joseAlgorithmFor('rot13')).toThrow('unknown key type rot13');
    expect(() => joseAlgorithmFor('chacha20-poly1305')).toThrow(/not supported: JOSE defines no ChaCha20/);
    expect(() => joseAlgorithmFor('toString')).toThrow('unknown key type toString');
  });

  it('writes and reads vault:v<N>:<compact>, refusing anything else', () => {
    expect(parseVaultValue(vaultValue(12, 'h.k.i.c.t'), 'ciphertext')).toEqual({ version: 12, compact: 'h.k.i.c.t' });
    expect(parseVaultValue('vault:v1:h..s', 'signature')).toEqual({ version: 1, compact: 'h..s' });
    for (const bad of [
      'vault:v0:a.b.c',
      'vault:v1:abc',
      'vault:1:a.b.c',
      'vault:v1:a.b.c.d.e.f',
      'v1:a.b.c',
      'vault:v1:a b.c.d',
    ]) {
      expect(() => parseVaultValue(bad, 'ciphertext')).toThrow(ValidationError);
    }
  });

  it('decodes standard padded base64 only, and contexts as UTF-8 text', () => {
    expect(Buffer.from(decodeBase64('aGk=', 'plaintext')).toString()).toBe('hi');
    expect(decodeBase64('', 'plaintext')).toHaveLength(0);
    for (const bad of ['aGk', 'aG-k', 'a', 'aGk=\n'])
      expect(() => decodeBase64(bad, 'plaintext')).toThrow(ValidationError);
    expect(decodeContext(Buffer.from('tenant-42').toString('base64'))).toBe('tenant-42');
    expect(decodeContext(undefined)).toBeUndefined();
    expect(decodeContext('')).toBeUndefined();
    expect(() => decodeContext(Buffer.from([0xff, 0xfe]).toString('base64'))).toThrow(
      'context must be base64 of UTF-8 text',
    );
  });

  it('runs batch items on their own: 4xx become item errors, other errors fail the whole batch', async () => {
    const results = await runBatch([{ n: 1, reference: 'a' }, { n: 2 }, { n: 3 }], async ({ n }) => {
      if (n === 2) throw new NotFoundError('x', { detail: 'item two refused' });
      return { n };
    });
    expect(results).toEqual([{ n: 1, reference: 'a' }, { error: 'item two refused' }, { n: 3 }]);
    expect(batchStatus(results)).toBe(400);
    expect(batchStatus(results, 207)).toBe(207);
    expect(batchStatus([{ error: 'x' }], 200)).toBe(400);
    expect(batchStatus([{ n: 1 }])).toBe(200);
    await expect(runBatch([{}], async () => Promise.reject(new AppError(503, 'down', 'Down')))).rejects.toThrow('Down');
    await expect(runBatch([{}], async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
  });
});
