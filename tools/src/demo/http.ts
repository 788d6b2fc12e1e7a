/** One HTTP call of a demo step, over the demo's TLS dispatcher (trusting only the deployment's CA). */
import type { Agent } from 'undici';
import { request } from 'undici';

export interface Answer {
  status: number;
  text: string;
  json: <T = Record<string, unknown>>() => T;
}

export async function call(
  dispatcher: Agent,
  method: 'GET' | 'POST' | 'PUT' | 'DELETE',
  url: string,
  options: { headers?: Record<string, string>; body?: string; type?: string } = {},
): Promise<Answer> {
  const res = await request(url, {
    method,
    dispatcher,
    headers: { ...options.headers, ...(options.type ? { 'content-type': options.type } : {}) },
    ...(options.body === undefined ? {} : { body: options.body }),
  });
  const text = await res.body.text();
  return { status: res.statusCode, text, json: <T>() => JSON.parse(text) as T };
}

/** `Basic` credentials of a demo user (published password `<name>-password`). */
export const demoBasic = (username: string) => ({
  authorization: `Basic ${Buffer.from(`${username}:${username}-password`).toString('base64')}`,
});

/** A fetch that goes through the dispatcher (for openid-client). */
export function fetchVia(dispatcher: Agent): typeof fetch {
  return (async (url: string, init?: RequestInit) => {
    const { fetch: undiciFetch } = await import('undici');
    return undiciFetch(url, { ...(init as object), dispatcher });
  }) as unknown as typeof fetch;
}
