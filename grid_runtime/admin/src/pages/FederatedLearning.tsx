// Federated learning (docs/fl.md; “Upload data”): the processes this Node hosts with their state, cycles, clients per
// cycle and central DP's ε; one opened: its model as a layer table, the clients' and the server's configuration, its
// cycles' figures, its checkpoints (downloaded by its host) and its client tokens (issued, shown once, revoked by its
// host); a process hosted from a spec and optional initial weights; stopped after a confirmation.
import { Fragment } from "preact";
import { useState } from "preact/hooks";
import { api, download } from "../api";
import { useSigned } from "../context";
import { epsilon, useLoad, when } from "../data";
import { ErrorNote } from "../explain";
import { Field, TextAreaField } from "../form";
import { LayerTable } from "../LayerTable";
import type { Layer } from "../LayerTable";
import { href, useLocation } from "../router";
import { ConfirmButton, CopyButton, DetailCard, LoadState, Status, Table, queryNumber, useAction } from "../ui";

interface Process {
  id: number;
  name: string;
  owner_id: number;
  state: "running" | "completed" | "stopped";
  spec: Record<string, unknown>;
  client_config: Record<string, unknown>;
  server_config: {
    clients_per_cycle: number;
    min_reports: number;
    cycle_seconds: number;
    cycles: number;
    dp: { noise_multiplier: number; clip_norm: number } | null;
  };
  parameter_count: number;
  cycles_done: number;
  epsilon: number | null;
  delta: number | null;
  created_at: string;
  ended_at: string | null;
}

interface Cycle {
  number: number;
  state: string;
  opened_at: string;
  deadline: string;
  closed_at: string | null;
  joined: number;
  reports: number;
  examples: number;
  mean_loss: number | null;
  seconds: number | null;
  aggregated_on: "node" | "worker" | null;
}

interface ProcessDetail extends Process {
  cycles: Cycle[];
  layers: Layer[];
}

interface Checkpoint {
  number: number;
  sha256: string;
  size: number;
  created_at: string;
}

interface ClientToken {
  id: number;
  name: string;
  created_at: string;
  revoked_at: string | null;
}

const PATH = "/fl";

function dp(p: Process): string {
  const d = p.server_config.dp;
  return d ? `noise ${d.noise_multiplier}, clip ${d.clip_norm}` : "none";
}

function privacy(p: Process): string {
  return p.epsilon === null ? "not DP" : `ε ${epsilon(p.epsilon)} at δ ${p.delta ?? "?"}`;
}

export function FederatedLearning() {
  const { me } = useSigned();
  const location = useLocation();
  const open = queryNumber(location.query, "id");
  const list = useLoad(() => api<Process[]>("GET", "/fl/processes"), []);
  const [status, setStatus] = useState("");
  const done = (message: string) => {
    setStatus(message);
    list.reload();
  };
  const action = useAction(done);
  const host = (p: Process) => (p.owner_id === me?.id ? "you" : `user ${p.owner_id}`);
  return (
    <>
      <h1>Federated learning</h1>
      <Status text={status} />
      <p class="note">
        Clients train the model on data that never leaves them; this Node averages their updates cycle after cycle
        (docs/fl.md). Only a process's host stops it, downloads its checkpoints and issues its client tokens.
      </p>
      <section aria-labelledby="processes-title">
        <h2 id="processes-title">Processes</h2>
        <LoadState load={list} />
        {list.data && list.data.length === 0 ? <p>No process yet.</p> : null}
        {list.data && list.data.length > 0 ? (
          <Table
            rows={list.data}
            testId="processes"
            current={open}
            columns={[
              {
                label: "Name",
                cell: (p) => <a href={href(PATH, { id: p.id })} aria-label={`Open process ${p.name}`}>{p.name}</a>,
              },
              { label: "State", cell: (p) => p.state },
              { label: "Cycles", cell: (p) => `${p.cycles_done} / ${p.server_config.cycles}` },
              { label: "Clients per cycle", cell: (p) => p.server_config.clients_per_cycle },
              { label: "Min reports", cell: (p) => p.server_config.min_reports },
              { label: "Central DP", cell: dp },
              { label: "ε", cell: (p) => epsilon(p.epsilon) },
              { label: "Host", cell: host },
              { label: "Created", cell: (p) => when(p.created_at) },
              {
                label: "Actions",
                hideLabel: true,
                cell: (p) =>
                  p.state === "running" && p.owner_id === me?.id ? (
                    <ConfirmButton
                      label="Stop"
                      name={`Stop process ${p.name}`}
                      question={`Stop ${p.name}? Its open cycle is cancelled and clients are refused.`}
                      onConfirm={() => void action.run(() => api("POST", `/fl/processes/${p.id}/stop`), `Process ${p.name} stopped.`)}
                    />
                  ) : null,
              },
            ]}
          />
        ) : null}
        <ErrorNote error={action.error} me={me} />
      </section>
      {open ? <ProcessPanel key={open} id={open} listed={list.data} host={host} onChanged={setStatus} /> : null}
      <HostForm onHosted={done} />
    </>
  );
}

