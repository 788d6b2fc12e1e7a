/**
 * The device authorization grant (identity.md "Beyond the anchors", RFC 8628): user codes of eight
 * base-20 letters (`BDFG-HJKL`: no vowels, no look-alike digits, about 34 bits), our pages for entering,
 * checking and finishing a code, the polling `interval` in the device authorization response, and
 * `slow_down` (§3.5) for a client that polls a pending code faster than that. oidc-provider does the
 * protocol; its own pages (inline script, unlabelled field) are replaced.
 */
import { createHash } from 'node:crypto';
import type Provider from 'oidc-provider';
import type { Configuration, KoaContextWithOIDC } from 'oidc-provider';
import type { RateLimiter } from '@cryptoutil/infra';
import {
  renderDeviceConnectedPage,
  renderDeviceDeniedPage,
  renderDeviceFormExpiredPage,
  renderUserCodeConfirmPage,
  renderUserCodePage,
} from '../interactions/device-views.js';

/**
 * Emitted by the provider with `(ctx, reason)` when an entered user code is refused or the person denies
 * the device (`AbortedError`); the provider itself emits nothing for these (they re-render the page).
 */
export const USER_CODE_REFUSED = 'cryptoutil.user_code.refused';

type DeviceFlowFeature = NonNullable<NonNullable<Configuration['features']>['deviceFlow']>;

/** The provider's checks of an entered code, by error name: the page's status and words. */
const REFUSED_CODES: Record<string, { status: number; message: string }> = {
  NoCodeError: { status: 400, message: 'Enter the code shown on your device.' },
  NotFoundError: { status: 404, message: 'That code is not valid. Check the code on your device and try again.' },
  ExpiredError: { status: 410, message: 'That code has expired. Start again on your device to get a new one.' },
  AlreadyUsedError: { status: 409, message: 'That code was already used. Start again on your device if needed.' },
};

/** The provider's xsrf value of this browser session (it checks the form's copy against it). */
function xsrfOf(ctx: KoaContextWithOIDC): string {
  const secret = (ctx.oidc.session?.state as { secret?: unknown } | undefined)?.secret;
  return typeof secret === 'string' ? secret : '';
}

/** A device page: never cached (its form carries the session's xsrf value). */
function html(ctx: KoaContextWithOIDC, status: number, body: string): void {
  ctx.set('Cache-Control', 'no-store');
  ctx.status = status;
  ctx.type = 'html';
  ctx.body = body;
}

export function deviceFlowFeature(): DeviceFlowFeature {
  return {
    enabled: true,
    charset: 'base-20',
    mask: '****-****',
    userCodeInputSource: async (ctx, _form, out, error) => {
      const action = ctx.oidc.urlFor('code_verification');
      if (!out) {
        html(ctx, 200, renderUserCodePage({ action, xsrf: xsrfOf(ctx) }));
        return;
      }
      const name = (error as Error | undefined)?.name ?? '';
      ctx.oidc.provider.emit(USER_CODE_REFUSED, ctx, name || String(out.error));
      if (name === 'AbortedError') {
        html(ctx, 200, renderDeviceDeniedPage());
        return;
      }
      const refused = REFUSED_CODES[name] ?? {
        status: ctx.status >= 400 ? ctx.status : 400,
        message: 'The form expired or did not come from this page. Enter the code again.',
      };
      const userCode = (error as { userCode?: unknown } | undefined)?.userCode;
      html(
        ctx,
        refused.status,
        renderUserCodePage({
          action,
          xsrf: xsrfOf(ctx),
          error: refused.message,
          ...(typeof userCode === 'string' ? { userCode } : {}),
        }),
      );
    },
    userCodeConfirmSource: async (ctx, _form, client, _deviceInfo, userCode) => {
      html(
        ctx,
        200,
        renderUserCodeConfirmPage({
          action: ctx.oidc.urlFor('code_verification'),
          xsrf: xsrfOf(ctx),
          userCode,
          clientName: client.clientName ?? client.clientId,
        }),
      );
    },
    successSource: async (ctx) => {
      html(ctx, 200, renderDeviceConnectedPage());
    },
  };
}

export interface DevicePollingOptions {
  intervalSeconds: number;
  /** One poll per interval per device code (shared by every instance); a refusal is `slow_down`. */
  polls: RateLimiter;
}

/**
 * What the provider leaves to the deployment: the `interval` in the device authorization response,
 * `slow_down` for polling a pending code too fast, and the complete verification URI (`?user_code=`)
 * answered with our pre-filled page instead of the provider's self-submitting form (inline script).
 */
export function deviceFlowExtras(provider: Provider, options: DevicePollingOptions): void {
  provider.use(async (ctx, next) => {
    try {
      await next();
    } catch (error) {
      // oidc-provider 9.13 renders the refusal of a code form posted without a session (no cookie, or
      // an expired one), then fails saving that session (a TypeError, so a 500): answer with our page.
      const route = (ctx as KoaContextWithOIDC).oidc?.route;
      const unsaved = error instanceof TypeError && error.message.includes('previously persisted Sessions');
      if (!unsaved || (route !== 'code_verification' && route !== 'device_resume')) throw error;
      html(ctx as KoaContextWithOIDC, 400, renderDeviceFormExpiredPage());
      return;
    }
    const oidc = (ctx as KoaContextWithOIDC).oidc as KoaContextWithOIDC['oidc'] | undefined;
    const body = ctx.body as Record<string, unknown> | undefined;
    switch (oidc?.route) {
      case 'device_authorization':
        if (ctx.status === 200 && body) body.interval = options.intervalSeconds;
        return;
      case 'token': {
        const deviceCode = (oidc.params as { device_code?: unknown } | undefined)?.device_code;
        if (body?.error !== 'authorization_pending' || typeof deviceCode !== 'string') return;
        const key = createHash('sha256').update(deviceCode).digest('base64url');
        const decision = await options.polls.consume(key);
        if (!decision.allowed) {
          ctx.body = {
            error: 'slow_down',
            error_description: `poll at most every ${options.intervalSeconds} seconds, adding 5 seconds now`,
          };
        }
        return;
      }
      case 'code_verification': {
        const userCode = (oidc.params as { user_code?: unknown } | undefined)?.user_code;
        if (ctx.method !== 'GET' || ctx.status !== 200 || typeof userCode !== 'string') return;
        const action = oidc.urlFor('code_verification');
        html(
          ctx as KoaContextWithOIDC,
          200,
          renderUserCodePage({ action, xsrf: xsrfOf(ctx as KoaContextWithOIDC), userCode }),
        );
        return;
      }
      default:
        return;
    }
  });
}
