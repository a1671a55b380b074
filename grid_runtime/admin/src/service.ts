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

/** What a service's accounts API offers beyond what both share (GET and POST /roles, GET /users/me, /tokens), and
 * its rules in words: the Roles and Account pages show only what the service has. */
export interface Accounts {
  /** PATCH and DELETE /roles/{id}, and each role's user_count */
  rolesEditable: boolean;
  /** PUT /users/me/password */
  password: boolean;
  /** each token's last_used_at */
  tokenLastUse: boolean;
  /** the rules of the Roles page */
  roleRules: string[];
  /** what a role without capabilities lets you do */
  baseline: string;
  /** how scripts use an API token */
  tokenUse: string;
}

const ACCOUNTS: Record<Kind, Accounts> = {
  node: {
    rolesEditable: true,
    password: true,
    tokenLastUse: true,
    roleRules: [
      "Preset roles (Owner, Administrator, Compliance Officer, Data Scientist) cannot be changed or deleted; a custom role can be deleted once no user holds it.",
      "You can put in a role, or take out of it, only capabilities you hold yourself; a role with capabilities you lack cannot be edited by you.",
      "Nobody changes their own role, and the Owner role is only ever transferred.",
    ],
    baseline: "search metadata, submit jobs on data you may compute on, and file requests",
    tokenUse: "For scripts and CI: use one as GRIDCTL_TOKEN, or with gridctl.connect(url, token=...).",
  },
  network: {
    rolesEditable: false,
    password: false,
    tokenLastUse: false,
    roleRules: [
      "Roles, the presets (Member, Administrator, Owner) and custom ones alike, are not changed or deleted once made: create a role and give it to users on the Users page.",
      "You can put in a new role only capabilities you hold yourself.",
      "Nobody changes their own role, and nobody is given the Owner role.",
    ],
    baseline: "search the catalogue of every associated Node and list the Nodes",
    tokenUse: "For scripts and CI: use one as GRIDCTL_NETWORK_TOKEN, with GRIDCTL_NETWORK_URL, for gridctl's network commands.",
  },
};

export function accounts(): Accounts {
  return ACCOUNTS[kind];
}

export interface NetworkUser {
  id: number;
  email: string;
  full_name: string;
  role: string;
  disabled: boolean;
  created_at: string;
}

export interface NetworkRole {
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
