/**
 * The KMS's OpenAPI 3.1 document (kms.md "Resources", "Errors", "Authentication and authorization"),
 * served at `/.well-known/openapi.json` and rendered by the Swagger UI at `/ui/swagger/`.
 *
 * The same paths exist under `/service/api/v1` (machine clients) and `/browser/api/v1` (browser): both are
 * listed as relative `servers`, so Swagger UI's "Try it out" calls the origin that served the page.
 * Enums come from the code that enforces them (algorithm names, data key names, statuses), so the
 * document cannot drift from what the API accepts.
 */
import { DATA_KEY_ALGORITHMS, KEY_ALGORITHM_NAMES } from '@cryptoutil/jose-authority';
import { ELASTIC_KEY_SORT_FIELDS } from '../data/elastic-key-repository.js';
import { MATERIAL_KEY_SORT_FIELDS } from '../data/material-key-repository.js';
import { MAX_BATCH_ITEMS } from '../domain/batch.js';
import { ELASTIC_KEY_STATUSES } from '../domain/elastic-key-status.js';
import {
  VAULT_TOKEN_SECURITY_SCHEME,
  VAULT_TRANSIT_SCHEMAS,
  VAULT_TRANSIT_TAG,
  vaultTransitPaths,
} from './openapi-vault-transit.js';

/** A JSON object shaped as an OpenAPI 3.1 document (kept untyped: it is only ever serialized). */
export type OpenApiDocument = Record<string, unknown>;

export interface OpenApiOptions {
  /** The KMS version (`info.version`). */
  version: string;
  /** Server URLs; default the two relative API prefixes, so the page works on whatever origin serves it. */
  serverUrls?: string[];
  /** Demo mode: the demo credential table (Markdown), shown on the Swagger page. */
  demoCredentials?: string;
}

export const DEFAULT_SERVER_URLS = ['/service/api/v1', '/browser/api/v1'] as const;

type Schema = Record<string, unknown>;

const ref = (kind: 'schemas' | 'responses' | 'parameters' | 'requestBodies', name: string) => ({
  $ref: `#/components/${kind}/${name}`,
});

const PROBLEM = 'application/problem+json';
const JSON_TYPE = 'application/json';

/** Compact serializations (RFC 7516 §7.1, RFC 7515 §7.1): base64url segments joined by dots. */
const JWE_COMPACT_PATTERN = '^[A-Za-z0-9_-]*(\\.[A-Za-z0-9_-]*){4}$';
const JWS_COMPACT_PATTERN = '^[A-Za-z0-9_-]*(\\.[A-Za-z0-9_-]*){2}$';
const SORT_PATTERN = '^[a-z_]+:(ASC|DESC)$';
const BASE64URL_PATTERN = '^[A-Za-z0-9_-]*={0,2}$';
const MAX_CONTEXT_LENGTH = 1024;
const MAX_REFERENCE_LENGTH = 256;

const uuid = (description?: string): Schema => ({
  type: 'string',
  format: 'uuid',
  ...(description ? { description } : {}),
});
const timestamp = (description: string): Schema => ({ type: 'string', format: 'date-time', description });
const nullableTimestamp = (description: string): Schema => ({
  type: ['string', 'null'],
  format: 'date-time',
  description,
});

const itemReference: Schema = {
  type: 'string',
  maxLength: MAX_REFERENCE_LENGTH,
  description: "The caller's name for the item, echoed in its result.",
};
const itemContext: Schema = {
  type: 'string',
  description: `Bound into the JWE protected header (at most ${MAX_CONTEXT_LENGTH} characters, else that item's \`invalid_item\` error).`,
};
const base64url = (description: string): Schema => ({ type: 'string', pattern: BASE64URL_PATTERN, description });

