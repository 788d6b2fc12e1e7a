/** DNS name validation for certificate names (TLS-04): ≤253 chars, labels ≤63 of [A-Za-z0-9-], no edge hyphens. */
export class InvalidNameError extends Error {
  readonly code = 'invalid_dns_name';
  constructor(name: string, reason: string) {
    super(`'${name}' is not a valid DNS name: ${reason}`);
    this.name = 'InvalidNameError';
  }
}

const LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

export function assertValidFqdn(name: string): void {
  if (name.length === 0 || name.length > 253) throw new InvalidNameError(name, 'length must be 1 to 253');
  for (const label of name.split('.')) {
    if (!LABEL.test(label)) {
      throw new InvalidNameError(name, `label '${label}' must be 1-63 letters, digits or inner hyphens`);
    }
  }
}

export function isValidFqdn(name: string): boolean {
  try {
    assertValidFqdn(name);
    return true;
  } catch {
    return false;
  }
}
