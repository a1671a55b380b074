// The request queue: pending and decided requests (paginated by the Node), a request's history and, for a release,
// the cost card (with the model spec as a layer table and the training metrics as a chart); approve (naming the fingerprint inspected) or deny with a reason. Officers decide access and
// release requests (Triage requests), budget requests need Manage budgets; the Node refuses anyone their own.
import { useState } from "preact/hooks";
import { api } from "../api";
import type { Page, RequestSummary } from "../api";
import { useSigned } from "../context";
import { epsilon, useLoad, when } from "../data";
import { SelectField } from "../form";
import { ErrorNote } from "../explain";
import { LayerTable } from "../LayerTable";
import type { Layer } from "../LayerTable";
import { MetricsChart } from "../MetricsChart";
import type { Metric } from "../MetricsChart";
import { navigate } from "../router";
import { DetailCard, PagedList, Status, useListPage } from "../ui";

const PAGE = 20;
const STATES = ["pending", "approved", "denied", "auto_approved", "auto_denied", "withdrawn", "expired"];

interface RequestEvent {
  id: number;
  from_state: string | null;
  to_state: string;
  actor_id: number | null;
  note: string | null;
  at: string;
}

interface RequestDetail extends RequestSummary {
  payload: Record<string, unknown>;
  decided_at: string | null;
  decision_note: string | null;
  events: RequestEvent[];
  card?: Record<string, unknown> | null;
}

export function Requests() {
  const page = useListPage<RequestSummary>("/requests", ["status", "kind"], PAGE, ({ status, kind }, offset) =>
    api<Page<RequestSummary>>("GET", "/requests", {
      query: { status: status === "all" ? undefined : status || "pending", kind, limit: PAGE, offset },
    }));
  const { here, open } = page;
  const state = page.filters.status || "pending";
  const kind = page.filters.kind;

  return (
    <>
      <h1>Requests</h1>
      <Status text={page.status} />
      <form class="inline" aria-label="Filter requests" onSubmit={(e) => e.preventDefault()}>
        <SelectField id="filter-state" label="State" value={state}
                     options={[...STATES.map((s): [string, string] => [s, s.replace("_", " ")]), ["all", "any state"]]}
                     onChange={(value) => navigate("/requests", { ...here, status: value, offset: undefined })} />
        <SelectField id="filter-kind" label="Kind" value={kind} options={[["", "any kind"], "access", "release", "budget"]}
                     onChange={(value) => navigate("/requests", { ...here, kind: value || undefined, offset: undefined })} />
      </form>
      <PagedList
        title={state === "all" ? "All requests" : `Requests ${state.replace("_", " ")}`}
        of={page}
        testId="requests"
        empty="No request."
        columns={[
          page.opener("#", (r) => `request ${r.id}`, (r) => r.id),
          { label: "Kind", cell: (r) => r.kind },
          { label: "State", cell: (r) => r.state.replace("_", " ") },
          { label: "Requester", cell: (r) => r.requester_email },
          { label: "Asks for", cell: (r) => asks(r as RequestDetail) },
          { label: "Filed", cell: (r) => when(r.created_at) },
        ]}
      />
      {open ? (
        <RequestPanel id={open} onDecided={page.done} />
      ) : null}
    </>
  );
}

function asks(r: RequestDetail): string {
  const p = r.payload ?? {};
  if (r.kind === "budget") return `ε +${epsilon(Number(p.additional_epsilon))}`;
  if (r.kind === "access") return `${String(p.level ?? "")} on ${r.target_type ?? ""} ${r.target_id ?? ""}`;
  return `release of ${r.target_type ?? ""} ${r.target_id ?? ""}`;
}