/** ``listed``: the list's answer, so a stop asks the Node again for the process too. */
function ProcessPanel(props: { id: number; listed: Process[] | null; host: (p: Process) => string; onChanged: (message: string) => void }) {
  const { me } = useSigned();
  const detail = useLoad(() => api<ProcessDetail>("GET", `/fl/processes/${props.id}`), [props.id, props.listed]);
  return (
    <DetailCard id="process-title" title={detail.data ? `Process ${detail.data.name}` : `Process ${props.id}`} load={detail}>
      {(p) => (
        <>
          <dl class="facts" data-testid="process-facts">
            <dt>State</dt>
            <dd data-testid="process-state">{p.state}</dd>
            <dt>Host</dt>
            <dd>{props.host(p)}</dd>
            <dt>Cycles done</dt>
            <dd>{p.cycles_done} of {p.server_config.cycles}</dd>
            <dt>Privacy</dt>
            <dd>{privacy(p)}</dd>
            <dt>Created</dt>
            <dd>{when(p.created_at)}</dd>
            <dt>Ended</dt>
            <dd>{p.ended_at ? when(p.ended_at) : "—"}</dd>
          </dl>
          <LayerTable layers={p.layers} />
          <div class="panels">
            <section aria-labelledby="client-config-title">
              <h3 id="client-config-title">Client configuration</h3>
              <Settings values={p.client_config} testId="client-config" />
            </section>
            <section aria-labelledby="server-config-title">
              <h3 id="server-config-title">Server configuration</h3>
              <Settings values={{ ...p.server_config, dp: dp(p) }} testId="server-config" />
            </section>
          </div>
          <h3>Cycles</h3>
          {p.cycles.length === 0 ? <p>No cycle yet.</p> : (
            <Table
              rows={p.cycles.map((c) => ({ ...c, id: c.number }))}
              testId="cycles"
              compact
              columns={[
                { label: "#", cell: (c) => c.number },
                { label: "State", cell: (c) => c.state },
                { label: "Joined", cell: (c) => c.joined },
                { label: "Reports", cell: (c) => c.reports },
                { label: "Examples", cell: (c) => c.examples },
                { label: "Mean loss", cell: (c) => (c.mean_loss === null ? "—" : c.mean_loss.toFixed(4)) },
                { label: "Opened", cell: (c) => when(c.opened_at) },
                { label: "Closed", cell: (c) => (c.closed_at ? when(c.closed_at) : `due ${when(c.deadline)}`) },
                { label: "Aggregated on", cell: (c) => c.aggregated_on ?? "—" },
              ]}
            />
          )}
          <Checkpoints process={p} hosted={p.owner_id === me?.id} />
          {p.owner_id === me?.id ? (
            <ClientTokens process={p} onChanged={props.onChanged} />
          ) : (
            <p class="muted">Client tokens and checkpoint downloads are for the process's host.</p>
          )}
        </>
      )}
    </DetailCard>
  );
}

