/**
 * One elastic key: its material keys (versions), rotate and revoke; the version minimums and rotation
 * settings, trim (admins); disable/enable; delete/undelete, each destructive action confirmed first;
 * the public JWKS.
 */
import {
  changeKey,
  getKey,
  jwks,
  listMaterialKeys,
  revoke,
  rotate,
  trim,
  updateKey,
  type ElasticKey,
  type KeySettings,
  type MaterialKey,
} from './api.js';
import { announce, copyable, field, h, show } from './dom.js';
import { reportError } from './errors.js';

const when = (date: string | null) => (date ? new Date(date).toLocaleString() : '—');

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
    h('td', {}, String(material.version)),
    h('td', { class: 'mono' }, material.material_key_id),
    h('td', {}, when(material.generate_date ?? material.import_date)),
    h('td', {}, state(key, material)),
    h('td', {}, String(material.encryption_count)),
    h('td', {}, revokeButton),
  );
}

function state(key: ElasticKey, material: MaterialKey): string {
  if (material.destroy_date) return `destroyed (trimmed) ${when(material.destroy_date)}`;
  if (material.revocation_date) return `revoked ${when(material.revocation_date)}`;
  if (material.version < key.min_decryption_version) return 'below min decryption version';
  return material.public_only ? 'usable, public key only (encrypt and verify)' : 'usable';
}

/** The version minimums and rotation settings (PUT); an empty box resets a setting to its default. */
function settingsForm(key: ElasticKey, reload: () => void): HTMLElement {
  const number = (name: string, value: number | null, min: string) =>
    h('input', { type: 'number', name, min, step: '1', value: value === null ? '' : String(value) });
  const minDecryption = number('min_decryption_version', key.min_decryption_version, '1');
  const minEncryption = number('min_encryption_version', key.min_encryption_version, '0');
  const period = h('input', { name: 'rotation_period', placeholder: 'e.g. P90D', value: key.rotation_period ?? '' });
  const maxEncryptions = number('max_encryptions', key.max_encryptions, '1');
  return h(
    'form',
    {
      class: 'card',
      'aria-labelledby': 'settings-title',
      onsubmit: (event: Event) => {
        event.preventDefault();
        const settings: KeySettings = {
          min_decryption_version: Number(minDecryption.value || '1'),
          min_encryption_version: Number(minEncryption.value || '0'),
          rotation_period: period.value.trim() || null,
          max_encryptions: maxEncryptions.value ? Number(maxEncryptions.value) : null,
        };
        updateKey(key, settings).then(() => {
          announce('Settings saved.');
          reload();
        }, reportError);
      },
    },
    h('h2', { id: 'settings-title' }, 'Versions and rotation'),
    field('Minimum decryption version', minDecryption, 'Older versions refuse decrypt and verify; nothing is deleted.'),
    field('Minimum encryption version', minEncryption, '0: only the latest version encrypts and signs.'),
    field('Rotation period', period, 'ISO 8601 duration (at least PT1H); empty: no automatic rotation.'),
    field('Maximum encryptions per version', maxEncryptions, 'Empty: the algorithm default (2^32 for AES-GCM).'),
    h('button', { type: 'submit' }, 'Save settings'),
  );
}

function trimButton(key: ElasticKey, reload: () => void): HTMLElement {
  return h(
    'button',
    {
      type: 'button',
      class: 'danger',
      onclick: () => {
        const below = key.min_decryption_version - 1;
        if (!confirm(`Destroy the material of versions 1 to ${below} of ${key.name}? This cannot be undone.`)) return;
        trim(key.elastic_key_id).then((result) => {
          announce(
            result.destroyed_versions.length > 0
              ? `Trimmed: versions ${result.destroyed_versions.join(', ')} destroyed.`
              : 'Nothing to trim.',
          );
          reload();
        }, reportError);
      },
    },
    'Trim old versions',
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
                announce(`Rotated: new version ${material.version}. Older versions still decrypt and verify.`);
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

export function keyView(id: string, canWrite: boolean, canTrim = false): void {
  const reload = () => keyView(id, canWrite, canTrim);
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
          ['Latest version', String(key.latest_version)],
          ['Minimum decryption version', String(key.min_decryption_version)],
          [
            'Minimum encryption version',
            key.min_encryption_version === 0 ? 'latest' : String(key.min_encryption_version),
          ],
          ['Rotation period', key.rotation_period ?? 'none'],
          ['Maximum encryptions per version', key.max_encryptions === null ? 'unlimited' : String(key.max_encryptions)],
        ].flatMap(([term, value]) => [h('dt', {}, term as string), h('dd', {}, value as string)]),
      ),
      canWrite ? actions(key, reload) : null,
      canWrite ? settingsForm(key, reload) : null,
      h('h2', {}, 'Versions (material keys)'),
      canTrim && key.min_decryption_version > 1 ? trimButton(key, reload) : null,
      h(
        'div',
        { class: 'table-wrap' },
        h(
          'table',
          {},
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              ...['Version', 'Material key id', 'Created', 'State', 'Encryptions', ''].map((title) =>
                h('th', { scope: 'col' }, title),
              ),
            ),
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
