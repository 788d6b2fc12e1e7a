import express from 'express';
import { once } from 'node:events';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import request from 'supertest';
import { answerClientErrors, applySecurityDefaults, chooseRequestId, tokenBucketLimiter } from './http-security.js';
import { notFoundHandler, problemHandler } from './problem.js';
import { currentRequestContext } from './request-context.js';

function buildApp(options: Parameters<typeof applySecurityDefaults>[1] = {}) {
  const app = applySecurityDefaults(express(), options);
  app.post('/echo', (req, res) => {
    res.json({
      body: req.body instanceof Buffer ? `bytes:${req.body.length}` : (req.body as unknown),
      context: { requestId: currentRequestContext()?.requestId },
    });
  });
  app.get('/context', async (_req, res) => {
    await new Promise((resolve) => setTimeout(resolve, 5));
    res.json({ context: { requestId: currentRequestContext()?.requestId } });
  });
  app.get('/slow', (_req, res, next) => {
    setTimeout(() => {
      try {
        res.json({ late: true });
      } catch (error) {
        next(error);
      }
    }, 150);
  });
  app.use(notFoundHandler(), problemHandler());
  return app;
}

describe('applySecurityDefaults headers', () => {
  const app = buildApp();

  it('hides x-powered-by and sets helmet headers with an API content security policy', async () => {
    const res = await request(app).get('/nope');
    expect(res.headers['x-powered-by']).toBeUndefined();
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['strict-transport-security']).toMatch(/max-age=/);
    expect(res.headers['content-security-policy']).toBe(
      "default-src 'none';frame-ancestors 'none';base-uri 'none';form-action 'none'",
    );
    expect(res.headers['referrer-policy']).toBe('no-referrer');
    expect(res.headers['cache-control']).toBe('no-store');
  });

  it('lets an app override the CSP (e.g. a login page)', async () => {
    const custom = buildApp({
      helmet: { contentSecurityPolicy: { directives: { defaultSrc: ["'self'"], formAction: ["'self'"] } } },
    });
    const res = await request(custom).get('/nope');
    expect(res.headers['content-security-policy']).toContain("default-src 'self'");
    expect(res.headers['content-security-policy']).toContain("form-action 'self'");
  });
});

describe('request id', () => {
  const app = buildApp();

  it('keeps a sane incoming X-Request-ID and echoes it', async () => {
    const res = await request(app).get('/context').set('X-Request-ID', 'abc-123._X');
    expect(res.headers['x-request-id']).toBe('abc-123._X');
    expect(res.body.context).toEqual({ requestId: 'abc-123._X' });
  });

  it('replaces a missing, malformed or over-long id by a UUIDv7', async () => {
    const uuidV7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
    for (const incoming of [undefined, 'bad id with spaces', 'x'.repeat(129), '<script>']) {
      const req = request(app).get('/context');
      const res = await (incoming === undefined ? req : req.set('X-Request-ID', incoming));
      expect(res.headers['x-request-id']).toMatch(uuidV7);
      expect(res.body.context.requestId).toBe(res.headers['x-request-id']);
    }
    expect(chooseRequestId('x'.repeat(128))).toBe('x'.repeat(128));
  });

  it('stays available to handlers after the body was parsed', async () => {
    const res = await request(app).post('/echo').set('X-Request-ID', 'after-body').send({ a: 1 });
    expect(res.body).toEqual({ body: { a: 1 }, context: { requestId: 'after-body' } });
  });

  it('stays available when the body arrives later than the headers', async () => {
    const server = app.listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const { port } = server.address() as AddressInfo;
      const req = http.request({
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/echo',
        headers: { 'Content-Type': 'application/json', 'Content-Length': '7', 'X-Request-ID': 'slow-body' },
      });
      req.flushHeaders();
      await new Promise((resolve) => setTimeout(resolve, 50));
      req.end('{"a":1}');
      const [res] = (await once(req, 'response')) as [http.IncomingMessage];
      let text = '';
      for await (const chunk of res) text += String(chunk);
      expect(JSON.parse(text)).toEqual({ body: { a: 1 }, context: { requestId: 'slow-body' } });
    } finally {
      server.close();
    }
  });
});

describe('body parsers', () => {
  const app = buildApp({ rawTypes: ['application/jose'] });

  it('parse JSON (incl. +json), text and raw bodies', async () => {
    expect(
      (await request(app).post('/echo').set('Content-Type', 'application/merge-patch+json').send('{"b":2}')).body.body,
    ).toEqual({ b: 2 });
    expect((await request(app).post('/echo').set('Content-Type', 'text/plain').send('hello')).body.body).toBe('hello');
    expect(
      (await request(app).post('/echo').set('Content-Type', 'application/octet-stream').send(Buffer.alloc(7))).body
        .body,
    ).toBe('bytes:7');
    expect((await request(app).post('/echo').set('Content-Type', 'application/jose').send('eyJ.x.y')).body.body).toBe(
      'bytes:7',
    );
  });

  it('default to a 1 MiB limit', async () => {
    const small = await request(app)
      .post('/echo')
      .set('Content-Type', 'text/plain')
      .send('x'.repeat(1024 * 1024));
    expect(small.status).toBe(200);
    const big = await request(app)
      .post('/echo')
      .set('Content-Type', 'text/plain')
      .send('x'.repeat(1024 * 1024 + 1));
    expect(big.status).toBe(413);
    expect(big.body.limit_bytes).toBe(1024 * 1024);
  });

  it('read and drop a body of any other type (handlers see none), with the same limit', async () => {
    const html = await request(app).post('/echo').set('Content-Type', 'text/html').send('<b>hi</b>');
    expect([html.status, html.body.body]).toEqual([200, undefined]);
    const big = await request(app)
      .post('/echo')
      .set('Content-Type', 'application/x-www-form-urlencoded')
      .serialize((data: unknown) => data as string)
      .send('x'.repeat(1024 * 1024 + 1));
    expect([big.status, big.body.code]).toEqual([413, 'payload_too_large']);
  });
});

