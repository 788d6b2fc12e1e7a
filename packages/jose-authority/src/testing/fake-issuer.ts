/**
 * A stand-in OAuth issuer for resource-server tests: discovery, JWKS and RFC 7662 introspection over
 * plain HTTP on loopback, with counters (JWKS downloads, introspections), a revocation set and an off
 * switch. It signs `at+jwt` access tokens with its newest ES256 key.
 */
import express from 'express';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT, base64url, exportJWK, generateKeyPair, type CryptoKey, type JWK, type JWTPayload } from 'jose';

export class FakeIssuer {
  /** The audience tokens get unless a test names another. */
  audience = 'https://kms.example';

  server!: http.Server;
  url = '';
  keys: { kid: string; privateKey: CryptoKey; publicJwk: JWK }[] = [];
  jwksFetches = 0;
  introspections = 0;
  revoked = new Set<string>();
  down = false;
  introspectionDelayMs = 0;
  lastIntrospectionAuth: string | undefined;

  async start(): Promise<void> {
    const app = express();
    app.use((_req, res, next) => (this.down ? void res.status(503).end() : next()));
    app.get('/.well-known/openid-configuration', (_req, res) => {
      res.json({ issuer: this.url, jwks_uri: `${this.url}/jwks`, introspection_endpoint: `${this.url}/introspect` });
    });
    app.get('/jwks', (_req, res) => {
      this.jwksFetches += 1;
      res.json({ keys: this.keys.map((key) => key.publicJwk) });
    });
    app.post('/introspect', express.urlencoded({ extended: false }), async (req, res) => {
      this.introspections += 1;
      this.lastIntrospectionAuth = req.get('authorization') ?? `post:${String(req.body.client_id)}`;
      await new Promise((resolve) => setTimeout(resolve, this.introspectionDelayMs));
      const token = String(req.body.token);
      const payload = JSON.parse(new TextDecoder().decode(base64url.decode(token.split('.')[1]!))) as JWTPayload;
      res.json({ active: !this.revoked.has(String(payload.jti)) });
    });
    this.server = http.createServer(app);
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async addKey(kid: string): Promise<void> {
    const { privateKey, publicKey } = await generateKeyPair('ES256');
    this.keys.unshift({ kid, privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg: 'ES256' } });
  }

  async token(claims: JWTPayload = {}, header: { kid?: string; typ?: string } = {}): Promise<string> {
    const key = this.keys[0]!;
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({
      client_id: 'kms-service',
      scope: 'kms:encrypt kms:read',
      jti: `jti-${Math.random()}`,
      ...claims,
    })
      .setProtectedHeader({ alg: 'ES256', typ: header.typ ?? 'at+jwt', kid: header.kid ?? key.kid })
      .setIssuer(String(claims.iss ?? this.url))
      .setAudience(claims.aud ?? this.audience)
      .setSubject(String(claims.sub ?? 'kms-service'))
      .setIssuedAt(claims.iat ?? now)
      .setExpirationTime(claims.exp ?? now + 900)
      .sign(key.privateKey);
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }
}
