// Labelled form controls: every input has a visible label tied to it.
import type { JSX } from "preact";
import { useState } from "preact/hooks";

let counter = 0;

/** A control's id (unique on the page) and its hint's id (when it has a hint). */
function useFieldIds(name: string, hint?: string): [string, string | undefined] {
  const [id] = useState(() => `field-${name}-${(counter += 1)}`);
  return [id, hint ? `${id}-hint` : undefined];
}

/** A control's hint, which the control names with aria-describedby. */
function Hint({ id, text }: { id?: string; text?: string }) {
  return text ? (
    <small id={id} class="hint">
      {text}
    </small>
  ) : null;
}

export function Field(props: {
  label: string;
  hint?: string;
  value: string;
  onInput: (value: string) => void;
  type?: string;
  autoComplete?: string;
  required?: boolean;
  minLength?: number;
  step?: string;
  name: string;
}) {
  const [id, hintId] = useFieldIds(props.name, props.hint);
  return (
    <div class="field">
      <label for={id}>{props.label}</label>
      <input
        id={id}
        name={props.name}
        type={props.type ?? "text"}
        value={props.value}
        autoComplete={props.autoComplete}
        required={props.required}
        minLength={props.minLength}
        step={props.step}
        aria-describedby={hintId}
        onInput={(e: JSX.TargetedEvent<HTMLInputElement>) => props.onInput(e.currentTarget.value)}
      />
      <Hint id={hintId} text={props.hint} />
    </div>
  );
}

/** A labelled multi-line text box (PEM text, for example), its hint tied to it. */
export function TextAreaField(props: {
  label: string;
  hint?: string;
  value: string;
  onInput: (value: string) => void;
  name: string;
  rows?: number;
  placeholder?: string;
}) {
  const [id, hintId] = useFieldIds(props.name, props.hint);
  return (
    <div class="field">
      <label for={id}>{props.label}</label>
      <textarea
        id={id}
        name={props.name}
        rows={props.rows ?? 4}
        value={props.value}
        placeholder={props.placeholder}
        spellcheck={false}
        aria-describedby={hintId}
        onInput={(e: JSX.TargetedEvent<HTMLTextAreaElement>) => props.onInput(e.currentTarget.value)}
      />
      <Hint id={hintId} text={props.hint} />
    </div>
  );
}

/** A list's search box, starting from the page's query: the query is submitted (trimmed) to ``onSearch``, which puts
 * it in the page's URL. */
export function SearchForm(props: { label: string; query: string; onSearch: (query: string) => void }) {
  const [value, setValue] = useState(props.query);
  return (
    <form
      class="inline"
      role="search"
      onSubmit={(e) => {
        e.preventDefault();
        props.onSearch(value.trim());
      }}
    >
      <Field name="q" label={props.label} type="search" value={value} onInput={setValue} />
      <button type="submit">Search</button>
    </form>
  );
}

/** A labelled select: ``options`` are values shown as they are, or [value, text] pairs. */
export function SelectField(props: {
  id: string;
  label: string;
  value: string;
  options: (string | [string, string])[];
  onChange: (value: string) => void;
  hideLabel?: boolean;
}) {
  return (
    <div class="field">
      <label for={props.id} class={props.hideLabel ? "visually-hidden" : undefined}>
        {props.label}
      </label>
      <select id={props.id} value={props.value} onChange={(e) => props.onChange(e.currentTarget.value)}>
        {props.options.map((option) => {
          const [value, text] = typeof option === "string" ? [option, option] : option;
          return (
            <option key={value} value={value}>
              {text}
            </option>
          );
        })}
      </select>
    </div>
  );
}
