/**
 * The browser API (`/browser/api/v1`): the session cookie goes along by itself (same origin, HttpOnly),
 * the CSRF token from the login or `GET /session` goes on every state-changing call, and the chosen
 * tenant in `X-Tenant-ID`. Errors arrive as problem+json and become `ApiError`s with their `code`.
 */
const BASE = '/browser/api/v1';

export interface Session {
  subject: string;
  username: string;
  scopes: string[];
  tenants: string[];
  csrf_token: string;
  expires_at: string;
}

export interface ElasticKey {
  elastic_key_id: string;
  name: string;
  description: string;
  algorithm: string;
  status: string;
  versioning_allowed: boolean;
  import_allowed: boolean;
  created_at: string;
  material_key_count?: number;
  latest_version: number;
  min_decryption_version: number;
  min_encryption_version: number;
  rotation_period: string | null;
  max_encryptions: number | null;
}

/** What `PUT /elastickey/{id}` takes besides name and description (omitted: unchanged; null: reset). */
export interface KeySettings {
  min_decryption_version?: number;
  min_encryption_version?: number;
  rotation_period?: string | null;
  max_encryptions?: number | null;
}

export interface MaterialKey {
  material_key_id: string;
  version: number;
  generate_date: string | null;
  import_date: string | null;
  revocation_date: string | null;
  destroy_date: string | null;
  encryption_count: number;
  /** Imported from a public key alone: encrypts and verifies only. */
  public_only?: boolean;
}

export interface Page<T> {
  items: T[];
  page: number;
  size: number;
  total: number;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    detail: string,
  ) {
    super(detail);
  }
}

let csrfToken: string | undefined;
let tenant: string | undefined;

export const setTenant = (id: string | undefined) => {
  tenant = id;
};

async function call(method: string, path: string, body?: BodyInit, type?: string): Promise<Response> {
  const headers: Record<string, string> = {};
  if (type) headers['Content-Type'] = type;
  if (method !== 'GET' && csrfToken) headers['X-CSRF-Token'] = csrfToken;
  if (tenant) headers['X-Tenant-ID'] = tenant;
  const response = await fetch(`${BASE}${path}`, {
    method,
    headers,
    credentials: 'same-origin',
    ...(body === undefined ? {} : { body }),
  });
  if (response.ok) return response;
  let problem: { code?: string; detail?: string; title?: string } = {};
  try {
    problem = (await response.json()) as typeof problem;
  } catch {
    // not problem+json (e.g. a proxy error page)
  }
  throw new ApiError(response.status, problem.code ?? 'error', problem.detail ?? problem.title ?? response.statusText);
}

const json = async <T>(response: Response) => (await response.json()) as T;

export async function login(username: string, password: string): Promise<Session> {
  const session = await json<Session>(
    await call('POST', '/login', JSON.stringify({ username, password }), 'application/json'),
  );
  csrfToken = session.csrf_token;
  return session;
}

/** Where to start a sign-in through Identity, when this KMS offers one (`auth.identity.browser_login`). */
export async function identitySignInUrl(): Promise<string | undefined> {
  try {
    const { sign_in_url: url } = await json<{ sign_in_url: string }>(await call('GET', '/identity'));
    return `${url}?return_to=${encodeURIComponent(location.pathname)}`;
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) return undefined;
    throw error;
  }
}

export async function currentSession(): Promise<Session | undefined> {
  try {
    const session = await json<Session>(await call('GET', '/session'));
    csrfToken = session.csrf_token;
    return session;
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return undefined;
    throw error;
  }
}

export async function logout(): Promise<void> {
  await call('POST', '/logout');
  csrfToken = undefined;
}

export const listKeys = async (query: URLSearchParams) =>
  json<Page<ElasticKey>>(await call('GET', `/elastickeys?${query.toString()}`));

export const getKey = async (id: string) => json<ElasticKey>(await call('GET', `/elastickey/${id}`));

export const createKey = async (input: {
  name: string;
  description: string;
  algorithm: string;
  versioning_allowed: boolean;
  import_allowed: boolean;
}) => json<ElasticKey>(await call('POST', '/elastickey', JSON.stringify(input), 'application/json'));

/** `disable`, `enable` and `undelete` are POSTs on the key; `delete` is a DELETE. */
export async function changeKey(id: string, action: 'disable' | 'enable' | 'delete' | 'undelete'): Promise<void> {
  if (action === 'delete') await call('DELETE', `/elastickey/${id}`);
  else await call('POST', `/elastickey/${id}/${action}`);
}

export const updateKey = async (key: ElasticKey, settings: KeySettings) =>
  json<ElasticKey>(
    await call(
      'PUT',
      `/elastickey/${key.elastic_key_id}`,
      JSON.stringify({ name: key.name, description: key.description, ...settings }),
      'application/json',
    ),
  );

/** Destroys the versions below min_decryption_version (kms:admin). */
export const trim = async (id: string) =>
  json<{ destroyed_versions: number[] }>(await call('POST', `/elastickey/${id}/trim`));

export const listMaterialKeys = async (id: string) =>
  json<Page<MaterialKey>>(await call('GET', `/elastickey/${id}/materialkeys?size=100&sort=version:DESC`));

export const rotate = async (id: string) => json<MaterialKey>(await call('POST', `/elastickey/${id}/materialkey`));

export const revoke = async (id: string, materialKeyId: string) =>
  call('POST', `/elastickey/${id}/materialkey/${materialKeyId}/revoke`);

export const jwks = async (id: string) => (await call('GET', `/elastickey/${id}/jwks`)).text();

export const encrypt = async (id: string, text: string) =>
  (await call('POST', `/elastickey/${id}/encrypt`, text, 'text/plain')).text();

export const decrypt = async (id: string, jwe: string) =>
  (await call('POST', `/elastickey/${id}/decrypt`, jwe, 'text/plain')).text();

export const sign = async (id: string, text: string) =>
  (await call('POST', `/elastickey/${id}/sign`, text, 'text/plain')).text();

export const verify = async (id: string, jws: string) =>
  json<{ valid: boolean; kid: string; payload: string }>(
    await call('POST', `/elastickey/${id}/verify`, jws, 'text/plain'),
  );

export const generateDataKey = async (id: string, alg: string) =>
  (await call('POST', `/elastickey/${id}/generate?alg=${encodeURIComponent(alg)}`)).text();

/** Algorithm names and data key algorithms, from the served OpenAPI document (the API's own enums). */
export async function algorithmCatalog(): Promise<{ keys: string[]; dataKeys: string[] }> {
  const document = (await (await fetch('/.well-known/openapi.json')).json()) as {
    components: {
      schemas: Record<string, { properties?: Record<string, { enum?: string[] }> }>;
      parameters: Record<string, { name?: string; schema?: { enum?: string[] } }>;
    };
  };
  const keys = (document.components.schemas.KeyAlgorithm as { enum?: string[] } | undefined)?.enum ?? [];
  const dataKeys =
    Object.values(document.components.parameters).find((parameter) => parameter.name === 'alg')?.schema?.enum ?? [];
  return { keys, dataKeys };
}
