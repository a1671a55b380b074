// Search the Network's catalogue (every user): tensors and datasets of every associated Node matching every word and
// tag. Each hit names its Node, the Node's URL and the object's id there (work with it on that Node, under its rules),
// and says when its Node's entries are stale. Metadata only: a Network never holds values.
import { useState } from "preact/hooks";
import { api } from "../api";
import { useLoad, when } from "../data";
import { Field, SelectField } from "../form";
import { href, navigate, useLocation } from "../router";
import { LoadState, Table, queryNumber } from "../ui";

interface Hit {
  node: string;
  node_url: string;
  kind: string;
  id: number;
  name: string;
  description: string;
  tags: string[];
  shape: number[] | null;
  dtype: string | null;
  visibility: string;
  last_seen: string | null;
  stale: boolean;
}

interface Found {
  items: Hit[];
  total: number;
  total_is_exact: boolean;
  limit: number;
  offset: number;
}

const SIZE = 25;

export function NetworkSearch() {
  const location = useLocation();
  const text = location.query.get("text") ?? "";
  const tag = location.query.get("tag") ?? "";
  const kind = location.query.get("kind") ?? "";
  const offset = queryNumber(location.query, "offset");
  const found = useLoad(
    () => api<Found>("GET", "/search", { query: { text, tag, kind, limit: SIZE, offset } }),
    [text, tag, kind, offset],
  );
  const [draftText, setDraftText] = useState(text);
  const [draftTag, setDraftTag] = useState(tag);
  const [draftKind, setDraftKind] = useState(kind);
  const here = { text: text || undefined, tag: tag || undefined, kind: kind || undefined };
  const page = found.data;
  const last = page ? page.offset + page.items.length : 0;
  return (
    <>
      <h1>Search</h1>
      <form
        class="inline"
        role="search"
        aria-label="Search the catalogue"
        onSubmit={(e) => {
          e.preventDefault();
          navigate("/", { text: draftText.trim(), tag: draftTag.trim().toLowerCase(), kind: draftKind });
        }}
      >
        <Field name="text" label="Words" type="search" value={draftText} onInput={setDraftText} />
        <Field name="tag" label="Tag" value={draftTag} onInput={setDraftTag} autoComplete="off" />
        <SelectField
          id="search-kind"
          label="Kind"
          value={draftKind}
          options={[["", "tensors and datasets"], ["tensor", "tensors"], ["dataset", "datasets"]]}
          onChange={setDraftKind}
        />
        <button type="submit">Search</button>
      </form>
      <LoadState load={found} />
      {page ? (
        <section aria-labelledby="hits-title">
          <h2 id="hits-title">
            Found{" "}
            <span class="muted" data-testid="range">
              ({page.total === 0 ? 0 : page.offset + 1}–{last} of {page.total_is_exact ? "" : "at least "}
              {page.total})
            </span>
          </h2>
          {page.items.length === 0 ? (
            <p>Nothing matches. Words match the beginning of words in names and descriptions; a tag matches exactly.</p>
          ) : (
            <Table
              rows={page.items.map((h) => ({ ...h, key: h.id, id: `${h.node}/${h.kind}/${h.id}` }))}
              testId="hits"
              columns={[
                { label: "Name", cell: (h) => <><strong>{h.name}</strong>{h.description ? <><br /><span class="muted">{h.description}</span></> : null}</> },
                { label: "Kind", cell: (h) => h.kind },
                { label: "Tags", cell: (h) => h.tags.join(", ") },
                { label: "Shape", cell: (h) => (h.shape ? `${h.shape.join(" × ")}${h.dtype ? ` ${h.dtype}` : ""}` : "") },
                { label: "Node", cell: (h) => <><strong>{h.node}</strong><br /><code>{h.node_url}</code></> },
                { label: "Id there", cell: (h) => <span data-testid="hit-id">{h.key}</span> },
                {
                  label: "Fresh",
                  cell: (h) => (
                    <span data-testid="hit-freshness">
                      {h.stale
                        ? `stale: ${h.node} last heard from ${h.last_seen ? when(h.last_seen) : "never"}`
                        : "fresh"}
                    </span>
                  ),
                },
              ]}
            />
          )}
          <nav aria-label="Pages of hits" class="pager">
            {page.offset > 0 ? <a href={href("/", { ...here, offset: Math.max(0, page.offset - SIZE) || undefined })}>Previous</a> : null}
            {last < page.total ? <a href={href("/", { ...here, offset: page.offset + SIZE })}>Next</a> : null}
          </nav>
        </section>
      ) : null}
    </>
  );
}