function RequestPanel({ id, onDecided }: { id: number; onDecided: (message: string) => void }) {
  const { me } = useSigned();
  const detail = useLoad(() => api<RequestDetail>("GET", `/requests/${id}`), [id]);
  const [note, setNote] = useState("");
  const [reason, setReason] = useState("");
  const [error, setError] = useState<unknown>(null);
  const r = detail.data;
  const fingerprint = r?.card && typeof r.card.fingerprint === "string" ? r.card.fingerprint : null;

  async function decide(action: "approve" | "deny") {
    setError(null);
    try {
      const body = action === "deny" ? { reason } : { note: note || undefined, fingerprint: fingerprint ?? undefined };
      await api("POST", `/requests/${id}/${action}`, { body });
      onDecided(`Request ${id} ${action === "deny" ? "denied" : "approved"}.`);
      detail.reload();
    } catch (caught) {
      setError(caught);
    }
  }

  return (
    <DetailCard id="request-title" title={`Request ${id}`} load={detail}>
      {(r) => (
        <>
          <dl class="facts">
            <dt>Kind</dt>
            <dd>{r.kind}</dd>
            <dt>State</dt>
            <dd data-testid="request-state">{r.state.replace("_", " ")}</dd>
            <dt>Requester</dt>
            <dd>{r.requester_email}</dd>
            <dt>Asks for</dt>
            <dd>{asks(r)}</dd>
            <dt>Reason</dt>
            <dd>{r.reason}</dd>
            {r.decision_note ? (
              <>
                <dt>Decision note</dt>
                <dd>{r.decision_note}</dd>
              </>
            ) : null}
          </dl>
          {r.card ? <CostCard card={r.card} /> : null}
          <h3>History</h3>
          <ol class="history">
            {r.events.map((e) => (
              <li key={e.id}>
                {when(e.at)}: {e.from_state ? `${e.from_state.replace("_", " ")} → ` : ""}
                {e.to_state.replace("_", " ")}
                {e.note ? ` (“${e.note}”)` : ""}
              </li>
            ))}
          </ol>
          {r.state === "pending" ? (
            <div class="decide">
              <form aria-label="Approve" onSubmit={(e) => { e.preventDefault(); void decide("approve"); }}>
                <div class="field">
                  <label for="approve-note">Note for the requester (optional)</label>
                  <input id="approve-note" value={note} onInput={(e) => setNote(e.currentTarget.value)} />
                </div>
                {fingerprint ? (
                  <p class="muted">
                    Approving names the artifact you inspected: fingerprint <code>{fingerprint.slice(0, 16)}…</code>
                  </p>
                ) : null}
                <button type="submit">Approve</button>
              </form>
              <form aria-label="Deny" onSubmit={(e) => { e.preventDefault(); void decide("deny"); }}>
                <div class="field">
                  <label for="deny-reason">Reason for denying (shown to the requester)</label>
                  <input id="deny-reason" value={reason} required onInput={(e) => setReason(e.currentTarget.value)} />
                </div>
                <button type="submit" class="danger">Deny</button>
              </form>
            </div>
          ) : null}
          <ErrorNote error={error} me={me} />
        </>
      )}
    </DetailCard>
  );
}

/** The officer's cost card: privacy figures and settings only (the Node never puts private values in it). */
function CostCard({ card }: { card: Record<string, unknown> }) {
  const user = (card.user ?? {}) as Record<string, unknown>;
  const num = (v: unknown) => (typeof v === "number" ? epsilon(v) : "—");
  return (
    <section aria-label="Cost card" class="costcard">
      <h3>Cost card</h3>
      {typeof card.flag === "string" && card.flag ? <p class="error">{card.flag}</p> : null}
      <dl class="facts">
        <dt>Mechanism</dt>
        <dd>{String(card.mechanism ?? "—")}</dd>
        <dt>This request's ε</dt>
        <dd>{num(card.epsilon)} at δ = {String(card.delta ?? "—")}</dd>
        <dt>Paid when its job was admitted</dt>
        <dd>{card.paid_at_admission ? "yes" : "no: charged on approval"}</dd>
        <dt>Requester's ε</dt>
        <dd>
          {num(user.epsilon_before)} → {num(user.epsilon_after)} of {num(user.cap_epsilon)}
        </dd>
        <dt>Remaining after</dt>
        <dd>{num(user.remaining_after)}</dd>
        {typeof card.reading === "string" ? (
          <>
            <dt>In plain words</dt>
            <dd>{card.reading}</dd>
          </>
        ) : null}
      </dl>
      {Array.isArray(card.layers) ? <LayerTable layers={card.layers as Layer[]} /> : null}
      {Array.isArray(card.metrics) && card.metrics.length > 0 ? (
        <section aria-label="Training metrics">
          <h4>Training metrics</h4>
          <MetricsChart metrics={card.metrics as Metric[]} />
        </section>
      ) : null}
    </section>
  );
}
