// The Network's users (“Manage users”): list, create (a role you hold at most), change a role, disable and enable.
// The Network refuses changes to your own account and roles holding more than yours, and says why.
import { useState } from "preact/hooks";
import { api } from "../api";
import { useSigned } from "../context";
import { useLoad, when } from "../data";
import { ErrorNote } from "../explain";
import { Field, SelectField } from "../form";
import type { NetworkRole, NetworkUser } from "../service";
import { LoadState, Status, Table, useAction } from "../ui";

export function NetworkUsers() {
  const { me } = useSigned();
  const users = useLoad(() => api<NetworkUser[]>("GET", "/users"), []);
  const roles = useLoad(() => api<NetworkRole[]>("GET", "/roles"), []);
  const [status, setStatus] = useState("");
  const action = useAction((message) => {
    setStatus(message);
    users.reload();
  });
  const roleNames = (roles.data ?? []).map((r) => r.name);
  return (
    <>
      <h1>Users</h1>
      <Status text={status} />
      <section aria-labelledby="users-title" class="card">
        <h2 id="users-title">Users of this Network</h2>
        <LoadState load={users} />
        <ErrorNote error={action.error} me={me} />
        {users.data ? (
          <Table
            rows={users.data}
            testId="network-users"
            columns={[
              { label: "Email", cell: (u) => u.email },
              { label: "Name", cell: (u) => u.full_name },
              {
                label: "Role",
                cell: (u) =>
                  u.id === me?.id || roleNames.length === 0 ? (
                    u.role
                  ) : (
                    <SelectField
                      id={`role-${u.id}`}
                      label={`Role of ${u.email}`}
                      hideLabel
                      value={u.role}
                      options={roleNames}
                      onChange={(role) =>
                        void action.run(() => api("PATCH", `/users/${u.id}`, { body: { role } }), `${u.email} is now ${role}.`)
                      }
                    />
                  ),
              },
              { label: "State", cell: (u) => (u.disabled ? "disabled" : "active") },
              { label: "Created", cell: (u) => when(u.created_at) },
              {
                label: "Actions",
                hideLabel: true,
                cell: (u) =>
                  u.id === me?.id ? null : (
                    <button
                      type="button"
                      class={u.disabled ? undefined : "danger"}
                      aria-label={`${u.disabled ? "Enable" : "Disable"} ${u.email}`}
                      onClick={() =>
                        void action.run(
                          () => api("PATCH", `/users/${u.id}`, { body: { disabled: !u.disabled } }),
                          `${u.email} ${u.disabled ? "enabled" : "disabled: their sessions ended"}.`,
                        )
                      }
                    >
                      {u.disabled ? "Enable" : "Disable"}
                    </button>
                  ),
              },
            ]}
          />
        ) : null}
      </section>
      <Create roles={roleNames} onCreated={(email) => { setStatus(`${email} created.`); users.reload(); }} />
    </>
  );
}

function Create({ roles, onCreated }: { roles: string[]; onCreated: (email: string) => void }) {
  const { me } = useSigned();
  const [email, setEmail] = useState("");
  const [fullName, setFullName] = useState("");
  const [password, setPassword] = useState("");
  const [role, setRole] = useState("Member");
  const action = useAction();
  return (
    <section aria-labelledby="create-title" class="card">
      <h2 id="create-title">Create a user</h2>
      <form
        aria-label="Create a user"
        onSubmit={async (e) => {
          e.preventDefault();
          const body = { email, full_name: fullName, password, role };
          if (await action.run(() => api("POST", "/users", { body }))) {
            onCreated(email);
            setEmail("");
            setFullName("");
            setPassword("");
          }
        }}
      >
        <Field name="new_email" label="Email" type="email" value={email} onInput={setEmail} autoComplete="off" required />
        <Field name="new_full_name" label="Full name" value={fullName} onInput={setFullName} autoComplete="off" />
        <Field name="new_password" label="Password" type="password" hint="At least 8 characters." minLength={8} value={password} onInput={setPassword} autoComplete="new-password" required />
        <SelectField id="new-role" label="Role" value={role} options={roles.length ? roles : ["Member"]} onChange={setRole} />
        <ErrorNote error={action.error} me={me} />
        <button type="submit">Create user</button>
      </form>
    </section>
  );
}
