/**
 * OpenTelemetry export (deployments.md "Telemetry", requirements TEL-06, 5.4, C-19): traces, metrics and logs.
 *
 * With an OTLP endpoint (the config value, else the caller passes `OTEL_EXPORTER_OTLP_ENDPOINT`, see
 * `telemetryOptionsFromEnv`), three providers are registered globally, all with the resource attributes
 * service.name/version/instance.id, host.name and deployment.environment(.name): traces (BatchSpanProcessor,
 * 1 s delay, batches of 512, W3C tracecontext + baggage propagation), metrics (a periodic reader, every
 * `OTEL_METRIC_EXPORT_INTERVAL` ms, default 10 s) and logs (the JSON logger's records, batched). Without an
 * endpoint nothing is registered: the API stays no-op and nothing is exported or slowed down.
 *
 * The endpoint is the collector's base URL (`http://collector:4318`): each signal goes to `<endpoint>/v1/<signal>`
 * (a URL naming `/v1/traces` is kept for traces, the other signals swap that path). Only OTLP/HTTP is supported.
 */
import { context, metrics, propagation, trace } from '@opentelemetry/api';
import { logs } from '@opentelemetry/api-logs';
import { OTLPLogExporter } from '@opentelemetry/exporter-logs-otlp-http';
import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-http';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { BatchLogRecordProcessor, LoggerProvider } from '@opentelemetry/sdk-logs';
import { MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
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
import { z } from 'zod';
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
  /** How often metrics are exported (default 10 s). */
  metricIntervalMs?: number;
}

export interface Telemetry {
  /** True when a provider is registered and spans are exported. */
  readonly enabled: boolean;
  /** Flushes pending spans (bounded by the shutdown timeout) and unregisters the provider. */
  shutdown(): Promise<void>;
}

export const DEFAULT_TELEMETRY_SHUTDOWN_TIMEOUT_MS = 3000;

export type OtlpSignal = 'traces' | 'metrics' | 'logs';

/** `http://collector:4318` → `http://collector:4318/v1/<signal>`; a full traces URL gets the signal's path. */
export function otlpSignalUrl(endpoint: string, signal: OtlpSignal): string {
  const traces = otlpTracesUrl(endpoint);
  return signal === 'traces' ? traces : traces.replace(/\/v1\/traces$/, `/v1/${signal}`);
}

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
  metricIntervalMs?: number;
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
  const interval = Number(env.OTEL_METRIC_EXPORT_INTERVAL);
  return {
    ...(endpoint ? { endpoint } : {}),
    ...(serviceName ? { serviceName } : {}),
    ...(Number.isInteger(interval) && interval > 0 ? { metricIntervalMs: interval } : {}),
  };
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

/** Whether telemetry is exporting (hot paths skip their spans entirely when it is not). */
export const telemetryActive = (): boolean => active;

/**
 * Starts trace export when an endpoint (or exporter) is given; otherwise returns a disabled no-op.
 * At most one may be active per process (call `shutdown()` before starting another).
 */
export function startTelemetry(options: TelemetryOptions): Telemetry {
  if (!options.endpoint && !options.exporter) return DISABLED;
  if (active) throw new Error('telemetry is already started in this process');
  const exporter = options.exporter ?? new OTLPTraceExporter({ url: otlpTracesUrl(options.endpoint as string) });
  const environment = options.environment ? { 'deployment.environment': options.environment } : {};
  const resource = resourceFromAttributes({
    [ATTR_SERVICE_NAME]: options.serviceName,
    [ATTR_SERVICE_VERSION]: options.serviceVersion,
    [ATTR_SERVICE_INSTANCE_ID]: options.instanceId ?? randomUUID(),
    'host.name': options.hostName ?? hostname(),
    ...(options.environment ? { [ATTR_DEPLOYMENT_ENVIRONMENT_NAME]: options.environment } : {}),
    ...environment,
  });
  const provider = new NodeTracerProvider({
    resource,
    spanProcessors: [new BatchSpanProcessor(exporter, { scheduledDelayMillis: 1000, maxExportBatchSize: 512 })],
  });
  // Default registration: AsyncLocalStorage context manager and W3C tracecontext + baggage propagators.
  provider.register();
  // Metrics and logs go to the collector too (not when only a span exporter is given, as in tests).
  const meterProvider = options.endpoint
    ? new MeterProvider({
        resource,
        readers: [
          new PeriodicExportingMetricReader({
            exporter: new OTLPMetricExporter({ url: otlpSignalUrl(options.endpoint, 'metrics') }),
            exportIntervalMillis: options.metricIntervalMs ?? 10_000,
          }),
        ],
      })
    : undefined;
  const loggerProvider = options.endpoint
    ? new LoggerProvider({
        resource,
        processors: [
          new BatchLogRecordProcessor({
            exporter: new OTLPLogExporter({ url: otlpSignalUrl(options.endpoint, 'logs') }),
            scheduledDelayMillis: 1000,
          }),
        ],
      })
    : undefined;
  if (meterProvider) metrics.setGlobalMeterProvider(meterProvider);
  if (loggerProvider) logs.setGlobalLoggerProvider(loggerProvider);
  active = true;
  let stopped: Promise<void> | undefined;
  return {
    enabled: true,
    shutdown() {
      stopped ??= withTimeout(
        Promise.all([provider.shutdown(), meterProvider?.shutdown(), loggerProvider?.shutdown()]).then(() => undefined),
        options.shutdownTimeoutMs ?? DEFAULT_TELEMETRY_SHUTDOWN_TIMEOUT_MS,
      ).finally(() => {
        trace.disable();
        metrics.disable();
        logs.disable();
        propagation.disable();
        context.disable();
        active = false;
      });
      return stopped;
    },
  };
}

/** The `telemetry:` section of both products' config; every key wins over its `OTEL_*` variable. */
export const telemetryConfigSchema = z
  .strictObject({
    /** OTLP/HTTP collector base URL (`http://otel-collector:4318`); default `OTEL_EXPORTER_OTLP_ENDPOINT`. */
    endpoint: z.url().optional(),
    /** `service.name`; default `OTEL_SERVICE_NAME`, then the product name. */
    service_name: z.string().min(1).optional(),
    /** `deployment.environment.name` (e.g. `docker compose`, `demo`). */
    environment: z.string().min(1).optional(),
    /** Metric export interval; default `OTEL_METRIC_EXPORT_INTERVAL` (ms), then 10 s. */
    metric_interval_seconds: z.number().min(0.1).optional(),
  })
  .prefault({});

export type TelemetryConfig = z.output<typeof telemetryConfigSchema>;

/** Start options from the config section over the `OTEL_*` variables over the defaults (config wins). */
export function telemetryOptions(
  product: { serviceName: string; serviceVersion: string },
  config: TelemetryConfig,
  env: NodeJS.ProcessEnv,
): TelemetryOptions {
  const fromEnv = telemetryOptionsFromEnv(env);
  const endpoint = config.endpoint ?? fromEnv.endpoint;
  const interval =
    config.metric_interval_seconds === undefined ? fromEnv.metricIntervalMs : config.metric_interval_seconds * 1000;
  return {
    serviceName: config.service_name ?? fromEnv.serviceName ?? product.serviceName,
    serviceVersion: product.serviceVersion,
    ...(endpoint ? { endpoint } : {}),
    ...(config.environment ? { environment: config.environment } : {}),
    ...(interval === undefined ? {} : { metricIntervalMs: interval }),
  };
}
