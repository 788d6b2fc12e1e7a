/**
 * The JSON logger's records as OpenTelemetry log records (exported by OTLP with the other signals when
 * telemetry is on; a no-op logger otherwise). Each record carries the line's `trace_id`/`span_id`, so a
 * backend joins logs to traces, and its attributes are the line's own (already redacted) fields.
 */
import { ROOT_CONTEXT, TraceFlags, trace } from '@opentelemetry/api';
import { SeverityNumber, logs, type AnyValueMap } from '@opentelemetry/api-logs';
import TransportStream from 'winston-transport';

/** Where `jsonLine` leaves the finished line object for this transport. */
export const LOG_LINE = Symbol.for('cryptoutil.log-line');

const SEVERITY: Record<string, SeverityNumber> = {
  error: SeverityNumber.ERROR,
  warn: SeverityNumber.WARN,
  info: SeverityNumber.INFO,
  http: SeverityNumber.INFO,
  verbose: SeverityNumber.DEBUG,
  debug: SeverityNumber.DEBUG,
  silly: SeverityNumber.TRACE,
};

const scalar = (value: unknown) =>
  typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean' ? value : JSON.stringify(value);

export class OtelLogTransport extends TransportStream {
  override log(info: Record<string | symbol, unknown>, done: () => void): void {
    const line = info[LOG_LINE] as Record<string, unknown> | undefined;
    if (line) {
      const { msg, level, trace_id: traceId, span_id: spanId, ...fields } = line;
      const attributes: AnyValueMap = {};
      for (const [key, value] of Object.entries(fields)) if (value !== undefined) attributes[key] = scalar(value);
      const linked =
        typeof traceId === 'string' && typeof spanId === 'string'
          ? trace.setSpanContext(ROOT_CONTEXT, { traceId, spanId, traceFlags: TraceFlags.SAMPLED, isRemote: false })
          : undefined;
      logs.getLogger('@cryptoutil/infra').emit({
        severityNumber: SEVERITY[String(level)] ?? SeverityNumber.INFO,
        severityText: String(level).toUpperCase(),
        body: String(msg),
        attributes,
        ...(linked ? { context: linked } : {}),
      });
    }
    done();
  }
}
