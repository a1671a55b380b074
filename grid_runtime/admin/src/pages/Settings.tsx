// Settings: what the API lets change. The privacy settings (release policy, jobs without DP, the largest ε of an
// auto-approve policy, the decision webhook and its signing secret) need Edit settings; δ, the Rényi order and the
// request lifetime are the operator's (shown, not editable); a dataset's privacy cap needs Manage budgets; the allowed
// origins are the operator's setting GRID_NODE_CORS_ORIGINS, not an API call.
import { useEffect, useState } from "preact/hooks";
import { api } from "../api";
import type { Page } from "../api";
import { useSigned } from "../context";
import { epsilon, useLoad } from "../data";
import { ErrorNote } from "../explain";
import { Field, SelectField } from "../form";

interface PrivacySettings {
  delta: number;
  rdp_order: number;
  release_policy: string;
  non_private_jobs: boolean;
  max_policy_epsilon: number;
  webhook_url: string | null;
  request_ttl_seconds: number;
}

interface DatasetBudget {
  dataset_id: number;
  name: string;
  cap_epsilon: number | null;
  spent_epsilon: number;
  remaining_epsilon: number | null;
  events: number;
}

export function Settings() {
  const { me } = useSigned();
  const [status, setStatus] = useState("");
  const caps = me?.capabilities ?? [];
  return (
    <>
      <h1>Settings</h1>
      <p role="status" class="status" data-testid="status">
        {status}
      </p>
      <PrivacySection mayEdit={caps.includes("edit_settings")} onSaved={setStatus} />
      {caps.includes("manage_budgets") ? <DatasetCaps onSaved={setStatus} /> : null}
      <section aria-labelledby="origins-title" class="card">
        <h2 id="origins-title">Allowed origins</h2>
        <p>
          This Admin runs at <code>{window.location.origin}</code>. The Node answers the Admin from another origin only
          if its operator lists that origin in <code>GRID_NODE_CORS_ORIGINS</code>; the API does not change it.
        </p>
      </section>
    </>
  );
}

function PrivacySection({ mayEdit, onSaved }: { mayEdit: boolean; onSaved: (message: string) => void }) {
  const { me } = useSigned();
  const current = useLoad(() => api<PrivacySettings>("GET", "/privacy/settings"), []);
  const [policy, setPolicy] = useState("dp_only");
  const [nonPrivate, setNonPrivate] = useState(false);
  const [maxPolicy, setMaxPolicy] = useState("");
  const [webhook, setWebhook] = useState("");
  const [error, setError] = useState<unknown>(null);
  const [secret, setSecret] = useState("");
  const s = current.data;
  useEffect(() => {
    if (!s) return;
    setPolicy(s.release_policy);
    setNonPrivate(s.non_private_jobs);
    setMaxPolicy(String(s.max_policy_epsilon));
    setWebhook(s.webhook_url ?? "");
  }, [s]);

  async function save() {
    setError(null);
    const url = webhook.trim();
    const body: Record<string, unknown> = {
      release_policy: policy,
      non_private_jobs: nonPrivate,
      max_policy_epsilon: Number(maxPolicy),
      ...(url ? { webhook_url: url } : { clear_webhook: true }),
    };
    try {
      await api("PATCH", "/privacy/settings", { body });
      onSaved("Privacy settings saved.");
      current.reload();
    } catch (caught) {
      setError(caught);
    }
  }

  return (
    <section aria-labelledby="privacy-title" class="card">
      <h2 id="privacy-title">Privacy</h2>
      <ErrorNote error={current.error} me={me} />
      {current.loading && !s ? <p class="muted">Loading…</p> : null}
      {s ? (
        <>
          <dl class="facts">
            <dt>δ</dt>
            <dd data-testid="delta">{s.delta}</dd>
            <dt>Rényi order</dt>
            <dd>{s.rdp_order}</dd>
            <dt>A request expires after</dt>
            <dd>{Math.round(s.request_ttl_seconds / 3600)} h</dd>
          </dl>
          <p class="muted">δ, the Rényi order and the request lifetime are set by the Node's operator.</p>
          {mayEdit ? null : (
            <p class="muted" data-testid="read-only">
              Changing these needs the capability “Edit settings”, which your role does not include.
            </p>
          )}
          <form
            aria-label="Privacy settings"
            onSubmit={(e) => {
              e.preventDefault();
              void save();
            }}
          >
            <fieldset disabled={!mayEdit}>
              <SelectField id="release-policy" label="Release policy" value={policy} onChange={setPolicy}
                           options={[["dp_only", "dp_only: release only differentially private results"],
                                     ["allow_non_private", "allow_non_private: flag others for an officer"]]} />
              <div class="field">
                <label>
                  <input type="checkbox" checked={nonPrivate} onChange={(e) => setNonPrivate(e.currentTarget.checked)} />{" "}
                  Jobs without differential privacy may run (for users allowed them)
                </label>
              </div>
              <Field name="max_policy_epsilon" label="Largest ε an auto-approve policy may name"
                value={maxPolicy} onInput={setMaxPolicy} required />
              <Field name="webhook_url" label="Decision webhook URL (empty: none)" type="url" value={webhook}
                onInput={setWebhook} autoComplete="off"
                hint="https:// to a public address; it receives each request decision, signed with the secret below." />
              <button type="submit">Save privacy settings</button>
            </fieldset>
          </form>
          <ErrorNote error={error} me={me} />
          {mayEdit ? (
            <form
              class="inline"
              aria-label="Webhook signing secret"
              onSubmit={async (e) => {
                e.preventDefault();
                setError(null);
                try {
                  setSecret((await api<{ secret: string }>("POST", "/privacy/webhook-secret")).secret);
                  onSaved("A new webhook signing secret is set; it is shown once.");
                } catch (caught) {
                  setError(caught);
                }
              }}
            >
              <button type="submit">New signing secret</button>
              {secret ? (
                <div class="field">
                  <label for="webhook-secret">New signing secret</label>
                  <input id="webhook-secret" readOnly value={secret} />
                </div>
              ) : null}
            </form>
          ) : null}
        </>
      ) : null}
    </section>
  );
}

