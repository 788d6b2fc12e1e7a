/**
 * `demo identity --device` / `demo all --device`: a person signs in on this command line with the device
 * authorization grant (RFC 8628) as the seeded public client `demo-cli`. The CLI prints where to go and the
 * code to enter, polls the token endpoint (openid-client waits `interval` and adds 5 s on `slow_down`)
 * while saying so, then uses the access token: at userinfo, or with `all` at the KMS as that person.
 */
import * as client from 'openid-client';
import type { Agent } from 'undici';
import { call, fetchVia } from './http.js';
import { check, type Step } from './steps.js';

export const DEVICE_CLIENT = 'demo-cli';

/** Where the person is told what to do (stdout for people, stderr when stdout carries JSON). */
export interface DevicePrompt {
  write(text: string): void;
  /** A terminal: progress rewrites one line instead of adding lines. */
  isTTY: boolean;
}

interface PollNote {
  polls: number;
  slowDowns: number;
}

/** The client, with a fetch that reports each token poll's answer (openid-client polls by itself). */
function deviceClient(dispatcher: Agent, issuer: string, onPoll: (error: string | undefined) => void) {
  const via = fetchVia(dispatcher);
  const observed = (async (url: string, init?: RequestInit) => {
    const response = await via(url, init);
    if (String(url).endsWith('/token')) {
      const body = (await response
        .clone()
        .json()
        .catch(() => ({}))) as { error?: string };
      onPoll(body.error);
    }
    return response;
  }) as unknown as client.CustomFetch;
  return client.discovery(new URL(issuer), DEVICE_CLIENT, undefined, client.None(), { [client.customFetch]: observed });
}

function clock(seconds: number): string {
  const whole = Math.max(0, Math.round(seconds));
  return `${Math.floor(whole / 60)}:${String(whole % 60).padStart(2, '0')}`;
}

export function deviceSteps(dispatcher: Agent, issuer: string, prompt: DevicePrompt, kmsUrl?: string): Step[] {
  const state: { tokens?: client.TokenEndpointResponse; sub?: string; key?: string } = {};
  const note: PollNote = { polls: 0, slowDowns: 0 };
  let deadline = 0;
  let interval = 5;
  const onPoll = (error: string | undefined) => {
    note.polls += 1;
    if (error === 'slow_down') {
      note.slowDowns += 1;
      interval += 5;
    }
    const left = clock((deadline - Date.now()) / 1000);
    const what =
      error === 'authorization_pending'
        ? `waiting for approval (poll ${note.polls}, next in ${interval} s, ${left} left)`
        : error === 'slow_down'
          ? `asked to slow down: polling every ${interval} s now`
          : error
            ? `the token endpoint answered ${error}`
            : 'approved';
    prompt.write(prompt.isTTY ? `\r\u001b[2K  … ${what}` : `  … ${what}\n`);
  };
  const config = deviceClient(dispatcher, issuer, onPoll);
  const scope = kmsUrl ? 'openid profile kms:read kms:encrypt kms:decrypt' : 'openid profile';
  const step = (phase: Step['phase'], name: string, run: Step['run']): Step => ({ phase, name, run });
  const bearer = () => ({ authorization: `Bearer ${state.tokens?.access_token}` });

  const sign = step('identity', `device login (${DEVICE_CLIENT}): approve in a browser`, async () => {
    const configuration = await config;
    const device = await client.initiateDeviceAuthorization(configuration, { scope });
    deadline = Date.now() + device.expires_in * 1000;
    interval = device.interval ?? 5;
    prompt.write(
      `\n  To sign in, open ${device.verification_uri}\n  and enter the code  ${device.user_code}\n` +
        (device.verification_uri_complete ? `  (or open ${device.verification_uri_complete})\n` : '') +
        `  The code expires in ${clock(device.expires_in)}; polling every ${interval} s.\n`,
    );
    const tokens = await client.pollDeviceAuthorizationGrant(configuration, device);
    if (prompt.isTTY) prompt.write('\n');
    state.tokens = tokens;
    state.sub = tokens.claims()?.sub;
    const name = tokens.claims()?.preferred_username;
    return `tokens for ${name ? String(name) : `subject ${state.sub}`} after ${note.polls} poll(s)${note.slowDowns ? `, ${note.slowDowns} slow_down` : ''}`;
  });
  sign.interactive = true;

  if (!kmsUrl) {
    return [
      sign,
      step('identity', 'userinfo with the device access token', async () => {
        const info = await client.fetchUserInfo(await config, state.tokens?.access_token ?? '', state.sub ?? '');
        check(info.sub === state.sub, 'userinfo is for someone else');
        return `signed in as ${String(info.preferred_username ?? info.sub)}`;
      }),
    ];
  }
  const api = `${kmsUrl}/service/api/v1`;
  return [
    sign,
    step('integration', 'the KMS accepts the device access token', async () => {
      const res = await call(dispatcher, 'GET', `${api}/elastickeys?name=demo-encryption-aes256`, {
        headers: bearer(),
      });
      check(res.status === 200, `GET /elastickeys answered ${res.status}: ${res.text.slice(0, 200)}`);
      const [key] = res.json<{ items: { elastic_key_id: string }[] }>().items;
      check(key, "demo-encryption-aes256 is not visible to the person's tenant");
      state.key = key.elastic_key_id;
      return "sees demo-encryption-aes256 in the person's tenant";
    }),
    step('integration', 'encrypt and decrypt as the person', async () => {
      const text = 'from the command line';
      const jwe = await call(dispatcher, 'POST', `${api}/elastickey/${state.key}/encrypt`, {
        headers: bearer(),
        type: 'text/plain',
        body: text,
      });
      check(jwe.status === 200, `encrypt answered ${jwe.status}: ${jwe.text.slice(0, 200)}`);
      const back = await call(dispatcher, 'POST', `${api}/elastickey/${state.key}/decrypt`, {
        headers: bearer(),
        type: 'text/plain',
        body: jwe.text,
      });
      check(back.status === 200 && back.text === text, `decrypt answered ${back.status}`);
      return 'round trip with the person’s token';
    }),
  ];
}
