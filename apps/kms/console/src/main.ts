/**
 * The KMS web console (served at `/ui/`): signs in on the browser API, then routes by URL hash between
 * the key list (`#/keys`), one key (`#/keys/<id>`) and the playground (`#/playground[/<id>]`).
 */
import { algorithmCatalog, currentSession, identitySignInUrl, logout, setTenant, type Session } from './api.js';
import { announce, h } from './dom.js';
import { reportError } from './errors.js';
import { keyView } from './key-view.js';
import { keysView } from './keys-view.js';
import { loginView } from './login-view.js';
import { playgroundView } from './playground-view.js';

const WRITE_SCOPES = ['kms:admin', 'kms:write', 'kms:pool:create'];

interface Catalog {
  keys: string[];
  dataKeys: string[];
}

function header(session: Session): void {
  const nav = document.getElementById('nav') as HTMLElement;
  nav.hidden = false;
  const who = document.getElementById('who') as HTMLElement;
  const tenant =
    session.tenants.length > 1
      ? h(
          'select',
          {
            'aria-label': 'Tenant',
            onchange: (event: Event) => {
              setTenant((event.target as HTMLSelectElement).value);
              route(session);
            },
          },
          ...session.tenants.map((id) => h('option', { value: id }, `tenant ${id.slice(0, 8)}…`)),
        )
      : null;
  who.replaceChildren(
    h('span', {}, session.username),
    tenant ?? '',
    h(
      'button',
      {
        type: 'button',
        class: 'secondary',
        onclick: () =>
          logout().then(() => {
            announce('Signed out.');
            location.hash = '';
            location.reload();
          }, reportError),
      },
      'Sign out',
    ),
  );
}

let catalog: Catalog = { keys: [], dataKeys: [] };

function route(session: Session): void {
  const canWrite = session.scopes.some((scope) => WRITE_SCOPES.includes(scope));
  const [, section, id] = location.hash.replace(/^#/, '').split('/');
  const canTrim = session.scopes.some((scope) => scope === 'kms:admin' || scope === 'kms:key:trim');
  if (section === 'keys' && id) keyView(id, canWrite, canTrim);
  else if (section === 'playground') playgroundView(id, catalog.dataKeys);
  else keysView(catalog.keys, canWrite);
}

function signedIn(session: Session): void {
  setTenant(session.tenants[0]);
  header(session);
  window.addEventListener('hashchange', () => route(session));
  route(session);
}

async function start(): Promise<void> {
  catalog = await algorithmCatalog();
  const session = await currentSession();
  if (session) signedIn(session);
  else loginView(signedIn, await identitySignInUrl());
}

start().catch(reportError);
