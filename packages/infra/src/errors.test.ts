import { AppError, ConflictError, PayloadTooLargeError, TooManyRequestsError, ValidationError } from './errors.js';

describe('typed errors', () => {
  it('carry status, stable code and safe detail', () => {
    const error = new ValidationError('name is required', { code: 'invalid_name' });
    expect(error).toBeInstanceOf(AppError);
    expect(error.status).toBe(400);
    expect(error.code).toBe('invalid_name');
    expect(error.detail).toBe('name is required');
    expect(error.name).toBe('ValidationError');
  });

  it('keep the internal cause off the public detail', () => {
    const cause = new Error('SELECT * FROM secrets');
    const error = new ConflictError('elastic_key_not_active', { detail: 'The key is disabled.', cause });
    expect(error.detail).toBe('The key is disabled.');
    expect(error.cause).toBe(cause);
  });

  it('describe limits and retry hints', () => {
    expect(new PayloadTooLargeError(1024).extensions).toEqual({ limit_bytes: 1024 });
    expect(new TooManyRequestsError(7).headers).toEqual({ 'Retry-After': '7' });
  });
});
