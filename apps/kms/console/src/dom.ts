/**
 * Tiny DOM helpers. Text always goes in as text nodes (never HTML), so nothing the API returns can
 * become markup.
 */
type Child = Node | string | null | undefined | false;
type Attributes = Record<string, string | boolean | ((event: Event) => void) | undefined>;

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attributes: Attributes = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === false) continue;
    if (typeof value === 'function') element.addEventListener(name.replace(/^on/, ''), value);
    else if (value === true) element.setAttribute(name, '');
    else element.setAttribute(name, value);
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    element.append(typeof child === 'string' ? document.createTextNode(child) : child);
  }
  return element;
}

/** Replaces the main area's content and moves focus there (for keyboard and screen-reader users). */
export function show(...children: Child[]): void {
  const main = document.getElementById('main') as HTMLElement;
  main.replaceChildren();
  for (const child of children) if (child) main.append(child);
  main.focus();
}

/** Says something in the live region: `error` messages are styled and announced the same way. */
export function announce(message: string, kind: 'info' | 'error' = 'info'): void {
  const status = document.getElementById('status') as HTMLElement;
  status.className = `status ${kind}`;
  status.textContent = message;
}

/** A labelled form field; the label's `for` points at the control. */
export function field(label: string, control: HTMLElement, help?: string): HTMLElement {
  const id = control.id || `f-${Math.random().toString(36).slice(2)}`;
  control.id = id;
  const helpId = help ? `${id}-help` : undefined;
  if (helpId) control.setAttribute('aria-describedby', helpId);
  return h(
    'div',
    { class: 'field' },
    h('label', { for: id }, label),
    control,
    help ? h('p', { id: helpId, class: 'help' }, help) : null,
  );
}

/** A read-only output with a copy button. */
export function copyable(label: string, value: string): HTMLElement {
  const output = h('textarea', { readonly: true, rows: '4', class: 'mono' });
  output.value = value;
  const copy = h(
    'button',
    {
      type: 'button',
      class: 'secondary',
      onclick: () => {
        void navigator.clipboard?.writeText(value).then(
          () => announce(`${label} copied.`),
          () => announce('Copying is not allowed here; select the text instead.', 'error'),
        );
      },
    },
    `Copy ${label.toLowerCase()}`,
  );
  return h('div', { class: 'output' }, field(label, output), copy);
}
