/**
 * HTTP Basic credentials (RFC 7617): the scheme is case-insensitive, the value strict base64 of
 * `user:password`. OAuth clients also form-encode both parts (RFC 6749 §2.3.1): with `formEncoded`,
 * they are decoded, and a malformed encoding is no credential at all (never an exception).
 */
export interface BasicCredentials {
  user: string;
  password: string;
}

export function basicCredentials(
  authorization: string | undefined,
  options: { formEncoded?: boolean } = {},
): BasicCredentials | undefined {
  const match = /^Basic +([A-Za-z0-9+/=]+) *$/i.exec(authorization ?? '');
  if (!match?.[1]) return undefined;
  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  const user = decoded.slice(0, colon);
  const password = decoded.slice(colon + 1);
  if (!options.formEncoded) return { user, password };
  try {
    return { user: decodeURIComponent(user), password: decodeURIComponent(password) };
  } catch {
    return undefined;
  }
}
