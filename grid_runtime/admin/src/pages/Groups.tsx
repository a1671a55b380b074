// Groups: a list paginated by the Node, search, create, and a group's members added and removed. A group that
// carries grants on data decides who may read what: changing its members then needs Manage permissions too, and the
// Node's refusal is shown in words.
import { useState } from "preact/hooks";
import { ApiError, api } from "../api";
import type { Page } from "../api";
import { useSigned } from "../context";
import { useLoad, when } from "../data";
import { ErrorNote } from "../explain";
import { Field, SearchForm } from "../form";
import { href, navigate, useLocation } from "../router";

const PAGE = 20;

interface Group {
  id: number;
  name: string;
  description: string;
  created_at: string;
  member_count: number;
}

interface GroupDetail extends Group {
  members: { id: number; email: string }[];
}

export function Groups() {
  const { me } = useSigned();
  const location = useLocation();
  const q = location.query.get("q") ?? "";
  const offset = Math.max(0, Number(location.query.get("offset") ?? 0) || 0);
  const open = Number(location.query.get("id") ?? 0) || 0;
  const groups = useLoad(() => api<Page<Group>>("GET", "/groups", { query: { q, limit: PAGE, offset } }), [q, offset]);
  const [search, setSearch] = useState(q);
  const [status, setStatus] = useState("");
  const here = { q: q || undefined, offset: offset || undefined };

  function done(message: string) {
    setStatus(message);
    groups.reload();
  }

  const page = groups.data;
  const first = page && page.total > 0 ? offset + 1 : 0;
  const last = page ? offset + page.items.length : 0;
  return (
    <>
      <h1>Groups</h1>
      <p role="status" class="status" data-testid="status">
        {status}
      </p>
      <SearchForm label="Search by name" value={search} onInput={setSearch} onSearch={(q) => navigate("/groups", { q })} />
      <ErrorNote error={groups.error} me={me} />
      {groups.loading && !page ? <p class="muted">Loading…</p> : null}
      {page ? (
        <section aria-labelledby="list-title">
          <h2 id="list-title">
            {q ? `Groups matching “${q}”` : "All groups"} <span class="muted" data-testid="range">({first}–{last} of {page.total})</span>
          </h2>
          {page.items.length === 0 ? (
            <p>No group matches.</p>
          ) : (
            <div class="scroll">
              <table data-testid="groups">
                <thead>
                  <tr>
                    <th scope="col">Name</th>
                    <th scope="col">Description</th>
                    <th scope="col">Members</th>
                    <th scope="col">Created</th>
                  </tr>
                </thead>
                <tbody>
                  {page.items.map((g) => (
                    <tr key={g.id} aria-current={g.id === open ? "true" : undefined}>
                      <td>
                        <a href={href("/groups", { ...here, id: g.id })} aria-label={`Open group ${g.name}`}>
                          {g.name}
                        </a>
                      </td>
                      <td>{g.description}</td>
                      <td>{g.member_count}</td>
                      <td>{when(g.created_at)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
          <nav aria-label="Pages of groups" class="pager">
            {offset > 0 ? <a href={href("/groups", { ...here, offset: Math.max(0, offset - PAGE) || undefined })}>Previous</a> : null}
            {last < page.total ? <a href={href("/groups", { ...here, offset: offset + PAGE })}>Next</a> : null}
          </nav>
        </section>
      ) : null}
      {open ? <GroupPanel id={open} onChanged={done} /> : null}
      {groups.error === null ? <CreateGroup onCreated={done} /> : null}
    </>
  );
}

function GroupPanel({ id, onChanged }: { id: number; onChanged: (message: string) => void }) {
  const { me } = useSigned();
  const detail = useLoad(() => api<GroupDetail>("GET", `/groups/${id}`), [id]);
  const [email, setEmail] = useState("");
  const [error, setError] = useState<unknown>(null);
  const g = detail.data;
  const mayChangeGrantedGroups = me?.capabilities.includes("manage_permissions") ?? false;

  async function change(method: "PUT" | "DELETE", who: string, message: string) {
    setError(null);
    try {
      await api(method, `/groups/${id}/members/${encodeURIComponent(who)}`);
      onChanged(message);
      detail.reload();
      return true;
    } catch (caught) {
      setError(caught);
      return false;
    }
  }

  return (
    <section aria-labelledby="group-title" class="card">
      <h2 id="group-title">{g ? `Group ${g.name}` : `Group ${id}`}</h2>
      <ErrorNote error={detail.error} me={me} />
      {detail.loading && !g ? <p class="muted">Loading…</p> : null}
      {g ? (
        <>
          {g.description ? <p>{g.description}</p> : null}
          {mayChangeGrantedGroups ? null : (
            <p class="muted" data-testid="membership-rule">
              If this group carries grants on data, changing its members changes who may read what: the Node then
              also needs the capability “Manage permissions”, which your role does not include.
            </p>
          )}
          <h3>Members</h3>
          {g.members.length === 0 ? (
            <p>No member yet.</p>
          ) : (
            <ul class="members" data-testid="members">
              {g.members.map((m) => (
                <li key={m.id}>
                  {m.email}{" "}
                  <button
                    type="button"
                    class="danger"
                    aria-label={`Remove ${m.email} from ${g.name}`}
                    onClick={() => void change("DELETE", m.email, `Removed ${m.email} from ${g.name}.`)}
                  >
                    Remove
                  </button>
                </li>
              ))}
            </ul>
          )}
          <form
            class="inline"
            aria-label="Add a member"
            onSubmit={async (e) => {
              e.preventDefault();
              if (await change("PUT", email.trim(), `Added ${email.trim()} to ${g.name}.`)) setEmail("");
            }}
          >
            <Field name="member" label="Member's email" type="email" value={email} onInput={setEmail} autoComplete="off" required />
            <button type="submit">Add member</button>
          </form>
          {widensAccess(error) ? (
            <p class="error" role="alert">
              The Node refused this: {(error as ApiError).message}. This group carries grants on data, so its members
              are part of who may read what; only a role with “Manage permissions” (grant and revoke permissions on
              tensors and datasets) may change them. Ask the Owner or an administrator who has it.
            </p>
          ) : (
            <ErrorNote error={error} me={me} />
          )}
        </>
      ) : null}
    </section>
  );
}

/** The Node's membership rule: a 403 naming manage_permissions as missing (the group carries grants). */
function widensAccess(error: unknown): boolean {
  if (!(error instanceof ApiError) || error.status !== 403) return false;
  const missing = (error.details as { missing?: unknown } | undefined)?.missing;
  return Array.isArray(missing) && missing.includes("manage_permissions");
}

function CreateGroup({ onCreated }: { onCreated: (message: string) => void }) {
  const { me } = useSigned();
  const [name, setName] = useState("");
  const [description, setDescription] = useState("");
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  return (
    <section aria-labelledby="create-title" class="card">
      <h2 id="create-title">Create a group</h2>
      <form
        onSubmit={async (e) => {
          e.preventDefault();
          setBusy(true);
          setError(null);
          try {
            const group = await api<Group>("POST", "/groups", { body: { name, description } });
            setName("");
            setDescription("");
            onCreated(`Created the group ${group.name}.`);
          } catch (caught) {
            setError(caught);
          } finally {
            setBusy(false);
          }
        }}
      >
        <Field name="group_name" label="Name" value={name} onInput={setName} autoComplete="off" required />
        <Field name="group_description" label="Description" value={description} onInput={setDescription} autoComplete="off" />
        <ErrorNote error={error} me={me} />
        <button type="submit" disabled={busy}>
          {busy ? "Creating…" : "Create group"}
        </button>
      </form>
    </section>
  );
}
