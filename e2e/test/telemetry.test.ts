/**
 * Telemetry across the products: both processes export to an in-test OTLP/HTTP receiver; one encrypt call
 * at the KMS (which asks Identity whether the token was revoked) is one trace spanning the KMS and Identity,
 * the metrics carry their documented names, and log records carry the trace id.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { startOtlpReceiver, type OtlpReceiver } from '@cryptoutil/infra/testing';
import { KMS_SERVICE_SECRET_FILE, kmsServiceToken, startStack, type Stack } from './stack.js';

type Attribute = { key: string; value: { stringValue?: string; intValue?: string | number } };
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes?: Attribute[];
}
interface Resource {
  attributes?: Attribute[];
}

const attribute = (attributes: Attribute[] | undefined, key: string) => {
  const value = attributes?.find((item) => item.key === key)?.value;
  return value?.stringValue ?? (value?.intValue === undefined ? undefined : String(value.intValue));
};

function spans(payloads: unknown[]): (OtlpSpan & { service: string })[] {
  return (payloads as { resourceSpans: { resource: Resource; scopeSpans: { spans: OtlpSpan[] }[] }[] }[]).flatMap(
    (payload) =>
      payload.resourceSpans.flatMap((resourceSpan) =>
        resourceSpan.scopeSpans.flatMap((scope) =>
          scope.spans.map((span) => ({
            ...span,
            service: attribute(resourceSpan.resource.attributes, 'service.name') ?? '',
          })),
        ),
      ),
  );
}

interface DataPoint {
  attributes?: Attribute[];
}
interface OtlpMetric {
  name: string;
  sum?: { dataPoints: DataPoint[] };
  histogram?: { dataPoints: DataPoint[] };
}

function metricsOf(payloads: unknown[]): (OtlpMetric & { service: string })[] {
  return (
    payloads as { resourceMetrics: { resource: Resource; scopeMetrics: { metrics: OtlpMetric[] }[] }[] }[]
  ).flatMap((payload) =>
    payload.resourceMetrics.flatMap((resourceMetric) =>
      resourceMetric.scopeMetrics.flatMap((scope) =>
        scope.metrics.map((metric) => ({
          ...metric,
          service: attribute(resourceMetric.resource.attributes, 'service.name') ?? '',
        })),
      ),
    ),
  );
}

function logRecords(payloads: unknown[]) {
  return (
    payloads as {
      resourceLogs: {
        resource: Resource;
        scopeLogs: { logRecords: { traceId?: string; body?: { stringValue?: string } }[] }[];
      }[];
    }[]
  ).flatMap((payload) =>
    payload.resourceLogs.flatMap((resourceLog) =>
      resourceLog.scopeLogs.flatMap((scope) =>
        scope.logRecords.map((record) => ({
          ...record,
          service: attribute(resourceLog.resource.attributes, 'service.name') ?? '',
        })),
      ),
    ),
  );
}

async function eventually<T>(probe: () => T | undefined, what: string, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = probe();
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((done) => setTimeout(done, 200));
  }
}

describe('telemetry across Identity and the KMS (OTLP/HTTP)', () => {
  let receiver: OtlpReceiver;
  let stack: Stack;

  beforeAll(async () => {
    receiver = await startOtlpReceiver();
    stack = await startStack(
      { url: 'sqlite' },
      { env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint, OTEL_METRIC_EXPORT_INTERVAL: '500' } },
    );
  });
  afterAll(async () => {
    await stack?.stop();
    await receiver?.close();
  });

  it('makes one trace of a KMS call and the Identity call it causes, with metrics and logs to match', async () => {
    const secret = (await readFile(KMS_SERVICE_SECRET_FILE, 'utf8')).trim();
    const token = await kmsServiceToken(stack, 'kms:admin');
    const api = `${stack.kms.publicUrl}/service/api/v1`;
    const created = await stack.fetch(`${api}/elastickey`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'traced', description: 'telemetry test', algorithm: 'A256GCM/dir' }),
    });
    expect(created.status).toBe(201);
    const { elastic_key_id: keyId } = (await created.json()) as { elastic_key_id: string };

    // The caller starts the trace; the KMS continues it and carries it to Identity (token revocation check).
    const traceId = randomBytes(16).toString('hex');
    const encrypted = await stack.fetch(`${api}/elastickey/${keyId}/encrypt`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${token}`,
        'content-type': 'text/plain',
        traceparent: `00-${traceId}-${randomBytes(8).toString('hex')}-01`,
      },
      body: 'traced plaintext',
    });
    expect(encrypted.status).toBe(200);

    const trace = await eventually(
      () => {
        const all = spans(receiver.received.traces).filter((span) => span.traceId === traceId);
        const kmsServer = all.find((span) => span.service === 'kms' && span.kind === 2);
        const identityServer = all.find((span) => span.service === 'identity' && span.kind === 2);
        return kmsServer && identityServer ? all : undefined;
      },
      `spans of both services in trace ${traceId} (receiver failures: ${receiver.failures.join(' | ') || 'none'})`,
    );
    const kmsServer = trace.find((span) => span.service === 'kms' && span.kind === 2)!;
    expect(kmsServer.name).toBe('POST /service/api/v1/elastickey/:elasticKeyId/encrypt');
    const outgoing = trace.find(
      (span) => span.service === 'kms' && span.kind === 3 && attribute(span.attributes, 'url.full'),
    );
    expect(attribute(outgoing?.attributes, 'url.full')).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/token\/introspection$/);
    const identityServer = trace.find((span) => span.service === 'identity' && span.kind === 2)!;
    expect(identityServer.parentSpanId).toBe(outgoing?.spanId);
    expect(trace.some((span) => attribute(span.attributes, 'db.system.name') === 'sqlite')).toBe(true);
    // Nothing of the request's secrets travels in span attributes.
    expect(JSON.stringify(trace)).not.toMatch(new RegExp(`${token.slice(-20)}|traced plaintext|${secret}`));

    const metrics = await eventually(() => {
      const all = metricsOf(receiver.received.metrics);
      const names = new Set(all.map((metric) => `${metric.service} ${metric.name}`));
      return [
        'kms http.server.request.duration',
        'identity http.server.request.duration',
        'kms kms.crypto.operations',
        'kms kms.token.validations',
        'identity identity.tokens.issued',
      ].every((name) => names.has(name))
        ? all
        : undefined;
    }, 'the documented metrics');
    // Every export carries the cumulative points so far: look at all of them.
    const points = (service: string, name: string) =>
      metrics
        .filter((metric) => metric.service === service && metric.name === name)
        .flatMap((metric) => metric.sum?.dataPoints ?? metric.histogram?.dataPoints ?? []);
    expect(
      points('kms', 'kms.crypto.operations').some(
        (point) =>
          attribute(point.attributes, 'operation') === 'encrypt' &&
          attribute(point.attributes, 'algorithm') === 'A256GCM/dir',
      ),
    ).toBe(true);
    expect(points('kms', 'kms.token.validations').map((point) => attribute(point.attributes, 'outcome'))).toContain(
      'valid',
    );
    expect(
      points('identity', 'identity.tokens.issued').map((point) => attribute(point.attributes, 'grant_type')),
    ).toContain('client_credentials');
    expect(
      points('kms', 'http.server.request.duration').some(
        (point) => attribute(point.attributes, 'http.route') === '/service/api/v1/elastickey/:elasticKeyId/encrypt',
      ),
    ).toBe(true);

    const logged = await eventually(() => {
      const records = logRecords(receiver.received.logs).filter((record) => record.traceId === traceId);
      return records.length > 0 ? records : undefined;
    }, 'log records of the trace');
    expect(logged.map((record) => record.service)).toContain('identity');
  }, 60_000);
});