function Settings({ values, testId }: { values: Record<string, unknown>; testId: string }) {
  return (
    <dl class="facts" data-testid={testId}>
      {Object.entries(values).map(([key, value]) => (
        <Fragment key={key}>
          <dt>{key.replace(/_/g, " ")}</dt>
          <dd>{typeof value === "object" && value !== null ? JSON.stringify(value) : String(value)}</dd>
        </Fragment>
      ))}
    </dl>
  );
}

function Checkpoints({ process, hosted }: { process: Process; hosted: boolean }) {
  const { me } = useSigned();
  const list = useLoad(() => api<Checkpoint[]>("GET", `/fl/processes/${process.id}/checkpoints`), [process.id]);
  const action = useAction();
  return (
    <section aria-labelledby="checkpoints-title">
      <h3 id="checkpoints-title">Checkpoints</h3>
      <LoadState load={list} />
      {list.data ? (
        <Table
          rows={list.data.map((c) => ({ ...c, id: c.number }))}
          testId="checkpoints"
          compact
          columns={[
            { label: "#", cell: (c) => c.number },
            { label: "Created", cell: (c) => when(c.created_at) },
            { label: "Size", cell: (c) => `${c.size} bytes` },
            { label: "SHA-256", cell: (c) => <span class="details" data-testid="sha256">{c.sha256}</span> },
            {
              label: "Download",
              hideLabel: true,
              cell: (c) =>
                hosted ? (
                  <button
                    type="button"
                    aria-label={`Download checkpoint ${c.number}`}
                    onClick={() => void action.run(() =>
                      download(`/fl/processes/${process.id}/checkpoints/${c.number}`, `${process.name}-checkpoint-${c.number}.safetensors`))}
                  >
                    Download
                  </button>
                ) : null,
            },
          ]}
        />
      ) : null}
      <ErrorNote error={action.error} me={me} />
    </section>
  );
}

function ClientTokens({ process, onChanged }: { process: Process; onChanged: (message: string) => void }) {
  const { me } = useSigned();
  const list = useLoad(() => api<ClientToken[]>("GET", `/fl/processes/${process.id}/tokens`), [process.id]);
  const [name, setName] = useState("");
  const [secret, setSecret] = useState("");
  const action = useAction((message) => {
    onChanged(message);
    list.reload();
  });
  return (
    <section aria-labelledby="client-tokens-title">
      <h3 id="client-tokens-title">Client tokens</h3>
      <p>A client token lets one client take part in this process, and nothing else (<code>gridctl fl client</code>).</p>
      <form
        class="inline"
        aria-label="Issue a client token"
        onSubmit={async (e) => {
          e.preventDefault();
          const made = await action.attempt(() =>
            api<ClientToken & { token: string }>("POST", `/fl/processes/${process.id}/tokens`, { body: { name: name.trim() } }));
          if (made) {
            setSecret(made.token);
            setName("");
            onChanged(`Client token ${made.name} issued.`);
            list.reload();
          }
        }}
      >
        <Field name="client_name" label="Client's name" hint="its site, for example" value={name} onInput={setName} required autoComplete="off" />
        <button type="submit">Issue a token</button>
      </form>
      {secret ? (
        <div class="note">
          <p>Give it to that client now: it is not shown again.</p>
          <label for="client-token-secret">New client token</label>
          <input id="client-token-secret" class="secret" readOnly value={secret} onFocus={(e) => e.currentTarget.select()} />
          <CopyButton key={secret} text={secret} what="token" />
        </div>
      ) : null}
      <LoadState load={list} />
      {list.data && list.data.length > 0 ? (
        <Table
          rows={list.data}
          testId="client-tokens"
          compact
          columns={[
            { label: "Name", cell: (t) => t.name },
            { label: "Issued", cell: (t) => when(t.created_at) },
            { label: "Revoked", cell: (t) => (t.revoked_at ? when(t.revoked_at) : "—") },
            {
              label: "Actions",
              hideLabel: true,
              cell: (t) =>
                t.revoked_at ? null : (
                  <ConfirmButton
                    label="Revoke"
                    name={`Revoke client token ${t.name}`}
                    question={`Revoke ${t.name}'s token?`}
                    onConfirm={() => void action.run(() => api("DELETE", `/fl/processes/${process.id}/tokens/${t.id}`), `Client token ${t.name} revoked.`)}
                  />
                ),
            },
          ]}
        />
      ) : null}
      <ErrorNote error={action.error} me={me} />
    </section>
  );
}