describe('answerClientErrors', () => {
  it('answers what the HTTP parser refuses (oversized headers, a malformed request) as problem+json', async () => {
    const server = answerClientErrors(http.createServer(buildApp()));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as AddressInfo;
    const raw = async (text: string) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.end(text);
      let answer = '';
      for await (const chunk of socket) answer += String(chunk);
      return answer;
    };
    try {
      const oversized = await raw(`GET /context HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(40_000)}\r\n\r\n`);
      expect(oversized).toMatch(/^HTTP\/1\.1 431 /);
      expect(oversized).toContain('Content-Type: application/problem+json');
      expect(JSON.parse(oversized.split('\r\n\r\n')[1]!)).toMatchObject({ status: 431, code: 'headers_too_large' });
      const malformed = await raw('NOT A REQUEST\r\n\r\n');
      expect(malformed).toMatch(/^HTTP\/1\.1 400 /);
      expect(malformed).toContain('"code":"malformed_request"');
    } finally {
      server.close();
    }
  });
});

describe('request timeout', () => {
  it('answers 503 request_timeout when a handler does not answer in time, and drops the late answer', async () => {
    const app = buildApp({ requestTimeoutMs: 50 });
    const res = await request(app).get('/slow').set('X-Request-ID', 'slow-1');
    expect(res.status).toBe(503);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.body).toMatchObject({
      code: 'request_timeout',
      request_id: 'slow-1',
      detail: 'The request did not complete within 50 ms.',
    });
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect((await request(app).get('/context')).status).toBe(200);
  });

  it('can be disabled', async () => {
    const res = await request(buildApp({ requestTimeoutMs: 0 })).get('/slow');
    expect(res.body).toEqual({ late: true });
  });
});

describe('rate limiting', () => {
  it('answers 429 problem with Retry-After once the bucket is empty', async () => {
    const app = buildApp({ rateLimiter: tokenBucketLimiter({ capacity: 2, refillPerSecond: 0.5 }) });
    expect((await request(app).get('/context')).status).toBe(200);
    expect((await request(app).get('/context')).status).toBe(200);
    const limited = await request(app).get('/context');
    expect(limited.status).toBe(429);
    expect(limited.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(limited.body.code).toBe('too_many_requests');
    expect(limited.headers['retry-after']).toBe('2');
  });

  it('uses the configured key', async () => {
    const keys: string[] = [];
    const app = buildApp({
      rateLimiter: { consume: (key) => (keys.push(key), { allowed: true, retryAfterSeconds: 0 }) },
      rateLimitKey: (req) => req.get('x-client') ?? 'anonymous',
    });
    await request(app).get('/context').set('X-Client', 'tenant-a');
    expect(keys).toEqual(['tenant-a']);
  });
});

describe('tokenBucketLimiter', () => {
  it('refills over time, per key, up to the capacity', () => {
    let now = 0;
    const limiter = tokenBucketLimiter({ capacity: 2, refillPerSecond: 1, now: () => now });
    expect(limiter.consume('a').allowed).toBe(true);
    expect(limiter.consume('a').allowed).toBe(true);
    expect(limiter.consume('a')).toEqual({ allowed: false, retryAfterSeconds: 1 });
    expect(limiter.consume('b').allowed).toBe(true);
    now = 1000;
    expect(limiter.consume('a').allowed).toBe(true);
    expect(limiter.consume('a').allowed).toBe(false);
    now = 60_000;
    expect(limiter.consume('a').allowed).toBe(true);
    expect(limiter.consume('a').allowed).toBe(true);
    expect(limiter.consume('a').allowed).toBe(false);
  });

  it('forgets the least recently seen key beyond maxKeys', () => {
    const limiter = tokenBucketLimiter({ capacity: 1, refillPerSecond: 0.001, maxKeys: 2, now: () => 0 });
    limiter.consume('a');
    limiter.consume('b');
    limiter.consume('a');
    limiter.consume('c'); // evicts b, the least recently seen
    expect(limiter.consume('b').allowed).toBe(true);
    expect(limiter.consume('c').allowed).toBe(false);
  });

  it('refuses nonsensical settings', () => {
    expect(() => tokenBucketLimiter({ capacity: 0, refillPerSecond: 1 })).toThrow(RangeError);
    expect(() => tokenBucketLimiter({ capacity: 1, refillPerSecond: 0 })).toThrow(RangeError);
  });
});
