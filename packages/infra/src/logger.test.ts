import { context, trace } from '@opentelemetry/api';
import { InMemorySpanExporter, NodeTracerProvider, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-node';
import { PassThrough } from 'node:stream';
import { ConfigError } from './errors.js';
import { REDACTED, createLogger, isSensitiveKey, redact, redactText, resolveLogLevel } from './logger.js';
import { runWithRequestContext } from './request-context.js';

function capture(level = 'debug') {
  const stream = new PassThrough();
  const lines: Record<string, unknown>[] = [];
  stream.on('data', (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n').filter(Boolean))
      lines.push(JSON.parse(line) as Record<string, unknown>);
  });
  return { logger: createLogger({ service: 'kms', level, stream }), lines };
}

const flush = () => new Promise((resolve) => setImmediate(resolve));
const JWS = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl';
const JWE = 'eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIn0..aXY.Y2lwaGVy.dGFn';

describe('createLogger', () => {
  it('writes one JSON object per line: ts, level, msg, service first, then metadata', async () => {
    const { logger, lines } = capture();
    logger.info('key created', { elastic_key_id: 'ek-1', count: 2n });
    await flush();
    expect(lines).toHaveLength(1);
    const line = lines[0]!;
    expect(Object.keys(line).slice(0, 4)).toEqual(['ts', 'level', 'msg', 'service']);
    expect(line).toMatchObject({
      level: 'info',
      msg: 'key created',
      service: 'kms',
      elastic_key_id: 'ek-1',
      count: '2',
    });
    expect(new Date(line.ts as string).toISOString()).toBe(line.ts);
  });

  it('adds request_id from the request context, and trace_id/span_id from the active span', async () => {
    const { logger, lines } = capture();
    const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(new InMemorySpanExporter())] });
    provider.register();
    let ids: { traceId: string; spanId: string } | undefined;
    try {
      trace.getTracer('test').startActiveSpan('op', (span) => {
        ids = span.spanContext();
        runWithRequestContext({ requestId: 'req-42' }, () => logger.info('inside'));
        span.end();
      });
    } finally {
      await provider.shutdown();
      trace.disable();
      context.disable();
    }
    logger.info('outside');
    await flush();
    expect(lines[0]).toMatchObject({ request_id: 'req-42', trace_id: ids?.traceId, span_id: ids?.spanId });
    expect(lines[0]!.trace_id).toMatch(/^[0-9a-f]{32}$/);
    expect(lines[1]).not.toHaveProperty('request_id');
    expect(lines[1]).not.toHaveProperty('trace_id');
  });

  it('redacts sensitive keys at any depth, including request headers', async () => {
    const { logger, lines } = capture();
    logger.warn('login', {
      headers: { authorization: `Bearer ${JWS}`, cookie: 'sid=abc', 'x-api-key': 'k1', accept: 'application/json' },
      body: { user: { username: 'alice', password: 'hunter2' }, client_secret: 's', refresh_token: 'r' },
      jwk: { kty: 'EC', crv: 'P-256', x: 'pub', d: 'private' },
      oct: { kty: 'oct', k: 'c2VjcmV0' },
      unseal_1of5: 'share',
      private_key_pem: '-----BEGIN PRIVATE KEY-----',
    });
    await flush();
    const line = lines[0]!;
    expect(line.headers).toEqual({
      authorization: REDACTED,
      cookie: REDACTED,
      'x-api-key': REDACTED,
      accept: 'application/json',
    });
    expect(line.body).toEqual({
      user: { username: 'alice', password: REDACTED },
      client_secret: REDACTED,
      refresh_token: REDACTED,
    });
    expect(line.jwk).toEqual({ kty: 'EC', crv: 'P-256', x: 'pub', d: REDACTED });
    expect(line.oct).toEqual({ kty: 'oct', k: REDACTED });
    expect(line.unseal_1of5).toBe(REDACTED);
    expect(line.private_key_pem).toBe(REDACTED);
    expect(JSON.stringify(lines)).not.toMatch(/hunter2|eyJhbGci|c2VjcmV0|share/);
  });

  it('redacts credentials and JOSE objects inside the message and string values', async () => {
    const { logger, lines } = capture();
    logger.info(`got Authorization: Basic dXNlcjpwdw== and ${JWE}`, {
      note: `token ${JWS}`,
      db: 'postgres://kms:pw@db:5432/kms',
    });
    await flush();
    expect(lines[0]).toMatchObject({
      msg: `got Authorization: Basic ${REDACTED} and ${REDACTED}`,
      note: `token ${REDACTED}`,
      db: `postgres://kms:${REDACTED}@db:5432/kms`,
    });
  });

  it('logs errors as name, message, code and cause, never the stack', async () => {
    const { logger, lines } = capture();
    const cause = Object.assign(new Error(`db refused ${JWS}`), { code: 'ECONNREFUSED' });
    logger.error('failed', { error: new Error('outer', { cause }) });
    logger.error(new Error('thrown directly'));
    await flush();
    expect(lines[0]!.error).toEqual({
      name: 'Error',
      message: 'outer',
      cause: { name: 'Error', message: `db refused ${REDACTED}`, code: 'ECONNREFUSED' },
    });
    expect(JSON.stringify(lines)).not.toContain('at ');
    expect(lines[1]!.msg).toContain('thrown directly');
    expect(lines[1]).not.toHaveProperty('stack');
  });

  it('honours the level, the OFF level and silent', async () => {
    const { logger, lines } = capture('warn');
    logger.info('hidden');
    logger.warn('shown');
    await flush();
    expect(lines.map((line) => line.msg)).toEqual(['shown']);
    const off = capture('OFF');
    off.logger.error('nothing');
    await flush();
    expect(off.lines).toHaveLength(0);
    expect(() => createLogger({ service: 'x', level: 'chatty' })).toThrow(ConfigError);
    expect(createLogger({ service: 'x', silent: true }).silent).toBe(true);
  });
});