const CLIENT_DEFAULTS = { loss: "cross_entropy", optimizer: "sgd", lr: 0.1, batch_size: 32, epochs: 1 };
const SERVER_DEFAULTS = { clients_per_cycle: 10, min_reports: 1, cycle_seconds: 600, cycles: 10, dp: null };

function parsed(label: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new Error(`${label} is not JSON.`);
  }
}

async function base64Of(file: File): Promise<string> {
  const bytes = new Uint8Array(await file.arrayBuffer());
  let binary = "";
  for (let at = 0; at < bytes.length; at += 0x8000) binary += String.fromCharCode(...bytes.subarray(at, at + 0x8000));
  return window.btoa(binary);
}

function HostForm({ onHosted }: { onHosted: (message: string) => void }) {
  const { me } = useSigned();
  const [name, setName] = useState("");
  const [spec, setSpec] = useState("");
  const [client, setClient] = useState(JSON.stringify(CLIENT_DEFAULTS));
  const [server, setServer] = useState(JSON.stringify(SERVER_DEFAULTS));
  const [weights, setWeights] = useState<File | null>(null);
  const action = useAction(onHosted);
  return (
    <section aria-labelledby="host-title" class="card">
      <h2 id="host-title">Host a process</h2>
      <p>
        The model spec (<code>gridctl.model-spec/1</code>, allowlisted layers only) and, optionally, initial weights
        as safetensors (fresh parameters without); the Node checks every field (docs/fl.md).
      </p>
      <form
        aria-label="Host a process"
        onSubmit={async (e) => {
          e.preventDefault();
          await action.run(async () => {
            const body = {
              name: name.trim(),
              spec: parsed("The model spec", spec),
              client: parsed("The client configuration", client),
              server: parsed("The server configuration", server),
              initial_weights: weights ? await base64Of(weights) : null,
            };
            await api("POST", "/fl/processes", { body });
          }, `Process ${name.trim()} hosted.`);
        }}
      >
        <Field name="process_name" label="Name" value={name} onInput={setName} required autoComplete="off" />
        <TextAreaField name="spec" label="Model spec (JSON)" value={spec} onInput={setSpec} rows={5}
                       placeholder='{"format": "gridctl.model-spec/1", "input_shape": [4], "layers": [...]}' />
        <div class="field">
          <label for="initial-weights">Initial weights (safetensors, optional)</label>
          <input id="initial-weights" type="file" accept=".safetensors"
                 onChange={(e) => setWeights(e.currentTarget.files?.[0] ?? null)} />
        </div>
        <TextAreaField name="client_config" label="Client configuration (JSON)" value={client} onInput={setClient} rows={2}
                       hint="loss, optimizer, lr, batch_size, epochs" />
        <TextAreaField name="server_config" label="Server configuration (JSON)" value={server} onInput={setServer} rows={2}
                       hint="clients_per_cycle, min_reports, cycle_seconds, cycles, and dp: {noise_multiplier, clip_norm} or null" />
        <button type="submit">Host</button>
      </form>
      <ErrorNote error={action.error} me={me} />
    </section>
  );
}
