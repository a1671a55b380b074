// The dashboard: pending requests, recent jobs, and ε spent against budgets. Each section asks the Node on its own
// and explains its own refusal, so a role that may see only part of it sees that part.
import { api } from "../api";
import type { Budget, Job, Page, RequestSummary, User } from "../api";
import { useSigned } from "../context";
import { epsilon, useLoad, when } from "../data";
import { EpsilonChart } from "../EpsilonChart";
import { ErrorNote } from "../explain";
import { href } from "../router";
import { Table } from "../ui";

const SHOWN = 10;
const CHARTED = 12;

export function Dashboard() {
  const { me } = useSigned();
  const held = me?.capabilities ?? [];
  const officer = held.includes("triage_requests");
  return (
    <>
      <h1>Dashboard</h1>
      <div class="grid">
        <PendingRequests officer={officer} />
        <RecentJobs officer={officer} />
      </div>
      {held.includes("manage_budgets") ? (
        <Budgets me={me} />
      ) : (
        <section aria-labelledby="budgets-title">
          <h2 id="budgets-title">Privacy budgets</h2>
          <p class="note">Budgets are shown to roles with the capability “Manage budgets”, which yours does not include.</p>
        </section>
      )}
    </>
  );
}

function PendingRequests({ officer }: { officer: boolean }) {
  const { me } = useSigned();
  const requests = useLoad(
    () => api<Page<RequestSummary>>("GET", "/requests", { query: { status: "pending", limit: SHOWN } }),
    [],
  );
  return (
    <section aria-labelledby="pending-title" class="card">
      <h2 id="pending-title">Pending requests</h2>
      {!officer ? <p class="muted">Your own requests only: seeing everyone's needs “Triage requests”.</p> : null}
      <ErrorNote error={requests.error} me={me} />
      {requests.loading ? <p class="muted">Loading…</p> : null}
      {requests.data ? (
        <>
          <p data-testid="pending-total">
            <strong>{requests.data.total}</strong> pending
          </p>
          {requests.data.items.length > 0 ? (
            <Table
              rows={requests.data.items}
              columns={[
                { label: "#", cell: (r) => r.id },
                { label: "Kind", cell: (r) => r.kind },
                { label: "Requester", cell: (r) => r.requester_email },
                { label: "Filed", cell: (r) => when(r.created_at) },
              ]}
            />
          ) : null}
        </>
      ) : null}
    </section>
  );
}

function RecentJobs({ officer }: { officer: boolean }) {
  const { me } = useSigned();
  const jobs = useLoad(() => api<Page<Job>>("GET", "/jobs", { query: { all: officer, limit: SHOWN } }), [officer]);
  return (
    <section aria-labelledby="jobs-title" class="card">
      <h2 id="jobs-title">Jobs</h2>
      <ErrorNote error={jobs.error} me={me} />
      {jobs.loading ? <p class="muted">Loading…</p> : null}
      {jobs.data ? (
        <>
          <p data-testid="jobs-total">
            <strong>{jobs.data.total}</strong> in all{officer ? "" : " (yours)"}
          </p>
          {jobs.data.items.length > 0 ? (
            <Table
              rows={jobs.data.items}
              columns={[
                { label: "#", cell: (j) => (officer ? <a href={href("/jobs", { id: j.id })}>{j.id}</a> : j.id) },
                { label: "Kind", cell: (j) => j.kind },
                { label: "State", cell: (j) => j.state },
                { label: "ε", cell: (j) => epsilon(j.planned_epsilon) },
                { label: "Submitted", cell: (j) => when(j.created_at) },
              ]}
            />
          ) : null}
        </>
      ) : null}
    </section>
  );
}

/** Whose budgets to chart: the first users (with Manage users), else the requesters of pending requests. */
async function chartedUsers(held: string[]): Promise<number[]> {
  if (held.includes("manage_users")) {
    const users = await api<Page<User>>("GET", "/users", { query: { limit: CHARTED } });
    return users.items.map((u) => u.id);
  }
  const requests = await api<Page<RequestSummary>>("GET", "/requests", { query: { status: "pending", limit: 50 } });
  return [...new Set(requests.items.map((r) => r.requester_id))].slice(0, CHARTED);
}

function Budgets({ me }: { me: User | null }) {
  const budgets = useLoad(async () => {
    const ids = await chartedUsers(me?.capabilities ?? []);
    return Promise.all(ids.map((id) => api<Budget>("GET", `/budget/users/${id}`)));
  }, []);
  return (
    <section aria-labelledby="budgets-title" class="card">
      <h2 id="budgets-title">ε spent against budgets</h2>
      <ErrorNote error={budgets.error} me={me} />
      {budgets.loading ? <p class="muted">Loading…</p> : null}
      {budgets.data && budgets.data.length === 0 ? <p class="muted">No users to show.</p> : null}
      {budgets.data && budgets.data.length > 0 ? <EpsilonChart budgets={budgets.data} /> : null}
    </section>
  );
}
