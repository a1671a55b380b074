// Users: a list paginated by the Node, search, create, and change a user's role.
import { useState } from "preact/hooks";
import { api } from "../api";
import type { Page, Role, User } from "../api";
import { useSigned } from "../context";
import { epsilon, useLoad } from "../data";
import { ErrorNote } from "../explain";
import { Field, SearchForm } from "../form";
import { href, navigate, useLocation } from "../router";

const PAGE = 20;

export function Users() {
  const { me } = useSigned();
  const location = useLocation();
  const q = location.query.get("q") ?? "";
  const offset = Math.max(0, Number(location.query.get("offset") ?? 0) || 0);
  const users = useLoad(() => api<Page<User>>("GET", "/users", { query: { q, limit: PAGE, offset } }), [q, offset]);
  const roles = useLoad(() => api<Role[]>("GET", "/roles"), []);
  const [search, setSearch] = useState(q);
  const [status, setStatus] = useState("");

  function done(message: string) {
    setStatus(message);
    users.reload();
  }

  return (
    <>
      <h1>Users</h1>
      <p role="status" class="status" data-testid="status">
        {status}
      </p>
      <SearchForm label="Search by email or name" value={search} onInput={setSearch} onSearch={(q) => navigate("/users", { q })} />
      <ErrorNote error={users.error} me={me} />
      {users.loading && !users.data ? <p class="muted">Loading…</p> : null}
      {users.data ? <UserTable page={users.data} roles={roles.data ?? []} q={q} onChanged={done} /> : null}
      {users.error === null ? <CreateUser roles={roles.data ?? []} onCreated={done} /> : null}
    </>
  );
}

function UserTable(props: { page: Page<User>; roles: Role[]; q: string; onChanged: (message: string) => void }) {
  const { page, roles, q } = props;
  const first = page.total === 0 ? 0 : page.offset + 1;
  const last = page.offset + page.items.length;
  return (
    <section aria-labelledby="list-title">
      <h2 id="list-title">
        {q ? `Users matching “${q}”` : "All users"} <span class="muted" data-testid="range">({first}–{last} of {page.total})</span>
      </h2>
      {page.items.length === 0 ? (
        <p>No user matches.</p>
      ) : (
        <div class="scroll">
          <table data-testid="users">
            <thead>
              <tr>
                <th scope="col">Email</th>
                <th scope="col">Name</th>
                <th scope="col">Role</th>
                <th scope="col">Groups</th>
                <th scope="col">ε budget</th>
                <th scope="col">Status</th>
              </tr>
            </thead>
            <tbody>
              {page.items.map((u) => (
                <tr key={u.id}>
                  <td>{u.email}</td>
                  <td>{u.full_name}</td>
                  <td>
                    <RoleChanger user={u} roles={roles} onChanged={props.onChanged} />
                  </td>
                  <td>{u.groups.join(", ")}</td>
                  <td>{epsilon(u.budget_epsilon)}</td>
                  <td>{u.disabled ? "disabled" : "active"}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <nav aria-label="Pages of users" class="pager">
        {page.offset > 0 ? <a href={href("/users", { q, offset: Math.max(0, page.offset - PAGE) })}>Previous</a> : null}
        {last < page.total ? <a href={href("/users", { q, offset: page.offset + PAGE })}>Next</a> : null}
      </nav>
    </section>
  );
}

function RoleChanger({ user, roles, onChanged }: { user: User; roles: Role[]; onChanged: (m: string) => void }) {
  const { me } = useSigned();
  const [role, setRole] = useState(user.role.name);
  const [error, setError] = useState<unknown>(null);
  const id = `role-${user.id}`;
  if (roles.length === 0 || me?.id === user.id) return <span>{user.role.name}</span>;
  return (
    <form
      class="inline tight"
      onSubmit={async (e) => {
        e.preventDefault();
        setError(null);
        try {
          await api("PATCH", `/users/${user.id}`, { body: { role } });
          onChanged(`${user.email} is now ${role}.`);
        } catch (caught) {
          setError(caught);
        }
      }}
    >
      <label for={id} class="visually-hidden">
        Role of {user.email}
      </label>
      <select id={id} value={role} onChange={(e) => setRole(e.currentTarget.value)}>
        {roles.map((r) => (
          <option key={r.id} value={r.name}>
            {r.name}
          </option>
        ))}
      </select>
      <button type="submit" disabled={role === user.role.name} aria-label={`Change the role of ${user.email}`}>
        Change
      </button>
      <ErrorNote error={error} me={me} />
    </form>
  );
}

function CreateUser({ roles, onCreated }: { roles: Role[]; onCreated: (m: string) => void }) {
  const { me } = useSigned();
  const [email, setEmail] = useState("");
  const [fullName, setFullName] = useState("");
  const [password, setPassword] = useState("");
  const [role, setRole] = useState("Data Scientist");
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  return (
    <section aria-labelledby="create-title" class="card">
      <h2 id="create-title">Create a user</h2>
      <form
        onSubmit={async (e) => {
          e.preventDefault();
          setBusy(true);
          setError(null);
          try {
            const user = await api<User>("POST", "/users", { body: { email, full_name: fullName, password, role } });
            setEmail("");
            setFullName("");
            setPassword("");
            onCreated(`Created ${user.email} (${user.role.name}).`);
          } catch (caught) {
            setError(caught);
          } finally {
            setBusy(false);
          }
        }}
      >
        <Field name="new_email" label="Email" type="email" value={email} onInput={setEmail} autoComplete="off" required />
        <Field name="new_full_name" label="Full name" value={fullName} onInput={setFullName} autoComplete="off" />
        <Field
          name="new_password"
          label="Initial password"
          type="password"
          hint="At least 8 characters; tell it to the user over a safe channel."
          minLength={8}
          value={password}
          onInput={setPassword}
          autoComplete="new-password"
          required
        />
        <div class="field">
          <label for="new-role">Role</label>
          <select id="new-role" value={role} onChange={(e) => setRole(e.currentTarget.value)}>
            {(roles.length ? roles.map((r) => r.name) : ["Data Scientist"]).map((name) => (
              <option key={name} value={name}>
                {name}
              </option>
            ))}
          </select>
        </div>
        <ErrorNote error={error} me={me} />
        <button type="submit" disabled={busy}>
          {busy ? "Creating…" : "Create user"}
        </button>
      </form>
    </section>
  );
}
