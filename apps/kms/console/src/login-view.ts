/** The sign-in form: a realm user's name and password (the browser API sets the session cookie). */
import { ApiError, login, type Session } from './api.js';
import { announce, field, h, show } from './dom.js';

export function loginView(onSignedIn: (session: Session) => void): void {
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
  );
  show(form);
  username.focus();
}
