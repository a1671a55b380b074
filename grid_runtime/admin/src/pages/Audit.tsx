// The audit log: every mutating action (who, what, to which target, when, from where), newest first, filtered and
// paginated by the Node.
import { useState } from "preact/hooks";
import { api } from "../api";
import type { Page } from "../api";
import { useSigned } from "../context";
import { useLoad, when } from "../data";
import { ErrorNote } from "../explain";
import { Field } from "../form";
import { href, navigate, useLocation } from "../router";

const PAGE = 25;

interface AuditEvent {
  id: number;
  at: string;
  actor_id: number | null;
  actor_email: string | null;
  action: string;
  target_type: string;
  target_id: string | null;
  client_address: string | null;
  details: Record<string, unknown>;
}

export function Audit() {
  const { me } = useSigned();
  const location = useLocation();
  const filters = {
    actor: location.query.get("actor") ?? "",
    action: location.query.get("action") ?? "",
    target_type: location.query.get("target_type") ?? "",
  };
  const offset = Math.max(0, Number(location.query.get("offset") ?? 0) || 0);
  const events = useLoad(
    () => api<Page<AuditEvent>>("GET", "/audit", { query: { ...filters, limit: PAGE, offset } }),
    [filters.actor, filters.action, filters.target_type, offset],
  );
  const [actor, setActor] = useState(filters.actor);
  const [action, setAction] = useState(filters.action);
  const [targetType, setTargetType] = useState(filters.target_type);
  const page = events.data;
  return (
    <>
      <h1>Audit log</h1>
      <form
        class="inline"
        aria-label="Filter the audit log"
        onSubmit={(e) => {
          e.preventDefault();
          navigate("/audit", { actor: actor.trim(), action: action.trim(), target_type: targetType.trim() });
        }}
      >
        <Field name="actor" label="Who (email or id)" value={actor} onInput={setActor} />
        <Field name="action" label="Action (exact, or a prefix ending in *)" value={action} onInput={setAction} />
        <Field name="target_type" label="Target type" value={targetType} onInput={setTargetType} />
        <button type="submit">Filter</button>
      </form>
      <ErrorNote error={events.error} me={me} />
      {events.loading && !page ? <p class="muted">Loading…</p> : null}
      {page ? (
        <section aria-labelledby="events-title">
          <h2 id="events-title">
            Events{" "}
            <span class="muted" data-testid="range">
              ({page.total === 0 ? 0 : offset + 1}–{offset + page.items.length} of {page.total})
            </span>
          </h2>
          {page.items.length === 0 ? <p>No event matches.</p> : (
            <div class="scroll">
              <table data-testid="events">
                <thead>
                  <tr>
                    <th scope="col">When</th>
                    <th scope="col">Who</th>
                    <th scope="col">Action</th>
                    <th scope="col">Target</th>
                    <th scope="col">From</th>
                    <th scope="col">Details</th>
                  </tr>
                </thead>
                <tbody>
                  {page.items.map((e) => (
                    <tr key={e.id}>
                      <td>{when(e.at)}</td>
                      <td>{e.actor_email ?? (e.actor_id === null ? "the Node" : `user ${e.actor_id}`)}</td>
                      <td>{e.action}</td>
                      <td>
                        {e.target_type}
                        {e.target_id ? ` ${e.target_id}` : ""}
                      </td>
                      <td>{e.client_address ?? ""}</td>
                      <td class="details">{summary(e.details)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
          <nav aria-label="Pages of events" class="pager">
            {offset > 0 ? <a href={href("/audit", { ...filters, offset: Math.max(0, offset - PAGE) || undefined })}>Newer</a> : null}
            {offset + page.items.length < page.total ? (
              <a href={href("/audit", { ...filters, offset: offset + PAGE })}>Older</a>
            ) : null}
          </nav>
        </section>
      ) : null}
    </>
  );
}

function summary(details: Record<string, unknown>): string {
  const text = JSON.stringify(details ?? {});
  return text === "{}" ? "" : text.length > 160 ? `${text.slice(0, 157)}…` : text;
}
