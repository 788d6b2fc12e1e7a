/** Problem+json errors as messages people can act on. */
import { ApiError } from './api.js';
import { announce } from './dom.js';

const HINTS: Record<string, string> = {
  insufficient_scope: 'Your role does not allow this.',
  csrf_token_invalid: 'The page lost its session token; reload it.',
  authentication_required: 'Your session ended; sign in again.',
  tenant_forbidden: 'You do not act for that tenant.',
};

export function reportError(error: unknown): void {
  if (error instanceof ApiError) {
    const hint = HINTS[error.code];
    announce(`${hint ? `${hint} ` : ''}${error.message} (${error.status} ${error.code})`, 'error');
    if (error.code === 'authentication_required') setTimeout(() => location.reload(), 1500);
    return;
  }
  announce(error instanceof Error ? error.message : 'Something went wrong.', 'error');
}