const schemas: Record<string, Schema> = {
  ElasticKeyCreate: {
    type: 'object',
    description: 'A new elastic key. Unknown fields are refused.',
    additionalProperties: false,
    required: ['name', 'description', 'algorithm'],
    properties: {
      name: { type: 'string', minLength: 1, maxLength: 255, description: 'Unique within the tenant.' },
      description: { type: 'string', maxLength: 4096 },
      algorithm: ref('schemas', 'KeyAlgorithm'),
      provider: { type: 'string', enum: ['Internal'], default: 'Internal' },
      versioning_allowed: {
        type: 'boolean',
        default: true,
        description: 'Whether new material keys may be generated (rotation) after the first.',
      },
      import_allowed: {
        type: 'boolean',
        default: false,
        description:
          'Material keys are imported (`POST /elastickey/{id}/materialkey` with a wrapped key or a public JWK); ' +
          'none is generated.',
      },
    },
    examples: [{ name: 'orders-db', description: 'Encrypts order rows', algorithm: 'A256GCM/A256KW' }],
  },
  ElasticKeyUpdate: {
    type: 'object',
    additionalProperties: false,
    required: ['name', 'description'],
    properties: {
      name: { type: 'string', minLength: 1, maxLength: 255 },
      description: { type: 'string', maxLength: 4096 },
      min_decryption_version: {
        type: 'integer',
        minimum: 1,
        description:
          'Versions below it refuse decrypt and verify (`409 material_key_below_min_version`); nothing is deleted, ' +
          'so lowering it again restores them (until `trim`). At most the latest version. Omitted: unchanged.',
      },
      min_encryption_version: {
        type: 'integer',
        minimum: 0,
        description:
          '0: encrypt and sign only with the latest version unless `version=N` asks for another; otherwise the ' +
          'lowest version `version=N` may name. 0 or from `min_decryption_version` to the latest version.',
      },
      rotation_period: {
        type: ['string', 'null'],
        examples: ['P90D', 'P1Y', 'PT12H'],
        description:
          'ISO 8601 duration, at least `PT1H`: the KMS adds a version once the latest is this old, without a ' +
          'request (keys with `versioning_allowed` only). null: no automatic rotation. Omitted: unchanged.',
      },
      max_encryptions: {
        type: ['integer', 'null'],
        minimum: 1,
        description:
          'Encryptions per version, counted durably; the encrypt that would pass it uses a new version. ' +
          'Encryption keys only; at most 2^32 for AES-GCM `dir` and `A*GCMKW` keys (their default). ' +
          'null: the default. Omitted: unchanged.',
      },
    },
  },
  TrimResult: {
    type: 'object',
    required: ['destroyed_versions', 'elastic_key'],
    properties: {
      destroyed_versions: {
        type: 'array',
        items: { type: 'integer', minimum: 1 },
        description: 'The versions whose material this call destroyed (empty if none were left).',
      },
      elastic_key: ref('schemas', 'ElasticKey'),
    },
  },
  MaterialKeyImport: {
    type: 'object',
    description:
      'A key to import as the newest material key (`403 import_not_allowed` unless `import_allowed`): exactly one ' +
      'of `jwe` (a private or secret JWK wrapped to the import wrapping key) or `jwk` (a public key alone). A ' +
      'private or secret key sent as `jwk` is refused (`400 clear_key_import_refused`).',
    additionalProperties: false,
    oneOf: [{ required: ['jwe'] }, { required: ['jwk'] }],
    properties: {
      jwe: {
        type: 'string',
        pattern: JWE_COMPACT_PATTERN,
        maxLength: 65_536,
        description:
          'JWE compact, `alg: RSA-OAEP-256`, `enc: A256GCM`, `kid` of the key from `GET /elastickey/{id}/wrappingkey`, ' +
          "whose plaintext is the JWK (it must fit the elastic key's algorithm). Errors: " +
          '`wrapped_key_algorithm_unsupported`, `wrapping_key_unknown`, `wrapped_key_invalid` (altered or for another ' +
          'key), `invalid_jwk`.',
      },
      jwk: {
        ...ref('schemas', 'Jwk'),
        description:
          'A public JWK: the new version encrypts and verifies only; decrypt and sign with it are ' +
          '`409 material_key_public_only`.',
      },
    },
  },
  KeyAlgorithm: {
    type: 'string',
    description: 'A JWE `enc/alg` pair such as `A256GCM/A256KW`, or a JWS `alg`. RSA1_5 is refused (insecure).',
    enum: [...KEY_ALGORITHM_NAMES],
  },
  ElasticKeyStatus: {
    type: 'string',
    description:
      'Only `active` keys do crypto; any other status refuses it with `409 elastic_key_not_active`. ' +
      '`pending_delete_was_<x>` remembers the status that `undelete` restores.',
    enum: [...ELASTIC_KEY_STATUSES],
  },
  ElasticKey: {
    type: 'object',
    required: [
      'elastic_key_id',
      'name',
      'description',
      'provider',
      'algorithm',
      'versioning_allowed',
      'import_allowed',
      'status',
      'created_at',
      'updated_at',
      'material_key_count',
      'latest_version',
      'min_decryption_version',
      'min_encryption_version',
      'rotation_period',
      'max_encryptions',
    ],
    properties: {
      elastic_key_id: uuid('UUIDv7.'),
      name: { type: 'string' },
      description: { type: 'string' },
      provider: { type: 'string' },
      algorithm: ref('schemas', 'KeyAlgorithm'),
      versioning_allowed: { type: 'boolean' },
      import_allowed: { type: 'boolean' },
      status: ref('schemas', 'ElasticKeyStatus'),
      created_at: timestamp('Creation time.'),
      updated_at: timestamp('Last change.'),
      material_key_count: { type: 'integer', minimum: 0 },
      latest_version: { type: 'integer', minimum: 0, description: 'The highest version (0: no material yet).' },
      min_decryption_version: {
        type: 'integer',
        minimum: 1,
        description: 'Versions below it refuse decrypt and verify with `409 material_key_below_min_version`.',
      },
      min_encryption_version: {
        type: 'integer',
        minimum: 0,
        description: '0: the latest version; else the lowest version that `version=N` may name.',
      },
      rotation_period: {
        type: ['string', 'null'],
        description: 'ISO 8601 duration after which a new version is added automatically; null: never.',
      },
      max_encryptions: {
        type: ['integer', 'null'],
        minimum: 1,
        description:
          "Encryptions per version in force (the key's setting, else 2^32 for AES-GCM `dir` and `A*GCMKW`); " +
          'null: unlimited.',
      },
    },
  },
  MaterialKey: {
    type: 'object',
    description: 'One version of an elastic key. Private or secret material never leaves the KMS in clear.',
    required: [
      'elastic_key_id',
      'material_key_id',
      'generate_date',
      'import_date',
      'expiration_date',
      'revocation_date',
      'clear_public',
      'version',
      'destroy_date',
      'encryption_count',
      'public_only',
    ],
    properties: {
      elastic_key_id: uuid('The elastic key it belongs to.'),
      material_key_id: uuid('UUIDv7; the `kid` of every JWE and JWS made with it.'),
      generate_date: nullableTimestamp('Set when generated by the KMS.'),
      import_date: nullableTimestamp('Set when imported.'),
      expiration_date: nullableTimestamp('When it stops being used for new operations, if ever.'),
      revocation_date: nullableTimestamp('Set once revoked; a revoked material key refuses every operation.'),
      version: {
        type: 'integer',
        minimum: 1,
        description: '1, 2, … per elastic key, in the order versions were added.',
      },
      destroy_date: nullableTimestamp(
        'Set when `trim` destroyed the material; the version then refuses every operation.',
      ),
      encryption_count: {
        type: 'integer',
        minimum: 0,
        description:
          'Encryptions reserved with this version (KMS processes reserve them in blocks, so it may exceed the ' +
          'encryptions actually made, never `max_encryptions`).',
      },
      clear_public: {
        description: 'The public JWK (asymmetric keys only), else null.',
        oneOf: [ref('schemas', 'Jwk'), { type: 'null' }],
      },
      public_only: {
        type: 'boolean',
        description:
          'Imported from a public key alone: encrypts and verifies, but decrypt and sign are ' +
          '`409 material_key_public_only`.',
      },
    },
  },
  WrappingKey: {
    type: 'object',
    description:
      "The tenant's import wrapping key: a public RSA-4096 JWK. Wrap a key to it as a JWE (`RSA-OAEP-256` / " +
      '`A256GCM`, with its `kid`) and import it with `{"jwe": ...}`.',
    required: ['kty', 'n', 'e', 'kid', 'alg', 'use'],
    properties: {
      kty: { const: 'RSA' },
      n: { type: 'string', description: 'The 4096-bit modulus, base64url.' },
      e: { type: 'string' },
      kid: uuid('Name this in the JWE header.'),
      alg: { const: 'RSA-OAEP-256' },
      use: { const: 'enc' },
    },
  },
  ElasticKeyPage: page('ElasticKey'),
  MaterialKeyPage: page('MaterialKey'),
  Jwk: {
    type: 'object',
    description: 'A JSON Web Key (RFC 7517).',
    required: ['kty'],
    properties: {
      kty: { type: 'string', enum: ['oct', 'RSA', 'EC', 'OKP'] },
      kid: { type: 'string' },
      alg: { type: 'string' },
      use: { type: 'string', enum: ['enc', 'sig'] },
    },
    additionalProperties: true,
  },
  Jwks: {
    type: 'object',
    description: 'A JSON Web Key Set (RFC 7517 §5) of public keys.',
    required: ['keys'],
    properties: { keys: { type: 'array', items: ref('schemas', 'Jwk') } },
  },
  JweCompact: {
    type: 'string',
    description: 'A JWE in compact serialization; `kid` in its protected header is the material key id.',
    pattern: JWE_COMPACT_PATTERN,
  },
  JwsCompact: {
    type: 'string',
    description: 'A JWS in compact serialization; `kid` in its protected header is the material key id.',
    pattern: JWS_COMPACT_PATTERN,
  },
  Bytes: { type: 'string', format: 'binary', contentMediaType: 'application/octet-stream' },
  VerifyResult: {
    type: 'object',
    required: ['valid', 'kid', 'payload'],
    properties: {
      valid: { const: true, description: 'Always true: a bad signature is a `400 signature_invalid` problem.' },
      kid: uuid('The material key that verified the signature.'),
      payload: { type: 'string', pattern: '^[A-Za-z0-9_-]*$', description: 'The signed bytes, base64url.' },
    },
  },
  ...batchSchemas(),
  Login: {
    type: 'object',
    additionalProperties: false,
    required: ['username', 'password'],
    properties: {
      username: { type: 'string', minLength: 1, maxLength: 128, examples: ['demo-tenant-admin'] },
      password: { type: 'string', minLength: 1, maxLength: 1024, format: 'password' },
    },
  },
  Session: {
    type: 'object',
    required: ['subject', 'username', 'scopes', 'tenants', 'csrf_token', 'expires_at'],
    properties: {
      subject: { type: 'string', description: '`<realm id>/<user id>`.' },
      username: { type: 'string' },
      scopes: { type: 'array', items: { type: 'string' }, description: 'What the roles of the user grant.' },
      tenants: { type: 'array', items: { type: 'string', format: 'uuid' }, description: 'The first is the default.' },
      csrf_token: { type: 'string', description: 'Send it as `X-CSRF-Token` on every state-changing browser call.' },
      expires_at: { type: 'string', format: 'date-time', description: 'The absolute end of the session.' },
    },
  },
  Problem: {
    type: 'object',
    description: 'RFC 9457 problem details. Extensions (e.g. `field` for a bad input) may follow.',
    required: ['type', 'title', 'status', 'code'],
    properties: {
      type: { type: 'string', format: 'uri', description: 'Documents the `code`.' },
      title: { type: 'string' },
      status: { type: 'integer', minimum: 400, maximum: 599 },
      detail: { type: 'string' },
      instance: { type: 'string', description: 'The request path.' },
      code: {
        type: 'string',
        description: 'Stable machine code, e.g. `elastic_key_not_found`, `invalid_jwe`, `signature_invalid`.',
      },
      request_id: { type: 'string', description: 'Echoes `X-Request-ID`.' },
    },
    additionalProperties: true,
  },
};

