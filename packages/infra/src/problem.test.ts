import express from 'express';
import { PassThrough } from 'node:stream';
import request from 'supertest';
import { AppError, ConflictError, ServiceUnavailableError, UnauthorizedError } from './errors.js';
import { applySecurityDefaults } from './http-security.js';
import { createLogger } from './logger.js';
import { PROBLEM_TYPE_BASE, notFoundHandler, problemBody, problemHandler, sendProblem, toAppError } from './problem.js';

function capture() {
  const stream = new PassThrough();
  const lines: Record<string, unknown>[] = [];
  stream.on('data', (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n').filter(Boolean))
      lines.push(JSON.parse(line) as Record<string, unknown>);
  });
  return { logger: createLogger({ service: 'test', level: 'debug', stream }), lines };
}

const flush = () => new Promise((resolve) => setTimeout(resolve, 10));

function buildApp() {
  const { logger, lines } = capture();
  const app = applySecurityDefaults(express(), { bodyLimitBytes: 1024 });
  app.post('/echo', (req, res) => {
    res.json({ received: req.body as unknown });
  });
  app.get('/conflict', () => {
    throw new ConflictError('elastic_key_not_active', {
      detail: 'The key is disabled.',
      extensions: { elastic_key_id: 'ek-1', status: 999, type: 'spoofed' },
    });
  });
  app.get('/unauthorized', () => {
    throw new UnauthorizedError('invalid_token', { headers: { 'WWW-Authenticate': 'Bearer error="invalid_token"' } });
  });
  app.get('/boom', async () => {
    throw new Error('SELECT secret FROM keys WHERE k = 0xdeadbeef');
  });
  app.get('/unavailable', () => {
    throw new ServiceUnavailableError('barrier_sealed', {
      detail: 'The barrier is sealed.',
      cause: new Error('no unseal keys'),
    });
  });
  app.get('/thrown-string', () => {
    throw 'a string with password=123';
  });
  app.get('/manual', (_req, res) => sendProblem(res, new AppError(422, 'unprocessable', 'Unprocessable Content')));
  app.get('/late-error', (_req, res, next) => {
    res.status(200).end('done');
    next(new Error('after the fact'));
  });
  app.get('/keys/:id', (req, res) => {
    res.json({ id: req.params.id });
  });
  app.use(notFoundHandler());
  app.use(problemHandler({ logger }));
  return { app, lines };
}

function expectProblem(res: request.Response, status: number, code: string): void {
  expect(res.status).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json; charset=utf-8$/);
  expect(res.body).toMatchObject({ status, code, type: `${PROBLEM_TYPE_BASE}${code}` });
  expect(typeof res.body.title).toBe('string');
  expect(res.body.request_id).toBe(res.headers['x-request-id']);
  expect(res.text).not.toMatch(/stack|\.ts:\d+|at [A-Za-z]+ \(/);
}

