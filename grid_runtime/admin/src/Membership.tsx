// Group membership changed in place, from either side: a group's members (the groups page) or a user's groups (a
// user's panel). The Node decides; its membership rule (a group carrying grants on data also needs Manage
// permissions) is explained in words.
import { useState } from "preact/hooks";
import { api } from "./api";
import { MembershipError } from "./explain";
import { Field } from "./form";
import { useAction } from "./ui";

export interface Pair {
  /** the group in the API's path (its id or name) */
  ref: string;
  group: string;
  user: string;
}

export function Membership(props: {
  items: string[];
  testId: string;
  empty: string;
  /** the group and the user a listed item, or a typed one, stands for */
  pair: (item: string) => Pair;
  field: { name: string; label: string; type?: string; button: string; form: string };
  onChanged: (message: string) => void;
}) {
  const [value, setValue] = useState("");
  const action = useAction(props.onChanged);
  function change(method: "PUT" | "DELETE", item: string): Promise<boolean> {
    const { ref, group, user } = props.pair(item);
    const message = method === "PUT" ? `Added ${user} to ${group}.` : `Removed ${user} from ${group}.`;
    return action.run(() => api(method, `/groups/${encodeURIComponent(ref)}/members/${encodeURIComponent(user)}`), message);
  }
  return (
    <>
      {props.items.length === 0 ? (
        <p>{props.empty}</p>
      ) : (
        <ul class="members" data-testid={props.testId}>
          {props.items.map((item) => {
            const { group, user } = props.pair(item);
            return (
              <li key={item}>
                {item}{" "}
                <button type="button" class="danger" aria-label={`Remove ${user} from ${group}`}
                        onClick={() => void change("DELETE", item)}>
                  Remove
                </button>
              </li>
            );
          })}
        </ul>
      )}
      <form
        class="inline"
        aria-label={props.field.form}
        onSubmit={async (e) => {
          e.preventDefault();
          if (await change("PUT", value.trim())) setValue("");
        }}
      >
        <Field name={props.field.name} label={props.field.label} type={props.field.type} value={value} onInput={setValue}
               autoComplete="off" required />
        <button type="submit">{props.field.button}</button>
      </form>
      <MembershipError error={action.error} />
    </>
  );
}
