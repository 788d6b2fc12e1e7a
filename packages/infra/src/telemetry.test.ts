import { SpanStatusCode, propagation, trace } from '@opentelemetry/api';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-node';
import express from 'express';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import request from 'supertest';
import { ConfigError } from './errors.js';
import { applySecurityDefaults } from './http-security.js';
import { createLogger } from './logger.js';
import { notFoundHandler, problemHandler } from './problem.js';
import {
  otlpSignalUrl,
  otlpTracesUrl,
  startTelemetry,
  telemetryConfigSchema,
  telemetryOptions,
  telemetryOptionsFromEnv,
} from './telemetry.js';
import { withSpan } from './tracing.js';
import { startOtlpReceiver } from './testing/otlp-receiver.js';

interface OtlpAttribute {
  key: string;
  value: { stringValue?: string; intValue?: number | string };
}
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes: OtlpAttribute[];
  status?: { code?: number };
}
interface OtlpExport {
  resourceSpans: { resource: { attributes: OtlpAttribute[] }; scopeSpans: { spans: OtlpSpan[] }[] }[];
}

/** The shared test receiver, its trace exports typed. */
async function startReceiver() {
  const receiver = await startOtlpReceiver();
  return {
    server: receiver.server,
    endpoint: receiver.endpoint,
    paths: receiver.paths,
    exports: receiver.received.traces as OtlpExport[],
  };
}

function attributes(list: OtlpAttribute[]): Record<string, unknown> {
  return Object.fromEntries(list.map(({ key, value }) => [key, value.stringValue ?? Number(value.intValue)]));
}

function capture() {
  const stream = new PassThrough();
  const lines: Record<string, unknown>[] = [];
  stream.on('data', (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n').filter(Boolean))
      lines.push(JSON.parse(line) as Record<string, unknown>);
  });
  return { logger: createLogger({ service: 'kms', stream }), lines };
}

/** Keeps its spans after shutdown (the SDK's in-memory exporter clears them when shut down). */
class RecordingExporter extends InMemorySpanExporter {
  override shutdown(): Promise<void> {
    return Promise.resolve();
  }
}

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT_SPAN_ID = '00f067aa0ba902b7';

describe('startTelemetry without an endpoint', () => {
  it('registers nothing: spans are non-recording and no propagator is installed', async () => {
    const telemetry = startTelemetry({ serviceName: 'kms', serviceVersion: '0.0.1' });
    expect(telemetry.enabled).toBe(false);
    const span = trace.getTracer('test').startSpan('noop');
    expect(span.isRecording()).toBe(false);
    expect(propagation.fields()).toEqual([]);
    const app = applySecurityDefaults(express());
    app.get('/x', (_req, res) => {
      res.json({ active: trace.getActiveSpan()?.isRecording() ?? false });
    });
    const res = await request(app).get('/x').set('traceparent', `00-${TRACE_ID}-${PARENT_SPAN_ID}-01`);
    expect(res.body).toEqual({ active: false });
    await telemetry.shutdown();
  });
});

