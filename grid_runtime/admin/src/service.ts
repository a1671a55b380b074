// Which service this Admin talks to: a Node or a Network. Both serve the same bundle at /admin/ and answer the public
// GET /api/v1/service with {kind, name}; the app then shows that service's pages (routes.ts) and its words.
import { api } from "./api";
import type { User } from "./api";

export type Kind = "node" | "network";

let kind: Kind = "node";
let name = "";

/** Ask the service once, before the app renders. A service that does not answer it (an older Node) is a Node. */
export async function loadService(): Promise<void> {
  try {
    const answer = await api<{ kind?: unknown; name?: unknown }>("GET", "/service");
    kind = answer.kind === "network" ? "network" : "node";
    name = typeof answer.name === "string" ? answer.name : "";
  } catch {
    kind = "node";
  }
}

export function serviceKind(): Kind {
  return kind;
}

export function serviceName(): string {
  return name;
}

/** "Node" or "Network", for sentences. */
export function serviceWord(): string {
  return kind === "network" ? "Network" : "Node";
}

interface NetworkUser {
  id: number;
  email: string;
  full_name: string;
  role: string;
  disabled: boolean;
  created_at: string;
}

interface NetworkRole {
  id: number;
  name: string;
  capabilities: string[];
}

/** The signed-in user. A Network names the role only: its capabilities come from the Network's roles. */
export async function whoAmI(): Promise<User> {
  if (kind === "node") return api<User>("GET", "/users/me");
  const [user, roles] = await Promise.all([api<NetworkUser>("GET", "/users/me"), api<NetworkRole[]>("GET", "/roles")]);
  const role = roles.find((r) => r.name === user.role);
  return {
    id: user.id,
    email: user.email,
    full_name: user.full_name,
    role: { id: role?.id ?? 0, name: user.role },
    capabilities: role?.capabilities ?? [],
    budget_epsilon: 0, // a Network keeps no privacy budgets
    disabled: user.disabled,
    created_at: user.created_at,
    groups: [],
  };
}
