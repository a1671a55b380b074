// The Node's and the Network's capabilities (grid_runtime/core/capabilities.py) in words, for navigation and for
// explaining a 403.
import { serviceKind } from "./service";

export const CAPABILITIES: Record<string, { label: string; lets: string }> = {
  triage_requests: { label: "Triage requests", lets: "see every request, approve or deny them" },
  manage_budgets: { label: "Manage budgets", lets: "set users' privacy budgets and decide budget requests" },
  manage_users: { label: "Manage users", lets: "create, edit, disable and delete users and reset passwords" },
  manage_groups: { label: "Manage groups", lets: "create, edit and delete groups and their membership" },
  edit_roles: { label: "Edit roles", lets: "create, edit and delete custom roles" },
  upload_data: { label: "Upload data", lets: "upload tensors and datasets" },
  manage_permissions: { label: "Manage permissions", lets: "grant and revoke permissions on tensors and datasets" },
  edit_settings: { label: "Edit settings", lets: "change the Node's settings" },
  manage_infrastructure: { label: "Manage infrastructure", lets: "scale Workers and manage Network associations" },
  view_statistics: { label: "View statistics", lets: "read the Node's statistics and the audit log" },
};

export const NETWORK_CAPABILITIES: Record<string, { label: string; lets: string }> = {
  manage_nodes: { label: "Manage Nodes", lets: "decide association requests, invite Nodes and end associations" },
  manage_users: { label: "Manage users", lets: "create users, change their role and disable them" },
  edit_roles: { label: "Edit roles", lets: "create custom roles" },
  edit_settings: { label: "Edit settings", lets: "change the Network's settings" },
  view_statistics: { label: "View statistics", lets: "read each associated Node's statistics and the audit log" },
};

/** The capabilities of the service this Admin talks to, in words. */
export function capabilityWords(): Record<string, { label: string; lets: string }> {
  return serviceKind() === "network" ? NETWORK_CAPABILITIES : CAPABILITIES;
}

export function describe(capability: string): string {
  const known = capabilityWords()[capability];
  return known ? `“${known.label}” (${known.lets})` : `“${capability}”`;
}

export function holdsAny(held: readonly string[], needed: readonly string[]): boolean {
  return needed.length === 0 || needed.some((c) => held.includes(c));
}