describe('startTelemetry with an OTLP/HTTP endpoint', () => {
  it('exports a server span continuing the incoming traceparent, with resource attributes and log correlation', async () => {
    const receiver = await startReceiver();
    const telemetry = startTelemetry({
      serviceName: 'kms-test',
      serviceVersion: '1.2.3',
      endpoint: receiver.endpoint,
      environment: 'ci',
      instanceId: 'instance-1',
      hostName: 'host-a',
    });
    expect(telemetry.enabled).toBe(true);
    const { logger, lines } = capture();
    const app = applySecurityDefaults(express());
    const router = express.Router();
    router.get('/items/:id', async (req, res) => {
      const item = await withSpan(
        'load item',
        async () => {
          logger.info('loading');
          return { id: req.params.id };
        },
        { 'item.kind': 'demo' },
      );
      res.json(item);
    });
    app.use('/api', router);
    app.use(notFoundHandler(), problemHandler());

    const res = await request(app)
      .get('/api/items/42?secret=x')
      .set('traceparent', `00-${TRACE_ID}-${PARENT_SPAN_ID}-01`)
      .set('X-Request-ID', 'req-otel');
    expect(res.status).toBe(200);
    await telemetry.shutdown();
    receiver.server.close();

    expect(receiver.paths).toContain('/v1/traces');
    const resource = attributes(receiver.exports[0]!.resourceSpans[0]!.resource.attributes);
    expect(resource).toMatchObject({
      'service.name': 'kms-test',
      'service.version': '1.2.3',
      'service.instance.id': 'instance-1',
      'host.name': 'host-a',
      'deployment.environment.name': 'ci',
      'deployment.environment': 'ci',
    });
    const spans = receiver.exports.flatMap((e) => e.resourceSpans.flatMap((r) => r.scopeSpans.flatMap((s) => s.spans)));
    const server = spans.find((span) => span.name === 'GET /api/items/:id');
    const child = spans.find((span) => span.name === 'load item');
    expect(server).toMatchObject({ traceId: TRACE_ID, parentSpanId: PARENT_SPAN_ID, kind: 2 });
    expect(attributes(server!.attributes)).toMatchObject({
      'http.request.method': 'GET',
      'http.route': '/api/items/:id',
      'url.path': '/api/items/42',
      'http.response.status_code': 200,
    });
    expect(JSON.stringify(server)).not.toContain('secret=x');
    expect(child).toMatchObject({ traceId: TRACE_ID, parentSpanId: server!.spanId });
    expect(attributes(child!.attributes)).toMatchObject({ 'item.kind': 'demo' });
    expect(lines.find((line) => line.msg === 'loading')).toMatchObject({
      request_id: 'req-otel',
      trace_id: TRACE_ID,
      span_id: child!.spanId,
    });
  });

  it('marks 5xx responses and failed operations as errors, and names unmatched requests by method', async () => {
    const exporter = new RecordingExporter();
    const telemetry = startTelemetry({ serviceName: 'kms', serviceVersion: '0', exporter });
    const app = applySecurityDefaults(express());
    app.get('/fail', async () => {
      await withSpan('decrypt', () => {
        throw new TypeError('bad key bytes');
      });
    });
    app.use(notFoundHandler(), problemHandler());
    await request(app).get('/fail');
    await request(app).get('/missing');
    await telemetry.shutdown();
    expect(telemetry.shutdown()).toBe(telemetry.shutdown());

    const spans = exporter.getFinishedSpans();
    const decrypt = spans.find((span) => span.name === 'decrypt');
    expect(decrypt?.status).toEqual({ code: SpanStatusCode.ERROR, message: 'TypeError' });
    expect(decrypt?.attributes['error.type']).toBe('TypeError');
    const failed = spans.find((span) => span.name === 'GET /fail');
    expect(failed?.status.code).toBe(SpanStatusCode.ERROR);
    expect(failed?.attributes['http.response.status_code']).toBe(500);
    const missing = spans.find((span) => span.attributes['url.path'] === '/missing');
    expect(missing?.name).toBe('GET');
    expect(missing?.status.code).toBe(SpanStatusCode.UNSET);
    expect(trace.getTracer('after').startSpan('x').isRecording()).toBe(false);
  });

  it('refuses a second provider while one is active, and records non-Error throws by type', async () => {
    const exporter = new RecordingExporter();
    const telemetry = startTelemetry({ serviceName: 'kms', serviceVersion: '0', exporter });
    expect(() => startTelemetry({ serviceName: 'kms', serviceVersion: '0', exporter })).toThrow(/already started/);
    await expect(
      withSpan('odd', () => {
        throw 'a string';
      }),
    ).rejects.toBe('a string');
    await telemetry.shutdown();
    expect(exporter.getFinishedSpans().find((span) => span.name === 'odd')?.attributes['error.type']).toBe('string');
    const again = startTelemetry({ serviceName: 'kms', serviceVersion: '0', exporter });
    expect(again.enabled).toBe(true);
    await again.shutdown();
  });

  it('records a request aborted by the client', async () => {
    const exporter = new RecordingExporter();
    const telemetry = startTelemetry({ serviceName: 'kms', serviceVersion: '0', exporter });
    let aborted: () => void = () => undefined;
    const closed = new Promise<void>((resolve) => (aborted = resolve));
    const app = applySecurityDefaults(express());
    app.get('/hang', (_req, res) => {
      res.once('close', () => setImmediate(aborted));
    });
    const server = app.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const req = http.get(`http://127.0.0.1:${(server.address() as AddressInfo).port}/hang`);
    req.on('error', () => undefined);
    setTimeout(() => req.destroy(), 50);
    await closed;
    server.close();
    await telemetry.shutdown();
    const span = exporter.getFinishedSpans().find((s) => s.name === 'GET /hang');
    expect(span?.attributes['error.type']).toBe('aborted');
  });
});

