/**
 * `tls_client_auth` (RFC 8705 §2.1): a client authenticates with a certificate from the project CA
 * whose subject DN or DNS name matches what it registered. The public listener asks for (but does
 * not require) client certificates; Node has already verified the chain when `socket.authorized`.
 */
import { X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import type { KoaContextWithOIDC } from 'oidc-provider';

function peerCertificate(ctx: KoaContextWithOIDC): X509Certificate | undefined {
  const socket = ctx.req.socket as Partial<TLSSocket>;
  if (typeof socket.getPeerCertificate !== 'function') return undefined;
  const raw = socket.getPeerCertificate().raw as Buffer | undefined;
  return raw ? new X509Certificate(raw) : undefined;
}

/** The RDNs of a DN as a set of `attr=value` (RFC 4514 text, or Node's one-per-line form). */
function distinguishedName(dn: string): Set<string> {
  return new Set(
    dn
      .split(/[\n,]/)
      .map((part) => part.trim())
      .filter(Boolean)
      .map((part) => {
        const [attribute = '', ...value] = part.split('=');
        return `${attribute.trim().toUpperCase()}=${value.join('=').trim()}`;
      }),
  );
}

function sameSet(a: Set<string>, b: Set<string>): boolean {
  return a.size === b.size && [...a].every((item) => b.has(item));
}

export const tlsClientAuth = {
  getCertificate(ctx: KoaContextWithOIDC): string | undefined {
    return peerCertificate(ctx)?.toString();
  },
  certificateAuthorized(ctx: KoaContextWithOIDC): boolean {
    return (ctx.req.socket as Partial<TLSSocket>).authorized === true;
  },
  certificateSubjectMatches(ctx: KoaContextWithOIDC, property: string, expected: string): boolean {
    const certificate = peerCertificate(ctx);
    if (!certificate) return false;
    if (property === 'tls_client_auth_subject_dn') {
      return sameSet(distinguishedName(certificate.subject), distinguishedName(expected));
    }
    if (property === 'tls_client_auth_san_dns') {
      const names = (certificate.subjectAltName ?? '').split(', ').filter((name) => name.startsWith('DNS:'));
      return names.includes(`DNS:${expected}`);
    }
    return false;
  },
};