describe('problem+json responses through HTTP', () => {
  const { app, lines } = buildApp();

  it('400 invalid_json for malformed JSON, with the path as instance', async () => {
    const res = await request(app).post('/echo?q=secret').set('Content-Type', 'application/json').send('{"a":');
    expectProblem(res, 400, 'invalid_json');
    expect(res.body.instance).toBe('/echo');
    expect(res.body.detail).toBe('The request body is not valid JSON.');
  });

  it('404 not_found for an unknown path', async () => {
    const res = await request(app).get('/nope?x=1');
    expectProblem(res, 404, 'not_found');
    expect(res.body.detail).toBe('No resource at GET /nope.');
  });

  it('413 payload_too_large beyond the body limit, for JSON, text and raw bodies', async () => {
    for (const type of ['application/json', 'text/plain', 'application/octet-stream']) {
      const res = await request(app)
        .post('/echo')
        .set('Content-Type', type)
        .send(`"${'x'.repeat(2048)}"`);
      expectProblem(res, 413, 'payload_too_large');
      expect(res.body.limit_bytes).toBe(1024);
    }
  });

  it('415 unsupported_media_type for an unsupported charset or content encoding', async () => {
    const charset = await request(app)
      .post('/echo')
      .set('Content-Type', 'application/json; charset=klingon')
      .send('{}');
    expectProblem(charset, 415, 'unsupported_media_type');
    const encoding = await request(app)
      .post('/echo')
      .set('Content-Type', 'application/json')
      .set('Content-Encoding', 'compress')
      .send('{}');
    expectProblem(encoding, 415, 'unsupported_media_type');
  });

  it('keeps a typed error: status, code, safe detail, extensions, but never lets them override members', async () => {
    const res = await request(app).get('/conflict');
    expectProblem(res, 409, 'elastic_key_not_active');
    expect(res.body).toMatchObject({ detail: 'The key is disabled.', elastic_key_id: 'ek-1', title: 'Conflict' });
  });

  it("sends the error's headers (WWW-Authenticate)", async () => {
    const res = await request(app).get('/unauthorized');
    expectProblem(res, 401, 'invalid_token');
    expect(res.headers['www-authenticate']).toBe('Bearer error="invalid_token"');
  });

  it('500 internal_error without internals; logged with the cause and without a stack', async () => {
    const res = await request(app).get('/boom');
    expectProblem(res, 500, 'internal_error');
    expect(res.body.detail).toBe('An unexpected error occurred.');
    expect(res.text).not.toMatch(/SELECT|secret|deadbeef/);
    await flush();
    const logged = lines.find((line) => line.msg === 'request failed' && line.path === '/boom');
    expect(logged).toMatchObject({
      level: 'error',
      status: 500,
      code: 'internal_error',
      request_id: res.headers['x-request-id'],
      error: { name: 'Error', message: 'SELECT secret FROM keys WHERE k = 0xdeadbeef' },
    });
    expect(JSON.stringify(logged)).not.toContain('stack');
  });

  it('a thrown non-Error is a 500 too', async () => {
    const res = await request(app).get('/thrown-string');
    expectProblem(res, 500, 'internal_error');
    expect(res.text).not.toContain('password');
  });

  it('logs a typed 5xx with its cause', async () => {
    const res = await request(app).get('/unavailable');
    expectProblem(res, 503, 'barrier_sealed');
    await flush();
    expect(lines.find((line) => line.path === '/unavailable')).toMatchObject({ error: { message: 'no unseal keys' } });
  });

  it('sendProblem works from a handler', async () => {
    expectProblem(await request(app).get('/manual'), 422, 'unprocessable');
  });

  it('an error after the response was sent does not disturb it', async () => {
    const res = await request(app).get('/late-error');
    expect(res.status).toBe(200);
    expect(res.text).toBe('done');
    await flush();
    expect(lines.find((line) => line.msg === 'error after the response was sent')).toMatchObject({
      path: '/late-error',
    });
  });

  it('maps a framework error (undecodable path parameter) to its 4xx status without its message', async () => {
    const res = await request(app).get('/keys/%E0%A4%A');
    expectProblem(res, 400, 'invalid_request');
    expect(res.text).not.toContain('decode');
  });
});

describe('toAppError and problemBody', () => {
  it('maps http-errors objects by status, and unknown objects to 500', () => {
    const error = toAppError(Object.assign(new Error('internal detail'), { status: 405, expose: true }));
    expect([error.status, error.code, error.detail]).toEqual([405, 'method_not_allowed', 'Method Not Allowed.']);
    expect(toAppError(Object.assign(new Error('x'), { statusCode: 418, expose: true })).code).toBe('invalid_request');
    expect(toAppError(Object.assign(new Error('x'), { status: 500 })).code).toBe('internal_error');
    expect(toAppError({ type: 'request.aborted' }).code).toBe('invalid_body');
    expect(toAppError({ type: 'entity.too.large' }).status).toBe(413);
    expect(toAppError(null).code).toBe('internal_error');
  });

  it('omits empty optional members', () => {
    expect(problemBody(new AppError(400, 'bad', 'Bad Request'))).toEqual({
      type: `${PROBLEM_TYPE_BASE}bad`,
      title: 'Bad Request',
      status: 400,
      code: 'bad',
    });
  });

  it('problemHandler works without a logger', async () => {
    const app = express();
    app.get('/x', () => {
      throw new Error('hidden');
    });
    app.use(problemHandler());
    const res = await request(app).get('/x');
    expect(res.status).toBe(500);
    expect(res.body).not.toHaveProperty('request_id');
  });
});