function page(item: string): Schema {
  return {
    type: 'object',
    required: ['items', 'page', 'size', 'total'],
    properties: {
      items: { type: 'array', items: ref('schemas', item) },
      page: { type: 'integer', minimum: 0, description: 'Page number, from 0.' },
      size: { type: 'integer', minimum: 1, maximum: 1000 },
      total: { type: 'integer', minimum: 0, description: 'Matches over all pages.' },
    },
  };
}

/** A batch request: 1 to MAX_BATCH_ITEMS items of `item`'s fields plus an optional `reference`. */
function batchRequest(
  description: string,
  item: Record<string, Schema>,
  required: string,
  example?: Record<string, string>,
): Schema {
  return {
    type: 'object',
    description,
    ...(example ? { examples: [{ items: [{ ...example, reference: 'row-1' }] }] } : {}),
    additionalProperties: false,
    required: ['items'],
    properties: {
      items: {
        type: 'array',
        minItems: 1,
        maxItems: MAX_BATCH_ITEMS,
        description: `At most ${MAX_BATCH_ITEMS} items (more is \`400 batch_too_large\`), within the body limit.`,
        items: {
          type: 'object',
          additionalProperties: false,
          required: [required],
          properties: { ...item, reference: itemReference },
        },
      },
    },
  };
}

/** A batch response: one result per item, in the items' order: `success`'s fields or `error`. */
function batchResults(description: string, success: Record<string, Schema>): Schema {
  return {
    type: 'object',
    description,
    required: ['results'],
    properties: {
      results: {
        type: 'array',
        items: {
          oneOf: [
            {
              type: 'object',
              required: Object.keys(success),
              properties: { reference: itemReference, ...success },
            },
            ref('schemas', 'BatchItemError'),
          ],
        },
      },
    },
  };
}

function batchSchemas(): Record<string, Schema> {
  return {
    BatchEncryptRequest: batchRequest(
      'Plaintexts to encrypt.',
      { data: base64url('The plaintext, base64url.'), context: itemContext },
      'data',
      { data: 'aGVsbG8', context: 'order-42' },
    ),
    BatchJweRequest: batchRequest(
      'JWEs to decrypt or rewrap.',
      { jwe: ref('schemas', 'JweCompact'), context: itemContext },
      'jwe',
    ),
    BatchSignRequest: batchRequest('Payloads to sign.', { data: base64url('The payload, base64url.') }, 'data', {
      data: 'aGVsbG8',
    }),
    BatchVerifyRequest: batchRequest('JWSs to verify.', { jws: ref('schemas', 'JwsCompact') }, 'jws'),
    BatchItemError: {
      type: 'object',
      description:
        'An item that failed: its problem object, as the single operation would answer it (`invalid_base64url`, ' +
        '`invalid_item` for a context over the limit, `invalid_jwe`, `invalid_jws`, `signature_invalid`, ' +
        '`material_key_revoked`, …); the other items are unaffected.',
      required: ['error'],
      properties: { reference: itemReference, error: ref('schemas', 'Problem') },
    },
    BatchJweResults: batchResults('One JWE per item, or its error.', { jwe: ref('schemas', 'JweCompact') }),
    BatchDataResults: batchResults('One plaintext per item, or its error.', {
      data: base64url('The plaintext, base64url.'),
    }),
    BatchJwsResults: batchResults('One JWS per item, or its error.', { jws: ref('schemas', 'JwsCompact') }),
    BatchVerifyResults: batchResults(
      'One verification per item, or its error (a bad signature is the item error `signature_invalid`).',
      {
        valid: { const: true },
        kid: uuid('The material key that verified the signature.'),
        payload: base64url('The signed bytes, base64url.'),
      },
    ),
  };
}

