// Users: a list paginated by the Node with each user's ε spent against their budget, search, create, change a
// role; and a user's panel: disable or enable them, set their ε budget, add them to groups or remove them, and list
// and revoke their tokens (sessions and API tokens; never their secrets).
import { useState } from "preact/hooks";
import { api } from "../api";
import type { Budget, Page, Role, Token, User } from "../api";
import { BudgetMeter } from "../BudgetMeter";
import { useSigned } from "../context";
import { epsilon, useLoad, when } from "../data";
import { ErrorNote } from "../explain";
import { Field, SearchForm, SelectField } from "../form";
import { Membership } from "../Membership";
import { navigate } from "../router";
import { DetailCard, LoadState, PagedList, Status, Table, useAction, useListPage } from "../ui";

const PAGE = 20;

export function Users() {
  const { me } = useSigned();
  const page = useListPage<User>("/users", ["q"], PAGE, ({ q }, offset) =>
    api<Page<User>>("GET", "/users", { query: { q, limit: PAGE, offset } }));
  const users = page.list;
  const budgeter = me?.capabilities.includes("manage_budgets") ?? false;
  const budgets = useLoad(async () => {
    if (!budgeter || !users.data) return new Map<number, Budget>();
    const all = await Promise.all(users.data.items.map((u) => api<Budget>("GET", `/budget/users/${u.id}`)));
    return new Map(all.map((b) => [b.user_id, b]));
  }, [users.data, budgeter]);
  const roles = useLoad(() => api<Role[]>("GET", "/roles"), []);
  return (
    <>
      <h1>Users</h1>
      <Status text={page.status} />
      <SearchForm label="Search by email or name" query={page.filters.q} onSearch={(q) => navigate("/users", { q })} />
      <PagedList
        title={page.filters.q ? `Users matching “${page.filters.q}”` : "All users"}
        of={page}
        testId="users"
        empty="No user matches."
        columns={[
          page.opener("Email", (u) => `user ${u.email}`, (u) => u.email),
          { label: "Name", cell: (u) => u.full_name },
          { label: "Role", cell: (u) => <RoleChanger user={u} roles={roles.data ?? []} onChanged={page.done} /> },
          { label: "Groups", cell: (u) => u.groups.join(", ") },
          {
            label: "ε spent of budget",
            cell: (u) => {
              const b = budgets.data?.get(u.id);
              return b ? <BudgetMeter budget={b} /> : `budget ${epsilon(u.budget_epsilon)}`;
            },
          },
          { label: "Status", cell: (u) => (u.disabled ? "disabled" : "active") },
        ]}
      />
      <ErrorNote error={budgets.error} me={me} />
      {page.open ? <UserPanel key={page.open} id={page.open} onChanged={page.done} /> : null}
      {users.error === null ? <CreateUser roles={roles.data ?? []} onCreated={page.done} /> : null}
    </>
  );
}

function RoleChanger({ user, roles, onChanged }: { user: User; roles: Role[]; onChanged: (m: string) => void }) {
  const { me } = useSigned();
  const [role, setRole] = useState(user.role.name);
  const action = useAction();
  if (roles.length === 0 || me?.id === user.id) return <span>{user.role.name}</span>;
  return (
    <form
      class="inline tight"
      onSubmit={async (e) => {
        e.preventDefault();
        if (await action.run(() => api("PATCH", `/users/${user.id}`, { body: { role } }))) {
          onChanged(`${user.email} is now ${role}.`);
        }
      }}
    >
      <SelectField id={`role-${user.id}`} label={`Role of ${user.email}`} hideLabel value={role}
                   options={roles.map((r) => r.name)} onChange={setRole} />
      <button type="submit" disabled={role === user.role.name} aria-label={`Change the role of ${user.email}`}>
        Change
      </button>
      <ErrorNote error={action.error} me={me} />
    </form>
  );
}

/** One user: their status, ε budget, groups and tokens, each changed in place (the Node decides every change). */
function UserPanel({ id, onChanged }: { id: number; onChanged: (message: string) => void }) {
  const { me } = useSigned();
  const detail = useLoad(() => api<User>("GET", `/users/${id}`), [id]);
  const changed = (message: string) => {
    onChanged(message);
    detail.reload();
  };
  const action = useAction(changed);
  const u = detail.data;

  return (
    <DetailCard id="user-title" title={u ? `User ${u.email}` : `User ${id}`} load={detail}>
      {(u) => (
        <>
          <dl class="facts">
            <dt>Name</dt>
            <dd>{u.full_name || "—"}</dd>
            <dt>Role</dt>
            <dd>{u.role.name}</dd>
            <dt>Since</dt>
            <dd>{when(u.created_at)}</dd>
            <dt>Status</dt>
            <dd data-testid="user-state">{u.disabled ? "disabled: cannot sign in, every token revoked" : "active"}</dd>
          </dl>
          {me?.id === u.id ? (
            <p class="muted">This is you: your own account is changed on the Account page.</p>
          ) : (
            <p>
              <button
                type="button"
                class={u.disabled ? undefined : "danger"}
                onClick={() => void action.run(
                  () => api("PATCH", `/users/${u.id}`, { body: { disabled: !u.disabled } }),
                  u.disabled ? `${u.email} is enabled again.` : `${u.email} is disabled; their tokens are revoked.`,
                )}
              >
                {u.disabled ? `Enable ${u.email}` : `Disable ${u.email}`}
              </button>
            </p>
          )}
          <ErrorNote error={action.error} me={me} />
          <div class="panels">
            <UserBudget user={u} onChanged={changed} />
            <UserGroups user={u} onChanged={changed} />
          </div>
          <UserTokens user={u} onChanged={onChanged} />
        </>
      )}
    </DetailCard>
  );
}

