/**
 * JOSE errors with stable codes (kms.md "Errors"). Details name the problem, never key bytes.
 */
import { ValidationError, type AppErrorOptions } from '@cryptoutil/infra';

/** An algorithm name that is unknown or refused (RSA1_5), or a key that does not fit its algorithm. */
export class AlgorithmUnsupportedError extends ValidationError {
  constructor(detail: string, options: Pick<AppErrorOptions, 'cause'> = {}) {
    super(detail, { code: 'algorithm_unsupported', ...options });
  }
}

/** A JWE that cannot be parsed or decrypted, or whose bound context does not match. */
export class InvalidJweError extends ValidationError {
  constructor(detail = 'The JWE could not be decrypted.', options: Pick<AppErrorOptions, 'cause'> = {}) {
    super(detail, { code: 'invalid_jwe', ...options });
  }
}

/** A JWS that cannot be parsed. */
export class InvalidJwsError extends ValidationError {
  constructor(detail = 'The JWS could not be parsed.', options: Pick<AppErrorOptions, 'cause'> = {}) {
    super(detail, { code: 'invalid_jws', ...options });
  }
}

/** A well-formed JWS whose signature does not verify. */
export class SignatureInvalidError extends ValidationError {
  constructor() {
    super('The signature does not verify.', { code: 'signature_invalid' });
  }
}

/** A JWK offered for import that is malformed or does not match the key's algorithm. */
export class InvalidJwkError extends ValidationError {
  constructor(detail: string) {
    super(detail, { code: 'invalid_jwk' });
  }
}