function problemResponse(description: string, codes: string[], headers?: Record<string, unknown>): Schema {
  const status = Number(/^\d{3}/.exec(description)?.[0] ?? 0);
  return {
    description,
    ...(headers ? { headers } : {}),
    content: {
      [PROBLEM]: {
        schema: ref('schemas', 'Problem'),
        examples: Object.fromEntries(
          codes.map((code) => [
            code,
            {
              value: {
                type: `https://cryptoutil.dev/problems/${code}`,
                title: description.slice(4),
                status,
                code,
              },
            },
          ]),
        ),
      },
    },
  };
}

const responses: Record<string, Schema> = {
  BadRequest: problemResponse('400 Bad Request', [
    'invalid_body',
    'invalid_query',
    'invalid_id',
    'invalid_json',
    'algorithm_unsupported',
    'provider_unsupported',
    'key_usage_mismatch',
    'invalid_jwk',
    'invalid_jwe',
    'invalid_jws',
    'signature_invalid',
    'clear_key_import_refused',
    'wrapped_key_algorithm_unsupported',
    'wrapping_key_unknown',
    'wrapped_key_invalid',
    'batch_too_large',
  ]),
  Unauthorized: problemResponse(
    '401 Unauthorized',
    ['authentication_required', 'invalid_credentials', 'invalid_dpop_proof'],
    {
      'WWW-Authenticate': { schema: { type: 'string' }, example: 'Bearer error="invalid_token"' },
    },
  ),
  Forbidden: problemResponse(
    '403 Forbidden',
    ['insufficient_scope', 'import_not_allowed', 'tenant_forbidden', 'csrf_token_invalid'],
    {
      'WWW-Authenticate': {
        schema: { type: 'string' },
        example: 'Bearer error="insufficient_scope", scope="kms:write"',
      },
    },
  ),
  NotFound: problemResponse('404 Not Found', ['elastic_key_not_found', 'material_key_not_found']),
  Conflict: problemResponse('409 Conflict', [
    'elastic_key_not_active',
    'invalid_status_transition',
    'elastic_key_name_taken',
    'versioning_not_allowed',
    'material_key_revoked',
    'material_key_public_only',
    'no_usable_material_key',
    'material_key_below_min_version',
    'material_key_destroyed',
    'material_key_exhausted',
  ]),
  TooManyRequests: problemResponse('429 Too Many Requests', ['login_locked']),
  PayloadTooLarge: problemResponse('413 Payload Too Large', ['payload_too_large']),
  UnsupportedMediaType: problemResponse('415 Unsupported Media Type', ['unsupported_media_type']),
  InternalError: problemResponse('500 Internal Server Error', ['internal_error']),
};

const queryArray = (name: string, items: Schema, description: string): Schema => ({
  name,
  in: 'query',
  description,
  style: 'form',
  explode: true,
  schema: { type: 'array', items },
});

const parameters: Record<string, Schema> = {
  ElasticKeyId: { name: 'id', in: 'path', required: true, description: 'The elastic key id.', schema: uuid() },
  MaterialKeyId: { name: 'mkid', in: 'path', required: true, description: 'The material key id.', schema: uuid() },
  ElasticKeyIdFilter: queryArray('elastic_key_id', { type: 'string', format: 'uuid' }, 'Only these ids (repeatable).'),
  NameFilter: queryArray('name', { type: 'string' }, 'Only these names (repeatable).'),
  ProviderFilter: queryArray('provider', { type: 'string' }, 'Only these providers (repeatable).'),
  AlgorithmFilter: queryArray('algorithm', ref('schemas', 'KeyAlgorithm'), 'Only these algorithms (repeatable).'),
  VersioningAllowedFilter: { name: 'versioning_allowed', in: 'query', schema: { type: 'boolean' } },
  ImportAllowedFilter: { name: 'import_allowed', in: 'query', schema: { type: 'boolean' } },
  StatusFilter: queryArray('status', ref('schemas', 'ElasticKeyStatus'), 'Only these statuses (repeatable).'),
  MaterialKeyIdFilter: queryArray(
    'material_key_id',
    { type: 'string', format: 'uuid' },
    'Only these material key ids (repeatable).',
  ),
  MinGenerateDate: dateFilter('min_generate_date', 'Generated at or after.'),
  MaxGenerateDate: dateFilter('max_generate_date', 'Generated at or before.'),
  MinImportDate: dateFilter('min_import_date', 'Imported at or after.'),
  MaxImportDate: dateFilter('max_import_date', 'Imported at or before.'),
  ElasticKeySort: sortParameter(ELASTIC_KEY_SORT_FIELDS.join(', ')),
  MaterialKeySort: sortParameter(MATERIAL_KEY_SORT_FIELDS.join(', ')),
  Page: {
    name: 'page',
    in: 'query',
    description: 'Page number, from 0.',
    schema: { type: 'integer', minimum: 0, default: 0 },
  },
  Size: {
    name: 'size',
    in: 'query',
    description: 'Items per page.',
    schema: { type: 'integer', minimum: 1, maximum: 1000, default: 25 },
  },
  Context: {
    name: 'context',
    in: 'query',
    description: 'Optional string bound into the JWE protected header; decrypt must be given the same value again.',
    schema: { type: 'string', maxLength: MAX_CONTEXT_LENGTH },
  },
  Version: {
    name: 'version',
    in: 'query',
    description:
      "Use this version instead of the latest (Vault's `key_version`): `409 material_key_below_min_version` below " +
      'the minimums, `404` if the key has no such version.',
    schema: { type: 'integer', minimum: 1 },
  },
  DataKeyAlgorithm: {
    name: 'alg',
    in: 'query',
    required: true,
    description: 'The kind of data key to generate.',
    schema: { type: 'string', enum: [...DATA_KEY_ALGORITHMS] },
  },
};

