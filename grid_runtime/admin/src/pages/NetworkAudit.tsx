// The Network's audit log (“View statistics”): logins, users, roles, join requests, decisions, invitations and ends,
// newest first, a page at a time (the Network answers a page without a total: “Older” while a page is full).
import { api } from "../api";
import { useLoad, when } from "../data";
import { href, useLocation } from "../router";
import { LoadState, Table, queryNumber } from "../ui";

const PAGE = 50;

interface NetworkEvent {
  id: number;
  at: string;
  actor_id: number | null;
  action: string;
  target_type: string;
  target_id: number | null;
  details: Record<string, unknown>;
  client_address: string | null;
}

function summary(details: Record<string, unknown>): string {
  const text = JSON.stringify(details ?? {});
  return text === "{}" ? "" : text.length > 160 ? `${text.slice(0, 157)}…` : text;
}

export function NetworkAudit() {
  const location = useLocation();
  const offset = queryNumber(location.query, "offset");
  const events = useLoad(() => api<NetworkEvent[]>("GET", "/audit", { query: { limit: PAGE, offset } }), [offset]);
  const rows = events.data ?? [];
  return (
    <>
      <h1>Audit log</h1>
      <LoadState load={events} />
      {events.data ? (
        <section aria-labelledby="events-title">
          <h2 id="events-title">
            Events{" "}
            <span class="muted" data-testid="range">
              ({rows.length === 0 ? 0 : offset + 1}–{offset + rows.length})
            </span>
          </h2>
          {rows.length === 0 ? (
            <p>No event here.</p>
          ) : (
            <Table
              rows={rows}
              testId="events"
              columns={[
                { label: "When", cell: (e) => when(e.at) },
                { label: "Who", cell: (e) => (e.actor_id === null ? "a Node or the Network" : `user ${e.actor_id}`) },
                { label: "Action", cell: (e) => e.action },
                { label: "Target", cell: (e) => `${e.target_type}${e.target_id !== null ? ` ${e.target_id}` : ""}` },
                { label: "From", cell: (e) => e.client_address ?? "" },
                { label: "Details", cell: (e) => <span class="details">{summary(e.details)}</span> },
              ]}
            />
          )}
          <nav aria-label="Pages of events" class="pager">
            {offset > 0 ? <a href={href("/audit", { offset: Math.max(0, offset - PAGE) || undefined })}>Newer</a> : null}
            {rows.length === PAGE ? <a href={href("/audit", { offset: offset + PAGE })}>Older</a> : null}
          </nav>
        </section>
      ) : null}
    </>
  );
}
