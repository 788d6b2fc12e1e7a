import { describe, expect, it } from '@jest/globals';
import { Validator } from '@seriousme/openapi-schema-validator';
import express from 'express';
import request from 'supertest';
import { DATA_KEY_ALGORITHMS, KEY_ALGORITHM_NAMES } from '@cryptoutil/jose-authority';
import { openApiDocument } from '../src/api/openapi.js';
import { OPENAPI_PATH, SWAGGER_UI_PATH, swaggerRouter } from '@cryptoutil/infra';

/** Every method and path of kms.md "Resources" (relative to both API prefixes). */
const CONTRACT: [method: string, path: string][] = [
  ['post', '/elastickey'],
  ['get', '/elastickey/{id}'],
  ['put', '/elastickey/{id}'],
  ['post', '/elastickey/{id}/trim'],
  ['post', '/elastickey/{id}/disable'],
  ['post', '/elastickey/{id}/enable'],
  ['delete', '/elastickey/{id}'],
  ['post', '/elastickey/{id}/undelete'],
  ['get', '/elastickeys'],
  ['post', '/elastickey/{id}/materialkey'],
  ['get', '/elastickey/{id}/wrappingkey'],
  ['get', '/elastickey/{id}/materialkey/{mkid}'],
  ['get', '/elastickey/{id}/materialkeys'],
  ['get', '/materialkeys'],
  ['post', '/elastickey/{id}/materialkey/{mkid}/revoke'],
  ['post', '/elastickey/{id}/encrypt'],
  ['post', '/elastickey/{id}/decrypt'],
  ['post', '/elastickey/{id}/rewrap'],
  ['post', '/elastickey/{id}/sign'],
  ['post', '/elastickey/{id}/verify'],
  ['post', '/elastickey/{id}/generate'],
  ['get', '/elastickey/{id}/jwks'],
  // kms.md "Beyond the anchors": Batch.
  ['post', '/elastickey/{id}/encrypt/batch'],
  ['post', '/elastickey/{id}/decrypt/batch'],
  ['post', '/elastickey/{id}/rewrap/batch'],
  ['post', '/elastickey/{id}/sign/batch'],
  ['post', '/elastickey/{id}/verify/batch'],
];

/** The browser API's sign-in, documented for `/browser/api/v1` only (path-level servers). */
const SESSION_PATHS: [method: string, path: string][] = [
  ['post', '/login'],
  ['get', '/session'],
  ['post', '/logout'],
  ['get', '/identity/login'],
];

type Json = Record<string, unknown>;
type Operation = { operationId?: string; parameters?: Json[]; requestBody?: Json; responses: Record<string, Json> };

const document = openApiDocument({ version: 'test' });
const app = express().use(swaggerRouter(document));

