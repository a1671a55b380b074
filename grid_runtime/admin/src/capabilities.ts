// The Node's capabilities (grid_runtime/core/capabilities.py) in words, for navigation and for explaining a 403.

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

export function describe(capability: string): string {
  const known = CAPABILITIES[capability];
  return known ? `“${known.label}” (${known.lets})` : `“${capability}”`;
}

export function holdsAny(held: readonly string[], needed: readonly string[]): boolean {
  return needed.length === 0 || needed.some((c) => held.includes(c));
}