function dateFilter(name: string, description: string): Schema {
  return { name, in: 'query', description, schema: { type: 'string', format: 'date-time' } };
}

function sortParameter(fields: string): Schema {
  return queryArray(
    'sort',
    { type: 'string', pattern: SORT_PATTERN },
    `\`field:ASC\` or \`field:DESC\` (repeatable, first wins). Fields: ${fields}.`,
  );
}

const requestBodies: Record<string, Schema> = {
  Bytes: {
    required: true,
    description: 'The bytes to protect (up to the body limit, default 1 MiB).',
    // text/plain first: Swagger UI's "Try it out" then offers a text box rather than a file upload.
    content: {
      'text/plain': { schema: { type: 'string' } },
      'application/octet-stream': { schema: ref('schemas', 'Bytes') },
    },
  },
  Jwe: {
    required: true,
    description: 'The JWE compact serialization.',
    content: {
      'text/plain': { schema: ref('schemas', 'JweCompact') },
      'application/jose': { schema: ref('schemas', 'JweCompact') },
    },
  },
  Jws: {
    required: true,
    description: 'The JWS compact serialization.',
    content: {
      'text/plain': { schema: ref('schemas', 'JwsCompact') },
      'application/jose': { schema: ref('schemas', 'JwsCompact') },
    },
  },
};

type ErrorName = 400 | 401 | 403 | 404 | 409 | 413 | 415 | 429 | 500;
const ERROR_RESPONSE: Record<ErrorName, string> = {
  400: 'BadRequest',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'NotFound',
  409: 'Conflict',
  413: 'PayloadTooLarge',
  415: 'UnsupportedMediaType',
  429: 'TooManyRequests',
  500: 'InternalError',
};

interface OperationSpec {
  operationId: string;
  tag: 'Elastic keys' | 'Material keys' | 'Crypto' | 'Browser session';
  summary: string;
  description?: string;
  parameters?: string[];
  requestBody?: Schema;
  success: Record<string, Schema>;
  /** Beyond 400, 401, 403 and 500, which every operation may answer. */
  errors?: ErrorName[];
}

function operation(spec: OperationSpec): Schema {
  const bodyErrors: ErrorName[] = spec.requestBody ? [413, 415] : [];
  const errors = [...new Set<ErrorName>([400, 401, 403, 500, ...(spec.errors ?? []), ...bodyErrors])].sort(
    (a, b) => a - b,
  );
  return {
    operationId: spec.operationId,
    tags: [spec.tag],
    summary: spec.summary,
    ...(spec.description ? { description: spec.description } : {}),
    ...(spec.parameters?.length ? { parameters: spec.parameters.map((name) => ref('parameters', name)) } : {}),
    ...(spec.requestBody ? { requestBody: spec.requestBody } : {}),
    responses: {
      ...spec.success,
      ...Object.fromEntries(errors.map((status) => [String(status), ref('responses', ERROR_RESPONSE[status])])),
    },
  };
}

const json = (schema: string, description: string, extra: Schema = {}): Schema => ({
  description,
  ...extra,
  content: { [JSON_TYPE]: { schema: ref('schemas', schema) } },
});
const jsonBody = (schema: string, required = true): Schema => ({
  required,
  content: { [JSON_TYPE]: { schema: ref('schemas', schema) } },
});
const text = (schema: string, description: string): Schema => ({
  description,
  content: { 'text/plain': { schema: ref('schemas', schema) } },
});

const ELASTIC_KEY_LIST = [
  'ElasticKeyIdFilter',
  'NameFilter',
  'ProviderFilter',
  'AlgorithmFilter',
  'VersioningAllowedFilter',
  'ImportAllowedFilter',
  'StatusFilter',
  'ElasticKeySort',
  'Page',
  'Size',
];
const MATERIAL_KEY_LIST = [
  'MaterialKeyIdFilter',
  'MinGenerateDate',
  'MaxGenerateDate',
  'MinImportDate',
  'MaxImportDate',
  'MaterialKeySort',
  'Page',
  'Size',
];

/** Sign-in for the browser API only (path-level `servers`); Swagger UI keeps the cookie and CSRF token. */
function sessionPaths(): Record<string, Schema> {
  const browserOnly = [{ url: '/browser/api/v1', description: 'Browser API (session cookie + CSRF)' }];
  const session = (schema: Schema) => ({ servers: browserOnly, ...schema });
  return {
    '/login': session({
      post: {
        ...operation({
          operationId: 'login',
          tag: 'Browser session',
          summary: 'Sign in with a realm user',
          description:
            'Sets the session cookie (`HttpOnly; Secure; SameSite=Strict`) and returns the CSRF token. Wrong ' +
            'passwords are slowed down, then the username is locked for a while (`429 login_locked`).',
          requestBody: jsonBody('Login'),
          success: { '200': json('Session', 'Signed in.') },
          errors: [429],
        }),
        security: [],
      },
    }),
    '/session': session({
      get: {
        ...operation({
          operationId: 'getSession',
          tag: 'Browser session',
          summary: 'The signed-in user and the CSRF token',
          success: { '200': json('Session', 'The session of the cookie.') },
        }),
        security: [{ session: [] }],
      },
    }),
    '/logout': session({
      post: {
        ...operation({
          operationId: 'logout',
          tag: 'Browser session',
          summary: 'End the session',
          description: 'Needs `X-CSRF-Token`.',
          success: { '204': { description: 'Signed out; the cookie is cleared.' } },
        }),
        security: [{ session: [] }],
      },
    }),
    // Sign-in through Identity (only when `auth.identity.browser_login` is configured; 404 otherwise).
    '/identity/login': session({
      get: {
        ...operation({
          operationId: 'identityLogin',
          tag: 'Browser session',
          summary: 'Sign in through Identity (OpenID Connect)',
          description:
            'Redirects (303) to Identity with an authorization request (code, PKCE S256, state, nonce). ' +
            'Identity comes back to `/identity/callback`, which sets the same session cookie as `/login` and ' +
            'redirects to `return_to` (a path of this KMS; default `/ui/`). The session may do what the access ' +
            'token Identity issued may do. A sign-out at Identity ends it: Identity posts a signed logout token ' +
            '(OpenID Connect Back-Channel Logout 1.0) to `/identity/backchannel-logout`, which only Identity calls.',
          success: { '303': { description: 'To Identity.' } },
          errors: [404],
        }),
        security: [],
      },
    }),
  };
}

