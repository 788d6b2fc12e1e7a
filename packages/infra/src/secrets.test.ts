import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from './errors.js';
import {
  MAX_SECRET_FILE_BYTES,
  SecretFileReference,
  environmentPrefix,
  readSecretFile,
  resolveSecretReferences,
  secretReferencesFromEnv,
} from './secrets.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'secrets-test-'));
  await writeFile(join(dir, 'share.secret'), 'unseal-share-1\n');
  await writeFile(join(dir, 'huge.secret'), Buffer.alloc(MAX_SECRET_FILE_BYTES + 1));
});

describe('resolveSecretReferences', () => {
  it('resolves references inside arrays and nested objects, relative *_file paths against baseDir', () => {
    const resolved = resolveSecretReferences(
      {
        unseal: { shares: [`file://${join(dir, 'share.secret')}`, 'inline'] },
        admin: { password_file: 'share.secret' },
      },
      dir,
    );
    expect(resolved).toEqual({
      unseal: { shares: ['unseal-share-1', 'inline'] },
      admin: { password: 'unseal-share-1' },
    });
  });

  it('names the array element that failed', () => {
    expect(() => resolveSecretReferences({ shares: ['x', `file://${dir}/absent`] })).toThrow(
      expect.objectContaining({ key: 'shares[1]' }),
    );
  });

  it('leaves keys named exactly _file and non-string values alone', () => {
    expect(resolveSecretReferences({ _file: 'x', n: 1, flag: true, none: null })).toEqual({
      _file: 'x',
      n: 1,
      flag: true,
      none: null,
    });
  });
});

describe('readSecretFile', () => {
  it('refuses files larger than 1 MiB, naming the key but not the content', () => {
    const read = () => readSecretFile(join(dir, 'huge.secret'), 'database.url');
    expect(read).toThrow(ConfigError);
    expect(read).toThrow(
      `database.url: secret file ${join(dir, 'huge.secret')} is larger than ${MAX_SECRET_FILE_BYTES} bytes`,
    );
  });

  it('reports a directory as unreadable', () => {
    expect(() => readSecretFile(dir, 'k')).toThrow(/k: cannot read secret file .* \(EISDIR\)/);
  });
});

describe('secretReferencesFromEnv', () => {
  it('maps <APP>_<KEY>_FILE variables to nested references, ignoring everything else', () => {
    expect(environmentPrefix('my-app')).toBe('MY_APP_');
    const refs = secretReferencesFromEnv('my-app', {
      MY_APP_TLS__KEY_PASSWORD_FILE: '/run/secrets/tls_pw',
      MY_APP_FILE: '/not/a/reference',
      MY_APP_PASSWORD: 'plain values are never read',
      OTHER_X_FILE: '/x',
    });
    expect(refs).toEqual([
      {
        variable: 'MY_APP_TLS__KEY_PASSWORD_FILE',
        content: { tls: { key_password: new SecretFileReference('/run/secrets/tls_pw') } },
      },
    ]);
  });
});
