/**
 * Starts Identity: database (migrated) → signing keys (created on first start) → oidc-provider →
 * public listener (protocol, interaction pages, JWT introspection/revocation) and admin listener, both
 * TLS 1.3 from the project CA. The provider is rebuilt when signing keys rotate; all its state is in
 * the database, so nothing is lost by the swap.
 */
import express, { type Express, type RequestHandler } from 'express';
import helmet from 'helmet';
import { rootCertificates } from 'node:tls';
import { Agent, fetch as undiciFetch } from 'undici';
import type Provider from 'oidc-provider';
import type { ClientMetadata } from 'oidc-provider';
import {
  accessLog,
  basicCredentials,
  applySecurityDefaults,
  ConfigError,
  createAdminRouter,
  databaseCheck,
  migrate,
  notFoundHandler,
  openDatabase,
  problemHandler,
  requestIdMiddleware,
  tracingMiddleware,
  AuditLog,
  adminAuditTrail,
  answerAfterAuditRecords,
  byAuthorization,
  byClientIp,
  limitRequests,
  limiterFrom,
  auditAdminRouter,
  sharedStylesheet,
  sharedTokenBucketLimiter,
  swaggerRouter,
  type Database,
  type Logger,
  answerClientErrors,
} from '@cryptoutil/infra';
import { publicJwk, type JSONWebKeySet, type JWK } from '@cryptoutil/jose-authority';
import { closeServer, createListenerPair, isLoopback, listen, urlHost } from '@cryptoutil/tls';
import type { IdentityConfig } from './config.js';
import { deleteExpiredOidcModels, hashStoredCredentials, oidcAdapterFactory } from './data/oidc-adapter.js';
import { OIDC_MIGRATIONS } from './data/oidc-schema.js';
import { deleteExpiredRevocations } from './data/revoked-token-repository.js';
import { deleteEndedRefreshRotations } from './data/refresh-rotation-repository.js';
import { IDENTITY_MIGRATIONS } from './data/schema.js';
import { applyDemoSeed, readDemoSeed } from './domain/demo-seed.js';
import { credentialSealer } from './domain/credential-sealer.js';
import { auditProviderEvents } from './provider/audit-events.js';
import {
  atRestKey,
  loadSigningKeys,
  rotateSigningKeys,
  signingKeyVersion,
  rotationDue,
  type SigningKeySet,
} from './domain/signing-keys.js';
import { relyingPartyRouter } from './demo/relying-party.js';
import { interactionRouter } from './interactions/routes.js';
import { limitUserCodes } from './interactions/user-code-limit.js';
import { passkeys } from './interactions/passkey-routes.js';
import { relyingPartyFor } from './domain/passkeys.js';
import { adminAuth } from './api/admin-auth.js';
import { openApiDocument } from './api/openapi.js';
import { clientsRouter } from './api/clients.js';
import { usersRouter } from './api/users.js';
import type { ClientMetadataValidator } from './domain/clients.js';
import { createProvider } from './provider/configuration.js';
import { activeAccessTokenClaims, jwtTokenEndpoints } from './provider/jwt-token-endpoints.js';

export interface StartIdentityOptions {
  config: IdentityConfig;
  logger: Logger;
  version: string;
  dev?: boolean;
  insecureHttp?: boolean;
  /** Seed file to apply (`--demo`), and whether to wipe demo data first (`--reset-demo`). */
  demoSeed?: { path: string; reset: boolean };
  onShutdownRequest?: () => void;
}

export interface RunningIdentity {
  db: Database;
  issuer: string;
  /** Where this instance listens (differs from the issuer behind a load balancer). */
  publicUrl: string;
  adminUrl: string;
  rootCaPem: string;
  provider: () => Provider;
  rotateSigningKeys(): Promise<void>;
  close(): Promise<void>;
}

const SWEEP_MS = 60_000;
const KEY_SYNC_MS = 5_000;

