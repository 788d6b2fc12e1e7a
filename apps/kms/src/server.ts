/**
 * Starts a KMS: database (migrated) → barrier (unsealed, or created on first start) → the public and
 * admin listeners on TLS 1.3 with a leaf from the project CA. Returns a handle that stops it cleanly;
 * `main.ts` wires it to signals, tests start several in one process.
 */
import type http from 'node:http';
import type https from 'node:https';
import {
  AuditLog,
  ConfigError,
  migrate,
  openDatabase,
  tracedFetch,
  type Database,
  type Logger,
  answerClientErrors,
} from '@cryptoutil/infra';
import { clientTlsOptions, closeServer, createListenerPair, isLoopback, listen, urlHost } from '@cryptoutil/tls';
import { createAdminApp } from './api/admin.js';
import { BROWSER_API_PREFIX, createPublicApp } from './api/app.js';
import { IDENTITY_CALLBACK_PATH } from './api/identity-login.js';
import { IdentityLogin } from './domain/identity-login.js';
import { deleteExpiredPendingLogins } from './data/identity-login-repository.js';
import { kmsRateLimiters } from './api/rate-limits.js';
import { Barrier } from './barrier/barrier.js';
import { UnsealError, deriveUnsealKeys } from './barrier/unseal.js';
import type { KmsConfig } from './config.js';
import { KMS_MIGRATIONS } from './data/schema.js';
import { destroyExpiredInEveryTenant } from './domain/elastic-key.js';
import { EncryptionUsage } from './domain/encryption-usage.js';
import { RotationScheduler } from './domain/key-rotation.js';
import type { KmsService } from './domain/kms-context.js';
import { TenantDirectory } from './domain/tenant.js';
import type { RequestHandler, Router } from 'express';
import { readFile } from 'node:fs/promises';
import { Agent, fetch as undiciFetch } from 'undici';
import { TokenValidator, verifyLogoutToken } from '@cryptoutil/jose-authority';
import { createAuthenticator } from './api/authentication.js';
import { loadRealms, withDatabaseRealm } from './domain/realm.js';
import { accessControl } from './api/access.js';
import { seedDemo, type DemoSeed, type SeededDemo } from './domain/demo-seed.js';
import { deleteStaleLoginFailures } from './data/login-failure-repository.js';
import { databaseDpopReplayStore, deleteExpiredDpopProofs } from './data/dpop-proof-repository.js';
import { createPasswordLogin } from './domain/password-login.js';
import { databaseDemoUserStore } from './domain/realm-user.js';
import { SessionStore } from './domain/session.js';

export interface StartOptions {
  config: KmsConfig;
  logger: Logger;
  version: string;
  /** `--demo`: plaintext demo passwords are accepted in the realm file (with a warning). */
  demo?: boolean;
  /** Seeds this demo data (idempotent); its realm joins the configured realms as a database realm. */
  demoSeed?: DemoSeed;
  /** `--reset-demo`: deletes the demo tenants and users first, then seeds again. */
  resetDemo?: boolean;
  /** `--dev`: admin listener without client certificates. */
  dev?: boolean;
  /** `--dev-insecure-http`: plain HTTP (only with `--dev`). */
  insecureHttp?: boolean;
  /** Extra routes on the public listener (OpenAPI, Swagger UI). */
  extraRouters?: Router[];
  /** Called when `POST /admin/v1/shutdown` is answered. */
  onShutdownRequest?: () => void;
}

export interface RunningKms {
  service: KmsService;
  /** The seeded demo tenants (ids) and the keys this start created, when a demo seed was given. */
  demo?: SeededDemo;
  publicUrl: string;
  adminUrl: string;
  /** PEM of the root CA that both listeners chain to. */
  rootCaPem: string;
  publicServer: http.Server | https.Server;
  adminServer: http.Server | https.Server;
  /** Stops listening, seals the barrier, closes the database. */
  close(): Promise<void>;
}

const DESTROY_SWEEP_MS = 60_000;
/** Failure counts of usernames not seen for a day are forgotten (their lockouts are long over). */
const STALE_LOGIN_FAILURES_MS = 24 * 3600 * 1000;

