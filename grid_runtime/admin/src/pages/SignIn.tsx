import { useState } from "preact/hooks";
import { api, nodeLocation } from "../api";
import type { Session } from "../api";
import { useSigned } from "../context";
import { ErrorNote } from "../explain";
import { Field } from "../form";
import { serviceWord } from "../service";
import { href, navigate, useLocation } from "../router";

export function SignIn() {
  const { signedIn } = useSigned();
  const location = useLocation();
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  async function submit(event: Event) {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const session = await api<Session>("POST", "/auth/login", { body: { email, password } });
      await signedIn(session.token);
      navigate("/");
    } catch (caught) {
      setError(caught);
    } finally {
      setBusy(false);
    }
  }

  return (
    <main class="narrow" id="main">
      <h1>Sign in</h1>
      <p class="muted">
        to the {serviceWord()} at {nodeLocation()}
      </p>
      {location.query.get("expired") ? (
        <p class="note" role="status">
          Your session has ended. Sign in again.
        </p>
      ) : null}
      <form onSubmit={submit} aria-label="Sign in">
        <Field name="email" label="Email" type="email" value={email} onInput={setEmail} autoComplete="username" required />
        <Field
          name="password"
          label="Password"
          type="password"
          value={password}
          onInput={setPassword}
          autoComplete="current-password"
          required
        />
        <ErrorNote error={error} me={null} />
        <button type="submit" disabled={busy}>
          {busy ? "Signing in…" : "Sign in"}
        </button>
      </form>
      <p>
        A new {serviceWord()} without an Owner yet? <a href={href("/setup")}>First-run setup</a>
      </p>
    </main>
  );
}
