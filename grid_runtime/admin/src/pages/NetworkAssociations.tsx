// A Network's associations (“Manage Nodes”): pending join requests approved or denied with a note, approved
// associations ended after a confirmation (the Node's catalogue entries are removed), and the decided ones.
import { useState } from "preact/hooks";
import { api } from "../api";
import { useSigned } from "../context";
import { useLoad, when } from "../data";
import { ErrorNote } from "../explain";
import { Field } from "../form";
import { ConfirmButton, Fingerprint, LoadState, Status, Table, useAction } from "../ui";

export interface NetworkAssociation {
  id: number;
  node_name: string;
  node_url: string;
  state: string;
  requested_at: string;
  decided_at: string | null;
  note: string;
  last_push_at: string | null;
  invited: boolean;
  node_ca_sha256: string | null;
}

export function NetworkAssociations() {
  const { me } = useSigned();
  const list = useLoad(() => api<NetworkAssociation[]>("GET", "/associations"), []);
  const [status, setStatus] = useState("");
  const action = useAction((message) => {
    setStatus(message);
    list.reload();
  });
  const all = list.data ?? [];
  const pending = all.filter((a) => a.state === "pending");
  const approved = all.filter((a) => a.state === "approved");
  const decided = all.filter((a) => a.state !== "pending" && a.state !== "approved");
  const node = { label: "Node", cell: (a: NetworkAssociation) => <><strong>{a.node_name}</strong><br /><code>{a.node_url}</code></> };
  return (
    <>
      <h1>Associations</h1>
      <p class="muted">
        Nodes ask to join from their own Admin or with <code>gridctl network join</code>. An approved Node pushes the
        metadata of its tensors and datasets here; ending an association removes them.
      </p>
      <Status text={status} />
      <LoadState load={list} />
      <ErrorNote error={action.error} me={me} />
      <section aria-labelledby="pending-title" class="card">
        <h2 id="pending-title">Join requests waiting</h2>
        {list.data && pending.length === 0 ? <p>No Node is waiting.</p> : null}
        {pending.length > 0 ? (
          <Table
            rows={pending}
            testId="pending"
            columns={[
              node,
              { label: "Asked", cell: (a) => when(a.requested_at) },
              { label: "Node's CA", cell: (a) => <Fingerprint sha256={a.node_ca_sha256} none="public CAs" /> },
              {
                label: "Decision",
                cell: (a) => <Decide association={a} onDecide={(verb, note) => void action.run(
                  () => api("POST", `/associations/${a.id}/${verb}`, { body: { note } }),
                  `${a.node_name} ${verb === "approve" ? "approved" : "denied"}.`,
                )} />,
              },
            ]}
          />
        ) : null}
      </section>
      <section aria-labelledby="approved-title" class="card">
        <h2 id="approved-title">Approved</h2>
        {list.data && approved.length === 0 ? <p>No Node is associated.</p> : null}
        {approved.length > 0 ? (
          <Table
            rows={approved}
            testId="approved"
            columns={[
              node,
              { label: "Approved", cell: (a) => `${a.decided_at ? when(a.decided_at) : ""}${a.invited ? " (invited)" : ""}` },
              { label: "Last push", cell: (a) => (a.last_push_at ? when(a.last_push_at) : "never") },
              { label: "Note", cell: (a) => a.note },
              { label: "Node's CA", cell: (a) => <Fingerprint sha256={a.node_ca_sha256} none="public CAs" /> },
              {
                label: "Actions",
                hideLabel: true,
                cell: (a) => (
                  <ConfirmButton
                    label="End"
                    name={`End the association of ${a.node_name}`}
                    question={`End ${a.node_name}'s association? Its entries leave the catalogue and its credentials stop working.`}
                    onConfirm={() => void action.run(() => api("DELETE", `/associations/${a.id}`), `${a.node_name}'s association ended.`)}
                  />
                ),
              },
            ]}
          />
        ) : null}
      </section>
      {decided.length > 0 ? (
        <section aria-labelledby="decided-title" class="card">
          <h2 id="decided-title">Denied and ended</h2>
          <Table
            rows={decided}
            testId="decided"
            compact
            columns={[
              node,
              { label: "State", cell: (a) => a.state },
              { label: "Decided", cell: (a) => (a.decided_at ? when(a.decided_at) : "") },
              { label: "Note", cell: (a) => a.note },
            ]}
          />
        </section>
      ) : null}
    </>
  );
}

function Decide({ association, onDecide }: { association: NetworkAssociation; onDecide: (verb: "approve" | "deny", note: string) => void }) {
  const [note, setNote] = useState("");
  return (
    <form class="inline" aria-label={`Decide ${association.node_name}'s request`} onSubmit={(e) => e.preventDefault()}>
      <Field name={`note-${association.id}`} label="Note (optional)" value={note} onInput={setNote} autoComplete="off" />
      <button type="button" aria-label={`Approve ${association.node_name}`} onClick={() => onDecide("approve", note.trim())}>
        Approve
      </button>
      <button type="button" class="danger" aria-label={`Deny ${association.node_name}`} onClick={() => onDecide("deny", note.trim())}>
        Deny
      </button>
    </form>
  );
}