/** The HTML pages' policy: no scripts at all, inline styles only, never framed. */
const PAGE_CSP = helmet.contentSecurityPolicy({
  useDefaults: false,
  directives: {
    defaultSrc: ["'none'"],
    // The shared stylesheet only (/assets/cryptoutil.css): no inline style.
    styleSrc: ["'self'"],
    imgSrc: ["'self'", 'data:'],
    frameAncestors: ["'none'"],
    baseUri: ["'none'"],
  },
});

function publicJwks(keys: SigningKeySet): JSONWebKeySet {
  return { keys: keys.keys.flatMap((key) => publicJwk(key) ?? []) };
}

export async function startIdentity(options: StartIdentityOptions): Promise<RunningIdentity> {
  const { config, logger } = options;
  if (!isLoopback(config.server.bind_address) && options.dev) {
    throw new ConfigError('server.bind_address: --dev is only allowed on loopback', 'server.bind_address');
  }
  const db = await openDatabase(config.database);
  await migrate(db, [...IDENTITY_MIGRATIONS, ...OIDC_MIGRATIONS]);
  const sealer = credentialSealer(atRestKey(config.secrets.signing_key_encryption, 'device-codes'));
  const converted = await hashStoredCredentials(db, sealer);
  if (converted > 0) logger.info('stored tokens converted to hashed ids', { rows: converted });
  if (options.demoSeed) {
    const report = await applyDemoSeed(db, await readDemoSeed(options.demoSeed.path), {
      reset: options.demoSeed.reset,
    });
    logger.warn('demo data seeded: published demo credentials are active, never use this for real data', { ...report });
  }
  const wrapping = atRestKey(config.secrets.signing_key_encryption);
  let keys = await loadSigningKeys(db, wrapping);

  const publicApp: Express = express();
  const adminApp: Express = express();
  if (options.insecureHttp) logger.warn('--dev-insecure-http: listeners speak plain HTTP; never expose them');
  const { publicServer, adminServer, rootCaPem, scheme } = await createListenerPair(
    {
      tlsDir: config.tls.dir,
      leafName: 'identity',
      commonName: 'identity.cryptoutil.demo.local',
      subjectAltNames: config.server.tls_names,
      insecureHttp: options.insecureHttp === true,
      // tls_client_auth clients present certificates on the public listener.
      publicClientCertificates: config.server.request_client_certificates ? 'request' : 'none',
      // Health probes need no credentials; the admin API checks the certificate or the admin token itself.
      adminClientCertificates: 'request',
    },
    publicApp,
    adminApp,
  );
  // What Node's parser refuses (e.g. oversized headers) is answered as problem+json too.
  for (const server of [publicServer, adminServer]) answerClientErrors(server);
  const host = config.server.bind_address;
  const hostInUrl = urlHost(host);
  const publicPort = await listen(publicServer, host, config.server.public_port);
  let adminPort = config.server.admin_port;
  const issuer = config.server.issuer ?? `${scheme}://${hostInUrl}:${publicPort}`;
  // The provider's outgoing calls (back-channel logout to the KMS) trust the project CA besides the public ones.
  const outgoingAgent = new Agent({ connect: { ca: [...rootCertificates, rootCaPem] } });
  const outgoingFetch = ((url: string | URL, init?: RequestInit) =>
    undiciFetch(url, { ...(init as object), dispatcher: outgoingAgent })) as unknown as typeof fetch;

  const tokenLifetimeMs = Math.max(config.tokens.access_token_ttl_seconds, config.tokens.id_token_ttl_seconds) * 1000;
  const audit = new AuditLog(db, 'identity');
  // Token exchange's subject tokens are checked like introspection checks them (keys synced on an unknown kid).
  const activeAccessToken = (token: string) =>
    activeAccessTokenClaims(
      { db, issuer, provider: currentProvider, publicJwks: () => publicJwks(keys), syncKeys: syncSigningKeys },
      token,
    );
  const devicePolls = sharedTokenBucketLimiter(db, {
    name: 'device_poll',
    capacity: 1,
    refillPerSecond: 1 / config.device_flow.poll_interval_seconds,
  });
  const providerOptions = {
    config,
    issuer,
    db,
    adapter: oidcAdapterFactory(db, { sealer }),
    devicePolls,
    outgoingFetch,
    activeAccessToken,
  };
  let provider = auditProviderEvents(createProvider({ ...providerOptions, signingKeys: keys.keys }), audit, logger);
  let handler = provider.callback();
  const currentProvider = () => provider;
  const reload = async () => {
    keys = await loadSigningKeys(db, wrapping);
    provider = auditProviderEvents(createProvider({ ...providerOptions, signingKeys: keys.keys }), audit, logger);
    handler = provider.callback();
  };
  // Whether another instance rotated (one small query; concurrent callers share it).
  let syncing: Promise<void> | undefined;
  const syncSigningKeys = (): Promise<void> => {
    syncing ??= signingKeyVersion(db)
      .then((version) => (version !== keys.version ? reload() : undefined))
      .finally(() => {
        syncing = undefined;
      });
    return syncing;
  };
  const rotate = async () => {
    await rotateSigningKeys(db, wrapping, tokenLifetimeMs);
    await reload();
    await audit.append({
      event: 'identity.signing_keys.rotate',
      actor: null,
      tenant: null,
      resource: null,
      outcome: 'success',
      reason: null,
    });
    logger.info('signing keys rotated');
  };

  publicApp.disable('x-powered-by');
  // A SERVER span (continuing the caller's traceparent) and the request-duration metric for every request.
  publicApp.use(tracingMiddleware());
  publicApp.use(requestIdMiddleware());
  // Sign-ins, grants and refusals are recorded while the request runs; its answer waits for them.
  publicApp.use(answerAfterAuditRecords(logger));
  if (config.log.access) {
    publicApp.use(
      accessLog({
        logger,
        skip: (req) => req.path.startsWith('/ui/'),
        fields: (req) => ({ client_id: basicCredentials(req.get('authorization'), { formEncoded: true })?.user }),
      }),
    );
  }
  publicApp.use(helmet({ contentSecurityPolicy: false, referrerPolicy: { policy: 'no-referrer' } }));
  publicApp.get('/assets/cryptoutil.css', sharedStylesheet());
  // The JWKS answers with the keys in the database now, whichever instance rotated them (introspection and
  // revocation read them when a token names a key not known here), so a token signed by a freshly rotated
  // key never meets an instance that does not know it.
  publicApp.use('/jwks', (_req, _res, next) => {
    syncSigningKeys().then(() => next(), next);
  });
  const limits = config.rate_limits;
  publicApp.post(
    '/token',
    limitRequests(limiterFrom(limits.token_per_ip, { db, name: 'token_per_ip' }), byClientIp),
    limitRequests(limiterFrom(limits.token_per_client, { db, name: 'token_per_client' }), byAuthorization),
  );
  publicApp.post(
    [
      '/interaction/:uid/login',
      '/interaction/:uid/totp',
      '/interaction/:uid/passkey',
      '/interaction/:uid/passkey/enrol',
      '/interaction/:uid/passkey-login',
    ],
    limitRequests(limiterFrom(limits.login_per_ip, { db, name: 'login_per_ip' }), byClientIp),
  );
  // Every answer carries the page policy: pages need nothing more, and JSON or a redirect body needs nothing.
  publicApp.use(PAGE_CSP);
  // Guessing device-flow user codes (RFC 8628 §5.1): the refusal is a page like the others.
  publicApp.post('/device', limitUserCodes(limiterFrom(limits.user_code_per_ip, { db, name: 'user_code_per_ip' })));
  const loginPolicy = { maxFailures: config.login.max_failures, lockoutMs: config.login.lockout_seconds * 1000 };
  const passkeySteps = passkeys({
    provider: currentProvider,
    db,
    policy: loginPolicy,
    rp: relyingPartyFor(issuer, config.webauthn),
    audit,
  });
  publicApp.use(passkeySteps.router);
  publicApp.use(
    interactionRouter({
      provider: currentProvider,
      db,
      policy: loginPolicy,
      totpKey: atRestKey(config.secrets.signing_key_encryption, 'totp-secrets'),
      audit,
      passkeys: passkeySteps.steps,
    }),
  );
  publicApp.use(
    swaggerRouter(
      () => openApiDocument({ version: options.version, adminUrl: `${scheme}://${hostInUrl}:${adminPort}` }),
      'cryptoutil Identity admin API',
    ),
  );
  if (options.demoSeed && config.resources[0]) {
    publicApp.use(relyingPartyRouter({ issuer, kmsUrl: config.resources[0].uri, rootCaPem }));
  }
  publicApp.use(
    jwtTokenEndpoints({
      db,
      issuer,
      provider: currentProvider,
      publicJwks: () => publicJwks(keys),
      syncKeys: syncSigningKeys,
      audit,
    }),
  );
  const protocol: RequestHandler = (req, res) => void handler(req, res);
  publicApp.use(protocol);
  publicApp.use(problemHandler({ logger }));

  applySecurityDefaults(adminApp, { bodyLimitBytes: 64 * 1024 });
  const authorized = adminAuth({
    token: config.secrets.admin_token,
    certificateNames: config.admin.certificate_names,
  });
  const validateClient: ClientMetadataValidator = (metadata) => provider.Client.validate(metadata as ClientMetadata);
  adminApp.use(
    ['/admin/v1/shutdown', '/admin/v1/keys', '/admin/v1/users', '/admin/v1/clients', '/admin/v1/audit'],
    authorized,
  );
  adminApp.use(adminAuditTrail(audit, logger), auditAdminRouter(audit));
  adminApp.use(
    createAdminRouter({
      service: 'identity',
      version: options.version,
      checks: {
        database: databaseCheck(db),
        signing_keys: async () => ({ keys: keys.keys.length }),
      },
      ...(options.onShutdownRequest ? { onShutdown: options.onShutdownRequest } : {}),
    }),
  );
  adminApp.post('/admin/v1/keys/rotate', async (_req, res) => {
    await rotate();
    res.status(201).json({ keys: publicJwks(keys).keys.map((key: JWK) => ({ kid: key.kid, alg: key.alg })) });
  });
  adminApp.use(usersRouter(db), clientsRouter(db, validateClient));
  adminApp.use(notFoundHandler(), problemHandler({ logger }));
  adminPort = await listen(adminServer, host, config.server.admin_port);

  // Another instance may rotate: pick its keys up within seconds (old keys stay valid meanwhile).
  const keySync = setInterval(() => {
    syncSigningKeys().catch((error: unknown) => logger.warn('checking for rotated signing keys failed', { error }));
  }, KEY_SYNC_MS);
  keySync.unref();

  const rotationPeriodMs = config.tokens.signing_key_rotation_days * 24 * 3600 * 1000;
  const sweep = setInterval(() => {
    const now = Date.now();
    Promise.all([
      deleteExpiredOidcModels(db, now),
      deleteExpiredRevocations(db, now),
      deleteEndedRefreshRotations(db, now),
      rotationDue(keys, rotationPeriodMs) ? rotate() : Promise.resolve(),
    ]).catch((error: unknown) => logger.error('identity maintenance failed', { error }));
  }, SWEEP_MS);
  sweep.unref();

  return {
    db,
    issuer,
    publicUrl: `${scheme}://${hostInUrl}:${publicPort}`,
    adminUrl: `${scheme}://${hostInUrl}:${adminPort}`,
    rootCaPem,
    provider: currentProvider,
    rotateSigningKeys: rotate,
    async close() {
      clearInterval(sweep);
      clearInterval(keySync);
      devicePolls.close();
      await Promise.all([closeServer(publicServer), closeServer(adminServer)]);
      await outgoingAgent.close();
      await audit.flush();
      await db.close();
    },
  };
}
