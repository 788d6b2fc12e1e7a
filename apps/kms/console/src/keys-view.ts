/** Elastic keys: filter, sort and page the list; create a key pool with advice on the algorithm. */
import { createKey, listKeys, type ElasticKey } from './api.js';
import { algorithmFamily } from './algorithms.js';
import { announce, field, h, show } from './dom.js';
import { reportError } from './errors.js';

const STATUSES = ['active', 'disabled', 'pending_import', 'pending_delete_was_active', 'pending_delete_was_disabled'];
const SORTS: [string, string][] = [
  ['created_at:DESC', 'Newest first'],
  ['created_at:ASC', 'Oldest first'],
  ['name:ASC', 'Name A–Z'],
  ['name:DESC', 'Name Z–A'],
];
const PAGE_SIZE = 10;

function algorithmSelect(algorithms: string[]): HTMLSelectElement {
  const groups = new Map<string, string[]>();
  for (const algorithm of algorithms) {
    const { family } = algorithmFamily(algorithm);
    groups.set(family, [...(groups.get(family) ?? []), algorithm]);
  }
  const select = h('select', { id: 'algorithm', name: 'algorithm', required: true });
  for (const [family, names] of groups) {
    select.append(h('optgroup', { label: family }, ...names.map((name) => h('option', { value: name }, name))));
  }
  select.value = algorithms.includes('A256GCM/dir') ? 'A256GCM/dir' : (algorithms[0] ?? '');
  return select;
}

function createForm(algorithms: string[], onCreated: (key: ElasticKey) => void): HTMLElement {
  const name = h('input', { name: 'name', required: true, maxlength: '255' });
  const description = h('input', { name: 'description', maxlength: '4096' });
  const algorithm = algorithmSelect(algorithms);
  const advice = h('p', { class: 'help', id: 'algorithm-advice' });
  const describe = () => {
    const { family, advice: text } = algorithmFamily(algorithm.value);
    advice.textContent = `${family}: ${text}`;
  };
  algorithm.addEventListener('change', describe);
  describe();
  algorithm.setAttribute('aria-describedby', 'algorithm-advice');
  const versioning = h('input', { type: 'checkbox', name: 'versioning_allowed', checked: true });
  const importing = h('input', { type: 'checkbox', name: 'import_allowed' });
  return h(
    'form',
    {
      class: 'card',
      'aria-labelledby': 'create-title',
      onsubmit: (event: Event) => {
        event.preventDefault();
        createKey({
          name: name.value.trim(),
          description: description.value,
          algorithm: algorithm.value,
          versioning_allowed: versioning.checked,
          import_allowed: importing.checked,
        }).then((key) => {
          announce(`Created ${key.name}.`);
          onCreated(key);
        }, reportError);
      },
    },
    h('h2', { id: 'create-title' }, 'Create a key pool'),
    field('Name', name),
    field('Description', description),
    h('div', { class: 'field' }, h('label', { for: 'algorithm' }, 'Algorithm'), algorithm, advice),
    h(
      'div',
      { class: 'checks' },
      h('label', {}, versioning, ' Allow rotation (new versions)'),
      h('label', {}, importing, ' Import material instead of generating it'),
    ),
    h('button', { type: 'submit' }, 'Create key pool'),
  );
}

function keyRow(key: ElasticKey): HTMLElement {
  return h(
    'tr',
    {},
    h('td', {}, h('a', { href: `#/keys/${key.elastic_key_id}` }, key.name)),
    h('td', { class: 'mono' }, key.algorithm),
    h('td', {}, h('span', { class: `badge ${key.status}` }, key.status.replaceAll('_', ' '))),
    h('td', {}, String(key.material_key_count ?? '')),
    h('td', {}, new Date(key.created_at).toLocaleString()),
  );
}

export function keysView(algorithms: string[], canWrite: boolean): void {
  const state = { page: 0, name: '', algorithm: '', status: '', sort: 'created_at:DESC' };
  const body = h('tbody');
  const summary = h('p', { class: 'help', 'aria-live': 'polite' });
  const previous = h('button', { type: 'button', class: 'secondary' }, 'Previous');
  const next = h('button', { type: 'button', class: 'secondary' }, 'Next');

  const load = () => {
    const query = new URLSearchParams({ page: String(state.page), size: String(PAGE_SIZE), sort: state.sort });
    if (state.name) query.set('name', state.name);
    if (state.algorithm) query.set('algorithm', state.algorithm);
    if (state.status) query.set('status', state.status);
    listKeys(query).then((page) => {
      body.replaceChildren(...page.items.map(keyRow));
      if (page.items.length === 0) body.append(h('tr', {}, h('td', { colspan: '5' }, 'No keys match.')));
      const last = Math.max(0, Math.ceil(page.total / PAGE_SIZE) - 1);
      summary.textContent = `${page.total} key${page.total === 1 ? '' : 's'}, page ${state.page + 1} of ${last + 1}`;
      previous.disabled = state.page === 0;
      next.disabled = state.page >= last;
    }, reportError);
  };
  previous.addEventListener('click', () => {
    state.page -= 1;
    load();
  });
  next.addEventListener('click', () => {
    state.page += 1;
    load();
  });

  const nameFilter = h('input', { type: 'search', name: 'name-filter', placeholder: 'exact name' });
  const algorithmFilter = h(
    'select',
    { name: 'algorithm-filter' },
    h('option', { value: '' }, 'any'),
    ...algorithms.map((a) => h('option', { value: a }, a)),
  );
  const statusFilter = h(
    'select',
    { name: 'status-filter' },
    h('option', { value: '' }, 'any'),
    ...STATUSES.map((s) => h('option', { value: s }, s.replaceAll('_', ' '))),
  );
  const sort = h('select', { name: 'sort' }, ...SORTS.map(([value, label]) => h('option', { value }, label)));
  const filters = h(
    'form',
    {
      class: 'filters',
      role: 'search',
      'aria-label': 'Filter keys',
      onsubmit: (event: Event) => {
        event.preventDefault();
        Object.assign(state, {
          page: 0,
          name: nameFilter.value.trim(),
          algorithm: algorithmFilter.value,
          status: statusFilter.value,
          sort: sort.value,
        });
        load();
      },
    },
    field('Name', nameFilter),
    field('Algorithm', algorithmFilter),
    field('Status', statusFilter),
    field('Sort', sort),
    h('button', { type: 'submit' }, 'Apply'),
  );

  show(
    h('h1', {}, 'Elastic keys'),
    filters,
    h(
      'div',
      { class: 'table-wrap' },
      h(
        'table',
        {},
        h('caption', { class: 'visually-hidden' }, 'Elastic keys of this tenant'),
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            ...['Name', 'Algorithm', 'Status', 'Versions', 'Created'].map((title) => h('th', { scope: 'col' }, title)),
          ),
        ),
        body,
      ),
    ),
    h('div', { class: 'pager' }, previous, summary, next),
    canWrite
      ? createForm(algorithms, (key) => (location.hash = `#/keys/${key.elastic_key_id}`))
      : h('p', { class: 'help' }, 'Your role cannot create keys.'),
  );
  load();
}
