// This Node's Network associations (“Manage infrastructure”, docs/network.md): each Network, its state as the Network
// last said, when it was asked and last pushed to; join a Network (its URL, an invitation code, the URL the Network
// reaches this Node at, the Network's CA certificate when it has a private one), sync now, and leave after a
// confirmation. Refusals are explained in words.
import { useState } from "preact/hooks";
import { api, ApiError } from "../api";
import { useSigned } from "../context";
import { useLoad, when } from "../data";
import { explain } from "../explain";
import { Field, TextAreaField } from "../form";
import { LoadState, ConfirmButton, Fingerprint, Status, Table, useAction } from "../ui";

interface Association {
  id: number;
  network_url: string;
  network_name: string;
  remote_id: number;
  state: string;
  created_at: string;
  last_push_at: string | null;
  last_error: string;
  ended_at: string | null;
  network_ca_sha256: string | null;
  node_ca_sha256: string | null;
}


interface SyncOut {
  association: Association;
  pushed: number;
  deleted: number;
}

const STATES: Record<string, string> = {
  pending: "pending: waiting for the Network's administrators",
  approved: "approved: this Node's catalogue is searchable there",
  denied: "denied by the Network",
  expired: "expired: the Network decided nothing in time; join again",
  ended: "ended",
};

/** A refused join or sync in words: which setting allows a URL, or what the Network said. */
export function networkProblem(error: unknown, me: Parameters<typeof explain>[1]): string {
  if (error instanceof ApiError) {
    const field = (error.details as { field?: unknown } | null)?.field;
    if (error.status === 422 && field === "network_url") {
      return `This Node does not accept that Network URL: ${error.message}. The operator sets what is allowed.`;
    }
    if (error.status === 422 && field === "node_url") {
      return `This Node's URL is needed or refused: ${error.message}.`;
    }
    if (error.code === "untrusted_certificate") {
      return `The Network's certificate is not trusted: ${error.message}. If the Network has a private CA, paste its root certificate.`;
    }
    if (error.status === 422 && (field === "network_ca_pem" || field === "node_ca_pem")) {
      return `The CA certificate was refused: ${error.message}.`;
    }
    if (error.code === "network_refused") return `The Network answered, and refused: ${error.message}.`;
    if (error.status === 503) return `The Node could not reach the Network: ${error.message}. Is its URL right, is it up?`;
  }
  return explain(error, me);
}

export function Networks() {
  const { me } = useSigned();
  const list = useLoad(() => api<Association[]>("GET", "/network/associations"), []);
  const [status, setStatus] = useState("");
  const action = useAction((message) => {
    setStatus(message);
    list.reload();
  });
  const rows = list.data ?? [];
  return (
    <>
      <h1>Networks</h1>
      <p class="muted">
        A Network lists the metadata of this Node's tensors and datasets (what every user here may see without a
        grant) so that its users can find them; it never holds data. The Node pushes changes once the association is
        approved.
      </p>
      <Status text={status} />
      <section aria-labelledby="associations-title" class="card">
        <h2 id="associations-title">Associations</h2>
        <LoadState load={list} />
        {list.data && rows.length === 0 ? <p>This Node has not asked to join a Network.</p> : null}
        {rows.length > 0 ? (
          <Table
            rows={rows}
            testId="associations"
            columns={[
              { label: "Network", cell: (a) => <><strong>{a.network_name}</strong><br /><code>{a.network_url}</code></> },
              { label: "State", cell: (a) => <span data-testid="association-state">{STATES[a.state] ?? a.state}</span> },
              { label: "Asked", cell: (a) => when(a.created_at) },
              { label: "Last push", cell: (a) => (a.last_push_at ? when(a.last_push_at) : "never") },
              { label: "Last error", cell: (a) => a.last_error || "none" },
              { label: "Network's CA", cell: (a) => <Fingerprint sha256={a.network_ca_sha256} none="public CAs" /> },
              {
                label: "Actions",
                hideLabel: true,
                cell: (a) =>
                  a.state === "ended" || a.state === "denied" || a.state === "expired" ? null : (
                    <span class="confirm">
                      <button
                        type="button"
                        aria-label={`Sync with ${a.network_name} now`}
                        onClick={async () => {
                          const done = await action.attempt(() =>
                            api<SyncOut>("POST", `/network/associations/${a.id}/sync`),
                          );
                          if (done) {
                            const what = STATES[done.association.state] ?? done.association.state;
                            const pushed = `${done.pushed} ${done.pushed === 1 ? "entry" : "entries"} pushed`;
                            setStatus(`Synced with ${a.network_name}: ${what}; ${pushed}, ${done.deleted} removed.`);
                            list.reload();
                          }
                        }}
                      >
                        Sync now
                      </button>
                      <ConfirmButton
                        label="Leave"
                        name={`Leave ${a.network_name}`}
                        question={`Leave ${a.network_name}? Its catalogue of this Node is removed; joining again needs a new request.`}
                        onConfirm={() =>
                          void action.run(() => api("DELETE", `/network/associations/${a.id}`), `Left ${a.network_name}.`)
                        }
                      />
                    </span>
                  ),
              },
            ]}
          />
        ) : null}
        {action.error ? (
          <p class="error" role="alert">
            {networkProblem(action.error, me)}
          </p>
        ) : null}
      </section>
      <Join
        onJoined={(a) => {
          setStatus(`Asked ${a.network_name} to associate this Node: ${STATES[a.state] ?? a.state}.`);
          list.reload();
        }}
      />
    </>
  );
}

