/**
 * A software WebAuthn authenticator for tests, written out from the spec (WebAuthn Level 2 §6.1, §6.5,
 * §8.7), independent of the server's library: an ES256 key from node:crypto, a COSE key and a `none`
 * attestation object in hand-encoded CBOR, assertions signed over `authData || SHA-256(clientDataJSON)`.
 * It answers the JSON options the server's pages carry with the JSON the page script would post.
 */
import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';

type Cbor = number | string | Buffer | Map<Cbor, Cbor>;

/** Just the CBOR (RFC 8949) the attestation needs: integers, byte and text strings, maps. */
export function cbor(value: Cbor): Buffer {
  const head = (major: number, length: number): Buffer => {
    if (length < 24) return Buffer.from([(major << 5) | length]);
    if (length < 0x100) return Buffer.from([(major << 5) | 24, length]);
    const long = Buffer.alloc(3);
    long.writeUInt8((major << 5) | 25);
    long.writeUInt16BE(length, 1);
    return long;
  };
  if (typeof value === 'number') return value >= 0 ? head(0, value) : head(1, -1 - value);
  if (typeof value === 'string') return Buffer.concat([head(3, Buffer.byteLength(value)), Buffer.from(value)]);
  if (Buffer.isBuffer(value)) return Buffer.concat([head(2, value.length), value]);
  return Buffer.concat([head(5, value.size), ...[...value].flatMap(([key, item]) => [cbor(key), cbor(item)])]);
}

const b64url = (bytes: Buffer) => bytes.toString('base64url');
const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest();

/** User present, user verified, attested credential data included (authenticator data flags). */
const UP = 0x01;
const UV = 0x04;
const AT = 0x40;

export interface AnswerOptions {
  /** The origin the "browser" reports (default the authenticator's). */
  origin?: string;
  /** Forces the signature counter (e.g. to replay an older one). */
  counter?: number;
  /** Leaves out user verification. */
  noUserVerification?: boolean;
}

export class SoftwareAuthenticator {
  readonly credentialId = randomBytes(32);
  readonly #keys: { privateKey: KeyObject; publicKey: KeyObject };
  #counter = 0;
  #userHandle: string | undefined;

  constructor(
    readonly rpId: string,
    readonly origin: string,
  ) {
    this.#keys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  }

  get id(): string {
    return b64url(this.credentialId);
  }

  #coseKey(): Buffer {
    const jwk = this.#keys.publicKey.export({ format: 'jwk' });
    return cbor(
      new Map<Cbor, Cbor>([
        [1, 2], // kty: EC2
        [3, -7], // alg: ES256
        [-1, 1], // crv: P-256
        [-2, Buffer.from(String(jwk.x), 'base64url')],
        [-3, Buffer.from(String(jwk.y), 'base64url')],
      ]),
    );
  }

  #authData(flags: number, counter: number, attested?: Buffer): Buffer {
    const count = Buffer.alloc(4);
    count.writeUInt32BE(counter);
    return Buffer.concat([sha256(this.rpId), Buffer.from([flags]), count, attested ?? Buffer.alloc(0)]);
  }

  #clientData(type: string, challenge: string, origin: string): Buffer {
    return Buffer.from(JSON.stringify({ type, challenge, origin, crossOrigin: false }));
  }

  /** Answers `navigator.credentials.create` options (a `none` attestation). */
  register(options: { challenge: string; user: { id: string } }, answer: AnswerOptions = {}): string {
    this.#userHandle = options.user.id;
    const length = Buffer.alloc(2);
    length.writeUInt16BE(this.credentialId.length);
    const attested = Buffer.concat([Buffer.alloc(16), length, this.credentialId, this.#coseKey()]);
    const authData = this.#authData(UP | UV | AT, this.#counter, attested);
    const attestationObject = cbor(
      new Map<Cbor, Cbor>([
        ['fmt', 'none'],
        ['attStmt', new Map()],
        ['authData', authData],
      ]),
    );
    return JSON.stringify({
      id: this.id,
      rawId: this.id,
      type: 'public-key',
      response: {
        clientDataJSON: b64url(this.#clientData('webauthn.create', options.challenge, answer.origin ?? this.origin)),
        attestationObject: b64url(attestationObject),
        transports: ['internal'],
      },
      clientExtensionResults: {},
      authenticatorAttachment: 'platform',
    });
  }

  /** Answers `navigator.credentials.get` options; each answer moves the counter on unless told. */
  assert(options: { challenge: string }, answer: AnswerOptions = {}): string {
    if (answer.counter === undefined) this.#counter += 1;
    const counter = answer.counter ?? this.#counter;
    const authData = this.#authData(UP | (answer.noUserVerification ? 0 : UV), counter);
    const clientData = this.#clientData('webauthn.get', options.challenge, answer.origin ?? this.origin);
    const signature = sign('sha256', Buffer.concat([authData, sha256(clientData)]), this.#keys.privateKey);
    return JSON.stringify({
      id: this.id,
      rawId: this.id,
      type: 'public-key',
      response: {
        clientDataJSON: b64url(clientData),
        authenticatorData: b64url(authData),
        signature: b64url(signature),
        ...(this.#userHandle ? { userHandle: this.#userHandle } : {}),
      },
      clientExtensionResults: {},
      authenticatorAttachment: 'platform',
    });
  }
}