function paths(): Record<string, Schema> {
  const id = ['ElasticKeyId'];
  const transition = (operationId: string, summary: string, description: string): Schema => ({
    post: operation({
      operationId,
      tag: 'Elastic keys',
      summary,
      description,
      parameters: id,
      success: { '200': json('ElasticKey', 'The elastic key in its new status.') },
      errors: [404, 409],
    }),
  });
  return {
    '/elastickey': {
      post: operation({
        operationId: 'createElasticKey',
        tag: 'Elastic keys',
        summary: 'Create an elastic key',
        description:
          'Creates the key and generates its first material key, unless `import_allowed` (then the key waits ' +
          'in `pending_import` for an imported one). Scope `kms:write`.',
        requestBody: jsonBody('ElasticKeyCreate'),
        success: {
          '201': json('ElasticKey', 'Created.', {
            headers: { Location: { schema: { type: 'string' }, description: 'elastickey/{id}' } },
          }),
        },
        errors: [409],
      }),
    },
    '/elastickey/{id}': {
      get: operation({
        operationId: 'getElasticKey',
        tag: 'Elastic keys',
        summary: 'Read an elastic key',
        description: "Scope `kms:read`. Another tenant's key is a `404`.",
        parameters: id,
        success: { '200': json('ElasticKey', 'The elastic key.') },
        errors: [404],
      }),
      put: operation({
        operationId: 'updateElasticKey',
        tag: 'Elastic keys',
        summary: 'Rename, redescribe, set version minimums and rotation',
        description:
          'Sets `min_decryption_version`, `min_encryption_version`, `rotation_period` and `max_encryptions` ' +
          '(omitted: unchanged); a value the key does not allow is `400` naming the field. Scope `kms:write`.',
        parameters: id,
        requestBody: jsonBody('ElasticKeyUpdate'),
        success: { '200': json('ElasticKey', 'The updated elastic key.') },
        errors: [404, 409],
      }),
      delete: operation({
        operationId: 'deleteElasticKey',
        tag: 'Elastic keys',
        summary: 'Delete an elastic key (soft, with a grace period)',
        description:
          'Moves the key to `pending_delete_was_<previous>`: crypto is refused from then on, and the material ' +
          'is destroyed after the grace period (default 7 days) unless `undelete` restores it first. Scope `kms:write`.',
        parameters: id,
        success: { '202': json('ElasticKey', 'Deletion scheduled.') },
        errors: [404, 409],
      }),
    },
    '/elastickey/{id}/disable': transition(
      'disableElasticKey',
      'Disable an elastic key',
      '`active` → `disabled`: crypto is refused until enabled again. Scope `kms:write`.',
    ),
    '/elastickey/{id}/enable': transition(
      'enableElasticKey',
      'Enable an elastic key',
      '`disabled` → `active`. Scope `kms:write`.',
    ),
    '/elastickey/{id}/undelete': transition(
      'undeleteElasticKey',
      'Undelete an elastic key',
      'Restores the status a `pending_delete_was_<x>` key had before deletion, inside the grace period. Scope `kms:write`.',
    ),
    '/elastickey/{id}/trim': {
      post: operation({
        operationId: 'trimElasticKey',
        tag: 'Elastic keys',
        summary: 'Destroy the versions below min_decryption_version',
        description:
          'Destroys the material of every version below `min_decryption_version` (the rows stay, with ' +
          '`destroy_date`); those versions refuse every operation from then on, even if the minimum is lowered. ' +
          'Audited. Scope `kms:key:trim`, implied by `kms:admin` only.',
        parameters: id,
        success: { '200': json('TrimResult', 'What was destroyed, and the elastic key.') },
        errors: [404],
      }),
    },
    '/elastickeys': {
      get: operation({
        operationId: 'listElasticKeys',
        tag: 'Elastic keys',
        summary: 'List elastic keys',
        description: 'Filters combine with AND; repeated values of one filter with OR. Scope `kms:read`.',
        parameters: ELASTIC_KEY_LIST,
        success: { '200': json('ElasticKeyPage', 'One page of elastic keys.') },
      }),
    },
    '/elastickey/{id}/materialkey': {
      post: operation({
        operationId: 'createMaterialKey',
        tag: 'Material keys',
        summary: 'Generate (rotate) or import a material key',
        description:
          'Without a body: generates a new material key, which becomes the latest (a rotation; `409` if ' +
          '`versioning_allowed=false` and one exists). With a body: imports (`403` unless `import_allowed`), either ' +
          '`{jwe}`, a private or secret JWK wrapped to the import wrapping key (`GET .../wrappingkey`), so it never ' +
          'crosses the wire in clear, or `{jwk}`, a public key alone (a version that encrypts and verifies only). ' +
          'Scope `kms:key:rotate` to generate, `kms:key:create` to import (both in `kms:write`).',
        parameters: id,
        requestBody: jsonBody('MaterialKeyImport', false),
        success: { '201': json('MaterialKey', 'The new material key.') },
        errors: [404, 409],
      }),
    },
    '/elastickey/{id}/wrappingkey': {
      get: operation({
        operationId: 'getImportWrappingKey',
        tag: 'Material keys',
        summary: 'The import wrapping key (bring your own key)',
        description:
          "The tenant's RSA-4096 import wrapping key as a public JWK. Wrap a private or secret JWK to it (JWE " +
          '`RSA-OAEP-256` / `A256GCM`, its `kid` in the header) and send `{"jwe": ...}` to `POST .../materialkey`. ' +
          'Its private half is kept only under the barrier. Made on first use (that call takes a few seconds). ' +
          '`403 import_not_allowed` unless the elastic key has `import_allowed`. Scope `kms:key:create`.',
        parameters: id,
        success: {
          '200': {
            description: 'The public wrapping key.',
            content: { 'application/jwk+json': { schema: ref('schemas', 'WrappingKey') } },
          },
        },
        errors: [404],
      }),
    },
    '/elastickey/{id}/materialkey/{mkid}': {
      get: operation({
        operationId: 'getMaterialKey',
        tag: 'Material keys',
        summary: 'Read a material key',
        description: 'Scope `kms:read`.',
        parameters: ['ElasticKeyId', 'MaterialKeyId'],
        success: { '200': json('MaterialKey', 'The material key.') },
        errors: [404],
      }),
    },
    '/elastickey/{id}/materialkeys': {
      get: operation({
        operationId: 'listElasticKeyMaterialKeys',
        tag: 'Material keys',
        summary: "List an elastic key's material keys",
        description: 'Scope `kms:read`.',
        parameters: [...id, ...MATERIAL_KEY_LIST],
        success: { '200': json('MaterialKeyPage', 'One page of material keys.') },
        errors: [404],
      }),
    },
    '/materialkeys': {
      get: operation({
        operationId: 'listMaterialKeys',
        tag: 'Material keys',
        summary: 'List material keys of every elastic key',
        description: 'Scope `kms:read`.',
        parameters: MATERIAL_KEY_LIST,
        success: { '200': json('MaterialKeyPage', 'One page of material keys.') },
      }),
    },
    '/elastickey/{id}/materialkey/{mkid}/revoke': {
      post: operation({
        operationId: 'revokeMaterialKey',
        tag: 'Material keys',
        summary: 'Revoke a material key',
        description:
          'Sets `revocation_date`; a revoked material key is refused for every operation. Scope `kms:write`.',
        parameters: ['ElasticKeyId', 'MaterialKeyId'],
        success: { '200': json('MaterialKey', 'The revoked material key.') },
        errors: [404, 409],
      }),
    },
    '/elastickey/{id}/encrypt': {
      post: operation({
        operationId: 'encrypt',
        tag: 'Crypto',
        summary: 'Encrypt bytes to a JWE',
        description:
          'Encrypts with the latest material key (`kid` = its material_key_id), or the `version` asked for. ' +
          '`409 elastic_key_not_active` unless the key is `active`; when the version has made its ' +
          '`max_encryptions`, a new version is generated and used (`409 material_key_exhausted` if it cannot ' +
          'be, or the exhausted version was asked for). Scope `kms:encrypt`.',
        parameters: [...id, 'Context', 'Version'],
        requestBody: ref('requestBodies', 'Bytes'),
        success: { '200': text('JweCompact', 'The JWE, compact serialization.') },
        errors: [404, 409],
      }),
    },
    '/elastickey/{id}/decrypt': {
      post: operation({
        operationId: 'decrypt',
        tag: 'Crypto',
        summary: 'Decrypt a JWE',
        description:
          'Picks the material key by `kid`, so data made with older versions still decrypts, unless they are below ' +
          '`min_decryption_version` (`409 material_key_below_min_version`) or trimmed (`409 material_key_destroyed`). ' +
          'The `context` given on encrypt must be given again. Scope `kms:decrypt`.',
        parameters: [...id, 'Context'],
        requestBody: ref('requestBodies', 'Jwe'),
        success: {
          '200': {
            description: 'The plaintext bytes.',
            content: { 'application/octet-stream': { schema: ref('schemas', 'Bytes') } },
          },
        },
        errors: [404, 409],
      }),
    },
    '/elastickey/{id}/rewrap': {
      post: operation({
        operationId: 'rewrap',
        tag: 'Crypto',
        summary: 'Rewrap a JWE with the latest material key',
        description:
          'Takes a JWE made with any allowed version of this elastic key (and the `context` it was made with) ' +
          'and returns one made with the latest version, bound to the same context. The plaintext never leaves ' +
          'the KMS. Scope `kms:rewrap` (implied by `kms:write`); `kms:decrypt` is not needed and not enough.',
        parameters: [...id, 'Context'],
        requestBody: ref('requestBodies', 'Jwe'),
        success: { '200': text('JweCompact', 'The new JWE, compact serialization.') },
        errors: [404, 409],
      }),
    },
    '/elastickey/{id}/sign': {
      post: operation({
        operationId: 'sign',
        tag: 'Crypto',
        summary: 'Sign bytes to a JWS',
        description:
          'Signs with the latest material key (`kid` = its material_key_id), or the `version` asked for. ' +
          'Scope `kms:sign`.',
        parameters: [...id, 'Version'],
        requestBody: ref('requestBodies', 'Bytes'),
        success: { '200': text('JwsCompact', 'The JWS, compact serialization.') },
        errors: [404, 409],
      }),
    },
    '/elastickey/{id}/verify': {
      post: operation({
        operationId: 'verify',
        tag: 'Crypto',
        summary: 'Verify a JWS',
        description:
          'A bad signature is `400` with code `signature_invalid`; a version below `min_decryption_version` is ' +
          '`409 material_key_below_min_version`. Scope `kms:verify`.',
        parameters: id,
        requestBody: ref('requestBodies', 'Jws'),
        success: { '200': json('VerifyResult', 'The signature is valid.') },
        errors: [404, 409],
      }),
    },
    '/elastickey/{id}/generate': {
      post: operation({
        operationId: 'generateDataKey',
        tag: 'Crypto',
        summary: 'Generate a data key, returned encrypted (envelope encryption)',
        description:
          'Returns a JWE, made with the elastic key, whose plaintext is a fresh JWK of the requested kind. ' +
          'Decrypt it with `decrypt` to use the data key. Scope `kms:generate`.',
        parameters: [...id, 'DataKeyAlgorithm'],
        success: { '200': text('JweCompact', 'The data key as a JWE, compact serialization.') },
        errors: [404, 409],
      }),
    },
    ...batchPaths(),
    '/elastickey/{id}/jwks': {
      get: operation({
        operationId: 'getElasticKeyJwks',
        tag: 'Crypto',
        summary: 'Public JWKS of an elastic key',
        description:
          'The public keys of its asymmetric material keys that are not revoked, to verify JWS or encrypt ' +
          'offline. Empty for symmetric keys. Scope `kms:read`.',
        parameters: id,
        success: {
          '200': {
            description: 'The public JWKS.',
            content: { 'application/jwk-set+json': { schema: ref('schemas', 'Jwks') } },
          },
        },
        errors: [404],
      }),
    },
  };
}

