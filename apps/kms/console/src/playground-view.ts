/** Try a key: encrypt/decrypt or sign/verify a text, generate a data key; every result can be copied. */
import { decrypt, encrypt, generateDataKey, listKeys, sign, verify, type ElasticKey } from './api.js';
import { encrypts } from './algorithms.js';
import { announce, copyable, field, h, show } from './dom.js';
import { reportError } from './errors.js';

function operations(key: ElasticKey, dataKeyAlgorithms: string[]): HTMLElement {
  const input = h('textarea', { name: 'input', rows: '4' });
  const result = h('div', { class: 'result', 'aria-live': 'polite' });
  const run = (label: string, work: () => Promise<string>) =>
    h(
      'button',
      {
        type: 'button',
        onclick: () =>
          work().then((output) => {
            result.replaceChildren(copyable(label, output));
            announce(`${label}: done.`);
          }, reportError),
      },
      label,
    );
  const buttons = encrypts(key.algorithm)
    ? [
        run('Encrypt', () => encrypt(key.elastic_key_id, input.value)),
        run('Decrypt', () => decrypt(key.elastic_key_id, input.value.trim())),
      ]
    : [
        run('Sign', () => sign(key.elastic_key_id, input.value)),
        run('Verify', async () => {
          const checked = await verify(key.elastic_key_id, input.value.trim());
          const payload = new TextDecoder().decode(
            Uint8Array.from(atob(checked.payload.replace(/-/g, '+').replace(/_/g, '/')), (c) => c.charCodeAt(0)),
          );
          return `valid: signed by version ${checked.kid}\npayload: ${payload}`;
        }),
      ];
  const dataKey = h(
    'select',
    { name: 'data-key-alg' },
    ...dataKeyAlgorithms.map((alg) => h('option', { value: alg }, alg)),
  );
  return h(
    'section',
    { class: 'card', 'aria-labelledby': 'try-title' },
    h('h2', { id: 'try-title' }, `${key.name} (${key.algorithm})`),
    field(encrypts(key.algorithm) ? 'Text to encrypt, or a JWE to decrypt' : 'Text to sign, or a JWS to verify', input),
    h('div', { class: 'actions' }, ...buttons),
    encrypts(key.algorithm)
      ? h(
          'div',
          { class: 'actions' },
          field('Data key algorithm', dataKey),
          run('Generate data key', () => generateDataKey(key.elastic_key_id, dataKey.value)),
        )
      : null,
    result,
  );
}

export function playgroundView(selected: string | undefined, dataKeyAlgorithms: string[]): void {
  listKeys(new URLSearchParams({ status: 'active', size: '100', sort: 'name:ASC' })).then((page) => {
    const choice = h(
      'select',
      { name: 'key' },
      ...page.items.map((key) => h('option', { value: key.elastic_key_id }, `${key.name} — ${key.algorithm}`)),
    );
    if (selected) choice.value = selected;
    const area = h('div');
    const pick = () => {
      const key = page.items.find((item) => item.elastic_key_id === choice.value);
      area.replaceChildren(key ? operations(key, dataKeyAlgorithms) : h('p', {}, 'No active key to try.'));
    };
    choice.addEventListener('change', pick);
    show(h('h1', {}, 'Playground'), field('Key', choice), area);
    pick();
  }, reportError);
}
