/**
 * PKCS#12 (PFX) export of a leaf with its chain and private key, for clients that want one file
 * (browsers, Java keystores, Windows). The key is a PKCS#8 shrouded bag under PBES2
 * (PBKDF2-HMAC-SHA256, AES-256-CBC); certificates are public and stored unencrypted; the whole file
 * carries an HMAC-SHA256 integrity MAC. Read by OpenSSL 3 without `-legacy`.
 */
import 'reflect-metadata';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { webcrypto } from 'node:crypto';

export class Pkcs12Error extends Error {
  readonly code = 'pkcs12_invalid';
  constructor(message: string) {
    super(message);
    this.name = 'Pkcs12Error';
  }
}

export interface Pkcs12Input {
  /** Leaf first, then its CA chain. */
  certificatePem: string;
  /** PKCS#8 private key of the leaf. */
  privateKeyPem: string;
  password: string;
  friendlyName?: string;
}

const ITERATIONS = 210_000;
const BAG_KEY = '1.2.840.113549.1.12.10.1.2'; // pkcs8ShroudedKeyBag
const BAG_CERT = '1.2.840.113549.1.12.10.1.3'; // certBag
const ATTR_FRIENDLY_NAME = '1.2.840.113549.1.9.20';
const ATTR_LOCAL_KEY_ID = '1.2.840.113549.1.9.21';

let engineSet = false;
function useNodeCrypto(): void {
  if (engineSet) return;
  pkijs.setEngine('node', new pkijs.CryptoEngine({ name: 'node', crypto: webcrypto as unknown as Crypto }));
  engineSet = true;
}

function pemBlocks(pem: string, label: string): ArrayBuffer[] {
  const pattern = new RegExp(`-----BEGIN ${label}-----([\\s\\S]+?)-----END ${label}-----`, 'g');
  return [...pem.matchAll(pattern)].map((match) => {
    const der = Buffer.from((match[1] ?? '').replace(/\s+/g, ''), 'base64');
    return der.buffer.slice(der.byteOffset, der.byteOffset + der.byteLength);
  });
}

function attributes(friendlyName: string, localKeyId: ArrayBuffer): pkijs.Attribute[] {
  return [
    new pkijs.Attribute({ type: ATTR_FRIENDLY_NAME, values: [new asn1js.BmpString({ value: friendlyName })] }),
    new pkijs.Attribute({ type: ATTR_LOCAL_KEY_ID, values: [new asn1js.OctetString({ valueHex: localKeyId })] }),
  ];
}

export async function toPkcs12(input: Pkcs12Input): Promise<Uint8Array> {
  if (input.password.length === 0) throw new Pkcs12Error('a PKCS#12 file needs a non-empty password');
  const certificates = pemBlocks(input.certificatePem, 'CERTIFICATE');
  const [key] = pemBlocks(input.privateKeyPem, 'PRIVATE KEY');
  if (certificates.length === 0 || !key)
    throw new Pkcs12Error('need at least one certificate and a PKCS#8 private key');
  useNodeCrypto();
  const password = new TextEncoder().encode(input.password).buffer;
  const friendlyName = input.friendlyName ?? 'cryptoutil';
  const localKeyId = webcrypto.getRandomValues(new Uint8Array(8)).buffer;
  const protection = {
    password,
    // pkijs draws its own IV; the field is required by the WebCrypto type only.
    contentEncryptionAlgorithm: { name: 'AES-CBC', length: 256, iv: webcrypto.getRandomValues(new Uint8Array(16)) },
    hmacHashAlgorithm: 'SHA-256',
    iterationCount: ITERATIONS,
  };

  const keyBag = new pkijs.PKCS8ShroudedKeyBag({ parsedValue: pkijs.PrivateKeyInfo.fromBER(key) });
  await keyBag.makeInternalValues(protection);
  const certBags = certificates.map(
    (der, index) =>
      new pkijs.SafeBag({
        bagId: BAG_CERT,
        bagValue: new pkijs.CertBag({ parsedValue: pkijs.Certificate.fromBER(der) }),
        ...(index === 0 ? { bagAttributes: attributes(friendlyName, localKeyId) } : {}),
      }),
  );
  const pfx = new pkijs.PFX({
    parsedValue: {
      integrityMode: 0,
      authenticatedSafe: new pkijs.AuthenticatedSafe({
        parsedValue: {
          safeContents: [
            {
              privacyMode: 0,
              value: new pkijs.SafeContents({
                safeBags: [
                  new pkijs.SafeBag({
                    bagId: BAG_KEY,
                    bagValue: keyBag,
                    bagAttributes: attributes(friendlyName, localKeyId),
                  }),
                ],
              }),
            },
            { privacyMode: 0, value: new pkijs.SafeContents({ safeBags: certBags }) },
          ],
        },
      }),
    },
  });
  await pfx.parsedValue?.authenticatedSafe?.makeInternalValues({ safeContents: [{}, {}] });
  await pfx.makeInternalValues({
    password,
    iterations: ITERATIONS,
    pbkdf2HashAlgorithm: 'SHA-256',
    hmacHashAlgorithm: 'SHA-256',
  });
  return new Uint8Array(pfx.toSchema().toBER(false));
}
