/**
 * The sign-in form: a realm user's name and password (the browser API sets the session cookie), and a link
 * to sign in through Identity when the KMS is configured for it.
 */
import { ApiError, login, type Session } from './api.js';
import { announce, field, h, show } from './dom.js';

/** `identitySignIn`: the URL of the sign-in through Identity, when the KMS offers one. */
export function loginView(onSignedIn: (session: Session) => void, identitySignIn?: string): void {
  const username = h('input', { name: 'username', autocomplete: 'username', required: true });
  const password = h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const form = h(
    'form',
    {
      class: 'card narrow',
      'aria-labelledby': 'login-title',
      onsubmit: (event: Event) => {
        event.preventDefault();
        login(username.value, password.value).then(
          (session) => {
            announce(`Signed in as ${session.username}.`);
            onSignedIn(session);
          },
          (error: unknown) => {
            password.value = '';
            announce(error instanceof ApiError ? error.message : 'Sign-in failed.', 'error');
          },
        );
      },
    },
    h('h1', { id: 'login-title' }, 'Sign in'),
    field('Username', username),
    field('Password', password),
    h('button', { type: 'submit' }, 'Sign in'),
    ...(identitySignIn ? [h('p', {}, h('a', { href: identitySignIn }, 'Sign in with cryptoutil Identity'))] : []),
  );
  show(form);
  username.focus();
}
