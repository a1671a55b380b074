// Groups: a list paginated by the Node, search, create, and a group's members added and removed. A group that
// carries grants on data decides who may read what: changing its members then needs Manage permissions too, and the
// Node's refusal is shown in words.
import { useState } from "preact/hooks";
import { api } from "../api";
import type { Page } from "../api";
import { useSigned } from "../context";
import { useLoad, when } from "../data";
import { ErrorNote, MembershipError } from "../explain";
import { Field, SearchForm } from "../form";
import { navigate } from "../router";
import { DetailCard, PagedList, Status, useAction, useListPage } from "../ui";

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
  const page = useListPage<Group>("/groups", ["q"], PAGE, ({ q }, offset) =>
    api<Page<Group>>("GET", "/groups", { query: { q, limit: PAGE, offset } }));
  return (
    <>
      <h1>Groups</h1>
      <Status text={page.status} />
      <SearchForm label="Search by name" query={page.filters.q} onSearch={(q) => navigate("/groups", { q })} />
      <PagedList
        title={page.filters.q ? `Groups matching “${page.filters.q}”` : "All groups"}
        of={page}
        testId="groups"
        empty="No group matches."
        columns={[
          page.opener("Name", (g) => `group ${g.name}`, (g) => g.name),
          { label: "Description", cell: (g) => g.description },
          { label: "Members", cell: (g) => g.member_count },
          { label: "Created", cell: (g) => when(g.created_at) },
        ]}
      />
      {page.open ? <GroupPanel id={page.open} onChanged={page.done} /> : null}
      {page.list.error === null ? <CreateGroup onCreated={page.done} /> : null}
    </>
  );
}

function GroupPanel({ id, onChanged }: { id: number; onChanged: (message: string) => void }) {
  const { me } = useSigned();
  const detail = useLoad(() => api<GroupDetail>("GET", `/groups/${id}`), [id]);
  const [email, setEmail] = useState("");
  const action = useAction((message) => {
    onChanged(message);
    detail.reload();
  });
  const g = detail.data;
  const mayChangeGrantedGroups = me?.capabilities.includes("manage_permissions") ?? false;
  const change = (method: "PUT" | "DELETE", who: string, message: string) =>
    action.run(() => api(method, `/groups/${id}/members/${encodeURIComponent(who)}`), message);

  return (
    <DetailCard id="group-title" title={g ? `Group ${g.name}` : `Group ${id}`} load={detail}>
      {(g) => (
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
          <MembershipError error={action.error} />
        </>
      )}
    </DetailCard>
  );
}

function CreateGroup({ onCreated }: { onCreated: (message: string) => void }) {
  const { me } = useSigned();
  const [name, setName] = useState("");
  const [description, setDescription] = useState("");
  const action = useAction();
  return (
    <section aria-labelledby="create-title" class="card">
      <h2 id="create-title">Create a group</h2>
      <form
        onSubmit={async (e) => {
          e.preventDefault();
          const created = await action.attempt(() => api<Group>("POST", "/groups", { body: { name, description } }));
          if (created) {
            setName("");
            setDescription("");
            onCreated(`Created the group ${created.name}.`);
          }
        }}
      >
        <Field name="group_name" label="Name" value={name} onInput={setName} autoComplete="off" required />
        <Field name="group_description" label="Description" value={description} onInput={setDescription} autoComplete="off" />
        <ErrorNote error={action.error} me={me} />
        <button type="submit">Create group</button>
      </form>
    </section>
  );
}
