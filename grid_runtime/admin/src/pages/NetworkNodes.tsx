// The Nodes associated with this Network (every user): each Node's URL, its entries in the catalogue, when it was
// last heard from and whether it is stale; and, for “View statistics”, a Node's statistics, which the Network asks
// the Node for with the credential the Node gave it (counts only, never data or names).
import { api } from "../api";
import { useSigned } from "../context";
import { epsilon, useLoad, when } from "../data";
import { href, useLocation } from "../router";
import { DetailCard, LoadState, Table, queryNumber } from "../ui";

interface NetworkNode {
  association_id: number;
  name: string;
  url: string;
  last_seen: string | null;
  stale: boolean;
  entries: number;
}

interface Statistics {
  node: string;
  users: number;
  tensors: number;
  datasets: number;
  requests: Record<string, number>;
  jobs: Record<string, number>;
  privacy_events: number;
  non_private_events: number;
  epsilon_spent_simple_sum: number;
  at: string;
}

function byState(counts: Record<string, number>): string {
  const parts = Object.entries(counts).map(([state, n]) => `${n} ${state}`);
  return parts.length === 0 ? "none" : parts.join(", ");
}

export function NetworkNodes() {
  const { me } = useSigned();
  const location = useLocation();
  const open = queryNumber(location.query, "id");
  const nodes = useLoad(() => api<NetworkNode[]>("GET", "/nodes"), []);
  const statistics = useLoad(
    () => (open ? api<{ statistics: Statistics }>("GET", `/nodes/${open}/statistics`) : Promise.resolve(null)),
    [open],
  );
  const mayRead = me?.capabilities.includes("view_statistics") ?? false;
  const rows = (nodes.data ?? []).map((n) => ({ ...n, id: n.association_id }));
  const opened = rows.find((n) => n.id === open);
  return (
    <>
      <h1>Nodes</h1>
      <section aria-labelledby="nodes-title" class="card">
        <h2 id="nodes-title">Associated Nodes</h2>
        <LoadState load={nodes} />
        {nodes.data && rows.length === 0 ? <p>No Node is associated yet.</p> : null}
        {rows.length > 0 ? (
          <Table
            rows={rows}
            testId="nodes"
            current={open || undefined}
            columns={[
              { label: "Node", cell: (n) => <strong>{n.name}</strong> },
              { label: "URL", cell: (n) => <code>{n.url}</code> },
              { label: "Entries", cell: (n) => n.entries },
              { label: "Last heard from", cell: (n) => (n.last_seen ? when(n.last_seen) : "never") },
              {
                label: "Freshness",
                cell: (n) => (
                  <span data-testid="freshness" class={n.stale ? "stale" : undefined}>
                    {n.stale ? "stale: not heard from lately, entries may be out of date" : "fresh"}
                  </span>
                ),
              },
              {
                label: "Statistics",
                hideLabel: true,
                cell: (n) =>
                  mayRead ? (
                    <a href={href("/nodes", { id: n.id })} aria-label={`Statistics of ${n.name}`}>
                      Statistics
                    </a>
                  ) : null,
              },
            ]}
          />
        ) : null}
        {!mayRead ? (
          <p class="muted">A Node's statistics need “View statistics”, which your role does not include.</p>
        ) : null}
      </section>
      {open ? (
        <DetailCard id="statistics-title" title={`Statistics of ${opened?.name ?? `Node ${open}`}`} load={statistics}>
          {(answer) => answer ? (
            <dl class="facts" data-testid="statistics">
              <dt>Users</dt>
              <dd data-testid="stat-users">{answer.statistics.users}</dd>
              <dt>Tensors</dt>
              <dd data-testid="stat-tensors">{answer.statistics.tensors}</dd>
              <dt>Datasets</dt>
              <dd data-testid="stat-datasets">{answer.statistics.datasets}</dd>
              <dt>Requests</dt>
              <dd>{byState(answer.statistics.requests)}</dd>
              <dt>Jobs</dt>
              <dd>{byState(answer.statistics.jobs)}</dd>
              <dt>Privacy events</dt>
              <dd>
                {answer.statistics.privacy_events} differentially private, {answer.statistics.non_private_events} not
              </dd>
              <dt>ε, simple sum</dt>
              <dd>
                {epsilon(answer.statistics.epsilon_spent_simple_sum)} (the sum of every event's own ε: an upper figure
                for comparison; each user's budget is a Rényi filter)
              </dd>
              <dt>As of</dt>
              <dd>{when(answer.statistics.at)}</dd>
            </dl>
          ) : null}
        </DetailCard>
      ) : null}
    </>
  );
}