describe('redaction helpers', () => {
  it('classify keys', () => {
    for (const key of [
      'password',
      'clientSecret',
      'access_token',
      'Authorization',
      'Set-Cookie',
      'unseal_key',
      'd',
      'privateKey',
      'apiKey',
    ]) {
      expect(isSensitiveKey(key)).toBe(true);
    }
    for (const key of ['username', 'kid', 'alg', 'x', 'description', 'token_type']) {
      expect(isSensitiveKey(key)).toBe(false);
    }
  });

  it('make any value JSON-safe: bytes, dates, maps, cycles, depth', () => {
    const cyclic: Record<string, unknown> = { name: 'a' };
    cyclic.self = cyclic;
    let deep: Record<string, unknown> = { leaf: true };
    for (let index = 0; index < 15; index++) deep = { next: deep };
    expect(
      redact({
        bytes: new Uint8Array(32),
        when: new Date(0),
        map: new Map([['secret', 'x']]),
        cyclic,
        fn: () => 1,
        list: [{ token: 't' }],
      }),
    ).toEqual({
      bytes: '[32 bytes]',
      when: '1970-01-01T00:00:00.000Z',
      map: { secret: REDACTED },
      cyclic: { name: 'a', self: '[Circular]' },
      fn: undefined,
      list: [{ token: REDACTED }],
    });
    expect(JSON.stringify(redact(deep))).toContain('[Truncated]');
    expect(redactText('no secrets here')).toBe('no secrets here');
  });

  it('maps the configuration level names', () => {
    expect(resolveLogLevel('INFO')).toBe('info');
    expect(resolveLogLevel('TRACE')).toBe('silly');
    expect(resolveLogLevel('CONFIG')).toBe('verbose');
    expect(resolveLogLevel('FATAL')).toBe('error');
    expect(resolveLogLevel('OFF')).toBe('off');
  });
});
