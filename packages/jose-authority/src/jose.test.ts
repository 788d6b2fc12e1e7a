import { describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { createDecipheriv } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CompactEncrypt, compactDecrypt, importJWK, type JWK } from 'jose';
import {
  AlgorithmUnsupportedError,
  DATA_KEY_ALGORITHMS,
  JWE_ENCRYPTIONS,
  JWS_ALGORITHMS,
  KEY_ALGORITHM_NAMES,
  dataKeySpec,
  decryptJwe,
  encryptJwe,
  generateJwk,
  hasPrivateMembers,
  importJoseKey,
  jweHeader,
  keySpecFor,
  parseKeyAlgorithm,
  publicJwk,
  signJws,
  unwrapJwk,
  validateImportedJwk,
  validateImportedPublicJwk,
  verifyJws,
  wrapJwk,
  type KeySpec,
} from './index.js';

const keyCache = new Map<string, Promise<JWK>>();
/** One key per shape: RSA-4096 generation is slow and the shape, not the key, is under test. */
function keyFor(spec: KeySpec): Promise<JWK> {
  const id = JSON.stringify(spec);
  let key = keyCache.get(id);
  if (!key) {
    key = generateJwk(spec, { kid: `kid-${keyCache.size}` });
    keyCache.set(id, key);
  }
  return key;
}

const bytes = (text: string) => new TextEncoder().encode(text);
const text = (data: Uint8Array) => new TextDecoder().decode(data);

function flip(compact: string, part: number): string {
  const parts = compact.split('.');
  const raw = Buffer.from(parts[part] ?? '', 'base64url');
  raw[0] = (raw[0] ?? 0) ^ 0x01;
  parts[part] = raw.toString('base64url');
  return parts.join('.');
}

