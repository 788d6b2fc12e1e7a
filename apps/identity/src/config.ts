/** Identity configuration: one typed object parsed once at startup; defaults local and secure. */
import { z } from 'zod';
import { databaseConfigSchema, rateLimitSchema, telemetryConfigSchema, workersSchema } from '@cryptoutil/infra';
import { KMS_SCOPES } from './domain/scopes.js';

const secret = z.string().min(32, 'needs at least 32 characters (use a file:// secret reference)');

export const identityConfigSchema = z.strictObject({
  server: z
    .strictObject({
      bind_address: z.string().default('127.0.0.1'),
      public_port: z.number().int().min(0).max(65535).default(8082),
      admin_port: z.number().int().min(0).max(65535).default(9082),
      /** The issuer URL; default `https://<bind_address>:<public_port>`. */
      issuer: z.url().optional(),
      tls_names: z.array(z.string()).default(['localhost', '127.0.0.1', '::1']),
      /**
       * Ask TLS clients of the public listener for a certificate (optional), for `tls_client_auth`.
       * Browsers that hold a certificate from the same CA may then offer it; set false to never ask.
       */
      request_client_certificates: z.boolean().default(true),
    })
    .prefault({}),
  tls: z.strictObject({ dir: z.string().default('.data/tls') }).prefault({}),
  database: databaseConfigSchema.prefault({ url: 'sqlite:.data/identity.sqlite' }),
  /** Processes serving this instance (node:cluster): a number or `auto` (one per CPU); see docs/PERFORMANCE.md. */
  workers: workersSchema,
  secrets: z.strictObject({
    /** Signs session and interaction cookies; the first signs, all verify (rotation). */
    cookie_keys: z.array(secret).min(1),
    /** Encrypts the token signing keys (and TOTP secrets) at rest. */
    signing_key_encryption: secret,
    /** Bearer token for the admin API; absent: only administrator client certificates are accepted. */
    admin_token: secret.optional(),
    /** DPoP server nonces are derived from this; absent: from `signing_key_encryption` (own HKDF label). */
    dpop_nonce_key: secret.optional(),
  }),
  admin: z
    .strictObject({
      /** Common names of client certificates (from the project CA) allowed to use the admin API. */
      certificate_names: z.array(z.string().min(1)).default(['identity-admin']),
    })
    .prefault({}),
  /** Resource servers tokens can be issued for (RFC 8707); access tokens for them are JWTs. */
  resources: z
    .array(z.strictObject({ uri: z.url(), scopes: z.array(z.string()).min(1) }))
    .default([{ uri: 'https://127.0.0.1:8081', scopes: [...KMS_SCOPES] }]),
  tokens: z
    .strictObject({
      access_token_ttl_seconds: z.number().int().min(60).default(900),
      id_token_ttl_seconds: z.number().int().min(60).default(3600),
      refresh_token_ttl_seconds: z.number().int().min(60).default(86_400),
      authorization_code_ttl_seconds: z.number().int().min(10).max(600).default(60),
      session_ttl_seconds: z
        .number()
        .int()
        .min(60)
        .default(8 * 3600),
      signing_key_rotation_days: z.number().int().min(1).default(30),
      /**
       * Seconds after a refresh-token rotation during which the rotated token, presented again, gets the same
       * successor instead of revoking the grant (lost answers, racing tabs); 0 (default): every reuse revokes.
       */
      refresh_reuse_grace_seconds: z.number().int().min(0).max(300).default(0),
    })
    .prefault({}),
  /** Per-key token buckets (429 with Retry-After); each `{burst, per_second}` or null (off). */
  rate_limits: z
    .strictObject({
      /** Password and second-factor submissions per client IP. */
      login_per_ip: rateLimitSchema.default({ burst: 30, per_second: 5 }),
      /** Token requests per presented client credential (the Authorization header). */
      token_per_client: rateLimitSchema.default({ burst: 200, per_second: 100 }),
      /** Token requests per client IP. */
      token_per_ip: rateLimitSchema.default({ burst: 400, per_second: 200 }),
      /** Device-flow user codes entered per client IP (RFC 8628 §5.1: guessing a code must not pay). */
      user_code_per_ip: rateLimitSchema.default({ burst: 10, per_second: 0.1 }),
    })
    .prefault({}),
  login: z
    .strictObject({
      max_failures: z.number().int().min(1).default(5),
      lockout_seconds: z.number().int().min(1).default(900),
    })
    .prefault({}),
  /** Device authorization grant (RFC 8628) for CLIs and devices without a browser. */
  device_flow: z
    .strictObject({
      /** How long a device code and its user code stay valid. */
      user_code_ttl_seconds: z.number().int().min(60).max(1800).default(600),
      /** The polling interval a client is told; polling faster is answered `slow_down`. */
      poll_interval_seconds: z.number().int().min(1).max(60).default(5),
    })
    .prefault({}),
  /** Passkeys (WebAuthn). Behind a proxy that changes the host, name the host browsers see. */
  webauthn: z
    .strictObject({
      /** The relying party id; default the issuer's host. Browsers refuse an IP address: passkeys are then off. */
      rp_id: z.string().min(1).optional(),
      /** Origins the browser may report; default the issuer's origin. */
      origins: z.array(z.url()).min(1).optional(),
      rp_name: z.string().min(1).default('cryptoutil Identity'),
    })
    .prefault({}),
  /** DPoP (RFC 9449): on for every client; public clients must use it unless registered otherwise. */
  dpop: z
    .strictObject({
      /** Proofs must carry a server nonce (RFC 9449 §8): a pre-made or long-kept proof is useless. */
      require_nonce: z.boolean().default(true),
    })
    .prefault({}),
  telemetry: telemetryConfigSchema,
  log: z
    .strictObject({
      level: z.string().default('info'),
      /** One line per protocol request (method, path, status, duration, client id). */
      access: z.boolean().default(true),
    })
    .prefault({}),
});

export type IdentityConfig = z.output<typeof identityConfigSchema>;
