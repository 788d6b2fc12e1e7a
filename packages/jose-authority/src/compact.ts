/** The protected header of a compact JWE (five parts) or JWS (three parts), read without any crypto. */
export function compactHeader<T>(compact: string, parts: 3 | 5, fail: (detail: string) => Error): T {
  const segments = compact.trim().split('.');
  const kind = parts === 5 ? 'JWE' : 'JWS';
  if (segments.length !== parts)
    throw fail(`Expected a ${kind} in compact serialization (${parts === 5 ? 'five' : 'three'} parts).`);
  try {
    const header: unknown = JSON.parse(Buffer.from(segments[0] ?? '', 'base64url').toString('utf8'));
    if (typeof header !== 'object' || header === null || Array.isArray(header)) throw new Error('not an object');
    return header as T;
  } catch {
    throw fail(`The ${kind} protected header is not valid JSON.`);
  }
}
