// Tensors and datasets: a search paginated by the Node, a detail (metadata only: never a tensor's values), its
// visibility, and the permissions editor (grants to users and groups, revoked in place) with the Node's explain
// answer: which rule and grant decide a user's level. Changing permissions needs Manage permissions; the Node decides.
import { useState } from "preact/hooks";
import { api } from "../api";
import type { Page } from "../api";
import { useSigned } from "../context";
import { useLoad, when } from "../data";
import { ErrorNote } from "../explain";
import { Field, SearchForm, SelectField } from "../form";
import { href, navigate } from "../router";
import { DetailCard, PagedList, Status, Table, useAction, useListPage } from "../ui";

const PAGE = 20;
const LEVELS = ["search", "compute", "download", "deny"];

type Kind = "tensor" | "dataset";

interface Item {
  id: number;
  name: string;
  description: string;
  visibility: string;
  tags: string[];
  created_at: string;
  level: string | null;
  shape?: number[];
  dtype?: string;
  columns?: string[] | null;
  uploader_id?: number | null;
  owner_id?: number | null;
  one_row_per_person?: boolean;
  members?: { role: string; tensor_id: number; name: string; dtype: string; shape: number[] }[];
}

interface Grant {
  id: number;
  subject_type: string;
  subject_id: number;
  subject_name: string | null;
  level: string;
  created_at: string;
}

interface Explained {
  user_id: number;
  level: string;
  rule: string;
  grant_id: number | null;
  explanation: string;
}

function base(kind: Kind): string {
  return kind === "tensor" ? "/tensors" : "/datasets";
}

export function Data() {
  const page = useListPage<Item>("/data", ["kind", "q"], PAGE, ({ kind, q }, offset) =>
    api<Page<Item>>("GET", kind === "dataset" ? "/datasets" : "/tensors/search", { query: { q, limit: PAGE, offset } }));
  const { open } = page;
  const kind: Kind = page.filters.kind === "dataset" ? "dataset" : "tensor";
  const q = page.filters.q;
  const plural = kind === "tensor" ? "Tensors" : "Datasets";

  return (
    <>
      <h1>Tensors and datasets</h1>
      <Status text={page.status} />
      <nav aria-label="Kind" class="pager">
        <a href={href("/data", { kind: "tensor" })} aria-current={kind === "tensor" ? "page" : undefined}>Tensors</a>
        <a href={href("/data", { kind: "dataset" })} aria-current={kind === "dataset" ? "page" : undefined}>Datasets</a>
      </nav>
      <SearchForm label={`Search ${plural.toLowerCase()}`} query={page.filters.q} onSearch={(q) => navigate("/data", { kind, q })} />
      <PagedList
        title={q ? `${plural} matching “${q}”` : `All ${plural.toLowerCase()}`}
        of={page}
        testId="items"
        empty="Nothing matches."
        columns={[
          page.opener("Name", (t) => `${kind} ${t.name}`, (t) => t.name),
          {
            label: kind === "tensor" ? "Shape and type" : "Members",
            cell: (t) => (kind === "tensor" ? `[${(t.shape ?? []).join(", ")}] ${t.dtype ?? ""}` : (t.members ?? []).map((m) => m.role).join(", ")),
          },
          { label: "Visibility", cell: (t) => t.visibility },
          { label: "Tags", cell: (t) => t.tags.join(", ") },
          { label: "Your level", cell: (t) => t.level ?? "—" },
        ]}
      />
      {open ? <Detail kind={kind} id={open} onChanged={page.done} /> : null}
    </>
  );
}

function Detail({ kind, id, onChanged }: { kind: Kind; id: number; onChanged: (message: string) => void }) {
  const { me } = useSigned();
  const item = useLoad(() => api<Item>("GET", `${base(kind)}/${id}`), [kind, id]);
  const [visibility, setVisibility] = useState("");
  const action = useAction();
  const t = item.data;
  const chosen = visibility || t?.visibility || "private";
  const label = t ? `${kind === "tensor" ? "Tensor" : "Dataset"} ${t.name}` : `${kind} ${id}`;
  return (
    <DetailCard id="detail-title" title={label} load={item}>
      {(t) => (
        <>
          <p class="muted">Metadata only: the Admin never shows a tensor's values.</p>
          <dl class="facts">
            <dt>Id</dt>
            <dd>{t.id}</dd>
            <dt>Description</dt>
            <dd>{t.description || "—"}</dd>
            {kind === "tensor" ? (
              <>
                <dt>Shape</dt>
                <dd>[{(t.shape ?? []).join(", ")}]</dd>
                <dt>Type</dt>
                <dd>{t.dtype}</dd>
                {t.columns ? (
                  <>
                    <dt>Columns</dt>
                    <dd>{t.columns.join(", ")}</dd>
                  </>
                ) : null}
              </>
            ) : (
              <>
                <dt>Members</dt>
                <dd>{(t.members ?? []).map((m) => `${m.role}: ${m.name} [${m.shape.join(", ")}] ${m.dtype}`).join("; ") || "—"}</dd>
                <dt>One row per person</dt>
                <dd>{t.one_row_per_person ? "yes" : "no"}</dd>
              </>
            )}
            <dt>Tags</dt>
            <dd>{t.tags.join(", ") || "—"}</dd>
            <dt>Created</dt>
            <dd>{when(t.created_at)}</dd>
            <dt>Your level</dt>
            <dd>{t.level ?? "—"}</dd>
          </dl>
          <form
            class="inline"
            aria-label="Change the visibility"
            onSubmit={async (e) => {
              e.preventDefault();
              if (await action.run(() => api("PATCH", `${base(kind)}/${id}`, { body: { visibility: chosen } }))) {
                onChanged(`${t.name} is now ${chosen}.`);
                item.reload();
              }
            }}
          >
            <SelectField id="visibility" label="Visibility" value={chosen} onChange={setVisibility}
                         options={[["private", "private (others: search only, unless granted)"],
                                   ["public", "public (every signed-in user may download)"]]} />
            <button type="submit" disabled={chosen === t.visibility}>Save visibility</button>
          </form>
          <ErrorNote error={action.error} me={me} />
          <Permissions kind={kind} id={id} onChanged={onChanged} />
          <Explain kind={kind} id={id} />
        </>
      )}
    </DetailCard>
  );
}

