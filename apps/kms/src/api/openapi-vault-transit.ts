/**
 * The OpenAPI part of the Vault Transit compatible router (`/v1/transit/*`, tag "Vault Transit
 * compatibility"): path-level server `/v1`, Vault request bodies, `{"data": ...}` envelopes and
 * `{"errors": [...]}` errors. Merged into the KMS document by `openapi.ts`.
 */
import { VAULT_KEY_TYPES } from '../domain/vault-transit.js';

type Schema = Record<string, unknown>;

export const VAULT_TRANSIT_TAG = {
  name: 'Vault Transit compatibility',
  description:
    'HashiCorp Vault Transit paths (mount fixed at `transit`) for Vault clients, unchanged: point `VAULT_ADDR` at ' +
    'the KMS and set `VAULT_TOKEN` to a KMS credential. Ciphertexts are `vault:v<N>:<JWE>`, signatures ' +
    '`vault:v<N>:<detached JWS>`. Same scopes and tenants as the native API; errors are `{"errors": [...]}`.',
};

export const VAULT_TOKEN_SECURITY_SCHEME = {
  type: 'apiKey',
  in: 'header',
  name: 'X-Vault-Token',
  description:
    "A KMS credential in Vault's header: an Identity access token (JWT), an API key `<id>.<secret>`, " +
    '`user:password` of a realm user, or a full `Authorization` value (`Bearer …`, `ApiKey …`, `Basic …`).',
};

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const base64 = (description: string): Schema => ({ type: 'string', contentEncoding: 'base64', description });
const context = base64('UTF-8 text, base64; bound into the JWE header and needed again to decrypt.');
const reference = { type: 'string', description: 'Echoed in the batch result.' };
const keyVersion = { type: 'integer', minimum: 0, description: 'The version to use (0: the latest).' };
const batchOf = (item: Schema): Schema => ({ type: 'array', minItems: 1, maxItems: 1000, items: item });
const partialFailure = {
  type: 'integer',
  minimum: 1,
  maximum: 599,
  description: 'Status when some batch items failed and some succeeded (default 400).',
};
const ciphertext = { type: 'string', pattern: '^vault:v[1-9][0-9]*:', description: '`vault:v<N>:<JWE compact>`' };
const signature = { type: 'string', pattern: '^vault:v[1-9][0-9]*:', description: '`vault:v<N>:<detached JWS>`' };

export const VAULT_TRANSIT_SCHEMAS: Record<string, Schema> = {
  VaultErrors: {
    type: 'object',
    required: ['errors'],
    properties: { errors: { type: 'array', items: { type: 'string' } } },
  },
  VaultResponse: {
    type: 'object',
    description: "Vault's envelope; `warnings` names ignored parameters.",
    properties: {
      request_id: { type: 'string' },
      lease_id: { type: 'string' },
      renewable: { type: 'boolean' },
      lease_duration: { type: 'integer' },
      data: { type: 'object' },
      wrap_info: { type: 'null' },
      warnings: { type: ['array', 'null'], items: { type: 'string' } },
      auth: { type: 'null' },
    },
  },
  VaultKeyCreate: {
    type: 'object',
    properties: {
      type: {
        type: 'string',
        enum: Object.keys(VAULT_KEY_TYPES),
        default: 'aes256-gcm96',
        description:
          'JOSE algorithm: ' +
          Object.entries(VAULT_KEY_TYPES)
            .map(([type, alg]) => `${type} → ${alg}`)
            .join(', ') +
          '. Other Vault types are refused (400).',
      },
    },
  },
  VaultEncrypt: {
    type: 'object',
    properties: {
      plaintext: base64('The data, base64.'),
      context,
      key_version: keyVersion,
      reference,
      batch_input: batchOf({
        type: 'object',
        required: ['plaintext'],
        properties: { plaintext: base64('The data.'), context, key_version: keyVersion, reference },
      }),
      partial_failure_response_code: partialFailure,
    },
  },
  VaultDecrypt: {
    type: 'object',
    properties: {
      ciphertext,
      context,
      reference,
      batch_input: batchOf({
        type: 'object',
        required: ['ciphertext'],
        properties: { ciphertext, context, reference },
      }),
      partial_failure_response_code: partialFailure,
    },
  },
  VaultRewrap: {
    type: 'object',
    properties: {
      ciphertext,
      context,
      key_version: keyVersion,
      reference,
      batch_input: batchOf({
        type: 'object',
        required: ['ciphertext'],
        properties: { ciphertext, context, reference },
      }),
      partial_failure_response_code: partialFailure,
    },
  },
  VaultDataKey: {
    type: 'object',
    properties: { bits: { type: 'integer', enum: [128, 256, 512], default: 256 }, context },
  },
  VaultSign: {
    type: 'object',
    properties: {
      input: base64('The data to sign.'),
      hash_algorithm: { type: 'string', description: "Must be the hash of the key's JWS algorithm." },
      key_version: keyVersion,
      reference,
      batch_input: batchOf({ type: 'object', required: ['input'], properties: { input: base64('Data.'), reference } }),
      partial_failure_response_code: partialFailure,
    },
  },
  VaultVerify: {
    type: 'object',
    properties: {
      input: base64('The signed data.'),
      signature,
      hash_algorithm: { type: 'string' },
      reference,
      batch_input: batchOf({
        type: 'object',
        required: ['input', 'signature'],
        properties: { input: base64('Data.'), signature, reference },
      }),
      partial_failure_response_code: partialFailure,
    },
  },
};

