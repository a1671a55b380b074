// Workers and infrastructure: whether this Node runs jobs on Workers (Ray), its head's address, each Worker's
// resources and load, and the jobs running (“View statistics”). Scaling is a deployment action: the page writes the
// gridctl command to run where the deployment lives; the Node itself never starts machines or processes.
import { useState } from "preact/hooks";
import { api } from "../api";
import { useLoad } from "../data";
import { Field } from "../form";
import { CopyButton, LoadState, Table } from "../ui";

interface Worker {
  node_id: string;
  alive: boolean;
  address: string;
  cpus: number;
  cpus_in_use: number;
  load: number;
  memory_bytes: number;
  object_store_bytes: number;
}

interface Workers {
  enabled: boolean;
  head_address: string | null;
  workers: Worker[];
  jobs_running: number;
  tasks_submitted: number;
}

const NAME = /^[a-z][a-z0-9-]{0,38}[a-z0-9]$|^[a-z]$/; // a deployment's name (providers/base.py NAME_PATTERN)

function gigabytes(bytes: number): string {
  return `${(bytes / 1024 ** 3).toFixed(1)} GB`;
}

export function Workers() {
  const workers = useLoad(() => api<Workers>("GET", "/workers"), []);
  const w = workers.data;
  return (
    <>
      <h1>Workers</h1>
      <LoadState load={workers} />
      {w ? (
        <section aria-labelledby="pool-title" class="card">
          <h2 id="pool-title">Worker pool</h2>
          <dl class="facts" data-testid="pool">
            <dt>Workers</dt>
            <dd data-testid="workers-enabled">
              {w.enabled
                ? "enabled: jobs run on the Workers below"
                : "not enabled: this Node runs without Ray (GRID_NODE_RAY_ENABLED=false), so no job runs"}
            </dd>
            <dt>Head address</dt>
            <dd>{w.head_address ? <code>{w.head_address}</code> : "none (no Ray head is running)"}</dd>
            <dt>Jobs running</dt>
            <dd data-testid="jobs-running">{w.jobs_running}</dd>
            <dt>Tasks submitted</dt>
            <dd>{w.tasks_submitted} since the Node started</dd>
          </dl>
          <h3>Workers</h3>
          {w.workers.length === 0 ? (
            <p>No Worker is attached.</p>
          ) : (
            <Table
              rows={w.workers.map((x) => ({ ...x, id: x.node_id }))}
              testId="workers"
              columns={[
                { label: "Worker", cell: (x) => <code title={x.node_id}>{x.node_id.slice(0, 12)}</code> },
                { label: "Alive", cell: (x) => (x.alive ? "yes" : "no") },
                { label: "Address", cell: (x) => x.address },
                { label: "CPUs", cell: (x) => x.cpus },
                { label: "In use", cell: (x) => x.cpus_in_use },
                { label: "Load", cell: (x) => `${Math.round(x.load * 100)}%` },
                { label: "Memory", cell: (x) => gigabytes(x.memory_bytes) },
                { label: "Object store", cell: (x) => gigabytes(x.object_store_bytes) },
              ]}
            />
          )}
        </section>
      ) : null}
      <Scale />
    </>
  );
}

function Scale() {
  const [name, setName] = useState("");
  const [count, setCount] = useState("2");
  const number = Number(count);
  const validCount = count.trim() !== "" && Number.isInteger(number) && number >= 0;
  const validName = NAME.test(name.trim());
  const command = `gridctl workers scale ${validCount ? number : "N"} --name ${validName ? name.trim() : "DEPLOYMENT"}`;
  return (
    <section aria-labelledby="scale-title" class="card">
      <h2 id="scale-title">Scale</h2>
      <p>
        Scaling starts or stops machines and processes, which only the deployment can do: run this command where the
        deployment lives (the machine and account that ran <code>gridctl deploy</code>); the Node never starts machines
        or processes itself.
      </p>
      <form class="inline" aria-label="Scale the Workers" onSubmit={(e) => e.preventDefault()}>
        <Field name="deployment" label="Deployment name" value={name} onInput={setName} autoComplete="off" />
        <Field name="worker_count" label="Number of Workers" type="number" value={count} onInput={setCount} />
      </form>
      {name.trim() && !validName ? (
        <p class="error" role="alert">
          A deployment's name is lower-case letters, digits and hyphens, starting with a letter (as `gridctl deploy`
          gave it).
        </p>
      ) : null}
      {!validCount ? <p class="error" role="alert">The number of Workers is a whole number, 0 or more.</p> : null}
      <div class="command">
        <code data-testid="scale-command">{command}</code>
        <CopyButton key={command} text={command} what="command" />
      </div>
    </section>
  );
}