function batchPaths(): Record<string, Schema> {
  const batch = (
    name: 'encrypt' | 'decrypt' | 'rewrap' | 'sign' | 'verify',
    summary: string,
    request: string,
    results: string,
    scope: string,
  ): [string, Schema] => [
    `/elastickey/{id}/${name}/batch`,
    {
      post: operation({
        operationId: `${name}Batch`,
        tag: 'Crypto',
        summary,
        description:
          `Up to ${MAX_BATCH_ITEMS} items in one call; the elastic key and its versions are resolved once. ` +
          'Results keep the order of the items; an item that fails (bad base64url, bad JWE or JWS, wrong ' +
          'context) has an `error` problem object and never fails the others. The whole call is refused only ' +
          'for a body that is not a batch or a key that refuses the operation. One audit event per item. ' +
          `Scope \`${scope}\`.`,
        parameters: ['ElasticKeyId'],
        requestBody: jsonBody(request),
        success: { '200': json(results, 'One result per item, in order.') },
        errors: [404, 409],
      }),
    },
  ];
  return Object.fromEntries([
    batch('encrypt', 'Encrypt many plaintexts', 'BatchEncryptRequest', 'BatchJweResults', 'kms:encrypt'),
    batch('decrypt', 'Decrypt many JWEs', 'BatchJweRequest', 'BatchDataResults', 'kms:decrypt'),
    batch(
      'rewrap',
      'Rewrap many JWEs with the latest material key',
      'BatchJweRequest',
      'BatchJweResults',
      'kms:rewrap',
    ),
    batch('sign', 'Sign many payloads', 'BatchSignRequest', 'BatchJwsResults', 'kms:sign'),
    batch('verify', 'Verify many JWSs', 'BatchVerifyRequest', 'BatchVerifyResults', 'kms:verify'),
  ]);
}

