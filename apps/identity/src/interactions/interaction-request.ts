/**
 * What every interaction route (password, TOTP, passkey) reads from a request: the provider's interaction
 * details, the second factor a password step left pending, a form field, and the no-store answer header.
 */
import type { Request, Response } from 'express';
import type Provider from 'oidc-provider';
import { ValidationError } from '@cryptoutil/infra';
import type { PendingSecondFactor } from '../domain/second-factor.js';

export type InteractionDetails = Awaited<ReturnType<Provider['interactionDetails']>>;

/** The second factor the password step left pending in the interaction, if any. */
export function pendingSecondFactor(details: InteractionDetails): PendingSecondFactor | undefined {
  const pending = (details.result as { second_factor?: PendingSecondFactor } | undefined)?.second_factor;
  return typeof pending?.accountId === 'string' ? pending : undefined;
}

/** Interaction pages and their answers are never cached (their forms carry the session's tokens). */
export function noStore(_req: Request, res: Response, next: () => void): void {
  res.set('Cache-Control', 'no-store');
  next();
}

/** A required text field of the posted form, at most `maxLength` characters. */
export function formField(req: Request, name: string, options: { maxLength?: number; detail?: string } = {}): string {
  const value = (req.body as Record<string, unknown> | undefined)?.[name];
  if (typeof value !== 'string' || value.length === 0 || value.length > (options.maxLength ?? 1024)) {
    throw new ValidationError(options.detail ?? `${name} is required.`, { code: 'invalid_form' });
  }
  return value;
}
