/**
 * How a client row becomes oidc-provider client metadata (used by the adapter and by admin validation).
 * Public clients (`token_endpoint_auth_method: none`) get DPoP-bound tokens unless their metadata says
 * otherwise: without a proof their token requests are refused (RFC 9449 `dpop_bound_access_tokens`).
 */
import type { ClientRecord } from '../data/client-repository.js';

export function providerClientMetadata(
  client: Pick<ClientRecord, 'clientId' | 'metadata' | 'secretHash'>,
): Record<string, unknown> {
  const grantTypes = client.metadata.grant_types;
  const machineOnly = Array.isArray(grantTypes) && !grantTypes.includes('authorization_code');
  const isPublic = client.metadata.token_endpoint_auth_method === 'none';
  return {
    ...(isPublic ? { dpop_bound_access_tokens: true } : {}),
    // A client that only uses client_credentials has no redirects and no response types.
    ...(machineOnly ? { redirect_uris: [], response_types: [] } : {}),
    ...client.metadata,
    client_id: client.clientId,
    ...(client.secretHash ? { client_secret: client.secretHash } : {}),
  };
}
