/**
 * A minimal browser for server-rendered forms (the Identity login and consent pages): a cookie jar,
 * redirects followed by hand while they stay on one origin, and helpers to read a form's action and
 * hidden values. Used by the demo CLI and by tests to sign in the way a person does, without Chromium.
 */
export class FormBrowser {
  readonly #cookies = new Map<string, string>();
  constructor(
    private readonly fetcher: typeof fetch,
    private readonly origin: string,
  ) {}

  #remember(response: Response): void {
    for (const header of response.headers.getSetCookie()) {
      const [pair] = header.split(';');
      const [name, ...value] = (pair ?? '').split('=');
      if (name) this.#cookies.set(name.trim(), value.join('='));
    }
  }

  async request(url: string, init: { method?: string; form?: Record<string, string> } = {}): Promise<Response> {
    const response = await this.fetcher(url, {
      method: init.method ?? (init.form ? 'POST' : 'GET'),
      redirect: 'manual',
      headers: {
        cookie: [...this.#cookies].map(([name, value]) => `${name}=${value}`).join('; '),
        ...(init.form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
      },
      ...(init.form ? { body: new URLSearchParams(init.form).toString() } : {}),
    });
    this.#remember(response);
    return response;
  }

  /** Follows redirects that stay on the origin; returns the last response and the URL it came from. */
  async follow(
    url: string,
    init: { form?: Record<string, string> } = {},
  ): Promise<{ response: Response; url: string }> {
    let current = url;
    let response = await this.request(current, init);
    while (response.status >= 300 && response.status < 400) {
      const location = new URL(response.headers.get('location') ?? '', current).toString();
      if (!location.startsWith(this.origin)) return { response, url: location };
      await response.body?.cancel();
      current = location;
      response = await this.request(current);
    }
    return { response, url: current };
  }
}

/** The value of a named input in an HTML page. */
export function formValue(html: string, name: string): string {
  const match = new RegExp(`name="${name}" value="([^"]*)"`).exec(html);
  if (!match?.[1]) throw new Error(`no ${name} in the page`);
  return match[1];
}

/** The action of the page's POST form. */
export function formAction(html: string): string {
  const match = /<form method="post" action="([^"]+)"/.exec(html);
  if (!match?.[1]) throw new Error('no form in the page');
  return match[1];
}
