/**
 * Composition root: flags and config → logger → telemetry → Identity (database, keys, provider,
 * listeners) → signal handling. A startup failure exits 1 with one clear line.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  createLogger,
  createShutdown,
  isFirstWorker,
  loadStartupConfig,
  reportWorkerReady,
  startTelemetry,
  superviseWhenClustered,
  telemetryOptions,
} from '@cryptoutil/infra';
import { identityConfigSchema } from './config.js';
import { startIdentity } from './server.js';

const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
  version: string;
};
const DEMO_SEED = fileURLToPath(new URL('../../../deployments/identity/config/demo-seed.yml', import.meta.url));

async function main(): Promise<void> {
  const { cli, config } = loadStartupConfig(identityConfigSchema, { app: 'identity', args: process.argv.slice(2) });
  const logger = createLogger({ service: 'identity', level: config.log.level });
  if (
    await superviseWhenClustered({
      workers: config.workers,
      databaseUrl: config.database.url,
      logger,
      service: 'identity',
    })
  ) {
    return;
  }
  const telemetry = startTelemetry(
    telemetryOptions({ serviceName: 'identity', serviceVersion: version }, config.telemetry, process.env),
  );
  const shutdown = createShutdown({ logger });
  const identity = await startIdentity({
    config,
    logger,
    version,
    dev: cli.dev,
    insecureHttp: cli.devInsecureHttp,
    // With workers, only the first resets the demo data; the others start on it.
    ...(cli.demo ? { demoSeed: { path: DEMO_SEED, reset: cli.resetDemo && isFirstWorker() } } : {}),
    onShutdownRequest: () => void shutdown.shutdown('admin request'),
  });
  shutdown.addHook('identity', () => identity.close());
  shutdown.addHook('telemetry', () => telemetry.shutdown());
  logger.info('identity started', {
    issuer: identity.issuer,
    admin_url: identity.adminUrl,
    tls_root_ca: `${config.tls.dir}/root-ca.pem`,
  });
  reportWorkerReady();
}

main().catch((error: unknown) => {
  process.stderr.write(`identity: cannot start: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