function unsealKeys(config: KmsConfig) {
  const policy = { mode: config.unseal.mode, threshold: config.unseal.threshold, shares: config.unseal.shares };
  const secrets = config.unseal.secrets.map((secret) => Buffer.from(secret, 'utf8'));
  const allSharesGiven = policy.mode !== 'n-of-m' || secrets.length === policy.shares;
  return { keys: deriveUnsealKeys(policy, secrets), allSharesGiven };
}

async function openUnsealed(config: KmsConfig, logger: Logger): Promise<{ db: Database; barrier: Barrier }> {
  if (config.unseal.mode === 'dev') {
    logger.warn('UNSEAL MODE dev: the root key is protected by a PUBLIC fixed secret; never use this for real data');
  }
  const { keys, allSharesGiven } = unsealKeys(config);
  const db = await openDatabase(config.database);
  try {
    await migrate(db, KMS_MIGRATIONS);
    const barrier = await Barrier.unseal(db, keys, {
      allSharesGiven,
      cacheMaxEntries: config.keys.cache_max_entries,
      cacheTtlMs: config.keys.cache_ttl_seconds * 1000,
    });
    return { db, barrier };
  } catch (error) {
    await db.close();
    throw error;
  }
}

export async function startKms(options: StartOptions): Promise<RunningKms> {
  const { config, logger } = options;
  if (!config.auth && !isLoopback(config.server.bind_address)) {
    // Without caller authentication the API must not be reachable from another host.
    throw new ConfigError(
      'server.bind_address: without auth.identity the KMS API is open; bind to 127.0.0.1 or ::1',
      'server.bind_address',
    );
  }
  if (!config.auth) logger.warn('no auth.identity configured: the KMS API is open to every local caller');
  let realms = await loadRealms(config.auth?.realms_file, { demo: options.demo === true });
  for (const warning of realms.warnings) logger.warn(warning);
  const { db, barrier } = await openUnsealed(config, logger);
  const base = {
    db,
    barrier,
    now: () => new Date(),
    deleteGracePeriodMs: config.keys.delete_grace_period_seconds * 1000,
    usage: new EncryptionUsage(),
  };
  let service: KmsService;
  let demo: SeededDemo | undefined;
  try {
    service = { ...base, tenants: await TenantDirectory.open(base) };
    if (options.demoSeed) {
      realms = withDatabaseRealm(realms, options.demoSeed.realm);
      demo = await seedDemo(service, options.demoSeed, databaseDemoUserStore(base), {
        reset: options.resetDemo === true,
      });
      logger.warn('DEMO DATA: published demo users and keys are seeded; never use this instance for real data', {
        tenants: demo.tenants,
        created_keys: demo.createdKeys.length,
      });
    }
  } catch (error) {
    barrier.seal();
    await db.close();
    throw error;
  }
  const audit = new AuditLog(db, 'kms');
  await audit.append({
    event: 'kms.barrier.unseal',
    actor: null,
    tenant: null,
    resource: null,
    outcome: 'success',
    reason: null,
  });
  const login = createPasswordLogin({
    realms,
    db,
    lockout: {
      maxFailures: config.auth?.login.max_failures ?? 5,
      lockoutMs: (config.auth?.login.lockout_seconds ?? 900) * 1000,
    },
  });
  const sessions = new SessionStore(db, {
    idleTimeoutMs: (config.auth?.session.idle_timeout_seconds ?? 900) * 1000,
    absoluteTimeoutMs: (config.auth?.session.absolute_timeout_seconds ?? 8 * 3600) * 1000,
  });
  // The validator needs the public URL (the default audience), known once the listener is bound.
  let access: RequestHandler | undefined;
  let validator: TokenValidator | undefined;
  let identityLogin: IdentityLogin | undefined;
  const publicApp = createPublicApp(service.tenants, {
    logger,
    ...(config.auth
      ? {
          access: (req, res, next) => (access as RequestHandler)(req, res, next),
          browser: {
            login,
            sessions,
            ...(config.auth.identity?.browser_login ? { identityLogin: () => identityLogin } : {}),
          },
        }
      : {}),
    audit,
    rateLimits: kmsRateLimiters(config.rate_limits, db),
    bodyLimitBytes: config.server.body_limit_bytes,
    ...(options.extraRouters ? { extraRouters: options.extraRouters } : {}),
  });
  const adminApp = createAdminApp(service, {
    version: options.version,
    logger,
    maxRssBytes: config.server.readiness_max_rss_mb * 1024 * 1024,
    realms,
    audit,
    ...(config.auth?.identity ? { checks: { identity: async () => (validator as TokenValidator).jwks.ready() } } : {}),
    ...(options.onShutdownRequest ? { onShutdown: options.onShutdownRequest } : {}),
  });

  if (options.insecureHttp) logger.warn('--dev-insecure-http: listeners speak plain HTTP; never expose them');
  const { publicServer, adminServer, rootCaPem, scheme } = await createListenerPair(
    {
      tlsDir: config.tls.dir,
      leafName: 'kms',
      commonName: 'kms.cryptoutil.demo.local',
      subjectAltNames: config.server.tls_names,
      insecureHttp: options.insecureHttp === true,
      // Client certificates may authenticate service callers (auth.client_certificates).
      publicClientCertificates: config.auth?.methods.includes('mtls') ? 'request' : 'none',
      adminClientCertificates: options.dev === true ? 'none' : 'require',
    },
    publicApp,
    adminApp,
  );
  // What Node's parser refuses (e.g. oversized headers) is answered as problem+json too.
  for (const server of [publicServer, adminServer]) answerClientErrors(server);
  const host = config.server.bind_address;
  const hostInUrl = urlHost(host);
  const publicPort = await listen(publicServer, host, config.server.public_port);
  const adminPort = await listen(adminServer, host, config.server.admin_port);
  const listenerUrl = `${scheme}://${hostInUrl}:${publicPort}`;
  /** Where clients reach this KMS (a proxy's URL when configured): the default audience and the DPoP `htu`. */
  const publicUrl = config.server.public_url?.replace(/\/$/, '') ?? listenerUrl;
  let identityAgent: Agent | undefined;
  if (config.auth) {
    const auth = config.auth;
    const identity = auth.identity;
    if (identity) {
      identityAgent = new Agent({
        connect: clientTlsOptions({ rootCa: identity.ca_file ? await readFile(identity.ca_file, 'utf8') : rootCaPem }),
      });
      const dispatcher = identityAgent;
      validator = new TokenValidator({
        issuer: identity.issuer,
        audience: identity.audience ?? publicUrl,
        // Calls to Identity (JWKS, introspection) are CLIENT spans carrying the trace to Identity.
        fetch: tracedFetch(((url: string, init?: RequestInit) =>
          undiciFetch(url, { ...(init as object), dispatcher })) as unknown as typeof fetch),
        jwksCacheTtlMs: identity.jwks_cache_ttl_seconds * 1000,
        jwksCooldownMs: identity.jwks_cooldown_seconds * 1000,
        clockToleranceSeconds: identity.clock_tolerance_seconds,
        revocation: {
          mode: identity.revocation_check,
          intervalMs: identity.revocation_interval_seconds * 1000,
          auth: { method: 'client_secret_basic', clientId: identity.client_id, clientSecret: identity.client_secret },
        },
        // Used proofs are kept in the database, so a proof replayed to another instance is refused too.
        dpop: {
          replay: databaseDpopReplayStore(db),
          maxAgeSeconds: identity.dpop.proof_max_age_seconds,
          futureSkewSeconds: identity.dpop.proof_future_skew_seconds,
        },
      });
      const browserLogin = identity.browser_login;
      if (browserLogin) {
        const tokens = validator;
        identityLogin = new IdentityLogin({
          db,
          sessions,
          issuer: identity.issuer,
          clientId: browserLogin.client_id,
          clientSecret: browserLogin.client_secret,
          scope: browserLogin.scope,
          redirectUri: `${publicUrl}${BROWSER_API_PREFIX}${IDENTITY_CALLBACK_PATH}`,
          fetch: tracedFetch(((url: string, init?: RequestInit) =>
            undiciFetch(url, { ...(init as object), dispatcher })) as unknown as typeof fetch),
          principalOf: async (accessToken) => {
            const principal = await tokens.validate(accessToken);
            return { subject: principal.subject, scopes: [...principal.scopes], tenants: [...principal.tenantIds] };
          },
          verifyLogoutToken: (token) =>
            verifyLogoutToken(token, {
              getKey: tokens.jwks.getKey,
              issuer: identity.issuer,
              audience: browserLogin.client_id,
              clockToleranceSeconds: identity.clock_tolerance_seconds,
            }),
        });
      }
    }
    access = accessControl({
      realm: 'kms',
      errorDetail: auth.error_detail,
      otherSchemes: [
        ...(auth.methods.includes('basic') ? ['Basic'] : []),
        ...(auth.methods.includes('api_key') ? ['ApiKey'] : []),
      ],
      ...(validator && auth.methods.includes('bearer') ? { dpopAlgorithms: validator.dpop.algorithms } : {}),
      authenticate: createAuthenticator({
        methods: auth.methods,
        validator,
        publicUrl,
        login,
        apiKeys: auth.api_keys.map((key) => ({
          id: key.id,
          keyHash: key.key_hash,
          scopes: key.scopes,
          tenant: key.tenant,
        })),
        certificates: auth.client_certificates.map((entry) => ({
          commonName: entry.common_name,
          scopes: entry.scopes,
          tenant: entry.tenant,
        })),
      }),
    });
  }

  const sweep = setInterval(() => {
    destroyExpiredInEveryTenant(service).then(
      (ids) => ids.length > 0 && logger.info('destroyed material of deleted elastic keys', { elastic_key_ids: ids }),
      (error: unknown) => logger.error('destroying expired elastic keys failed', { error }),
    );
    sessions.deleteExpired().catch((error: unknown) => logger.error('deleting expired sessions failed', { error }));
    if (identityLogin) {
      deleteExpiredPendingLogins(db, new Date().toISOString()).catch((error: unknown) =>
        logger.error('deleting expired Identity sign-ins failed', { error }),
      );
    }
    deleteStaleLoginFailures(db, Date.now() - STALE_LOGIN_FAILURES_MS).catch((error: unknown) =>
      logger.error('deleting stale sign-in failure counts failed', { error }),
    );
    deleteExpiredDpopProofs(db, Date.now()).catch((error: unknown) =>
      logger.error('deleting expired DPoP proof ids failed', { error }),
    );
  }, DESTROY_SWEEP_MS);
  sweep.unref();
  const rotation = new RotationScheduler(service, {
    intervalMs: config.keys.rotation_check_seconds * 1000,
    onRotated: (rotations) => {
      logger.info('rotated elastic keys whose rotation_period was over', {
        rotations: rotations.map((r) => ({ elastic_key_id: r.elasticKeyId, version: r.version })),
      });
      for (const r of rotations) {
        audit
          .append({
            event: 'kms.key.rotate.scheduled',
            actor: null,
            tenant: r.tenantId,
            resource: r.elasticKeyId,
            outcome: 'success',
            reason: null,
          })
          .catch((error: unknown) => logger.error('auditing a scheduled rotation failed', { error }));
      }
    },
    onError: (error, elasticKeyId) =>
      logger.error('scheduled key rotation failed', {
        error,
        ...(elasticKeyId ? { elastic_key_id: elasticKeyId } : {}),
      }),
  });
  rotation.start();

  return {
    service,
    ...(demo ? { demo } : {}),
    publicUrl: listenerUrl,
    adminUrl: `${scheme}://${hostInUrl}:${adminPort}`,
    rootCaPem,
    publicServer,
    adminServer,
    async close() {
      clearInterval(sweep);
      await rotation.stop();
      await Promise.all([closeServer(publicServer), closeServer(adminServer)]);
      await identityAgent?.close();
      await audit.flush();
      barrier.seal();
      await db.close();
    },
  };
}

export { UnsealError };
