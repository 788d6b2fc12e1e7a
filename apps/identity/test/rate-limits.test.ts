/**
 * Rate limits (issue #10): token requests per presented client credential and per client IP, sign-in
 * submissions per client IP; each refusal a 429 problem with Retry-After. A client that guesses another
 * client's secret only empties its own bucket.
 */
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { fetch as undiciFetch } from 'undici';
import { describeEachDatabase } from '@cryptoutil/infra/testing';
import { KMS_SERVICE_SECRET, startTestIdentity, type TestIdentity } from './harness.js';

describeEachDatabase('Identity rate limits', (db) => {
  let t: TestIdentity;
  beforeAll(async () => {
    t = await startTestIdentity(db, {
      rate_limits: {
        token_per_client: { burst: 3, per_second: 0.01 },
        token_per_ip: { burst: 6, per_second: 0.01 },
        login_per_ip: { burst: 2, per_second: 0.01 },
      },
    });
  });
  afterAll(async () => {
    await t.identity.close();
    await t.agent.close();
  });

  const token = async (secret: string) => {
    const res = await undiciFetch(`${t.identity.issuer}/token`, {
      method: 'POST',
      dispatcher: t.agent,
      headers: {
        authorization: `Basic ${Buffer.from(`kms-service:${secret}`).toString('base64')}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: 'grant_type=client_credentials&scope=kms:read',
    });
    return { status: res.status, retryAfter: res.headers.get('retry-after'), body: await res.text() };
  };

  it('limits token requests per credential, then per address, with 429 and Retry-After', async () => {
    const guesses = [];
    for (let n = 0; n < 4; n++) guesses.push((await token('a-wrong-guess')).status);
    expect(guesses).toEqual([401, 401, 401, 429]);
    // The real credential has its own bucket: the guesser did not use it up.
    const real = [];
    for (let n = 0; n < 3; n++) real.push(await token(KMS_SERVICE_SECRET));
    expect(real.map((answer) => answer.status)).toEqual([200, 200, 429]);
    const refused = real[2]!;
    expect(refused.retryAfter).toMatch(/^[1-9]\d*$/);
    expect(JSON.parse(refused.body)).toMatchObject({ status: 429, code: 'too_many_requests' });
  });

  it('limits sign-in submissions per address', async () => {
    const statuses = [];
    for (let n = 0; n < 3; n++) {
      const res = await undiciFetch(`${t.identity.issuer}/interaction/no-such-interaction/login`, {
        method: 'POST',
        dispatcher: t.agent,
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'username=demo-user&password=guess',
      });
      await res.arrayBuffer();
      statuses.push(res.status);
    }
    expect(statuses[0]).not.toBe(429);
    expect(statuses.slice(1)).toEqual([expect.any(Number), 429]);
  });
});