/** Follows a local `$ref` (`#/components/...`). */
function deref<T = Json>(value: unknown): T {
  let current = value as Json;
  while (typeof current.$ref === 'string') {
    const pointer = current.$ref.replace(/^#\//, '').split('/');
    current = pointer.reduce<Json>((node, key) => node[key] as Json, document);
    expect(current).toBeDefined();
  }
  return current as T;
}

/** The Vault Transit compatible paths (server `/v1`, Vault's shapes): checked in vault-transit.test.ts. */
const isVaultTransit = (item: Record<string, unknown>) =>
  (item.servers as { url: string }[] | undefined)?.[0]?.url === '/v1';

function operations(): [string, string, Operation][] {
  return Object.entries(document.paths as Record<string, Record<string, Operation>>)
    .filter(([, item]) => !isVaultTransit(item))
    .flatMap(([path, item]) =>
      Object.entries(item)
        .filter(([method]) => method !== 'servers')
        .map(([method, operation]): [string, string, Operation] => [method, path, operation]),
    );
}

function operation(method: string, path: string): Operation {
  const found = (document.paths as Record<string, Record<string, Operation>>)[path]?.[method];
  if (!found) throw new Error(`${method.toUpperCase()} ${path} is not documented`);
  return found;
}

function parameter(method: string, path: string, name: string): Json {
  const found = (operation(method, path).parameters ?? []).map((p) => deref(p)).find((p) => p.name === name);
  if (!found) throw new Error(`${method.toUpperCase()} ${path} has no parameter ${name}`);
  return found;
}

describe('OpenAPI document', () => {
  it('is served as JSON at /.well-known/openapi.json', async () => {
    const response = await request(app).get(OPENAPI_PATH).expect(200);
    expect(response.headers['content-type']).toMatch(/^application\/json/);
    expect(response.body).toEqual(JSON.parse(JSON.stringify(document)));
  });

  it('is a valid OpenAPI 3.1 document whose references all resolve', async () => {
    const validator = new Validator();
    const result = await validator.validate(JSON.parse(JSON.stringify(document)) as Json);
    expect(result.errors).toBeUndefined();
    expect(result.valid).toBe(true);
    expect(validator.version).toBe('3.1');
    const refs = JSON.stringify(document).match(/"\$ref":"[^"]+"/g) ?? [];
    expect(refs.length).toBeGreaterThan(0);
    for (const text of refs) deref(JSON.parse(`{${text}}`));
  });

  it('lists both API prefixes as relative servers', () => {
    expect(document.servers).toEqual([
      expect.objectContaining({ url: '/service/api/v1' }),
      expect.objectContaining({ url: '/browser/api/v1' }),
    ]);
    expect(openApiDocument({ version: '1', serverUrls: ['https://kms.example/service/api/v1'] }).servers).toEqual([
      expect.objectContaining({ url: 'https://kms.example/service/api/v1' }),
    ]);
  });

  it('documents exactly the paths of the contract', () => {
    for (const [method, path] of CONTRACT) expect(operation(method, path)).toBeDefined();
    expect(
      operations()
        .map(([method, path]) => `${method} ${path}`)
        .sort(),
    ).toEqual([...CONTRACT, ...SESSION_PATHS].map(([method, path]) => `${method} ${path}`).sort());
    const paths = document.paths as Record<string, { servers?: { url: string }[] }>;
    for (const [, path] of SESSION_PATHS)
      expect(paths[path]?.servers?.map((server) => server.url)).toEqual(['/browser/api/v1']);
    for (const [, path] of CONTRACT) expect(paths[path]?.servers).toBeUndefined();
  });

  it('gives every operation a unique camelCase operationId, a tag and problem+json errors', () => {
    const ids = new Set<string>();
    for (const [method, path, op] of operations()) {
      expect(op.operationId).toMatch(/^[a-z][A-Za-z]*$/);
      expect(ids.has(op.operationId!)).toBe(false);
      ids.add(op.operationId!);
      expect(['Elastic keys', 'Material keys', 'Crypto', 'Browser session']).toEqual(
        expect.arrayContaining((op as unknown as { tags: string[] }).tags),
      );
      for (const status of ['400', '401', '403', '500']) {
        const response = deref<{ content: Json }>(op.responses[status]);
        expect(Object.keys(response.content)).toEqual(['application/problem+json']);
      }
      if (op.requestBody) {
        expect(op.responses).toHaveProperty('413');
        expect(op.responses).toHaveProperty('415');
      }
      if (path.includes('{id}')) expect(op.responses).toHaveProperty('404');
      expect(`${method} ${path}`).toBeTruthy();
    }
    expect([...ids]).toEqual(
      expect.arrayContaining([
        'createElasticKey',
        'getElasticKey',
        'updateElasticKey',
        'deleteElasticKey',
        'listElasticKeys',
        'createMaterialKey',
        'revokeMaterialKey',
        'encrypt',
        'decrypt',
        'sign',
        'verify',
        'generateDataKey',
      ]),
    );
  });

  it('describes problems, elastic keys, material keys and pages with the contract fields', () => {
    const schemas = (document.components as { schemas: Record<string, Json> }).schemas;
    expect(Object.keys(schemas.Problem!.properties as Json)).toEqual(
      expect.arrayContaining(['type', 'title', 'status', 'detail', 'instance', 'code']),
    );
    expect(schemas.ElasticKey!.required).toEqual([
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
    ]);
    expect(schemas.MaterialKey!.required).toEqual([
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
    ]);
    for (const name of ['ElasticKeyPage', 'MaterialKeyPage']) {
      expect(Object.keys(schemas[name]!.properties as Json)).toEqual(['items', 'page', 'size', 'total']);
    }
    expect(schemas.KeyAlgorithm!.enum).toEqual([...KEY_ALGORITHM_NAMES]);
  });

  it('refuses unknown fields in request bodies and documents their defaults', () => {
    const create = deref<{ content: Record<string, { schema: Json }> }>(operation('post', '/elastickey').requestBody);
    const schema = deref(create.content['application/json']!.schema);
    expect(schema.additionalProperties).toBe(false);
    expect(schema.required).toEqual(['name', 'description', 'algorithm']);
    const properties = schema.properties as Record<string, Json>;
    expect(Object.keys(properties)).toEqual([
      'name',
      'description',
      'algorithm',
      'provider',
      'versioning_allowed',
      'import_allowed',
    ]);
    expect(properties.provider!.default).toBe('Internal');
    expect(properties.versioning_allowed!.default).toBe(true);
    expect(properties.import_allowed!.default).toBe(false);
    for (const [method, path] of [
      ['put', '/elastickey/{id}'],
      ['post', '/elastickey/{id}/materialkey'],
    ] as const) {
      const body = deref<{ content: Record<string, { schema: Json }> }>(operation(method, path).requestBody);
      expect(deref(body.content['application/json']!.schema).additionalProperties).toBe(false);
    }
  });

  it('documents the byte and compact bodies of the crypto operations', () => {
    const content = (method: string, path: string) =>
      Object.keys(deref<{ content: Json }>(operation(method, path).requestBody).content);
    const success = (path: string) =>
      Object.keys(deref<{ content: Json }>(operation('post', path).responses['200']).content);
    for (const path of ['/elastickey/{id}/encrypt', '/elastickey/{id}/sign']) {
      expect(content('post', path)).toEqual(expect.arrayContaining(['application/octet-stream', 'text/plain']));
      expect(success(path)).toEqual(['text/plain']);
    }
    for (const path of ['/elastickey/{id}/decrypt', '/elastickey/{id}/verify']) {
      expect(content('post', path)).toContain('text/plain');
    }
    expect(success('/elastickey/{id}/decrypt')).toEqual(['application/octet-stream']);
    expect(success('/elastickey/{id}/generate')).toEqual(['text/plain']);
  });

  it('documents the list filters, paging and crypto query parameters', () => {
    for (const name of ['elastic_key_id', 'name', 'provider', 'algorithm', 'versioning_allowed', 'import_allowed']) {
      expect(parameter('get', '/elastickeys', name).in).toBe('query');
    }
    const status = parameter('get', '/elastickeys', 'status');
    expect(status).toMatchObject({ explode: true, schema: { type: 'array' } });
    const sort = parameter('get', '/elastickeys', 'sort');
    expect(sort).toMatchObject({
      explode: true,
      schema: { type: 'array', items: { pattern: '^[a-z_]+:(ASC|DESC)$' } },
    });
    expect(parameter('get', '/elastickeys', 'page').schema).toMatchObject({ minimum: 0 });
    expect(parameter('get', '/elastickeys', 'size').schema).toMatchObject({ minimum: 1, maximum: 1000, default: 25 });
    for (const path of ['/materialkeys', '/elastickey/{id}/materialkeys']) {
      for (const name of [
        'material_key_id',
        'min_generate_date',
        'max_generate_date',
        'min_import_date',
        'max_import_date',
        'sort',
        'page',
        'size',
      ]) {
        expect(parameter('get', path, name).in).toBe('query');
      }
    }
    expect(parameter('post', '/elastickey/{id}/encrypt', 'context').in).toBe('query');
    expect(parameter('post', '/elastickey/{id}/decrypt', 'context').in).toBe('query');
    expect(parameter('post', '/elastickey/{id}/generate', 'alg')).toMatchObject({
      required: true,
      schema: { enum: [...DATA_KEY_ALGORITHMS] },
    });
  });

  it('declares basic, bearer, DPoP, API key and session security, as the KMS accepts them', () => {
    const schemes = (document.components as { securitySchemes: Json }).securitySchemes;
    expect(schemes).toEqual({
      basic: expect.objectContaining({ type: 'http', scheme: 'basic' }),
      bearer: expect.objectContaining({ type: 'http', scheme: 'bearer', bearerFormat: 'JWT' }),
      dpop: expect.objectContaining({ type: 'http', scheme: 'DPoP' }),
      // The value Swagger UI sends is the whole header: `ApiKey <id>.<secret>`.
      apiKey: expect.objectContaining({ type: 'apiKey', in: 'header', name: 'Authorization' }),
      session: expect.objectContaining({ type: 'apiKey', in: 'cookie', name: '__Host-kms_session' }),
      // The Vault Transit paths only (their own `security`).
      vaultToken: expect.objectContaining({ type: 'apiKey', in: 'header', name: 'X-Vault-Token' }),
    });
    expect(document.security).toEqual([{ basic: [] }, { bearer: [] }, { dpop: [] }, { apiKey: [] }, { session: [] }]);
    expect(operation('post', '/login')).toMatchObject({ security: [] });
  });
});

describe('Swagger UI', () => {
  it('redirects to the trailing-slash URL its relative assets need', async () => {
    const response = await request(app).get(SWAGGER_UI_PATH).expect(301);
    expect(response.headers.location).toBe(`${SWAGGER_UI_PATH}/`);
  });

  it('serves a page with no external host and no inline script, under a self-only script CSP', async () => {
    const response = await request(app).get(`${SWAGGER_UI_PATH}/`).expect(200);
    expect(response.headers['content-type']).toMatch(/^text\/html/);
    const csp = String(response.headers['content-security-policy']);
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toMatch(/script-src[^;]*(unsafe|https?:)/);
    const html = response.text;
    const references = [...html.matchAll(/\s(?:src|href)\s*=\s*["']([^"']+)["']/g)].map((match) => match[1]!);
    expect(references.length).toBeGreaterThan(2);
    for (const reference of references) expect(reference).not.toMatch(/^(?:[a-z][a-z0-9+.-]*:|\/\/)/i);
    const scripts = [...html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)];
    expect(scripts.length).toBeGreaterThan(0);
    for (const [, attributes, body] of scripts) {
      expect(attributes).toMatch(/\bsrc=/);
      expect(body!.trim()).toBe('');
    }
    expect(html).toContain('swagger-ui-init.js');
  });

  it('serves every asset the page references, including the init script that loads the document', async () => {
    const html = (await request(app).get(`${SWAGGER_UI_PATH}/`).expect(200)).text;
    const references = [...html.matchAll(/\s(?:src|href)\s*=\s*["']([^"']+)["']/g)].map((match) => match[1]!);
    for (const reference of references) {
      const path = new URL(reference, `http://kms${SWAGGER_UI_PATH}/`).pathname;
      const response = await request(app).get(path);
      expect({ path, status: response.status }).toEqual({ path, status: 200 });
    }
    const init = await request(app).get(`${SWAGGER_UI_PATH}/swagger-ui-init.js`).expect(200);
    expect(init.headers['content-type']).toMatch(/javascript/);
    expect(init.text).toContain(`"swaggerUrl": "${OPENAPI_PATH}"`);
    expect(init.text).toContain('"validatorUrl": null');
  });

  it("hides swagger-ui-dist's demo page and initializer", async () => {
    await request(app).get(`${SWAGGER_UI_PATH}/index.html`).expect(404);
    await request(app).get(`${SWAGGER_UI_PATH}/swagger-initializer.js`).expect(404);
  });
});
