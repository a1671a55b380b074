// The pieces every page repeats: a table from its columns, a list paginated by the Node (its range, its table, its
// pager), a section's loading state, a page's status line, an action whose refusal is shown in words, and a Copy
// button.
import type { ComponentChildren } from "preact";
import { useState } from "preact/hooks";
import type { Page } from "./api";
import { useSigned } from "./context";
import { useLoad } from "./data";
import type { Loaded } from "./data";
import { ErrorNote } from "./explain";
import { href, useLocation } from "./router";

export interface Column<T> {
  label: string;
  /** the header is read by screen readers only (an actions column) */
  hideLabel?: boolean;
  cell: (row: T) => ComponentChildren;
}

export function Table<T extends { id: number | string }>(props: {
  rows: T[];
  columns: Column<T>[];
  testId?: string;
  compact?: boolean;
  current?: number | string;
  footer?: ComponentChildren;
}) {
  return (
    <div class="scroll">
      <table class={props.compact ? "compact" : undefined} data-testid={props.testId}>
        <thead>
          <tr>
            {props.columns.map((c) => (
              <th scope="col" key={c.label}>
                {c.hideLabel ? <span class="visually-hidden">{c.label}</span> : c.label}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {props.rows.map((row) => (
            <tr key={row.id} aria-current={props.current !== undefined && row.id === props.current ? "true" : undefined}>
              {props.columns.map((c) => (
                <td key={c.label}>{c.cell(row)}</td>
              ))}
            </tr>
          ))}
        </tbody>
        {props.footer ? <tfoot>{props.footer}</tfoot> : null}
      </table>
    </div>
  );
}

/** A list the Node paginates (``of``: the page's ``useListPage``): its loading state, its title with the range
 * shown, its table (or ``empty``), and links to the pages before and after. */
export function PagedList<T extends { id: number }>(props: {
  of: ListPage<T>;
  title: ComponentChildren;
  columns: Column<T>[];
  /** the table's test id, and what the pager says it pages through ("Pages of users") */
  testId: string;
  empty: string;
  earlier?: string;
  later?: string;
}) {
  const { list, size, link, open } = props.of;
  const page = list.data;
  if (!page) return <LoadState load={list} />;
  const first = page.total === 0 ? 0 : page.offset + 1;
  const last = page.offset + page.items.length;
  const id = `${props.testId}-title`;
  return (
    <section aria-labelledby={id}>
      <h2 id={id}>
        {props.title} <span class="muted" data-testid="range">({first}–{last} of {page.total})</span>
      </h2>
      {page.items.length === 0 ? (
        <p>{props.empty}</p>
      ) : (
        <Table rows={page.items} columns={props.columns} testId={props.testId} current={open} />
      )}
      <nav aria-label={`Pages of ${props.testId}`} class="pager">
        {page.offset > 0 ? <a href={link(Math.max(0, page.offset - size) || undefined)}>{props.earlier ?? "Previous"}</a> : null}
        {last < page.total ? <a href={link(page.offset + size)}>{props.later ?? "Next"}</a> : null}
      </nav>
    </section>
  );
}

/** A non-negative whole number from the page's address (an offset, an open item's id): 0 when absent or not one. */
export function queryNumber(query: URLSearchParams, key: string): number {
  return Math.max(0, Math.floor(Number(query.get(key) ?? 0)) || 0);
}

/** What a section shows while its call is under way, or when it was refused. */
export function LoadState<T>({ load }: { load: Loaded<T> }) {
  const { me } = useSigned();
  return (
    <>
      <ErrorNote error={load.error} me={me} />
      {load.loading && !load.data ? <p class="muted">Loading…</p> : null}
    </>
  );
}

/** The page's status line, read out when it changes. */
export function Status({ text }: { text: string }) {
  return (
    <p role="status" class="status" data-testid="status">
      {text}
    </p>
  );
}

/** An action's refusal, kept for ``<ErrorNote>``: ``attempt`` answers the call's value, or null when it was refused;
 * ``run`` whether it succeeded, and on success hands ``message`` to ``onDone`` (say so, ask the Node again). */
export function useAction(onDone?: (message: string) => void) {
  const [error, setError] = useState<unknown>(null);
  async function attempt<T>(call: () => Promise<T>): Promise<T | null> {
    setError(null);
    try {
      return await call();
    } catch (caught) {
      setError(caught);
      return null;
    }
  }
  async function run(call: () => Promise<unknown>, message?: string): Promise<boolean> {
    setError(null);
    try {
      await call();
    } catch (caught) {
      setError(caught);
      return false;
    }
    if (message !== undefined) onDone?.(message);
    return true;
  }
  return { error, setError, attempt, run };
}

/** A button whose action is asked again before it runs (deleting something that cannot be brought back). */
export function ConfirmButton(props: { label: string; name: string; question: string; onConfirm: () => void }) {
  const [asking, setAsking] = useState(false);
  if (!asking) {
    return (
      <button type="button" class="danger" aria-label={props.name} onClick={() => setAsking(true)}>
        {props.label}
      </button>
    );
  }
  return (
    <span class="confirm" role="group" aria-label={props.question}>
      <span>{props.question}</span>{" "}
      <button type="button" class="danger" onClick={() => { setAsking(false); props.onConfirm(); }}>
        Yes, {props.label.toLowerCase()}
      </button>{" "}
      <button type="button" onClick={() => setAsking(false)}>
        Keep it
      </button>
    </span>
  );
}

export type ListPage<T> = ReturnType<typeof useListPage<T>>;

/** A list page's state, kept in its address (``#/path?filters&offset&id``): its filters (absent: ""), the offset,
 * the open item's id, the Node's page of ``size`` items (``load``), the status line, and links to other offsets and
 * items. */
export function useListPage<T>(
  path: string,
  keys: string[],
  size: number,
  load: (filters: Record<string, string>, offset: number) => Promise<Page<T>>,
) {
  const location = useLocation();
  const filters: Record<string, string> = Object.fromEntries(keys.map((k) => [k, location.query.get(k) ?? ""]));
  const offset = queryNumber(location.query, "offset");
  const open = queryNumber(location.query, "id");
  const list = useLoad(() => load(filters, offset), [...keys.map((k) => filters[k]), offset]);
  const [status, setStatus] = useState("");
  const here: Record<string, string | number | undefined> = { offset: offset || undefined };
  for (const k of keys) here[k] = filters[k] || undefined;
  return {
    filters,
    open,
    list,
    size,
    status,
    here,
    /** an action succeeded: say so and ask the Node again */
    done: (message: string) => {
      setStatus(message);
      list.reload();
    },
    link: (at: number | undefined) => href(path, { ...here, offset: at }),
    /** a column that opens the item (``#/path?...&id=``), named for screen readers */
    opener: (label: string, name: (row: T) => string, text: (row: T) => ComponentChildren): Column<T & { id: number }> => ({
      label,
      cell: (row) => (
        <a href={href(path, { ...here, id: row.id })} aria-label={`Open ${name(row)}`}>
          {text(row)}
        </a>
      ),
    }),
  };
}

/** An item's card (``load``: the Node's answer): its title, its loading state, and ``children`` once it came. */
export function DetailCard<T>(props: { id: string; title: string; load: Loaded<T>; children: (item: T) => ComponentChildren }) {
  return (
    <section aria-labelledby={props.id} class="card">
      <h2 id={props.id}>{props.title}</h2>
      <LoadState load={props.load} />
      {props.load.data ? props.children(props.load.data) : null}
    </section>
  );
}

/** A pinned root's SHA-256 fingerprint, shortened for a table (the whole in its title), or the public CAs. */
export function Fingerprint({ sha256, none }: { sha256: string | null; none: string }) {
  if (!sha256) return <span class="muted">{none}</span>;
  const shown = sha256
    .split(",")
    .map((one) => `${one.slice(0, 16)}…`)
    .join(", ");
  return (
    <code title={`SHA-256 ${sha256}`} data-testid="fingerprint">
      {shown}
    </code>
  );
}

/** A Copy button for what the page shows once or spells out (a secret, a code, a command), and what became of the
 * copy, read out. ``what`` names it for the sentence when the browser does not allow copying. */
export function CopyButton({ text, what }: { text: string; what: string }) {
  const [copied, setCopied] = useState("");
  return (
    <>
      <button
        type="button"
        onClick={async () => {
          try {
            await navigator.clipboard.writeText(text);
            setCopied("Copied.");
          } catch {
            setCopied(`The browser did not allow copying: select the ${what} and copy it.`);
          }
        }}
      >
        Copy
      </button>
      <span role="status" data-testid="copied">
        {copied}
      </span>
    </>
  );
}