function DatasetCaps({ onSaved }: { onSaved: (message: string) => void }) {
  const { me } = useSigned();
  const datasets = useLoad(() => api<Page<{ id: number; name: string }>>("GET", "/datasets", { query: { limit: 100 } }), []);
  const [chosen, setChosen] = useState(0);
  const [round, setRound] = useState(0);
  const budget = useLoad(
    () => (chosen ? api<DatasetBudget>("GET", `/budget/datasets/${chosen}`) : Promise.resolve(null)),
    [chosen, round],
  );
  const [cap, setCap] = useState("");
  const [error, setError] = useState<unknown>(null);
  const b = budget.data;
  useEffect(() => setCap(b && b.cap_epsilon !== null ? String(b.cap_epsilon) : ""), [b]);
  const items = datasets.data?.items ?? [];
  return (
    <section aria-labelledby="caps-title" class="card">
      <h2 id="caps-title">Dataset caps</h2>
      <p class="muted">A dataset's cap bounds what all users together may learn from it (ε at the Node's δ).</p>
      <ErrorNote error={datasets.error} me={me} />
      {datasets.data && items.length === 0 ? <p>No dataset yet.</p> : null}
      {items.length > 0 ? (
        <form
          aria-label="Dataset cap"
          onSubmit={async (e) => {
            e.preventDefault();
            setError(null);
            try {
              const value = cap.trim() === "" ? null : Number(cap);
              await api("PUT", `/budget/datasets/${chosen}`, { body: { epsilon: value } });
              onSaved(value === null ? `${b?.name ?? chosen} has no cap now.` : `${b?.name ?? chosen} is capped at ε ${value}.`);
              setRound((r) => r + 1);
            } catch (caught) {
              setError(caught);
            }
          }}
        >
          <SelectField id="cap-dataset" label="Dataset" value={String(chosen)} onChange={(value) => setChosen(Number(value))}
                       options={[["0", "choose a dataset"], ...items.map((d): [string, string] => [String(d.id), d.name])]} />
          {b ? (
            <>
              <p data-testid="cap-spent">
                Spent on {b.name}: ε {epsilon(b.spent_epsilon)} in {b.events} events; cap{" "}
                {b.cap_epsilon === null ? "none" : `ε ${epsilon(b.cap_epsilon)}`}.
              </p>
              <Field name="cap" label="Cap (ε, empty: none)" value={cap} onInput={setCap} />
              <button type="submit">Save cap</button>
            </>
          ) : null}
          <ErrorNote error={budget.error} me={me} />
          <ErrorNote error={error} me={me} />
        </form>
      ) : null}
    </section>
  );
}
