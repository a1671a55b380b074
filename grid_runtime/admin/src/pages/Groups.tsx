// Groups: a list paginated by the Node, search, create, and a group's members added and removed. A group that
// carries grants on data decides who may read what: changing its members then needs Manage permissions too, and the
// Node's refusal is shown in words.
import { useState } from "preact/hooks";
import { api } from "../api";
import type { Page } from "../api";
import { useSigned } from "../context";
import { useLoad, when } from "../data";
import { ErrorNote } from "../explain";
import { Field, SearchForm } from "../form";
import { Membership } from "../Membership";
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
  const g = detail.data;
  const mayChangeGrantedGroups = me?.capabilities.includes("manage_permissions") ?? false;
  const changed = (message: string) => {
    onChanged(message);
    detail.reload();
  };

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
          <Membership
            items={g.members.map((m) => m.email)}
            testId="members"
            empty="No member yet."
            pair={(email) => ({ ref: String(g.id), group: g.name, user: email })}
            field={{ name: "member", label: "Member's email", type: "email", button: "Add member", form: "Add a member" }}
            onChanged={changed}
          />
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
