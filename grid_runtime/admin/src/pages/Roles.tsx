// Roles: the capability matrix (every role against every capability of the service), new roles made, and on a Node
// custom roles edited in place and deleted (a Network's API has neither), with the service's anti-escalation rules
// stated and applied to what can be ticked (the service still decides).
import { useState } from "preact/hooks";
import { api } from "../api";
import type { Role } from "../api";
import { capabilityWords } from "../capabilities";
import { useSigned } from "../context";
import { useLoad } from "../data";
import { ErrorNote } from "../explain";
import { Field } from "../form";
import { accounts } from "../service";
import { ConfirmButton, LoadState, Status, useAction } from "../ui";

export function Roles() {
  const { me } = useSigned();
  const roles = useLoad(() => api<Role[]>("GET", "/roles"), []);
  const [status, setStatus] = useState("");
  const held = me?.capabilities ?? [];
  const editor = held.includes("edit_roles");
  const { rolesEditable, roleRules } = accounts();
  const words = capabilityWords();
  function done(message: string) {
    setStatus(message);
    roles.reload();
  }
  return (
    <>
      <h1>Roles</h1>
      <Status text={status} />
      <section aria-labelledby="rules-title" class="note">
        <h2 id="rules-title">The rules</h2>
        <ul>
          {roleRules.map((rule) => (
            <li key={rule}>{rule}</li>
          ))}
          {editor ? null : <li>Editing roles needs the capability “Edit roles”, which your role does not include.</li>}
        </ul>
      </section>
      <LoadState load={roles} />
      {roles.data ? (
        <section aria-labelledby="matrix-title">
          <h2 id="matrix-title">Capability matrix</h2>
          <div class="scroll">
            <table class="matrix" data-testid="matrix">
              <thead>
                <tr>
                  <th scope="col">Role</th>
                  {Object.entries(words).map(([c, word]) => (
                    <th scope="col" key={c} title={word.lets}>
                      {word.label}
                    </th>
                  ))}
                  {rolesEditable ? (
                    <>
                      <th scope="col">Users</th>
                      <th scope="col">
                        <span class="visually-hidden">Actions</span>
                      </th>
                    </>
                  ) : null}
                </tr>
              </thead>
              <tbody>
                {roles.data.map((role) => (
                  <RoleRow key={`${role.id}-${role.capabilities.join()}`} role={role} held={held} editor={editor} onSaved={done} />
                ))}
              </tbody>
            </table>
          </div>
        </section>
      ) : null}
      {editor ? <CreateRole held={held} onCreated={done} /> : null}
    </>
  );
}

function RoleRow(props: { role: Role; held: string[]; editor: boolean; onSaved: (m: string) => void }) {
  const { me } = useSigned();
  const { role, held } = props;
  const [caps, setCaps] = useState(role.capabilities);
  const action = useAction(props.onSaved);
  const { rolesEditable } = accounts();
  const words = capabilityWords();
  const lacking = role.capabilities.filter((c) => !held.includes(c));
  const editable = rolesEditable && props.editor && !role.preset && lacking.length === 0;
  const changed = [...caps].sort().join() !== [...role.capabilities].sort().join();
  return (
    <tr>
      <th scope="row">
        {role.name}
        {role.preset ? <span class="muted"> (preset)</span> : null}
      </th>
      {Object.entries(words).map(([c, word]) => (
        <td key={c}>
          <input
            type="checkbox"
            aria-label={`${role.name}: ${word.label}`}
            checked={caps.includes(c)}
            disabled={!editable || !held.includes(c)}
            onChange={(e) => setCaps(e.currentTarget.checked ? [...caps, c] : caps.filter((x) => x !== c))}
          />
        </td>
      ))}
      {rolesEditable ? (
        <>
          <td>{role.user_count}</td>
          <td class="actions">
            {editable ? (
              <button
                type="button"
                disabled={!changed}
                aria-label={`Save ${role.name}`}
                onClick={() => void action.run(() => api("PATCH", `/roles/${role.id}`, { body: { capabilities: caps } }),
                                               `Saved ${role.name}.`)}
              >
                Save
              </button>
            ) : !role.preset && props.editor && lacking.length > 0 ? (
              <span class="muted">has capabilities you lack</span>
            ) : null}{" "}
            {!props.editor ? null : role.preset ? (
              <span class="muted" data-testid={`undeletable-${role.id}`}>preset: cannot be deleted</span>
            ) : role.user_count > 0 ? (
              <span class="muted" data-testid={`undeletable-${role.id}`}>
                held by {role.user_count} user{role.user_count === 1 ? "" : "s"}: give them another role to delete it
              </span>
            ) : (
              <ConfirmButton
                label="Delete"
                name={`Delete ${role.name}`}
                question={`Delete the role ${role.name}?`}
                onConfirm={() => void action.run(() => api("DELETE", `/roles/${role.id}`), `Deleted the role ${role.name}.`)}
              />
            )}
            <ErrorNote error={action.error} me={me} />
          </td>
        </>
      ) : null}
    </tr>
  );
}

function CreateRole({ held, onCreated }: { held: string[]; onCreated: (m: string) => void }) {
  const { me } = useSigned();
  const [name, setName] = useState("");
  const [description, setDescription] = useState("");
  const [caps, setCaps] = useState<string[]>([]);
  const action = useAction();
  return (
    <section aria-labelledby="new-role-title" class="card">
      <h2 id="new-role-title">Create a role</h2>
      <form
        onSubmit={async (e) => {
          e.preventDefault();
          const role = await action.attempt(() => api<Role>("POST", "/roles", { body: { name, description, capabilities: caps } }));
          if (role) {
            setName("");
            setDescription("");
            setCaps([]);
            onCreated(`Created the role ${role.name}.`);
          }
        }}
      >
        <Field name="role_name" label="Name" value={name} onInput={setName} required />
        <Field name="role_description" label="Description" value={description} onInput={setDescription} />
        <fieldset>
          <legend>Capabilities (only those you hold)</legend>
          <div class="checks">
            {Object.entries(capabilityWords()).map(([c, word]) => (
              <label key={c} class="check">
                <input
                  type="checkbox"
                  checked={caps.includes(c)}
                  disabled={!held.includes(c)}
                  onChange={(e) => setCaps(e.currentTarget.checked ? [...caps, c] : caps.filter((x) => x !== c))}
                />{" "}
                {word.label}
              </label>
            ))}
          </div>
        </fieldset>
        <ErrorNote error={action.error} me={me} />
        <button type="submit">Create role</button>
      </form>
    </section>
  );
}
