// Tensors and datasets: a search paginated by the Node, a detail (metadata only: never a tensor's values), its
// visibility, and the permissions editor (grants to users and groups, revoked in place) with the Node's explain
// answer: which rule and grant decide a user's level. Changing permissions needs Manage permissions; the Node decides.
import { useState } from "preact/hooks";
import { api } from "../api";
import type { Page } from "../api";
import { useSigned } from "../context";
import { useLoad, when } from "../data";
import { ErrorNote } from "../explain";
import { Field, SearchForm } from "../form";
import { href, navigate, useLocation } from "../router";

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
  const { me } = useSigned();
  const location = useLocation();
  const kind: Kind = location.query.get("kind") === "dataset" ? "dataset" : "tensor";
  const q = location.query.get("q") ?? "";
  const offset = Math.max(0, Number(location.query.get("offset") ?? 0) || 0);
  const open = Number(location.query.get("id") ?? 0) || 0;
  const list = useLoad(
    () => api<Page<Item>>("GET", kind === "tensor" ? "/tensors/search" : "/datasets", {
      query: { q: q || undefined, limit: PAGE, offset },
    }),
    [kind, q, offset],
  );
  const [search, setSearch] = useState(q);
  const [status, setStatus] = useState("");
  const here = { kind, q: q || undefined, offset: offset || undefined };
  const page = list.data;
  const first = page && page.total > 0 ? offset + 1 : 0;
  const last = page ? offset + page.items.length : 0;
  const plural = kind === "tensor" ? "Tensors" : "Datasets";

  function done(message: string) {
    setStatus(message);
    list.reload();
  }

  return (
    <>
      <h1>Tensors and datasets</h1>
      <p role="status" class="status" data-testid="status">
        {status}
      </p>
      <nav aria-label="Kind" class="pager">
        <a href={href("/data", { kind: "tensor" })} aria-current={kind === "tensor" ? "page" : undefined}>Tensors</a>
        <a href={href("/data", { kind: "dataset" })} aria-current={kind === "dataset" ? "page" : undefined}>Datasets</a>
      </nav>
      <SearchForm label={`Search ${plural.toLowerCase()}`} value={search} onInput={setSearch} onSearch={(q) => navigate("/data", { kind, q })} />
      <ErrorNote error={list.error} me={me} />
      {list.loading && !page ? <p class="muted">Loading…</p> : null}
      {page ? (
        <section aria-labelledby="list-title">
          <h2 id="list-title">
            {q ? `${plural} matching “${q}”` : `All ${plural.toLowerCase()}`}{" "}
            <span class="muted" data-testid="range">({first}–{last} of {page.total})</span>
          </h2>
          {page.items.length === 0 ? (
            <p>Nothing matches.</p>
          ) : (
            <div class="scroll">
              <table data-testid="items">
                <thead>
                  <tr>
                    <th scope="col">Name</th>
                    <th scope="col">{kind === "tensor" ? "Shape and type" : "Members"}</th>
                    <th scope="col">Visibility</th>
                    <th scope="col">Tags</th>
                    <th scope="col">Your level</th>
                  </tr>
                </thead>
                <tbody>
                  {page.items.map((t) => (
                    <tr key={t.id} aria-current={t.id === open ? "true" : undefined}>
                      <td>
                        <a href={href("/data", { ...here, id: t.id })} aria-label={`Open ${kind} ${t.name}`}>
                          {t.name}
                        </a>
                      </td>
                      <td>{kind === "tensor" ? `[${(t.shape ?? []).join(", ")}] ${t.dtype ?? ""}` : (t.members ?? []).map((m) => m.role).join(", ")}</td>
                      <td>{t.visibility}</td>
                      <td>{t.tags.join(", ")}</td>
                      <td>{t.level ?? "—"}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
          <nav aria-label={`Pages of ${plural.toLowerCase()}`} class="pager">
            {offset > 0 ? <a href={href("/data", { ...here, offset: Math.max(0, offset - PAGE) || undefined })}>Previous</a> : null}
            {last < page.total ? <a href={href("/data", { ...here, offset: offset + PAGE })}>Next</a> : null}
          </nav>
        </section>
      ) : null}
      {open ? <Detail kind={kind} id={open} onChanged={done} /> : null}
    </>
  );
}

function Detail({ kind, id, onChanged }: { kind: Kind; id: number; onChanged: (message: string) => void }) {
  const { me } = useSigned();
  const item = useLoad(() => api<Item>("GET", `${base(kind)}/${id}`), [kind, id]);
  const [visibility, setVisibility] = useState("");
  const [error, setError] = useState<unknown>(null);
  const t = item.data;
  const chosen = visibility || t?.visibility || "private";
  const label = t ? `${kind === "tensor" ? "Tensor" : "Dataset"} ${t.name}` : `${kind} ${id}`;
  return (
    <section aria-labelledby="detail-title" class="card">
      <h2 id="detail-title">{label}</h2>
      <ErrorNote error={item.error} me={me} />
      {item.loading && !t ? <p class="muted">Loading…</p> : null}
      {t ? (
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
              setError(null);
              try {
                await api("PATCH", `${base(kind)}/${id}`, { body: { visibility: chosen } });
                onChanged(`${t.name} is now ${chosen}.`);
                item.reload();
              } catch (caught) {
                setError(caught);
              }
            }}
          >
            <div class="field">
              <label for="visibility">Visibility</label>
              <select id="visibility" value={chosen} onChange={(e) => setVisibility(e.currentTarget.value)}>
                <option value="private">private (others: search only, unless granted)</option>
                <option value="public">public (every signed-in user may download)</option>
              </select>
            </div>
            <button type="submit" disabled={chosen === t.visibility}>Save visibility</button>
          </form>
          <ErrorNote error={error} me={me} />
          <Permissions kind={kind} id={id} onChanged={onChanged} />
          <Explain kind={kind} id={id} />
        </>
      ) : null}
    </section>
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
  const [error, setError] = useState<unknown>(null);

  async function call(run: () => Promise<unknown>, message: string) {
    setError(null);
    try {
      await run();
      onChanged(message);
      grants.reload();
      return true;
    } catch (caught) {
      setError(caught);
      return false;
    }
  }

  return (
    <section aria-labelledby="grants-title">
      <h3 id="grants-title">Permissions</h3>
      <ErrorNote error={grants.error} me={me} />
      {grants.data ? (
        grants.data.items.length === 0 ? (
          <p>No grant: the visibility decides.</p>
        ) : (
          <div class="scroll">
            <table class="compact" data-testid="grants">
              <thead>
                <tr>
                  <th scope="col">Who</th>
                  <th scope="col">Level</th>
                  <th scope="col">Since</th>
                  <th scope="col">
                    <span class="visually-hidden">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {grants.data.items.map((g) => {
                  const who = `${g.subject_type} ${g.subject_name ?? g.subject_id}`;
                  return (
                    <tr key={g.id}>
                      <td>{who}</td>
                      <td>{g.level}</td>
                      <td>{when(g.created_at)}</td>
                      <td>
                        <button
                          type="button"
                          class="danger"
                          aria-label={`Revoke ${g.level} of ${who}`}
                          onClick={() => void call(() => api("DELETE", `/permissions/${g.id}`), `Revoked ${g.level} of ${who}.`)}
                        >
                          Revoke
                        </button>
                      </td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
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
        <div class="field">
          <label for="grant-subject-type">To a</label>
          <select id="grant-subject-type" value={subjectType} onChange={(e) => setSubjectType(e.currentTarget.value)}>
            <option value="user">user</option>
            <option value="group">group</option>
          </select>
        </div>
        <Field name="grant_subject" label="User's email or group's name" value={subject} onInput={setSubject} autoComplete="off" required />
        <div class="field">
          <label for="grant-level">Level</label>
          <select id="grant-level" value={level} onChange={(e) => setLevel(e.currentTarget.value)}>
            {LEVELS.map((l) => (
              <option key={l} value={l}>
                {l}
              </option>
            ))}
          </select>
        </div>
        <button type="submit">Grant</button>
      </form>
      <ErrorNote error={error} me={me} />
    </section>
  );
}

function Explain({ kind, id }: { kind: Kind; id: number }) {
  const { me } = useSigned();
  const [user, setUser] = useState("");
  const [answer, setAnswer] = useState<Explained | null>(null);
  const [error, setError] = useState<unknown>(null);
  return (
    <section aria-labelledby="explain-title">
      <h3 id="explain-title">Explain a user's level</h3>
      <form
        class="inline"
        aria-label="Explain a level"
        onSubmit={async (e) => {
          e.preventDefault();
          setError(null);
          setAnswer(null);
          try {
            setAnswer(await api<Explained>("GET", "/permissions/explain", {
              query: { target_type: kind, target_id: id, user: user.trim() || undefined },
            }));
          } catch (caught) {
            setError(caught);
          }
        }}
      >
        <Field name="explain_user" label="User's email (empty: you)" value={user} onInput={setUser} autoComplete="off" />
        <button type="submit">Explain</button>
      </form>
      <ErrorNote error={error} me={me} />
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
