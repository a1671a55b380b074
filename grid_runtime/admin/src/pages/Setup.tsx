// First-run setup: the Owner is created once, with the one-time token the Node wrote at its first start.
import { useState } from "preact/hooks";
import { api, ApiError } from "../api";
import type { Session } from "../api";
import { useSigned } from "../context";
import { ErrorNote } from "../explain";
import { Field } from "../form";
import { serviceWord } from "../service";
import { href, navigate } from "../router";

export function Setup() {
  const { signedIn } = useSigned();
  const [setupToken, setSetupToken] = useState("");
  const [email, setEmail] = useState("");
  const [fullName, setFullName] = useState("");
  const [password, setPassword] = useState("");
  const [confirm, setConfirm] = useState("");
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  async function submit(event: Event) {
    event.preventDefault();
    setError(null);
    if (password !== confirm) {
      setError(new Error("The two passwords differ."));
      return;
    }
    setBusy(true);
    try {
      await api("POST", "/setup", { body: { setup_token: setupToken.trim(), email, password, full_name: fullName } });
      const session = await api<Session>("POST", "/auth/login", { body: { email, password } });
      await signedIn(session.token);
      navigate("/");
    } catch (caught) {
      setError(
        caught instanceof ApiError && caught.status === 403
          ? new Error(
              `This setup token is not valid, or it was used already: this ${serviceWord()} may have its Owner. ` +
                "Check the token, or sign in.",
            )
          : caught,
      );
    } finally {
      setBusy(false);
    }
  }

  return (
    <main class="narrow" id="main">
      <h1>First-run setup</h1>
      <p>
        Create the {serviceWord()}'s Owner. This works once, with the one-time setup token the {serviceWord()} wrote
        at its first start
        to the file <code>setup-token</code> in its state directory (a deploy prints it, or sets up the Owner
        itself).
      </p>
      <form onSubmit={submit} aria-label="First-run setup">
        <Field name="setup_token" label="Setup token" value={setupToken} onInput={setSetupToken} autoComplete="off" required />
        <Field name="email" label="Owner's email" type="email" value={email} onInput={setEmail} autoComplete="username" required />
        <Field name="full_name" label="Full name" value={fullName} onInput={setFullName} autoComplete="name" />
        <Field
          name="password"
          label="Password"
          type="password"
          hint="At least 8 characters."
          minLength={8}
          value={password}
          onInput={setPassword}
          autoComplete="new-password"
          required
        />
        <Field
          name="confirm"
          label="Password again"
          type="password"
          minLength={8}
          value={confirm}
          onInput={setConfirm}
          autoComplete="new-password"
          required
        />
        <ErrorNote error={error} me={null} />
        <button type="submit" disabled={busy}>
          {busy ? "Creating the Owner…" : "Create the Owner"}
        </button>
      </form>
      <p>
        Already set up? <a href={href("/sign-in")}>Sign in</a>
      </p>
    </main>
  );
}
