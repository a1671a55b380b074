// Jobs: every user's jobs for officers (“Triage requests”; anyone else sees only their own), newest first, filtered
// by state and paginated by the Node; a job's detail (its settings, inputs' public metadata, planned ε and the model
// as a layer table) and cancel. Never a job's results, per-epoch metrics or failure detail: those are figures on
// private data, judged on the release request's cost card.
import { api } from "../api";
import type { Job, Page, User } from "../api";
import { useSigned } from "../context";
import { epsilon, useLoad, when } from "../data";
import { SelectField } from "../form";
import { ErrorNote } from "../explain";
import { LayerTable } from "../LayerTable";
import type { Layer } from "../LayerTable";
import { href, navigate } from "../router";
import { ConfirmButton, DetailCard, PagedList, Status, useAction, useListPage } from "../ui";

const PAGE = 20;
const STATES = ["queued", "running", "succeeded", "failed", "cancelled"];

interface JobDetail extends Job {
  inputs: Record<string, { tensor_id?: number; role?: string; shape?: number[]; dtype?: string }>;
  settings: Record<string, unknown>;
  error_code: string | null;
  error: string | null;
  time_limit_seconds: number;
  cancel_requested: boolean;
  started_at: string | null;
  result_id: number | null;
  layers: Layer[] | null;
  attempts?: number;
  worker?: string | null;
}

/** The owners' emails, where the signed-in role may read users (“Manage users”); otherwise their ids. */
async function ownerEmails(ids: number[], mayRead: boolean): Promise<Map<number, string>> {
  if (!mayRead) return new Map();
  const users = await Promise.all([...new Set(ids)].map((id) => api<User>("GET", `/users/${id}`)));
  return new Map(users.map((u) => [u.id, u.email]));
}

export function Jobs() {
  const { me } = useSigned();
  const officer = me?.capabilities.includes("triage_requests") ?? false;
  const page = useListPage<Job>("/jobs", ["state"], PAGE, ({ state }, offset) =>
    api<Page<Job>>("GET", "/jobs", { query: { all: officer, state, limit: PAGE, offset } }));
  const { list, open } = page;
  const state = page.filters.state;
  const owners = useLoad(
    () => ownerEmails(list.data?.items.map((j) => j.owner_id) ?? [], me?.capabilities.includes("manage_users") ?? false),
    [list.data],
  );
  const who = (id: number) => owners.data?.get(id) ?? (id === me?.id ? me.email : `user ${id}`);

  return (
    <>
      <h1>Jobs</h1>
      <Status text={page.status} />
      {officer ? null : <p class="note">Your own jobs only: seeing everyone's needs “Triage requests”.</p>}
      <form class="inline" aria-label="Filter jobs" onSubmit={(e) => e.preventDefault()}>
        <SelectField id="filter-job-state" label="State" value={state} options={[["", "any state"], ...STATES]}
                     onChange={(value) => navigate("/jobs", { state: value || undefined })} />
      </form>
      <PagedList
        title={state ? `Jobs ${state}` : "All jobs"}
        of={page}
        testId="jobs"
        empty="No job."
        columns={[
          page.opener("#", (j) => `job ${j.id}`, (j) => j.id),
          { label: "Kind", cell: (j) => j.kind },
          { label: "State", cell: (j) => j.state },
          { label: "User", cell: (j) => who(j.owner_id) },
          { label: "Dataset", cell: (j) => (j.dataset_id === null ? "—" : <DatasetLink id={j.dataset_id} />) },
          { label: "ε", cell: (j) => epsilon(j.planned_epsilon) },
          { label: "Submitted", cell: (j) => when(j.created_at) },
          { label: "Finished", cell: (j) => (j.finished_at ? when(j.finished_at) : "—") },
        ]}
      />
      {open ? (
        <JobPanel
          key={open}
          id={open}
          who={who}
          onChanged={page.done}
        />
      ) : null}
    </>
  );
}

function DatasetLink({ id }: { id: number }) {
  return <a href={href("/data", { kind: "dataset", id })}>dataset {id}</a>;
}

function JobPanel(props: { id: number; who: (id: number) => string; onChanged: (message: string) => void }) {
  const { me } = useSigned();
  const detail = useLoad(() => api<JobDetail>("GET", `/jobs/${props.id}`), [props.id]);
  const action = useAction((message) => {
    props.onChanged(message);
    detail.reload();
  });
  const j = detail.data;
  const active = j !== null && (j.state === "queued" || j.state === "running");
  const mayCancel = j !== null && (j.owner_id === me?.id || (me?.capabilities.includes("triage_requests") ?? false));
  return (
    <DetailCard id="job-title" title={`Job ${props.id}`} load={detail}>
      {(j) => (
        <>
          <dl class="facts" data-testid="job-facts">
            <dt>Kind</dt>
            <dd>{j.kind}</dd>
            <dt>State</dt>
            <dd data-testid="job-state">
              {j.state}
              {j.cancel_requested && active ? " (cancel requested)" : ""}
              {j.state === "running" ? ` (${Math.round(j.progress * 100)}%)` : ""}
            </dd>
            <dt>User</dt>
            <dd>{props.who(j.owner_id)}</dd>
            <dt>Dataset</dt>
            <dd>{j.dataset_id === null ? "—" : <DatasetLink id={j.dataset_id} />}</dd>
            <dt>Inputs</dt>
            <dd>
              {Object.entries(j.inputs).map(([slot, t]) => `${slot}: tensor ${t.tensor_id ?? "?"} [${(t.shape ?? []).join(", ")}] ${t.dtype ?? ""}`).join("; ") || "—"}
            </dd>
            <dt>Settings</dt>
            <dd class="details">{JSON.stringify(j.settings)}</dd>
            <dt>Planned ε</dt>
            <dd>{epsilon(j.planned_epsilon)}{j.planned_epsilon === null ? "" : " (charged when it was admitted)"}</dd>
            <dt>Time limit</dt>
            <dd>{j.time_limit_seconds} s</dd>
            {j.attempts !== undefined ? (
              <>
                <dt>Attempts</dt>
                <dd>{j.attempts}{j.worker ? ` (last on ${j.worker})` : ""}</dd>
              </>
            ) : null}
            <dt>Submitted</dt>
            <dd>{when(j.created_at)}</dd>
            <dt>Started</dt>
            <dd>{j.started_at ? when(j.started_at) : "—"}</dd>
            <dt>Finished</dt>
            <dd>{j.finished_at ? when(j.finished_at) : "—"}</dd>
            {j.error_code || j.error ? (
              <>
                <dt>Why it stopped</dt>
                <dd>{[j.error_code, j.error].filter(Boolean).join(": ")}</dd>
              </>
            ) : null}
            <dt>Result</dt>
            <dd>
              {j.result_id === null ? "none yet" : (
                <>
                  result {j.result_id}: not shown here. Its release is judged on its{" "}
                  <a href={href("/requests", { kind: "release", status: "all" })}>release request</a>.
                </>
              )}
            </dd>
          </dl>
          {j.layers ? <LayerTable layers={j.layers} /> : null}
          {active && mayCancel && !j.cancel_requested ? (
            <p>
              <ConfirmButton
                label="Cancel"
                name={`Cancel job ${j.id}`}
                question={`Cancel job ${j.id}?`}
                onConfirm={() => void action.run(() => api("POST", `/jobs/${j.id}/cancel`), `Cancelling job ${j.id}.`)}
              />
            </p>
          ) : null}
          <ErrorNote error={action.error} me={me} />
        </>
      )}
    </DetailCard>
  );
}
