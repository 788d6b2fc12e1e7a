import { describe, expect, it } from '@jest/globals';
import express from 'express';
import { Writable } from 'node:stream';
import request from 'supertest';
import { accessLog } from './access-log.js';
import { createLogger } from './logger.js';

describe('access log', () => {
  it('writes one line per request without the query, and skips what it is told to', async () => {
    const lines: Record<string, unknown>[] = [];
    const stream = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
        done();
      },
    });
    const logger = createLogger({ service: 'test', stream });
    const app = express()
      .use(accessLog({ logger, skip: (req) => req.path === '/quiet', fields: () => ({ client_id: 'c1' }) }))
      .get('/token', (_req, res) => void res.status(201).end())
      .get('/quiet', (_req, res) => void res.end());
    await request(app).get('/token?access_token=secret-value');
    await request(app).get('/quiet');
    await new Promise((resolve) => setImmediate(resolve));
    const logged = lines.filter((line) => line.msg === 'request');
    expect(logged).toHaveLength(1);
    expect(logged[0]).toMatchObject({ method: 'GET', path: '/token', status: 201, client_id: 'c1' });
    expect(typeof logged[0]!.duration_ms).toBe('number');
    expect(JSON.stringify(lines)).not.toContain('secret-value');
  });
});