function Permissions({ kind, id, onChanged }: { kind: Kind; id: number; onChanged: (message: string) => void }) {
  const { me } = useSigned();
  const grants = useLoad(
    () => api<Page<Grant>>("GET", "/permissions", { query: { target_type: kind, target_id: id, limit: 100 } }),
    [kind, id],
  );
  const [subjectType, setSubjectType] = useState("user");
  const [subject, setSubject] = useState("");
  const [level, setLevel] = useState("compute");
  const action = useAction((message) => {
    onChanged(message);
    grants.reload();
  });
  const call = action.run;

  return (
    <section aria-labelledby="grants-title">
      <h3 id="grants-title">Permissions</h3>
      <ErrorNote error={grants.error} me={me} />
      {grants.data ? (
        grants.data.items.length === 0 ? (
          <p>No grant: the visibility decides.</p>
        ) : (
          <Table
            rows={grants.data.items}
            testId="grants"
            compact
            columns={[
              { label: "Who", cell: (g) => who(g) },
              { label: "Level", cell: (g) => g.level },
              { label: "Since", cell: (g) => when(g.created_at) },
              {
                label: "Actions",
                hideLabel: true,
                cell: (g) => (
                  <button
                    type="button"
                    class="danger"
                    aria-label={`Revoke ${g.level} of ${who(g)}`}
                    onClick={() => void call(() => api("DELETE", `/permissions/${g.id}`), `Revoked ${g.level} of ${who(g)}.`)}
                  >
                    Revoke
                  </button>
                ),
              },
            ]}
          />
        )
      ) : null}
      <form
        class="inline"
        aria-label="Grant a permission"
        onSubmit={async (e) => {
          e.preventDefault();
          const who = subject.trim();
          const ok = await call(
            () => api("POST", "/permissions", { body: { subject_type: subjectType, subject: who, target_type: kind, target_id: id, level } }),
            `Granted ${level} to ${subjectType} ${who}.`,
          );
          if (ok) setSubject("");
        }}
      >
        <SelectField id="grant-subject-type" label="To a" value={subjectType} options={["user", "group"]} onChange={setSubjectType} />
        <Field name="grant_subject" label="User's email or group's name" value={subject} onInput={setSubject} autoComplete="off" required />
        <SelectField id="grant-level" label="Level" value={level} options={LEVELS} onChange={setLevel} />
        <button type="submit">Grant</button>
      </form>
      <ErrorNote error={action.error} me={me} />
    </section>
  );
}

function who(g: Grant): string {
  return `${g.subject_type} ${g.subject_name ?? g.subject_id}`;
}

function Explain({ kind, id }: { kind: Kind; id: number }) {
  const { me } = useSigned();
  const [user, setUser] = useState("");
  const [answer, setAnswer] = useState<Explained | null>(null);
  const action = useAction();
  return (
    <section aria-labelledby="explain-title">
      <h3 id="explain-title">Explain a user's level</h3>
      <form
        class="inline"
        aria-label="Explain a level"
        onSubmit={async (e) => {
          e.preventDefault();
          setAnswer(null);
          setAnswer(await action.attempt(() => api<Explained>("GET", "/permissions/explain", {
            query: { target_type: kind, target_id: id, user: user.trim() || undefined },
          })));
        }}
      >
        <Field name="explain_user" label="User's email (empty: you)" value={user} onInput={setUser} autoComplete="off" />
        <button type="submit">Explain</button>
      </form>
      <ErrorNote error={action.error} me={me} />
      {answer ? (
        <dl class="facts" data-testid="explained">
          <dt>Level</dt>
          <dd data-testid="explained-level">{answer.level}</dd>
          <dt>Decided by</dt>
          <dd>{answer.rule.replaceAll("_", " ")}{answer.grant_id !== null ? ` (grant ${answer.grant_id})` : ""}</dd>
          <dt>Why</dt>
          <dd>{answer.explanation}</dd>
        </dl>
      ) : null}
    </section>
  );
}
