/**
 * Metric instruments, created on first use: the metrics API has no proxy provider, so an instrument made
 * before `startTelemetry` registers one would stay a no-op for good. Names follow the OpenTelemetry
 * conventions (dots; a Prometheus backend shows `http_server_request_duration_seconds`, `<name>_total`).
 */
import { metrics, type Counter, type Histogram } from '@opentelemetry/api';

export const METER_NAME = '@cryptoutil/infra';

/** Seconds; fine at the fast end, where most requests of these services fall. */
const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export function lazyCounter(name: string, description: string, unit = '{operation}'): () => Counter {
  let instrument: Counter | undefined;
  return () => (instrument ??= metrics.getMeter(METER_NAME).createCounter(name, { description, unit }));
}

export function lazyDurationHistogram(name: string, description: string): () => Histogram {
  let instrument: Histogram | undefined;
  return () =>
    (instrument ??= metrics.getMeter(METER_NAME).createHistogram(name, {
      description,
      unit: 's',
      advice: { explicitBucketBoundaries: DURATION_BUCKETS },
    }));
}

/** `http.server.request.duration` (semantic conventions): rate, latency and errors of every listener. */
export const httpServerDuration = lazyDurationHistogram(
  'http.server.request.duration',
  'Duration of HTTP server requests.',
);