describe('telemetry settings', () => {
  it('derives the traces URL from a collector base URL', () => {
    expect(otlpTracesUrl('http://collector:4318')).toBe('http://collector:4318/v1/traces');
    expect(otlpTracesUrl('https://collector:4318/otel/')).toBe('https://collector:4318/otel/v1/traces');
    expect(otlpTracesUrl('http://collector:4318/v1/traces')).toBe('http://collector:4318/v1/traces');
    expect(() => otlpTracesUrl('grpc://collector:4317')).toThrow(/use OTLP\/HTTP/);
    expect(() => otlpTracesUrl('not a url')).toThrow(ConfigError);
  });

  it('reads the standard OTEL_* variables', () => {
    expect(telemetryOptionsFromEnv({})).toEqual({});
    expect(
      telemetryOptionsFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_SERVICE_NAME: 'kms-sqlite' }),
    ).toEqual({ endpoint: 'http://c:4318', serviceName: 'kms-sqlite' });
    expect(
      telemetryOptionsFromEnv({
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318',
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://t:4318/v1/traces',
      }).endpoint,
    ).toBe('http://t:4318/v1/traces');
    expect(
      telemetryOptionsFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_SDK_DISABLED: 'TRUE' }),
    ).toEqual({});
  });
});

describe('telemetry settings', () => {
  it('sends each signal to its own OTLP/HTTP path', () => {
    expect(otlpSignalUrl('http://collector:4318', 'metrics')).toBe('http://collector:4318/v1/metrics');
    expect(otlpSignalUrl('http://collector:4318/', 'logs')).toBe('http://collector:4318/v1/logs');
    expect(otlpSignalUrl('https://c.example/otlp/v1/traces', 'metrics')).toBe('https://c.example/otlp/v1/metrics');
  });

  it('takes the config over the OTEL_* variables over the defaults', () => {
    const env = {
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://from-env:4318',
      OTEL_SERVICE_NAME: 'env-name',
      OTEL_METRIC_EXPORT_INTERVAL: '2500',
    };
    const product = { serviceName: 'kms', serviceVersion: '1.0.0' };
    expect(telemetryOptions(product, telemetryConfigSchema.parse({}), env)).toEqual({
      serviceName: 'env-name',
      serviceVersion: '1.0.0',
      endpoint: 'http://from-env:4318',
      metricIntervalMs: 2500,
    });
    const config = telemetryConfigSchema.parse({
      endpoint: 'http://from-config:4318',
      service_name: 'kms-east',
      environment: 'prod',
      metric_interval_seconds: 5,
    });
    expect(telemetryOptions(product, config, env)).toEqual({
      serviceName: 'kms-east',
      serviceVersion: '1.0.0',
      endpoint: 'http://from-config:4318',
      environment: 'prod',
      metricIntervalMs: 5000,
    });
    expect(telemetryOptions(product, telemetryConfigSchema.parse({}), {})).toEqual({
      serviceName: 'kms',
      serviceVersion: '1.0.0',
    });
  });
});
