/**
 * Composition root: flags and config → logger → telemetry → KMS (database, barrier, listeners) →
 * signal handling. A startup failure (bad config, wrong unseal secrets) exits 1 with one clear line.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  ConfigError,
  createLogger,
  createShutdown,
  isFirstWorker,
  loadStartupConfig,
  reportWorkerReady,
  startTelemetry,
  superviseWhenClustered,
  swaggerRouter,
  telemetryOptions,
} from '@cryptoutil/infra';
import { openApiDocument } from './api/openapi.js';
import { SWAGGER_SESSION_OPTIONS } from './api/swagger-session.js';
import { consoleRouter } from './api/console.js';
import { demoCredentialTable, loadDemoSeed } from './domain/demo-seed.js';
import { UnsealError } from './barrier/unseal.js';
import { kmsConfigSchema } from './config.js';
import { startKms } from './server.js';

/** The checkout's seed file (apps/kms/dist/main.js → deployments/kms/config/demo-seed.yml). */
const DEFAULT_DEMO_SEED = fileURLToPath(new URL('../../../deployments/kms/config/demo-seed.yml', import.meta.url));

const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
  version: string;
};

async function main(): Promise<void> {
  const { cli, config } = loadStartupConfig(kmsConfigSchema, { app: 'kms', args: process.argv.slice(2) });
  const logger = createLogger({ service: 'kms', level: config.log.level });
  if (
    await superviseWhenClustered({ workers: config.workers, databaseUrl: config.database.url, logger, service: 'kms' })
  ) {
    return;
  }
  const telemetry = startTelemetry(
    telemetryOptions({ serviceName: 'kms', serviceVersion: version }, config.telemetry, process.env),
  );
  const shutdown = createShutdown({ logger });
  // realms.yml next to the main configuration file, unless the configuration names one.
  const [mainConfigFile] = cli.configFiles;
  if (config.auth && config.auth.realms_file === undefined && mainConfigFile) {
    config.auth.realms_file = join(dirname(mainConfigFile), 'realms.yml');
  }
  const demoSeed =
    cli.demo || cli.resetDemo ? await loadDemoSeed(config.demo_seed_file ?? DEFAULT_DEMO_SEED) : undefined;
  const document = openApiDocument({
    version,
    ...(demoSeed ? { demoCredentials: demoCredentialTable(demoSeed) } : {}),
  });
  const kms = await startKms({
    config,
    logger,
    version,
    dev: cli.dev,
    demo: cli.demo || cli.resetDemo,
    // With workers, only the first resets the demo data; the others start on it.
    ...(demoSeed ? { demoSeed, resetDemo: cli.resetDemo && isFirstWorker() } : {}),
    insecureHttp: cli.devInsecureHttp,
    extraRouters: [swaggerRouter(document, 'cryptoutil KMS API', SWAGGER_SESSION_OPTIONS), consoleRouter()],
    onShutdownRequest: () => void shutdown.shutdown('admin request'),
  });
  shutdown.addHook('kms', () => kms.close());
  shutdown.addHook('telemetry', () => telemetry.shutdown());
  logger.info('kms started', {
    public_url: kms.publicUrl,
    admin_url: kms.adminUrl,
    tls_root_ca: `${config.tls.dir}/root-ca.pem`,
  });
  reportWorkerReady();
}

main().catch((error: unknown) => {
  if (error instanceof ConfigError || error instanceof UnsealError) {
    process.stderr.write(`kms: cannot start: ${error.message}\n`);
  } else {
    process.stderr.write(`kms: cannot start: ${error instanceof Error ? error.message : String(error)}\n`);
  }
  process.exit(1);
});
