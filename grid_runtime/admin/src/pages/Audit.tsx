// The audit log: every mutating action (who, what, to which target, when, from where), newest first, filtered and
// paginated by the Node.
import { useState } from "preact/hooks";
import { api } from "../api";
import type { Page } from "../api";
import { when } from "../data";
import { Field } from "../form";
import { navigate } from "../router";
import { PagedList, useListPage } from "../ui";

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
  const page = useListPage<AuditEvent>("/audit", ["actor", "action", "target_type"], PAGE, (filters, offset) =>
    api<Page<AuditEvent>>("GET", "/audit", { query: { ...filters, limit: PAGE, offset } }));
  const [actor, setActor] = useState(page.filters.actor);
  const [action, setAction] = useState(page.filters.action);
  const [targetType, setTargetType] = useState(page.filters.target_type);
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
      <PagedList
        title="Events"
        of={page}
        testId="events"
        empty="No event matches."
        earlier="Newer"
        later="Older"
        columns={[
          { label: "When", cell: (e) => when(e.at) },
          { label: "Who", cell: (e) => e.actor_email ?? (e.actor_id === null ? "the Node" : `user ${e.actor_id}`) },
          { label: "Action", cell: (e) => e.action },
          { label: "Target", cell: (e) => `${e.target_type}${e.target_id ? ` ${e.target_id}` : ""}` },
          { label: "From", cell: (e) => e.client_address ?? "" },
          { label: "Details", cell: (e) => <span class="details">{summary(e.details)}</span> },
        ]}
      />
    </>
  );
}

function summary(details: Record<string, unknown>): string {
  const text = JSON.stringify(details ?? {});
  return text === "{}" ? "" : text.length > 160 ? `${text.slice(0, 157)}…` : text;
}
