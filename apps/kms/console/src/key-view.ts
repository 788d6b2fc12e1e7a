/**
 * One elastic key: its material keys (versions), rotate and revoke; disable/enable; delete/undelete,
 * each destructive action confirmed first; the public JWKS.
 */
import { changeKey, getKey, jwks, listMaterialKeys, revoke, rotate, type ElasticKey, type MaterialKey } from './api.js';
import { announce, copyable, h, show } from './dom.js';
import { reportError } from './errors.js';

const when = (date: string | null) => (date ? new Date(date).toLocaleString() : '—');

function materialState(material: MaterialKey): string {
  if (material.revocation_date) return `revoked ${when(material.revocation_date)}`;
  return material.public_only ? 'usable, public key only (encrypt and verify)' : 'usable';
}

function materialRow(key: ElasticKey, material: MaterialKey, canWrite: boolean, reload: () => void): HTMLElement {
  const revokeButton =
    canWrite && !material.revocation_date
      ? h(
          'button',
          {
            type: 'button',
            class: 'danger',
            onclick: () => {
              if (!confirm(`Revoke version ${material.material_key_id}? It will refuse every operation, for good.`))
                return;
              revoke(key.elastic_key_id, material.material_key_id).then(() => {
                announce('Version revoked.');
                reload();
              }, reportError);
            },
          },
          'Revoke',
        )
      : null;
  return h(
    'tr',
    {},
    h('td', { class: 'mono' }, material.material_key_id),
    h('td', {}, when(material.generate_date ?? material.import_date)),
    h('td', {}, materialState(material)),
    h('td', {}, revokeButton),
  );
}

function actions(key: ElasticKey, reload: () => void): HTMLElement {
  const act = (
    action: 'disable' | 'enable' | 'delete' | 'undelete',
    label: string,
    question?: string,
    style = 'secondary',
  ) =>
    h(
      'button',
      {
        type: 'button',
        class: style,
        onclick: () => {
          if (question && !confirm(question)) return;
          changeKey(key.elastic_key_id, action).then(() => {
            announce(`${label}: done.`);
            reload();
          }, reportError);
        },
      },
      label,
    );
  const pendingDelete = key.status.startsWith('pending_delete_was_');
  return h(
    'div',
    { class: 'actions' },
    key.versioning_allowed && key.status === 'active'
      ? h(
          'button',
          {
            type: 'button',
            onclick: () =>
              rotate(key.elastic_key_id).then((material) => {
                announce(`Rotated: new version ${material.material_key_id}. Older versions still decrypt and verify.`);
                reload();
              }, reportError),
          },
          'Rotate',
        )
      : null,
    key.status === 'active'
      ? act('disable', 'Disable', `Disable ${key.name}? It refuses every operation until enabled.`)
      : null,
    key.status === 'disabled' ? act('enable', 'Enable') : null,
    pendingDelete
      ? act('undelete', 'Undelete')
      : act(
          'delete',
          'Delete',
          `Delete ${key.name}? Its material is destroyed after the grace period unless undeleted.`,
          'danger',
        ),
    key.status === 'active'
      ? h('a', { class: 'button secondary', href: `#/playground/${key.elastic_key_id}` }, 'Use in playground')
      : null,
  );
}

export function keyView(id: string, canWrite: boolean): void {
  const reload = () => keyView(id, canWrite);
  Promise.all([getKey(id), listMaterialKeys(id)]).then(([key, materials]) => {
    const publicKeys = h('div');
    show(
      h('p', {}, h('a', { href: '#/keys' }, '← All keys')),
      h('h1', {}, key.name),
      h(
        'dl',
        { class: 'facts' },
        ...[
          ['Id', key.elastic_key_id],
          ['Algorithm', key.algorithm],
          ['Status', key.status.replaceAll('_', ' ')],
          ['Description', key.description || '—'],
          ['Created', when(key.created_at)],
        ].flatMap(([term, value]) => [h('dt', {}, term as string), h('dd', {}, value as string)]),
      ),
      canWrite ? actions(key, reload) : null,
      h('h2', {}, 'Versions (material keys)'),
      h(
        'div',
        { class: 'table-wrap' },
        h(
          'table',
          {},
          h(
            'thead',
            {},
            h('tr', {}, ...['Version id', 'Created', 'State', ''].map((title) => h('th', { scope: 'col' }, title))),
          ),
          h('tbody', {}, ...materials.items.map((material) => materialRow(key, material, canWrite, reload))),
        ),
      ),
      h('h2', {}, 'Public keys (JWKS)'),
      publicKeys,
    );
    jwks(id).then(
      (text) => publicKeys.replaceChildren(copyable('JWKS', JSON.stringify(JSON.parse(text), null, 2))),
      () => publicKeys.replaceChildren(h('p', { class: 'help' }, 'This key has no public part (symmetric).')),
    );
  }, reportError);
}
