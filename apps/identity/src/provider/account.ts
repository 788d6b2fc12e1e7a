/** oidc-provider's account lookup: users from our table, their claims by scope. */
import type { Account, FindAccount } from 'oidc-provider';
import type { Queryable } from '@cryptoutil/infra';
import { findUserById } from '../data/user-repository.js';

export function findAccount(db: Queryable): FindAccount {
  return async (_ctx, sub): Promise<Account | undefined> => {
    const user = await findUserById(db, sub);
    if (!user?.enabled) return undefined;
    return {
      accountId: user.id,
      claims: () => ({
        sub: user.id,
        preferred_username: user.username,
        ...(user.name ? { name: user.name } : {}),
        ...(user.email ? { email: user.email, email_verified: false } : {}),
        roles: user.roles,
        ...(user.tenantId ? { tenant_id: user.tenantId } : {}),
      }),
    };
  };
}
