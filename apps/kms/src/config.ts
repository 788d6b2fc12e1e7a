/** The KMS configuration: one typed object, parsed once at startup (zod), defaults secure and local. */
import { z } from 'zod';
import {
  DEFAULT_BODY_LIMIT_BYTES,
  databaseConfigSchema,
  isPasswordHash,
  rateLimitSchema,
  telemetryConfigSchema,
  workersSchema,
} from '@cryptoutil/infra';
import { AUTH_METHODS } from './api/authentication.js';
import { KMS_KNOWN_SCOPES } from './domain/scopes.js';

const knownScope = z.string().refine((scope) => KMS_KNOWN_SCOPES.has(scope), 'is not a KMS scope');

export const kmsConfigSchema = z.strictObject({
  server: z
    .strictObject({
      bind_address: z.string().default('127.0.0.1'),
      public_port: z.number().int().min(0).max(65535).default(8081),
      admin_port: z.number().int().min(0).max(65535).default(9081),
      /** Hostnames and IPs of the TLS leaf (SANs). */
      tls_names: z.array(z.string()).default(['localhost', '127.0.0.1', '::1']),
      body_limit_bytes: z.number().int().min(1024).default(DEFAULT_BODY_LIMIT_BYTES),
      /** Readiness reports the process degraded above this resident set size. */
      readiness_max_rss_mb: z.number().int().min(64).default(1024),
      /**
       * The URL clients call the public listener at (behind a proxy or load balancer, its URL): DPoP proofs
       * must name it (`htu`) and it is the default token audience. Default the listener's own URL.
       */
      public_url: z.url({ protocol: /^https?$/ }).optional(),
    })
    .prefault({}),
  tls: z
    .strictObject({
      /** CA and leaves live here (generated on first start): root-ca.pem is what clients trust. */
      dir: z.string().default('.data/tls'),
    })
    .prefault({}),
  database: databaseConfigSchema.prefault({ url: 'sqlite:.data/kms.sqlite' }),
  /** Processes serving this instance (node:cluster): a number or `auto` (one per CPU); see docs/PERFORMANCE.md. */
  workers: workersSchema,
  unseal: z
    .strictObject({
      mode: z.enum(['n-of-m', 'simple', 'dev']).default('n-of-m'),
      threshold: z.number().int().min(1).default(3),
      shares: z.number().int().min(1).default(5),
      /** The secrets themselves, usually `file:///run/secrets/unseal_1of5` references. */
      secrets: z.array(z.string().min(1)).default([]),
    })
    .prefault({}),
  /** Per-key token buckets (429 with Retry-After); each `{burst, per_second}` or null (off). */
  rate_limits: z
    .strictObject({
      /** Password sign-ins (browser login, HTTP Basic) per client IP: PBKDF2 is expensive on purpose. */
      login_per_ip: rateLimitSchema.default({ burst: 30, per_second: 5 }),
      /** Crypto operations (encrypt, decrypt, sign, verify, generate) per authenticated caller. */
      crypto_per_client: rateLimitSchema.default({ burst: 2000, per_second: 1000 }),
      /** Crypto operations per client IP, whoever the caller claims to be. */
      crypto_per_ip: rateLimitSchema.default({ burst: 4000, per_second: 2000 }),
    })
    .prefault({}),
  keys: z
    .strictObject({
      delete_grace_period_seconds: z
        .number()
        .int()
        .min(0)
        .default(7 * 24 * 3600),
      cache_max_entries: z.number().int().min(1).default(10_000),
      cache_ttl_seconds: z.number().int().min(1).default(300),
      /** How often the scheduler looks for keys whose rotation_period is over. */
      rotation_check_seconds: z.number().int().min(1).default(60),
    })
    .prefault({}),
  /**
   * Callers authenticate with access tokens from Identity (integration.md). Without it the API is open,
   * so the KMS then only binds to loopback.
   */
  auth: z
    .strictObject({
      /** Tried in this order; the first method whose credential is accepted wins. */
      methods: z
        .array(z.enum(AUTH_METHODS))
        .min(1)
        .default([...AUTH_METHODS]),
      error_detail: z.enum(['minimal', 'standard', 'verbose']).default('standard'),
      identity: z
        .strictObject({
          /** Identity's issuer URL; its discovery document names the JWKS and introspection endpoints. */
          issuer: z.url(),
          /** Expected `aud`; default the KMS's public URL (`server.public_url`, else the listener's). */
          audience: z.string().min(1).optional(),
          jwks_cache_ttl_seconds: z.number().int().min(1).default(300),
          jwks_cooldown_seconds: z.number().int().min(0).default(30),
          clock_tolerance_seconds: z.number().int().min(0).max(300).default(30),
          revocation_check: z.enum(['sensitive-only', 'every-request', 'interval']).default('sensitive-only'),
          revocation_interval_seconds: z.number().int().min(1).default(300),
          /** The KMS's own client at Identity, for introspection (client_secret_basic). */
          client_id: z.string().min(1).default('kms-service'),
          client_secret: z.string().min(16),
          /** PEM file of the CA that Identity's certificate chains to; default the KMS's own root CA. */
          ca_file: z.string().optional(),
          /**
           * Console sign-in through Identity (authorization code + PKCE) with back-channel logout: the KMS's
           * browser client there, registered with redirect URI `<server.public_url>/browser/api/v1/identity/callback`
           * and back-channel logout URI `<public URL>/browser/api/v1/identity/backchannel-logout`.
           */
          browser_login: z
            .strictObject({
              client_id: z.string().min(1).default('kms-console'),
              client_secret: z.string().min(16),
              scope: z.string().min(1).default('openid profile kms:read kms:encrypt kms:decrypt kms:sign kms:verify'),
            })
            .optional(),
          /** DPoP proofs with sender-constrained tokens (RFC 9449); used proof ids are kept in the database. */
          dpop: z
            .strictObject({
              /** How old a proof's `iat` may be. */
              proof_max_age_seconds: z.number().int().min(1).max(600).default(60),
              /** How far ahead of this clock a proof's `iat` may be. */
              proof_future_skew_seconds: z.number().int().min(0).max(60).default(5),
            })
            .prefault({}),
        })
        .optional(),
      /** The file realm (`realms.yml`); a missing file means no realm users. */
      realms_file: z.string().optional(),
      /** `Authorization: ApiKey <id>.<secret>`; only the PBKDF2 hash of the secret is configured. */
      api_keys: z
        .array(
          z.strictObject({
            id: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/),
            key_hash: z.string().refine(isPasswordHash, 'must be a $pbkdf2-sha256$i=<n>$<salt>$<hash> hash'),
            scopes: z.array(knownScope).min(1),
            tenant: z.uuid({ version: 'v4' }).optional(),
          }),
        )
        .default([]),
      /** Client certificates from the project CA, by common name, and what they may do. */
      client_certificates: z
        .array(
          z.strictObject({
            common_name: z.string().min(1),
            scopes: z.array(knownScope).min(1),
            tenant: z.uuid({ version: 'v4' }).optional(),
          }),
        )
        .default([]),
      /** Browser API sessions (login form): idle and absolute expiry. */
      session: z
        .strictObject({
          idle_timeout_seconds: z.number().int().min(60).default(900),
          absolute_timeout_seconds: z
            .number()
            .int()
            .min(300)
            .default(8 * 3600),
        })
        .prefault({}),
      /** Wrong realm passwords (HTTP Basic and the login form): slowed, then the username is locked for a while. */
      login: z
        .strictObject({
          max_failures: z.number().int().min(1).default(5),
          lockout_seconds: z.number().int().min(1).default(900),
        })
        .prefault({}),
    })
    .optional(),
  /** `--demo` seeds from this file (default: `deployments/kms/config/demo-seed.yml` of this checkout). */
  demo_seed_file: z.string().optional(),
  telemetry: telemetryConfigSchema,
  log: z.strictObject({ level: z.string().default('info') }).prefault({}),
});

export type KmsConfig = z.output<typeof kmsConfigSchema>;
