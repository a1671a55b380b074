// Invitations (“Manage Nodes”): a one-time code for a Node's administrator; a join presenting it is approved at once.
// The Network stores only its hash, so the code is shown once, here, with a Copy button.
import { useState } from "preact/hooks";
import { api } from "../api";
import { useSigned } from "../context";
import { when } from "../data";
import { ErrorNote } from "../explain";
import { Field } from "../form";
import { CopyButton, useAction } from "../ui";

interface Invitation {
  id: number;
  code: string;
  expires_at: string;
}

export function NetworkInvitations() {
  const { me } = useSigned();
  const [note, setNote] = useState("");
  const [made, setMade] = useState<Invitation | null>(null);
  const action = useAction();
  return (
    <>
      <h1>Invitations</h1>
      <section aria-labelledby="invite-title" class="card">
        <h2 id="invite-title">Invite a Node</h2>
        <p>
          Give the code to the Node's administrator: joining with it (the Node's Admin, Networks page, or{" "}
          <code>gridctl network join URL --invitation CODE</code>) is approved at once. It works once and expires.
        </p>
        <form
          class="inline"
          aria-label="Create an invitation"
          onSubmit={async (e) => {
            e.preventDefault();
            const invitation = await action.attempt(() => api<Invitation>("POST", "/invitations", { body: { note: note.trim() } }));
            if (invitation) {
              setMade(invitation);
              setNote("");
            }
          }}
        >
          <Field name="invitation_note" label="Note (who it is for, optional)" value={note} onInput={setNote} autoComplete="off" />
          <button type="submit">Create an invitation</button>
        </form>
        <ErrorNote error={action.error} me={me} />
        {made ? (
          <div class="note" role="status">
            <p>
              Invitation {made.id}, valid until {when(made.expires_at)}. Copy the code now: it is not shown again.
            </p>
            <div class="command">
              <code data-testid="invitation-code">{made.code}</code>
              <CopyButton key={made.code} text={made.code} what="code" />
            </div>
          </div>
        ) : null}
      </section>
    </>
  );
}
