// Your account: who you are and what your role lets you do, your password, and your API tokens for scripts and CI
// (a new token's secret is shown once).
import { useState } from "preact/hooks";
import { api } from "../api";
import { CAPABILITIES } from "../capabilities";
import { useSigned } from "../context";
import { useLoad, when } from "../data";
import { ErrorNote } from "../explain";
import { Field } from "../form";

interface Token {
  id: number;
  kind: string;
  name: string | null;
  created_at: string;
  expires_at: string | null;
  revoked_at: string | null;
  last_used_at: string | null;
}

export function Account() {
  const { me } = useSigned();
  const [status, setStatus] = useState("");
  if (!me) return null;
  return (
    <>
      <h1>Account</h1>
      <p role="status" class="status" data-testid="status">
        {status}
      </p>
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
              ? "search metadata, submit jobs on data you may compute on, and file requests"
              : me.capabilities.map((c) => CAPABILITIES[c]?.lets ?? c).join("; ")}
          </dd>
        </dl>
      </section>
      <Password onChanged={setStatus} />
      <Tokens onChanged={setStatus} />
    </>
  );
}

function Password({ onChanged }: { onChanged: (m: string) => void }) {
  const { me } = useSigned();
  const [current, setCurrent] = useState("");
  const [next, setNext] = useState("");
  const [again, setAgain] = useState("");
  const [error, setError] = useState<unknown>(null);
  return (
    <section aria-labelledby="password-title" class="card">
      <h2 id="password-title">Change your password</h2>
      <form
        onSubmit={async (e) => {
          e.preventDefault();
          setError(null);
          if (next !== again) {
            setError(new Error("The two new passwords differ."));
            return;
          }
          try {
            await api("PUT", "/users/me/password", { body: { current_password: current, new_password: next } });
            setCurrent("");
            setNext("");
            setAgain("");
            onChanged("Password changed. Your other sessions and your API tokens were revoked.");
          } catch (caught) {
            setError(caught);
          }
        }}
      >
        <Field name="current_password" label="Current password" type="password" value={current} onInput={setCurrent} autoComplete="current-password" required />
        <Field name="new_password" label="New password" type="password" hint="At least 8 characters." minLength={8} value={next} onInput={setNext} autoComplete="new-password" required />
        <Field name="new_password_again" label="New password again" type="password" minLength={8} value={again} onInput={setAgain} autoComplete="new-password" required />
        <ErrorNote error={error} me={me} />
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
  const [error, setError] = useState<unknown>(null);
  return (
    <section aria-labelledby="tokens-title" class="card">
      <h2 id="tokens-title">API tokens</h2>
      <p class="muted">For scripts and CI: use one as GRIDCTL_TOKEN, or with gridctl.connect(url, token=...).</p>
      <ErrorNote error={tokens.error} me={me} />
      {tokens.data && tokens.data.length > 0 ? (
        <div class="scroll">
          <table data-testid="tokens">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Created</th>
                <th scope="col">Expires</th>
                <th scope="col">Last used</th>
                <th scope="col">State</th>
                <th scope="col">
                  <span class="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {tokens.data.map((t) => (
                <tr key={t.id}>
                  <td>{t.name}</td>
                  <td>{when(t.created_at)}</td>
                  <td>{t.expires_at ? when(t.expires_at) : "never"}</td>
                  <td>{t.last_used_at ? when(t.last_used_at) : "never"}</td>
                  <td>{t.revoked_at ? "revoked" : "active"}</td>
                  <td>
                    {t.revoked_at ? null : (
                      <button
                        type="button"
                        class="danger"
                        aria-label={`Revoke ${t.name ?? t.id}`}
                        onClick={async () => {
                          setError(null);
                          try {
                            await api("DELETE", `/tokens/${t.id}`);
                            onChanged(`Token ${t.name ?? t.id} revoked.`);
                            tokens.reload();
                          } catch (caught) {
                            setError(caught);
                          }
                        }}
                      >
                        Revoke
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : tokens.data ? (
        <p>You have no API token.</p>
      ) : null}
      <form
        class="inline"
        aria-label="New API token"
        onSubmit={async (e) => {
          e.preventDefault();
          setError(null);
          try {
            const created = await api<Token & { token: string }>("POST", "/tokens", {
              body: { name, expires_in_days: days ? Number(days) : null },
            });
            setSecret(created.token);
            setName("");
            setDays("");
            onChanged(`Token ${created.name} created.`);
            tokens.reload();
          } catch (caught) {
            setError(caught);
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
          <input id="token-secret" class="secret" readOnly value={secret} onFocus={(e) => e.currentTarget.select()} />
        </div>
      ) : null}
      <ErrorNote error={error} me={me} />
    </section>
  );
}