function Join({ onJoined }: { onJoined: (a: Association) => void }) {
  const { me } = useSigned();
  const [url, setUrl] = useState("");
  const [invitation, setInvitation] = useState("");
  const [nodeUrl, setNodeUrl] = useState("");
  const [caPem, setCaPem] = useState("");
  const [busy, setBusy] = useState(false);
  const action = useAction();
  return (
    <section aria-labelledby="join-title" class="card">
      <h2 id="join-title">Join a Network</h2>
      <form
        aria-label="Join a Network"
        onSubmit={async (e) => {
          e.preventDefault();
          setBusy(true);
          const body = {
            network_url: url.trim(),
            invitation: invitation.trim() || null,
            node_url: nodeUrl.trim() || null,
            network_ca_pem: caPem.trim() ? caPem : null,
          };
          const joined = await action.attempt(() => api<Association>("POST", "/network/associations", { body }));
          setBusy(false);
          if (joined) {
            setUrl("");
            setInvitation("");
            setNodeUrl("");
            setCaPem("");
            onJoined(joined);
          }
        }}
      >
        <Field
          name="network_url"
          label="Network URL"
          hint="https:// and a public host, unless the operator allows http or private addresses (GRID_NODE_NETWORK_ALLOW_INSECURE, GRID_NODE_NETWORK_ALLOW_PRIVATE)."
          value={url}
          onInput={setUrl}
          autoComplete="off"
          required
        />
        <Field
          name="invitation"
          label="Invitation code (optional)"
          hint="With a code from the Network's administrators the association is approved at once."
          value={invitation}
          onInput={setInvitation}
          autoComplete="off"
        />
        <Field
          name="node_url"
          label="This Node's URL (optional)"
          hint="Where the Network reaches this Node; empty: the operator's GRID_NODE_PUBLIC_URL."
          value={nodeUrl}
          onInput={setNodeUrl}
          autoComplete="off"
        />
        <TextAreaField
          name="network_ca_pem"
          label="Network's CA certificate (PEM, optional)"
          hint="For a Network with a private CA (a cloud Network without a domain): its root certificate. This Node then trusts only it when it calls the Network; empty: the public CAs."
          value={caPem}
          onInput={setCaPem}
          placeholder="-----BEGIN CERTIFICATE-----"
          rows={4}
        />
        {action.error ? (
          <p class="error" role="alert">
            {networkProblem(action.error, me)}
          </p>
        ) : null}
        <button type="submit" disabled={busy}>
          {busy ? "Asking the Network…" : "Ask to join"}
        </button>
      </form>
    </section>
  );
}
