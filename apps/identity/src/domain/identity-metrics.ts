/**
 * Identity's own metrics (deployments/telemetry dashboards): `identity.logins` (Prometheus
 * `identity_logins_total`) by outcome, and `identity.tokens.issued` (`identity_tokens_issued_total`) by
 * grant type, counted from the provider's `grant.success` events.
 */
import { lazyCounter } from '@cryptoutil/infra';

const logins = lazyCounter('identity.logins', 'Password sign-ins by outcome.', '{login}');
const tokensIssued = lazyCounter(
  'identity.tokens.issued',
  'Successful token endpoint grants by grant type.',
  '{grant}',
);

/** `success`, `unknown_user`, `locked`, `disabled` or `wrong_password`: for operators only, never shown to users. */
export function countLogin(outcome: 'success' | 'unknown_user' | 'locked' | 'disabled' | 'wrong_password'): void {
  logins().add(1, { outcome });
}

export function countTokensIssued(grantType: string): void {
  tokensIssued().add(1, { grant_type: grantType });
}
