import { describe, expect, it } from '@jest/globals';
import { resolve } from 'node:path';
import { auditLeaks, deploymentSecrets, logLeaks } from './audit-scan.js';

const UUID = '0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b';
const record = (seq: number, event: string, fields: Record<string, string | null>) => ({
  seq,
  event,
  hash: 'f'.repeat(64),
  prev_hash: '0'.repeat(64),
  ...fields,
});

describe('the audit secret scan (run on every e2e stack when it stops)', () => {
  it('finds known secrets and token-shaped values, and lets ids, hashes and grant ids pass', async () => {
    const secrets = await deploymentSecrets(resolve(import.meta.dirname ?? '.', '../..'));
    expect(secrets).toEqual(expect.arrayContaining(['demo-user-password', 'demo-tenant-admin-password']));
    const findings = auditLeaks(
      'kms',
      [
        record(1, 'kms.encrypt', { actor: `${UUID}/${UUID}`, resource: UUID, reason: null }),
        record(2, 'identity.grant.revoked', { actor: 'demo-spa', resource: 'a'.repeat(43) }),
        record(3, 'kms.encrypt', { actor: 'api-key/x', reason: 'eyJhbGciOiJFUzI1NiJ9.e30.sig' }),
        record(4, 'identity.login.failed', { actor: 'demo-user-password', reason: 'wrong_password' }),
        record(5, 'kms.decrypt', { actor: 'x', resource: 'A'.repeat(40) }),
        record(6, 'kms.encrypt', { actor: 'x', resource: 'attack at dawn' }),
      ],
      [...secrets, 'attack at dawn'],
    );
    expect(findings).toEqual([
      'kms #3 kms.encrypt: reason looks like a token or key',
      'kms #4 identity.login.failed: actor contains a known secret',
      'kms #5 kms.decrypt: resource looks like a token or key',
      'kms #6 kms.encrypt: resource contains a known secret',
    ]);
  });

  it('finds known secrets in a log, and only those', () => {
    const log = '{"msg":"request","path":"/token","client_id":"kms-service"}\n{"msg":"oops","detail":"attack at dawn"}';
    expect(logLeaks('kms log', log, ['attack at dawn', 'kms-service-secret', 'short'])).toEqual([
      'kms log contains a known secret (14 chars)',
    ]);
  });
});
