// Your account: who you are and what your role lets you do, your password (on a Node: a Network's API has no call
// for it), and your API tokens for scripts and CI (a new token's secret is shown once, with a Copy button).
import { useState } from "preact/hooks";
import { api } from "../api";
import type { Token } from "../api";
import { capabilityWords } from "../capabilities";
import { useSigned } from "../context";
import { useLoad, when } from "../data";
import { ErrorNote } from "../explain";
import { Field } from "../form";
import { accounts } from "../service";
import { CopyButton, Status, Table, useAction } from "../ui";

export function Account() {
  const { me } = useSigned();
  const [status, setStatus] = useState("");
  if (!me) return null;
  const words = capabilityWords();
  return (
    <>
      <h1>Account</h1>
      <Status text={status} />
      <section aria-labelledby="me-title" class="card">
        <h2 id="me-title">You</h2>
        <dl class="facts">
          <dt>Email</dt>
          <dd>{me.email}</dd>
          <dt>Role</dt>
          <dd>{me.role.name}</dd>
          <dt>Your role lets you</dt>
          <dd>
            {me.capabilities.length === 0
              ? accounts().baseline
              : me.capabilities.map((c) => words[c]?.lets ?? c).join("; ")}
          </dd>
        </dl>
      </section>
      {accounts().password ? <Password onChanged={setStatus} /> : null}
      <Tokens onChanged={setStatus} />
    </>
  );
}

function Password({ onChanged }: { onChanged: (m: string) => void }) {
  const { me } = useSigned();
  const [current, setCurrent] = useState("");
  const [next, setNext] = useState("");
  const [again, setAgain] = useState("");
  const action = useAction();
  return (
    <section aria-labelledby="password-title" class="card">
      <h2 id="password-title">Change your password</h2>
      <form
        onSubmit={async (e) => {
          e.preventDefault();
          if (next !== again) {
            action.setError(new Error("The two new passwords differ."));
            return;
          }
          const body = { current_password: current, new_password: next };
          if (await action.run(() => api("PUT", "/users/me/password", { body }))) {
            setCurrent("");
            setNext("");
            setAgain("");
            onChanged("Password changed. Your other sessions and your API tokens were revoked.");
          }
        }}
      >
        <Field name="current_password" label="Current password" type="password" value={current} onInput={setCurrent} autoComplete="current-password" required />
        <Field name="new_password" label="New password" type="password" hint="At least 8 characters." minLength={8} value={next} onInput={setNext} autoComplete="new-password" required />
        <Field name="new_password_again" label="New password again" type="password" minLength={8} value={again} onInput={setAgain} autoComplete="new-password" required />
        <ErrorNote error={action.error} me={me} />
        <button type="submit">Change password</button>
      </form>
    </section>
  );
}

function Tokens({ onChanged }: { onChanged: (m: string) => void }) {
  const { me } = useSigned();
  const tokens = useLoad(() => api<Token[]>("GET", "/tokens"), []);
  const [name, setName] = useState("");
  const [days, setDays] = useState("");
  const [secret, setSecret] = useState<string | null>(null);
  const action = useAction((message) => {
    onChanged(message);
    tokens.reload();
  });
  return (
    <section aria-labelledby="tokens-title" class="card">
      <h2 id="tokens-title">API tokens</h2>
      <p class="muted">{accounts().tokenUse}</p>
      <ErrorNote error={tokens.error} me={me} />
      {tokens.data && tokens.data.length > 0 ? (
        <Table
          rows={tokens.data}
          testId="tokens"
          columns={[
            { label: "Name", cell: (t) => t.name },
            { label: "Created", cell: (t) => when(t.created_at) },
            { label: "Expires", cell: (t) => (t.expires_at ? when(t.expires_at) : "never") },
            ...(accounts().tokenLastUse
              ? [{ label: "Last used", cell: (t: Token) => (t.last_used_at ? when(t.last_used_at) : "never") }]
              : []),
            { label: "State", cell: (t) => (t.revoked_at ? "revoked" : "active") },
            {
              label: "Actions",
              hideLabel: true,
              cell: (t) =>
                t.revoked_at ? null : (
                  <button
                    type="button"
                    class="danger"
                    aria-label={`Revoke ${t.name ?? t.id}`}
                    onClick={() => void action.run(() => api("DELETE", `/tokens/${t.id}`), `Token ${t.name ?? t.id} revoked.`)}
                  >
                    Revoke
                  </button>
                ),
            },
          ]}
        />
      ) : tokens.data ? (
        <p>You have no API token.</p>
      ) : null}
      <form
        class="inline"
        aria-label="New API token"
        onSubmit={async (e) => {
          e.preventDefault();
          const created = await action.attempt(() => api<Token & { token: string }>("POST", "/tokens", {
            body: { name, expires_in_days: days ? Number(days) : null },
          }));
          if (created) {
            setSecret(created.token);
            setName("");
            setDays("");
            onChanged(`Token ${created.name} created.`);
            tokens.reload();
          }
        }}
      >
        <Field name="token_name" label="Token name" value={name} onInput={setName} required />
        <Field name="token_days" label="Expires after (days, empty: never)" type="number" value={days} onInput={setDays} />
        <button type="submit">Create token</button>
      </form>
      {secret ? (
        <div class="note" role="status">
          <p>Copy the secret now: it is not shown again.</p>
          <label for="token-secret">New token's secret</label>
          <div class="command">
            <input id="token-secret" class="secret" readOnly value={secret} onFocus={(e) => e.currentTarget.select()} />
            <CopyButton key={secret} text={secret} what="secret" />
          </div>
        </div>
      ) : null}
      <ErrorNote error={action.error} me={me} />
    </section>
  );
}