function UserBudget({ user, onChanged }: { user: User; onChanged: (message: string) => void }) {
  const { me } = useSigned();
  const budgeter = me?.capabilities.includes("manage_budgets") ?? false;
  const budget = useLoad(
    () => (budgeter ? api<Budget>("GET", `/budget/users/${user.id}`) : Promise.resolve(null)),
    [user.id, user.budget_epsilon, budgeter],
  );
  const [value, setValue] = useState("");
  const action = useAction();
  return (
    <section aria-labelledby="budget-title">
      <h3 id="budget-title">Privacy budget</h3>
      {!budgeter ? (
        <p class="muted">
          Budget {epsilon(user.budget_epsilon)} ε. Seeing what was spent and setting budgets needs “Manage budgets”,
          which your role does not include.
        </p>
      ) : (
        <>
          <LoadState load={budget} />
          {budget.data ? <p><BudgetMeter budget={budget.data} /></p> : null}
          <form
            class="inline"
            aria-label="Set the ε budget"
            onSubmit={async (e) => {
              e.preventDefault();
              const epsilonValue = Number(value);
              if (await action.run(() => api("PUT", `/users/${user.id}/budget`, { body: { epsilon: epsilonValue } }))) {
                setValue("");
                onChanged(`The ε budget of ${user.email} is now ${epsilon(epsilonValue)}.`);
              }
            }}
          >
            <Field name="budget_epsilon" label="New ε budget" type="number" step="any" value={value} onInput={setValue} required />
            <button type="submit">Set budget</button>
          </form>
          <ErrorNote error={action.error} me={me} />
        </>
      )}
    </section>
  );
}

function UserGroups({ user, onChanged }: { user: User; onChanged: (message: string) => void }) {
  return (
    <section aria-labelledby="user-groups-title">
      <h3 id="user-groups-title">Groups</h3>
      <Membership
        items={user.groups}
        testId="user-groups"
        empty="In no group."
        pair={(name) => ({ ref: name, group: name, user: user.email })}
        field={{ name: "add_group", label: "Group's name", button: "Add to group", form: "Add to a group" }}
        onChanged={onChanged}
      />
    </section>
  );
}

function tokenName(t: Token): string {
  return t.kind === "api" ? `API token ${t.name ?? t.id}` : `session ${t.id}`;
}

function UserTokens({ user, onChanged }: { user: User; onChanged: (message: string) => void }) {
  const { me } = useSigned();
  const tokens = useLoad(() => api<Token[]>("GET", `/users/${user.id}/tokens`, { query: { active: true } }),
                         [user.id, user.disabled]);
  const action = useAction((message) => {
    onChanged(message);
    tokens.reload();
  });
  return (
    <section aria-labelledby="user-tokens-title">
      <h3 id="user-tokens-title">Active tokens</h3>
      <p class="muted">Sessions (from signing in) and named API tokens; their secrets are never shown.</p>
      <LoadState load={tokens} />
      {tokens.data && tokens.data.length === 0 ? <p>No active token.</p> : null}
      {tokens.data && tokens.data.length > 0 ? (
        <Table
          rows={tokens.data}
          testId="user-tokens"
          compact
          columns={[
            { label: "Token", cell: (t) => tokenName(t) },
            { label: "Created", cell: (t) => when(t.created_at) },
            { label: "Last used", cell: (t) => (t.last_used_at ? when(t.last_used_at) : "never") },
            { label: "Expires", cell: (t) => (t.expires_at ? when(t.expires_at) : "never") },
            {
              label: "Actions",
              hideLabel: true,
              cell: (t) => (
                <button
                  type="button"
                  class="danger"
                  aria-label={`Revoke ${tokenName(t)} of ${user.email}`}
                  onClick={() => void action.run(() => api("DELETE", `/users/${user.id}/tokens/${t.id}`),
                                                 `Revoked ${tokenName(t)} of ${user.email}.`)}
                >
                  Revoke
                </button>
              ),
            },
          ]}
        />
      ) : null}
      <ErrorNote error={action.error} me={me} />
    </section>
  );
}

function CreateUser({ roles, onCreated }: { roles: Role[]; onCreated: (m: string) => void }) {
  const { me } = useSigned();
  const [email, setEmail] = useState("");
  const [fullName, setFullName] = useState("");
  const [password, setPassword] = useState("");
  const [role, setRole] = useState("Data Scientist");
  const action = useAction();
  return (
    <section aria-labelledby="create-title" class="card">
      <h2 id="create-title">Create a user</h2>
      <form
        onSubmit={async (e) => {
          e.preventDefault();
          const user = await action.attempt(() => api<User>("POST", "/users", { body: { email, full_name: fullName, password, role } }));
          if (user) {
            setEmail("");
            setFullName("");
            setPassword("");
            onCreated(`Created ${user.email} (${user.role.name}).`);
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
        <SelectField id="new-role" label="Role" value={role} onChange={setRole}
                     options={roles.length ? roles.map((r) => r.name) : ["Data Scientist"]} />
        <ErrorNote error={action.error} me={me} />
        <button type="submit">Create user</button>
      </form>
    </section>
  );
}