const DESCRIPTION = `Keeps keys so that applications never hold long-lived key material. Everything it returns is a
standard JOSE object (JWE, JWS, JWK), so any JOSE library can check its work.

The same paths are served under two prefixes (pick one in **Servers**):

| prefix | for | authentication |
|---|---|---|
| \`/service/api/v1\` | machine clients | HTTP Basic (realm user or service client), bearer token (JWT from Identity), DPoP-bound token with a proof (RFC 9449), or API key |
| \`/browser/api/v1\` | the browser console | session cookie and CSRF token after a realm login |

Scopes: \`kms:admin\` ⊇ \`kms:write\` ⊇ \`kms:read\`, plus per operation \`kms:encrypt\`, \`kms:decrypt\`,
\`kms:rewrap\`, \`kms:sign\`, \`kms:verify\`, \`kms:generate\` (a batch needs its operation's scope). A caller sees
only its tenant's keys (another tenant's key is a \`404\`): the tenant comes from the credential; a caller with
several tenants picks one with the \`X-Tenant-ID\` header (a canonical UUIDv4 that must be one of its own; otherwise \`403 tenant_forbidden\`, malformed \`400\`).

Vault clients use the **Vault Transit compatibility** paths under \`/v1/transit\` (\`X-Vault-Token\`, Vault's shapes).

JSON fields are snake_case; ids are UUIDv7. Every error is \`application/problem+json\` (RFC 9457) with a stable
\`code\`. Bodies over the configured limit (default 1 MiB) are \`413\`.`;

export function openApiDocument(options: OpenApiOptions): OpenApiDocument {
  const serverUrls = options.serverUrls ?? [...DEFAULT_SERVER_URLS];
  return {
    openapi: '3.1.0',
    info: {
      title: 'cryptoutil KMS',
      version: options.version,
      description:
        options.demoCredentials === undefined
          ? DESCRIPTION
          : `${DESCRIPTION}\n\n### Demo credentials (published: never for real data)\n\n${options.demoCredentials}`,
      license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
    },
    servers: serverUrls.map((url) => ({
      url,
      description: url.includes('/browser/') ? 'Browser API (session cookie + CSRF)' : 'Service API (machine clients)',
    })),
    tags: [
      { name: 'Elastic keys', description: 'Named keys with a lifecycle; each holds one or more material keys.' },
      { name: 'Material keys', description: 'The versions of an elastic key: generate (rotate), import, revoke.' },
      {
        name: 'Crypto',
        description: 'Encrypt, decrypt, rewrap, sign, verify (one at a time or in batches), data keys and public JWKS.',
      },
      {
        name: 'Browser session',
        description: 'Sign in on the browser API; then pick the `/browser/api/v1` server for the other operations.',
      },
      VAULT_TRANSIT_TAG,
    ],
    security: [{ basic: [] }, { bearer: [] }, { dpop: [] }, { apiKey: [] }, { session: [] }],
    paths: { ...sessionPaths(), ...paths(), ...vaultTransitPaths() },
    components: {
      schemas: { ...schemas, ...VAULT_TRANSIT_SCHEMAS },
      responses,
      parameters,
      requestBodies,
      securitySchemes: {
        basic: { type: 'http', scheme: 'basic', description: 'A realm user, or a service client id and secret.' },
        bearer: {
          type: 'http',
          scheme: 'bearer',
          bearerFormat: 'JWT',
          description: 'An access token issued by Identity, with the needed `kms:*` scope.',
        },
        dpop: {
          type: 'http',
          scheme: 'DPoP',
          description:
            'A DPoP-bound access token from Identity (`cnf.jkt`), sent as `Authorization: DPoP <token>` with a ' +
            '`DPoP` proof header for this request (RFC 9449: `htm`, `htu` = the KMS public URL and path without ' +
            'query, `iat`, unique `jti`, `ath`). A bound token sent as Bearer is refused.',
        },
        apiKey: {
          type: 'apiKey',
          in: 'header',
          name: 'Authorization',
          description: 'A KMS API key, sent as `Authorization: ApiKey <id>.<secret>` (enter `ApiKey <id>.<secret>`).',
        },
        session: {
          type: 'apiKey',
          in: 'cookie',
          name: '__Host-kms_session',
          description:
            'The browser API session, set by `POST /login`; state-changing calls also need `X-CSRF-Token` ' +
            '(Swagger UI sends it after a login made here).',
        },
        vaultToken: VAULT_TOKEN_SECURITY_SCHEME,
      },
    },
  };
}