const errorResponse = (description: string): Schema => ({
  description,
  content: { 'application/json': { schema: ref('VaultErrors') } },
});

interface VaultOperationSpec {
  operationId: string;
  summary: string;
  description: string;
  body?: string;
  /** Whether a hash algorithm path segment follows the name. */
  hash?: boolean;
}

function vaultOperation(spec: VaultOperationSpec): Schema {
  return {
    operationId: spec.operationId,
    tags: [VAULT_TRANSIT_TAG.name],
    summary: spec.summary,
    description: spec.description,
    security: [{ vaultToken: [] }],
    parameters: [
      { name: 'name', in: 'path', required: true, description: 'The elastic key name.', schema: { type: 'string' } },
      ...(spec.hash
        ? [{ name: 'hash_algorithm', in: 'path', required: true, schema: { type: 'string', example: 'sha2-256' } }]
        : []),
    ],
    ...(spec.body
      ? { requestBody: { required: false, content: { 'application/json': { schema: ref(spec.body) } } } }
      : {}),
    responses: {
      '200': {
        description: 'Success (`data.batch_results` for `batch_input`).',
        content: { 'application/json': { schema: ref('VaultResponse') } },
      },
      '400': {
        description: 'Bad input; for `batch_input`, some items failed (`VaultResponse` with per-item `error`).',
        content: { 'application/json': { schema: { oneOf: [ref('VaultErrors'), ref('VaultResponse')] } } },
      },
      '403': errorResponse('`permission denied`: no accepted credential, or a missing scope.'),
      '404': errorResponse('Unknown key on read (`{"errors":[]}`), or unsupported path.'),
      '413': errorResponse('Body over the limit.'),
      '429': errorResponse('Rate limited.'),
      '500': errorResponse('`internal error` (details only in the server log).'),
    },
  };
}

const server = [{ url: '/v1', description: 'Vault API (mount path fixed at transit)' }];

/** The `/transit/*` paths, each served under `/v1` only. */
export function vaultTransitPaths(): Record<string, Schema> {
  const path = (item: Schema): Schema => ({ servers: server, ...item });
  const signing = (hash: boolean, suffix: string) => ({
    [`/transit/sign/{name}${suffix}`]: path({
      post: vaultOperation({
        operationId: `vaultSign${hash ? 'WithHash' : ''}`,
        summary: 'Sign base64 input (JWS)',
        description: '`signature: vault:v<N>:<detached JWS>` with the latest version. Scope `kms:sign`.',
        body: 'VaultSign',
        hash,
      }),
    }),
    [`/transit/verify/{name}${suffix}`]: path({
      post: vaultOperation({
        operationId: `vaultVerify${hash ? 'WithHash' : ''}`,
        summary: 'Verify a signature over base64 input',
        description: '`valid: true|false`; a malformed signature is an error. Scope `kms:verify`.',
        body: 'VaultVerify',
        hash,
      }),
    }),
  });
  return {
    '/transit/keys/{name}': path({
      post: vaultOperation({
        operationId: 'vaultCreateKey',
        summary: 'Create a named key',
        description:
          'Creates the elastic key `name` with the JOSE algorithm of `type`; an existing key is returned with a ' +
          'warning. Scope `kms:pool:create`.',
        body: 'VaultKeyCreate',
      }),
      get: vaultOperation({
        operationId: 'vaultReadKey',
        summary: 'Read a named key',
        description: "Vault's read-key shape (type, versions, public keys) plus `jose_algorithm`. Scope `kms:read`.",
      }),
    }),
    '/transit/keys/{name}/rotate': path({
      post: vaultOperation({
        operationId: 'vaultRotateKey',
        summary: 'Rotate a named key',
        description: 'A new material key, the next version, becomes the latest. Scope `kms:key:rotate`.',
      }),
    }),
    '/transit/encrypt/{name}': path({
      post: vaultOperation({
        operationId: 'vaultEncrypt',
        summary: 'Encrypt base64 plaintext (JWE)',
        description: '`ciphertext: vault:v<N>:<JWE>` with the latest version. Scope `kms:encrypt`.',
        body: 'VaultEncrypt',
      }),
    }),
    '/transit/decrypt/{name}': path({
      post: vaultOperation({
        operationId: 'vaultDecrypt',
        summary: 'Decrypt a vault:v<N>: ciphertext',
        description: 'The JWE `kid` selects the version; `v<N>` must agree. Scope `kms:decrypt`.',
        body: 'VaultDecrypt',
      }),
    }),
    '/transit/rewrap/{name}': path({
      post: vaultOperation({
        operationId: 'vaultRewrap',
        summary: 'Rewrap a ciphertext with the latest version',
        description: 'The plaintext never leaves the KMS. Scopes `kms:decrypt` and `kms:encrypt`.',
        body: 'VaultRewrap',
      }),
    }),
    '/transit/datakey/plaintext/{name}': path({
      post: vaultOperation({
        operationId: 'vaultDataKeyPlaintext',
        summary: 'Generate a data key, returned in clear and encrypted',
        description: '`plaintext` (base64 key bytes) and `ciphertext` that decrypts to them. Scope `kms:generate`.',
        body: 'VaultDataKey',
      }),
    }),
    '/transit/datakey/wrapped/{name}': path({
      post: vaultOperation({
        operationId: 'vaultDataKeyWrapped',
        summary: 'Generate a data key, returned encrypted only',
        description: '`ciphertext` only. Scope `kms:generate`.',
        body: 'VaultDataKey',
      }),
    }),
    ...signing(false, ''),
    ...signing(true, '/{hash_algorithm}'),
  };
}
