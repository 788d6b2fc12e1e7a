/**
 * Scope strings and hybrid scope enforcement (integration.md): one parser (space- or comma-separated),
 * and coarse scopes that imply fine ones, expanded one level and then matched exactly (no wildcards).
 */

/** Space- or comma-separated scopes, duplicates dropped, order kept. */
export function parseScopes(value: string | readonly string[] | undefined): string[] {
  const parts = Array.isArray(value) ? value : String(value ?? '').split(/[\s,]+/);
  return [...new Set(parts.filter((part): part is string => typeof part === 'string' && part.length > 0))];
}

/** What each coarse scope implies. */
export type ScopeImplications = Readonly<Record<string, readonly string[]>>;

/** The granted scopes plus everything they imply (one level: an implied scope implies nothing more). */
export function expandScopes(granted: Iterable<string>, implications: ScopeImplications): Set<string> {
  const expanded = new Set<string>();
  for (const scope of granted) {
    expanded.add(scope);
    for (const implied of implications[scope] ?? []) expanded.add(implied);
  }
  return expanded;
}

/** Throws naming the first scope in `implications` that is not in `known` (a configuration error). */
export function assertKnownScopes(implications: ScopeImplications, known: ReadonlySet<string>): void {
  for (const [coarse, fine] of Object.entries(implications)) {
    for (const scope of [coarse, ...fine]) {
      if (!known.has(scope)) throw new Error(`unknown scope ${scope} in the scope implications`);
    }
  }
}
