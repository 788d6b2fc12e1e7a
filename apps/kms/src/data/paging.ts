/** Filter, sort and page pieces shared by the list queries; column names come from allowlists only. */
import { sql, type SQL } from 'drizzle-orm';

export interface SortOrder {
  field: string;
  direction: 'ASC' | 'DESC';
}

export interface PageRequest {
  page: number;
  size: number;
  sort: readonly SortOrder[];
}

export interface Page<T> {
  items: T[];
  page: number;
  size: number;
  total: number;
}

export function whereClause(conditions: readonly SQL[]): SQL {
  return conditions.length === 0 ? sql`` : sql` WHERE ${sql.join([...conditions], sql` AND `)}`;
}

/** ORDER BY from the caller's sort, mapped through `columns`; the id always breaks ties, so pages are stable. */
export function orderClause(
  sort: readonly SortOrder[],
  columns: Readonly<Record<string, string>>,
  idColumn: string,
): SQL {
  const parts = sort.flatMap((order) => {
    const column = columns[order.field];
    return column ? [sql.raw(`${column} ${order.direction}`)] : [];
  });
  parts.push(sql.raw(`${idColumn} ASC`));
  return sql` ORDER BY ${sql.join(parts, sql`, `)}`;
}

export function limitClause(page: PageRequest): SQL {
  return sql` LIMIT ${page.size} OFFSET ${page.page * page.size}`;
}

export function inList(column: string, values: readonly (string | number)[]): SQL {
  return sql`${sql.raw(column)} IN (${sql.join(
    values.map((value) => sql`${value}`),
    sql`, `,
  )})`;
}
