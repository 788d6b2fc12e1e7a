/**
 * OpenTelemetry trace export (deployments.md "Telemetry", requirements TEL-06, 5.4, C-19).
 *
 * With an OTLP endpoint (the config value, else the caller passes `OTEL_EXPORTER_OTLP_ENDPOINT`, see
 * `telemetryOptionsFromEnv`), a NodeTracerProvider with a BatchSpanProcessor (1 s delay, batches of 512) and an
 * OTLP/HTTP exporter is registered globally with W3C tracecontext + baggage propagation and the resource
 * attributes service.name/version/instance.id, host.name and deployment.environment(.name).
 * Without an endpoint nothing is registered: the API stays no-op and nothing is exported or slowed down.
 *
 * The endpoint is the collector's base URL (`http://collector:4318`): spans go to `<endpoint>/v1/traces`
 * unless the URL already names that path. Only `http://` and `https://` (OTLP/HTTP) are supported.
 */
import { context, propagation, trace } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, NodeTracerProvider, type SpanExporter } from '@opentelemetry/sdk-trace-node';
import {
  ATTR_DEPLOYMENT_ENVIRONMENT_NAME,
  ATTR_SERVICE_INSTANCE_ID,
  ATTR_SERVICE_NAME,
  ATTR_SERVICE_VERSION,
} from '@opentelemetry/semantic-conventions';
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { ConfigError } from './errors.js';

export interface TelemetryOptions {
  serviceName: string;
  serviceVersion: string;
  /** OTLP/HTTP collector base URL; absent = telemetry off. */
  endpoint?: string;
  /** `deployment.environment` (e.g. `docker compose`, `demo`, `ci`). */
  environment?: string;
  /** `service.instance.id` (default: a random UUID per process). */
  instanceId?: string;
  /** `host.name` (default: the OS host name). */
  hostName?: string;
  /** Replaces the OTLP exporter (tests, or a console exporter). */
  exporter?: SpanExporter;
  /** Time allowed to flush spans on `shutdown()` (default 3 s). */
  shutdownTimeoutMs?: number;
}

export interface Telemetry {
  /** True when a provider is registered and spans are exported. */
  readonly enabled: boolean;
  /** Flushes pending spans (bounded by the shutdown timeout) and unregisters the provider. */
  shutdown(): Promise<void>;
}

export const DEFAULT_TELEMETRY_SHUTDOWN_TIMEOUT_MS = 3000;

/** `http://collector:4318` → `http://collector:4318/v1/traces`; a full traces URL is kept. */
export function otlpTracesUrl(endpoint: string): string {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw new ConfigError(`telemetry endpoint '${endpoint}' is not a URL`, 'telemetry.endpoint');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ConfigError(
      `telemetry endpoint scheme '${url.protocol}' is not supported: use OTLP/HTTP (http:// or https://, port 4318)`,
      'telemetry.endpoint',
    );
  }
  if (url.pathname.endsWith('/v1/traces')) return url.toString();
  url.pathname = `${url.pathname.replace(/\/+$/, '')}/v1/traces`;
  return url.toString();
}

export interface TelemetryEnvironment {
  endpoint?: string;
  serviceName?: string;
}

/**
 * The standard OTel variables, for the composition root to use when the config leaves a value unset
 * (config wins): `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (a full URL), else `OTEL_EXPORTER_OTLP_ENDPOINT`,
 * and `OTEL_SERVICE_NAME`. `OTEL_SDK_DISABLED=true` turns export off.
 */
export function telemetryOptionsFromEnv(env: NodeJS.ProcessEnv): TelemetryEnvironment {
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true') return {};
  const endpoint = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || env.OTEL_EXPORTER_OTLP_ENDPOINT || undefined;
  const serviceName = env.OTEL_SERVICE_NAME || undefined;
  return { ...(endpoint ? { endpoint } : {}), ...(serviceName ? { serviceName } : {}) };
}

function withTimeout(promise: Promise<void>, timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, timeoutMs);
    timer.unref();
  });
  return Promise.race([promise.catch(() => undefined), timeout]).finally(() => clearTimeout(timer));
}

const DISABLED: Telemetry = { enabled: false, shutdown: async () => undefined };

/** The OTel globals can be set once; a second provider would be ignored yet its shutdown would disable the first. */
let active = false;

/**
 * Starts trace export when an endpoint (or exporter) is given; otherwise returns a disabled no-op.
 * At most one may be active per process (call `shutdown()` before starting another).
 */
export function startTelemetry(options: TelemetryOptions): Telemetry {
  if (!options.endpoint && !options.exporter) return DISABLED;
  if (active) throw new Error('telemetry is already started in this process');
  const exporter = options.exporter ?? new OTLPTraceExporter({ url: otlpTracesUrl(options.endpoint as string) });
  const environment = options.environment ? { 'deployment.environment': options.environment } : {};
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({
      [ATTR_SERVICE_NAME]: options.serviceName,
      [ATTR_SERVICE_VERSION]: options.serviceVersion,
      [ATTR_SERVICE_INSTANCE_ID]: options.instanceId ?? randomUUID(),
      'host.name': options.hostName ?? hostname(),
      ...(options.environment ? { [ATTR_DEPLOYMENT_ENVIRONMENT_NAME]: options.environment } : {}),
      ...environment,
    }),
    spanProcessors: [new BatchSpanProcessor(exporter, { scheduledDelayMillis: 1000, maxExportBatchSize: 512 })],
  });
  // Default registration: AsyncLocalStorage context manager and W3C tracecontext + baggage propagators.
  provider.register();
  active = true;
  let stopped: Promise<void> | undefined;
  return {
    enabled: true,
    shutdown() {
      stopped ??= withTimeout(
        provider.shutdown(),
        options.shutdownTimeoutMs ?? DEFAULT_TELEMETRY_SHUTDOWN_TIMEOUT_MS,
      ).finally(() => {
        trace.disable();
        propagation.disable();
        context.disable();
        active = false;
      });
      return stopped;
    },
  };
}