describe('algorithm names', () => {
  it('parses every JWE pair and JWS alg of the contract', () => {
    expect(KEY_ALGORITHM_NAMES).toHaveLength(6 * 15 + 13);
    expect(parseKeyAlgorithm('A256GCM/A256KW')).toEqual({
      use: 'enc',
      name: 'A256GCM/A256KW',
      enc: 'A256GCM',
      alg: 'A256KW',
    });
    expect(parseKeyAlgorithm('EdDSA')).toEqual({ use: 'sig', name: 'EdDSA', alg: 'EdDSA' });
  });

  it.each(['A256GCM/RSA1_5', 'RSA1_5'])('refuses %s as insecure', (name) => {
    expect(() => parseKeyAlgorithm(name)).toThrow(/RSA1_5 is refused/);
  });

  it.each([
    ['A256GCM/A512KW', /Unknown JWE alg/],
    ['A999GCM/dir', /Unknown JWE enc/],
    ['ES999', /Unknown algorithm/],
    ['', /Unknown algorithm/],
  ])('refuses %s with algorithm_unsupported', (name, message) => {
    let error: unknown;
    try {
      parseKeyAlgorithm(name);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(AlgorithmUnsupportedError);
    expect(error).toMatchObject({ status: 400, code: 'algorithm_unsupported' });
    expect(String((error as Error).message)).toMatch(message);
  });

  it('gives each algorithm the key shape it needs', () => {
    expect(keySpecFor(parseKeyAlgorithm('A128CBC-HS256/dir'))).toEqual({ kty: 'oct', bytes: 32 });
    expect(keySpecFor(parseKeyAlgorithm('A256CBC-HS512/dir'))).toEqual({ kty: 'oct', bytes: 64 });
    expect(keySpecFor(parseKeyAlgorithm('A128GCM/A192GCMKW'))).toEqual({ kty: 'oct', bytes: 24 });
    expect(keySpecFor(parseKeyAlgorithm('A128GCM/RSA-OAEP'))).toEqual({ kty: 'RSA', modulusLength: 2048 });
    expect(keySpecFor(parseKeyAlgorithm('A128GCM/RSA-OAEP-512'))).toEqual({ kty: 'RSA', modulusLength: 4096 });
    expect(keySpecFor(parseKeyAlgorithm('A128GCM/ECDH-ES+A128KW'))).toEqual({ kty: 'EC', crv: 'P-256' });
    expect(keySpecFor(parseKeyAlgorithm('PS384'))).toEqual({ kty: 'RSA', modulusLength: 3072 });
    expect(keySpecFor(parseKeyAlgorithm('ES512'))).toEqual({ kty: 'EC', crv: 'P-521' });
    expect(keySpecFor(parseKeyAlgorithm('HS384'))).toEqual({ kty: 'oct', bytes: 48 });
  });
});

describe('JWE round trips', () => {
  const pairs = KEY_ALGORITHM_NAMES.filter((name) => name.includes('/'));
  it.each(pairs)('%s encrypts and decrypts, binding the context', async (name) => {
    const algorithm = parseKeyAlgorithm(name);
    if (algorithm.use !== 'enc') throw new Error('not a JWE pair');
    const jwk = await keyFor(keySpecFor(algorithm));
    const jwe = await encryptJwe(bytes('hello'), jwk, {
      alg: algorithm.alg,
      enc: algorithm.enc,
      kid: 'mk-1',
      context: 'tenant-a',
    });
    expect(jweHeader(jwe)).toMatchObject({ alg: algorithm.alg, enc: algorithm.enc, kid: 'mk-1', ctx: 'tenant-a' });
    const expected = { alg: algorithm.alg, enc: algorithm.enc };
    expect(text((await decryptJwe(jwe, jwk, { ...expected, context: 'tenant-a' })).plaintext)).toBe('hello');
    await expect(decryptJwe(jwe, jwk, { ...expected, context: 'tenant-b' })).rejects.toMatchObject({
      code: 'invalid_jwe',
    });
    await expect(decryptJwe(jwe, jwk, expected)).rejects.toMatchObject({ code: 'invalid_jwe' });
    await expect(decryptJwe(flip(jwe, 3), jwk, { ...expected, context: 'tenant-a' })).rejects.toMatchObject({
      code: 'invalid_jwe',
    });
  });

  it('refuses a JWE whose header asks for other algorithms, malformed input, and another key', async () => {
    const jwk = await keyFor({ kty: 'oct', bytes: 32 });
    const other = await generateJwk({ kty: 'oct', bytes: 32 }, { kid: 'other' });
    const jwe = await encryptJwe(bytes('x'), jwk, { alg: 'A256KW', enc: 'A256GCM', kid: 'k' });
    await expect(decryptJwe(jwe, jwk, { alg: 'A256GCMKW', enc: 'A256GCM' })).rejects.toThrow(
      /must use A256GCM\/A256GCMKW/,
    );
    await expect(decryptJwe(jwe, other, { alg: 'A256KW', enc: 'A256GCM' })).rejects.toMatchObject({
      code: 'invalid_jwe',
    });
    expect(() => jweHeader('a.b.c')).toThrow(/five parts/);
    expect(() => jweHeader('!!!.b.c.d.e')).toThrow(/not valid JSON/);
    expect(() => jweHeader(`${Buffer.from('[1]').toString('base64url')}.b.c.d.e`)).toThrow(/not valid JSON/);
  });

  it('decrypts a JWE that jose made with only the public key (RSA-OAEP-256, ECDH-ES)', async () => {
    for (const [name, alg] of [
      ['A256GCM/RSA-OAEP-256', 'RSA-OAEP-256'],
      ['A256GCM/ECDH-ES', 'ECDH-ES'],
    ] as const) {
      const jwk = await keyFor(keySpecFor(parseKeyAlgorithm(name)));
      const pub = publicJwk(jwk);
      expect(pub?.d).toBeUndefined();
      const jwe = await new CompactEncrypt(bytes('from outside'))
        .setProtectedHeader({ alg, enc: 'A256GCM', kid: 'mk' })
        .encrypt(await importJWK(pub as JWK, alg));
      expect(text((await decryptJwe(jwe, jwk, { alg, enc: 'A256GCM' })).plaintext)).toBe('from outside');
    }
  });
});

describe('JWS round trips', () => {
  it.each([...JWS_ALGORITHMS])('%s signs and verifies; a tampered signature is signature_invalid', async (alg) => {
    const jwk = await keyFor(keySpecFor(parseKeyAlgorithm(alg)));
    const jws = await signJws(bytes('payload'), jwk, { alg, kid: 'mk-2' });
    const verified = await verifyJws(jws, jwk, alg);
    expect(text(verified.payload)).toBe('payload');
    expect(verified.header).toEqual({ alg, kid: 'mk-2' });
    await expect(verifyJws(flip(jws, 2), jwk, alg)).rejects.toMatchObject({ status: 400, code: 'signature_invalid' });
  });

  it('refuses a JWS for another alg, a malformed JWS and a key of the wrong shape', async () => {
    const jwk = await keyFor({ kty: 'EC', crv: 'P-256' });
    const jws = await signJws(bytes('p'), jwk, { alg: 'ES256', kid: 'k' });
    await expect(verifyJws(jws, jwk, 'ES384')).rejects.toMatchObject({ code: 'invalid_jws' });
    await expect(verifyJws('a.b', jwk, 'ES256')).rejects.toMatchObject({ code: 'invalid_jws' });
    await expect(verifyJws('bm90anNvbg.b.c', jwk, 'ES256')).rejects.toMatchObject({ code: 'invalid_jws' });
    const header = Buffer.from(JSON.stringify({ alg: 'ES256' })).toString('base64url');
    await expect(verifyJws(`${header}.cA.!!`, jwk, 'ES256')).rejects.toMatchObject({ code: 'invalid_jws' });
    await expect(signJws(bytes('p'), jwk, { alg: 'RS256', kid: 'k' })).rejects.toMatchObject({
      code: 'algorithm_unsupported',
    });
  });
});

describe('dir with AES-GCM (node:crypto path)', () => {
  it.each(['A128GCM', 'A192GCM', 'A256GCM'] as const)(
    '%s: jose decrypts what it writes and it decrypts what jose writes; any change is refused',
    async (enc) => {
      const jwk = await generateJwk({ kty: 'oct', bytes: Number(enc.slice(1, 4)) / 8 }, { kid: 'k' });
      const ours = await encryptJwe(bytes('both ways'), jwk, { alg: 'dir', enc, kid: 'mk', context: 'c' });
      const joseKey = await importJWK({ kty: 'oct', k: jwk.k }, 'dir');
      const byJose = await compactDecrypt(ours, joseKey);
      expect([text(byJose.plaintext), byJose.protectedHeader]).toEqual([
        'both ways',
        { alg: 'dir', enc, kid: 'mk', ctx: 'c' },
      ]);
      const theirs = await new CompactEncrypt(bytes('from jose'))
        .setProtectedHeader({ alg: 'dir', enc, kid: 'mk', ctx: 'c' })
        .encrypt(joseKey);
      const expected = { alg: 'dir', enc, context: 'c' } as const;
      expect(text((await decryptJwe(theirs, jwk, expected)).plaintext)).toBe('from jose');
      const parts = ours.split('.');
      const changed = [
        flip(ours, 2),
        flip(ours, 3),
        flip(ours, 4),
        [parts[0], 'AAAA', ...parts.slice(2)].join('.'),
        [parts[0], '', `${parts[2]}!`, ...parts.slice(3)].join('.'),
        [parts[0], '', parts[2], parts[3], (parts[4] ?? '').slice(0, 8)].join('.'),
      ];
      for (const jwe of changed) {
        await expect(decryptJwe(jwe, jwk, expected)).rejects.toMatchObject({ code: 'invalid_jwe' });
      }
      // The header is the additional data: another header (here the same fields re-encoded) does not authenticate.
      const reencoded = Buffer.from(JSON.stringify({ enc, alg: 'dir', kid: 'mk', ctx: 'c' })).toString('base64url');
      await expect(decryptJwe([reencoded, ...parts.slice(1)].join('.'), jwk, expected)).rejects.toMatchObject({
        code: 'invalid_jwe',
      });
    },
  );

  it('never repeats an IV, across refills of its random pool', async () => {
    const jwk = await generateJwk({ kty: 'oct', bytes: 32 }, { kid: 'k' });
    const ivs = new Set<string>();
    for (let i = 0; i < 3000; i++) {
      ivs.add((await encryptJwe(bytes('x'), jwk, { alg: 'dir', enc: 'A256GCM', kid: 'mk' })).split('.')[2] ?? '');
    }
    expect(ivs.size).toBe(3000);
  });

  it('leaves a compressed (zip) JWE to jose, which refuses it', async () => {
    const jwk = await generateJwk({ kty: 'oct', bytes: 32 }, { kid: 'k' });
    const jwe = await encryptJwe(bytes('x'), jwk, { alg: 'dir', enc: 'A256GCM', kid: 'mk' });
    const [, ...rest] = jwe.split('.');
    const zipped = Buffer.from(JSON.stringify({ alg: 'dir', enc: 'A256GCM', kid: 'mk', zip: 'DEF' })).toString(
      'base64url',
    );
    await expect(decryptJwe([zipped, ...rest].join('.'), jwk, { alg: 'dir', enc: 'A256GCM' })).rejects.toMatchObject({
      code: 'invalid_jwe',
    });
  });
});

describe('independent verifiers', () => {
  it('a dir/A256GCM JWE decrypts with hand-written node:crypto AES-GCM', async () => {
    const jwk = await generateJwk({ kty: 'oct', bytes: 32 }, { kid: 'k' });
    const jwe = await encryptJwe(bytes('standard output'), jwk, {
      alg: 'dir',
      enc: 'A256GCM',
      kid: 'mk',
      context: 'c',
    });
    const [header = '', , iv = '', ciphertext = '', tag = ''] = jwe.split('.');
    const decipher = createDecipheriv(
      'aes-256-gcm',
      Buffer.from(String(jwk.k), 'base64url'),
      Buffer.from(iv, 'base64url'),
    );
    decipher.setAAD(Buffer.from(header, 'ascii'));
    decipher.setAuthTag(Buffer.from(tag, 'base64url'));
    const plain = Buffer.concat([decipher.update(Buffer.from(ciphertext, 'base64url')), decipher.final()]);
    expect(plain.toString()).toBe('standard output');
  });

  it('Python cryptography verifies ES256, EdDSA and RS256 JWS and decrypts RSA-OAEP-256 and ECDH-ES JWE', async () => {
    const cases: Record<string, unknown>[] = [];
    for (const alg of ['ES256', 'EdDSA', 'RS256'] as const) {
      const jwk = await keyFor(keySpecFor(parseKeyAlgorithm(alg)));
      cases.push({
        kind: 'jws',
        alg,
        jwk: publicJwk(jwk),
        jws: await signJws(bytes(`signed ${alg}`), jwk, { alg, kid: 'k' }),
      });
    }
    for (const alg of ['RSA-OAEP-256', 'ECDH-ES'] as const) {
      const jwk = await keyFor(keySpecFor(parseKeyAlgorithm(`A256GCM/${alg}`)));
      cases.push({
        kind: 'jwe',
        alg,
        jwk,
        jwe: await encryptJwe(bytes(`sealed ${alg}`), jwk, { alg, enc: 'A256GCM', kid: 'k' }),
      });
    }
    const out = execFileSync('python3', ['-c', PYTHON_VERIFIER], { input: JSON.stringify(cases) }).toString();
    expect(JSON.parse(out)).toEqual([
      'signed ES256',
      'signed EdDSA',
      'signed RS256',
      'sealed RSA-OAEP-256',
      'sealed ECDH-ES',
    ]);
  });

  it('openssl dgst verifies an ES256 signature', async () => {
    const { createPublicKey } = await import('node:crypto');
    const jwk = await keyFor({ kty: 'EC', crv: 'P-256' });
    const jws = await signJws(bytes('openssl'), jwk, { alg: 'ES256', kid: 'k' });
    const [header = '', payload = '', signature = ''] = jws.split('.');
    const raw = Buffer.from(signature, 'base64url');
    const dir = mkdtempSync(join(tmpdir(), 'jws-'));
    writeFileSync(
      join(dir, 'pub.pem'),
      createPublicKey({ key: publicJwk(jwk) as JWK, format: 'jwk' }).export({ type: 'spki', format: 'pem' }),
    );
    writeFileSync(join(dir, 'input'), `${header}.${payload}`);
    writeFileSync(join(dir, 'sig.der'), ecdsaRawToDer(raw));
    const out = execFileSync('openssl', [
      'dgst',
      '-sha256',
      '-verify',
      join(dir, 'pub.pem'),
      '-signature',
      join(dir, 'sig.der'),
      join(dir, 'input'),
    ]);
    expect(out.toString()).toMatch(/Verified OK/);
  });
});

/** JOSE ECDSA signatures are r||s; openssl wants DER SEQUENCE { INTEGER r, INTEGER s }. */
function ecdsaRawToDer(raw: Buffer): Buffer {
  const integer = (value: Buffer) => {
    let trimmed = value;
    while (trimmed.length > 1 && trimmed[0] === 0 && ((trimmed[1] ?? 0) & 0x80) === 0) trimmed = trimmed.subarray(1);
    if (((trimmed[0] ?? 0) & 0x80) !== 0) trimmed = Buffer.concat([Buffer.from([0]), trimmed]);
    return Buffer.concat([Buffer.from([0x02, trimmed.length]), trimmed]);
  };
  const body = Buffer.concat([integer(raw.subarray(0, raw.length / 2)), integer(raw.subarray(raw.length / 2))]);
  return Buffer.concat([Buffer.from([0x30, body.length]), body]);
}

const PYTHON_VERIFIER = String.raw`
import base64, hashlib, json, sys
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

def b64(s): return base64.urlsafe_b64decode(s + '=' * (-len(s) % 4))
def num(s): return int.from_bytes(b64(s), 'big')
def ec_private(j):
    pub = ec.EllipticCurvePublicNumbers(num(j['x']), num(j['y']), ec.SECP256R1())
    return ec.EllipticCurvePrivateNumbers(num(j['d']), pub).private_key() if 'd' in j else pub.public_key()
def rsa_key(j):
    pub = rsa.RSAPublicNumbers(num(j['e']), num(j['n']))
    if 'd' not in j: return pub.public_key()
    return rsa.RSAPrivateNumbers(num(j['p']), num(j['q']), num(j['d']), num(j['dp']), num(j['dq']), num(j['qi']), pub).private_key()
out = []
for c in json.load(sys.stdin):
    j = c['jwk']
    if c['kind'] == 'jws':
        h, p, s = c['jws'].split('.')
        data, sig = (h + '.' + p).encode(), b64(s)
        if c['alg'] == 'ES256':
            ec_private(j).verify(encode_dss_signature(int.from_bytes(sig[:32], 'big'), int.from_bytes(sig[32:], 'big')), data, ec.ECDSA(hashes.SHA256()))
        elif c['alg'] == 'EdDSA':
            ed25519.Ed25519PublicKey.from_public_bytes(b64(j['x'])).verify(sig, data)
        else:
            rsa_key(j).verify(sig, data, padding.PKCS1v15(), hashes.SHA256())
        out.append(b64(p).decode())
    else:
        h, ek, iv, ct, tag = c['jwe'].split('.')
        header = json.loads(b64(h))
        if c['alg'] == 'RSA-OAEP-256':
            cek = rsa_key(j).decrypt(b64(ek), padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None))
        else:
            epk = header['epk']
            peer = ec.EllipticCurvePublicNumbers(num(epk['x']), num(epk['y']), ec.SECP256R1()).public_key()
            z = ec_private(j).exchange(ec.ECDH(), peer)
            info = lambda v: len(v).to_bytes(4, 'big') + v
            other = info(b'A256GCM') + info(b'') + info(b'') + (256).to_bytes(4, 'big')
            cek = hashlib.sha256((1).to_bytes(4, 'big') + z + other).digest()
        out.append(AESGCM(cek).decrypt(b64(iv), b64(ct) + b64(tag), h.encode()).decode())
print(json.dumps(out))
`;

describe('keys', () => {
  it('generates every data key shape and refuses unknown names', async () => {
    for (const name of DATA_KEY_ALGORITHMS.filter((n) => !n.startsWith('RSA-') || n === 'RSA-2048')) {
      const jwk = await generateJwk(dataKeySpec(name), { kid: name });
      expect(jwk.kid).toBe(name);
      expect(jwk.kty).toBe(dataKeySpec(name).kty);
    }
    expect(() => dataKeySpec('AES-512')).toThrow(AlgorithmUnsupportedError);
  });

  it('derives the public half without private members and none for secret keys', async () => {
    const rsa = await keyFor({ kty: 'RSA', modulusLength: 2048 });
    const pub = publicJwk({ ...rsa, key_ops: ['sign'] });
    expect(Object.keys(pub ?? {}).sort()).toEqual(['e', 'kid', 'kty', 'n']);
    expect(publicJwk({ kty: 'oct', k: 'AAAA' })).toBeUndefined();
  });

  it('validates an imported JWK: shape, privacy and fit to the algorithm', async () => {
    const ec = await keyFor({ kty: 'EC', crv: 'P-256' });
    const oct = { kty: 'oct', k: Buffer.alloc(32, 7).toString('base64url'), kid: 'theirs', alg: 'A256KW' };
    expect(validateImportedJwk(oct, { kty: 'oct', bytes: 32 })).toEqual({ kty: 'oct', k: oct.k });
    expect(validateImportedJwk(ec, { kty: 'EC', crv: 'P-256' }).d).toBe(ec.d);
    const rsa = await keyFor({ kty: 'RSA', modulusLength: 2048 });
    expect(validateImportedJwk(rsa, { kty: 'RSA', modulusLength: 2048 }).n).toBe(rsa.n);
    for (const [input, message] of [
      [null, /JSON object/],
      [[1], /JSON object/],
      [{ kty: 'oct' }, /base64url "k"/],
      [{ kty: 'oct', k: 'no good!' }, /base64url "k"/],
      [publicJwk(ec), /private key/],
      [{ ...ec, d: 'AAAA', x: 'AAAA' }, /not a valid private key/],
      [oct, /expected EC P-256/],
    ] as const) {
      const spec: KeySpec = input === oct ? { kty: 'EC', crv: 'P-256' } : { kty: 'oct', bytes: 32 };
      expect(() => validateImportedJwk(input, input === publicJwk(ec) ? { kty: 'EC', crv: 'P-256' } : spec)).toThrow(
        message,
      );
    }
    expect(() =>
      validateImportedJwk({ kty: 'oct', k: Buffer.alloc(16).toString('base64url') }, { kty: 'oct', bytes: 32 }),
    ).toThrow(/oct of 32 bytes/);
    expect(() => validateImportedJwk(ec, { kty: 'RSA', modulusLength: 2048 })).toThrow(/RSA ≥ 2048 bits/);
  });

  it('refuses a private JWK whose public members belong to another key', async () => {
    const specs: KeySpec[] = [
      { kty: 'EC', crv: 'P-256' },
      { kty: 'OKP', crv: 'Ed25519' },
      { kty: 'RSA', modulusLength: 2048 },
    ];
    for (const spec of specs) {
      const mine = await keyFor(spec);
      const theirs = await generateJwk(spec, { kid: 'other' });
      expect(validateImportedJwk(mine, spec).d).toBe(mine.d);
      const privateMembers = ['d', 'p', 'q', 'dp', 'dq', 'qi'].filter((member) => mine[member] !== undefined);
      const mixed = { ...theirs, ...Object.fromEntries(privateMembers.map((member) => [member, mine[member]])) };
      expect(() => validateImportedJwk(mixed, spec)).toThrow(/do not belong to its private key/);
    }
  });

  it('validates an imported public JWK: asymmetric, no private members, valid, and fit to the algorithm', async () => {
    const ec = await keyFor({ kty: 'EC', crv: 'P-256' });
    const pub = publicJwk(ec) as JWK;
    expect(hasPrivateMembers(ec)).toBe(true);
    expect(hasPrivateMembers(pub)).toBe(false);
    expect(hasPrivateMembers({ kty: 'oct', k: 'AAAA' })).toBe(true);
    expect(hasPrivateMembers({ ...pub, key_ops: ['verify'] })).toBe(false);
    const { kid: _kid, ...material } = pub;
    expect(validateImportedPublicJwk({ ...pub, alg: 'ES256', use: 'sig' }, { kty: 'EC', crv: 'P-256' })).toEqual(
      material,
    );
    const rsa = publicJwk(await keyFor({ kty: 'RSA', modulusLength: 2048 })) as JWK;
    expect(validateImportedPublicJwk(rsa, { kty: 'RSA', modulusLength: 2048 }).n).toBe(rsa.n);
    for (const [input, message] of [
      [null, /JSON object/],
      [{ kty: 'oct', k: 'AAAA' }, /no public part/],
      [ec, /must be a public key/],
      [{ ...pub, x: 'AAAA' }, /not a valid public key/],
      [rsa, /expected EC P-256/],
    ] as const) {
      expect(() => validateImportedPublicJwk(input, { kty: 'EC', crv: 'P-256' })).toThrow(message);
    }
  });

  it('imports each key once per algorithm and reports a misfit as algorithm_unsupported', async () => {
    const jwk = await generateJwk({ kty: 'oct', bytes: 32 }, { kid: 'k' });
    expect(importJoseKey(jwk, 'A256KW')).toBe(importJoseKey(jwk, 'A256KW'));
    const ec = await keyFor({ kty: 'EC', crv: 'P-256' });
    await expect(importJoseKey(ec, 'RS256')).rejects.toMatchObject({ code: 'algorithm_unsupported' });
  });

  it('holds AES key-wrap and dir/AES-GCM keys as WebCrypto keys, not bytes jose would import on every call', async () => {
    const jwk = await generateJwk({ kty: 'oct', bytes: 32 }, { kid: 'k' });
    const wrap = await importJoseKey(jwk, 'A256KW');
    const direct = await importJoseKey(jwk, 'dir', false, 'A256GCM');
    for (const [key, name] of [
      [wrap, 'AES-KW'],
      [direct, 'AES-GCM'],
    ] as const) {
      expect(key).not.toBeInstanceOf(Uint8Array);
      expect(key).toMatchObject({ algorithm: { name, length: 256 }, extractable: false });
    }
    // A key of the wrong size for the enc stays bytes, so jose refuses it with its own message.
    expect(await importJoseKey(jwk, 'dir', false, 'A128GCM')).toBeInstanceOf(Uint8Array);
    const jwe = await encryptJwe(new TextEncoder().encode('x'), jwk, { alg: 'dir', enc: 'A256GCM', kid: 'k' });
    const { plaintext } = await decryptJwe(jwe, jwk, { alg: 'dir', enc: 'A256GCM' });
    expect(new TextDecoder().decode(plaintext)).toBe('x');
  });
});

describe('key wrapping', () => {
  it('wraps a JWK under a parent and unwraps it only with that parent', async () => {
    const parent = { ...(await generateJwk({ kty: 'oct', bytes: 32 }, { kid: 'parent-1' })), kid: 'parent-1' };
    const child = await generateJwk({ kty: 'EC', crv: 'P-384' }, { kid: 'child' });
    const wrapped = await wrapJwk(child, parent);
    expect(jweHeader(wrapped)).toEqual({ alg: 'dir', enc: 'A256GCM', kid: 'parent-1', cty: 'jwk+json' });
    expect(wrapped).not.toContain(String(child.d));
    expect(await unwrapJwk(wrapped, parent)).toEqual(child);
    const stranger = await generateJwk({ kty: 'oct', bytes: 32 }, { kid: 'x' });
    await expect(unwrapJwk(wrapped, stranger)).rejects.toMatchObject({ code: 'invalid_jwe' });
    const notAJwk = await encryptJwe(bytes('{}'), parent, { alg: 'dir', enc: 'A256GCM', kid: 'parent-1' });
    await expect(unwrapJwk(notAJwk, parent)).rejects.toThrow(/not a JWK/);
  });

  it('lists every content encryption', () => {
    expect(JWE_ENCRYPTIONS).toContain('A256CBC-HS512');
  });
});
