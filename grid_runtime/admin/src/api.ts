// The one HTTP client of the Admin: the same /api/v1 the CLI and the SDK use, with the bearer token from
// POST /auth/login. The Node's URL comes from ./config.json (written by the Node, or by `gridctl admin export`).

export interface ErrorBody {
  code: string;
  message: string;
  details: unknown;
}

/** An answer of the Node that is not 2xx, with its stable code; or, with status 0, a Node that could not be reached. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly details: unknown;

  constructor(status: number, body: ErrorBody) {
    super(body.message);
    this.status = status;
    this.code = body.code;
    this.details = body.details;
  }
}

export interface Page<T> {
  items: T[];
  total: number;
  limit: number;
  offset: number;
}

export interface RoleBrief {
  id: number;
  name: string;
}

export interface Role extends RoleBrief {
  description: string;
  capabilities: string[];
  preset: boolean;
  user_count: number;
}

export interface User {
  id: number;
  email: string;
  full_name: string;
  role: RoleBrief;
  capabilities: string[];
  budget_epsilon: number;
  disabled: boolean;
  created_at: string;
  groups: string[];
}

export interface Budget {
  user_id: number;
  email: string;
  budget_epsilon: number;
  spent_epsilon: number;
  simple_sum_epsilon: number;
  remaining_epsilon: number;
}

export interface RequestSummary {
  id: number;
  kind: "access" | "release" | "budget";
  state: string;
  requester_id: number;
  requester_email: string;
  target_type: string | null;
  target_id: number | null;
  reason: string;
  created_at: string;
}

export interface Job {
  id: number;
  kind: string;
  state: string;
  owner_id: number;
  dataset_id: number | null;
  planned_epsilon: number | null;
  progress: number;
  created_at: string;
  finished_at: string | null;
}

export interface Token {
  id: number;
  kind: string;
  name: string | null;
  created_at: string;
  expires_at: string | null;
  revoked_at: string | null;
  last_used_at?: string | null; // a Node's; a Network does not keep it
}

export interface Session {
  token: string;
  expires_at: string;
  user_id: number;
}

const TOKEN_KEY = "gridctl.admin.token";
let nodeUrl = "";

/** Read ./config.json: `node_url` is where the API is ("" when the Node itself serves the Admin). */
export async function loadConfig(): Promise<void> {
  const response = await fetch("./config.json", { cache: "no-store" });
  if (!response.ok) throw new Error(`config.json could not be read (${response.status})`);
  const config = (await response.json()) as { node_url?: unknown };
  nodeUrl = typeof config.node_url === "string" ? config.node_url.replace(/\/+$/, "") : "";
}

export function nodeLocation(): string {
  return nodeUrl || window.location.origin;
}

export function token(): string | null {
  return window.sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(value: string | null): void {
  if (value === null) window.sessionStorage.removeItem(TOKEN_KEY);
  else window.sessionStorage.setItem(TOKEN_KEY, value);
}

type Query = Record<string, string | number | boolean | null | undefined>;

let onUnauthorized: () => void = () => undefined;

/** What to do when the Node answers 401 to a signed-in call (the session expired or was revoked). */
export function whenUnauthorized(handler: () => void): void {
  onUnauthorized = handler;
}

export async function api<T>(method: string, path: string, options: { body?: unknown; query?: Query } = {}): Promise<T> {
  const url = new URL(`${nodeUrl}/api/v1${path}`, window.location.href);
  for (const [key, value] of Object.entries(options.query ?? {})) {
    if (value !== null && value !== undefined && value !== "") url.searchParams.set(key, String(value));
  }
  const headers: Record<string, string> = { Accept: "application/json" };
  const secret = token();
  if (secret) headers.Authorization = `Bearer ${secret}`;
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  let response: Response;
  try {
    response = await fetch(url, {
      method,
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      credentials: "omit",
    });
  } catch {
    throw new ApiError(0, {
      code: "unreachable",
      message: `The Node at ${nodeLocation()} could not be reached.`,
      details: null,
    });
  }
  if (response.status === 204) return undefined as T;
  const text = await response.text();
  let parsed: unknown = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = null;
  }
  if (!response.ok) {
    const body = isErrorBody(parsed)
      ? parsed
      : { code: "error", message: `The Node answered ${response.status}.`, details: null };
    const error = new ApiError(response.status, body);
    if (response.status === 401 && secret) onUnauthorized();
    throw error;
  }
  return parsed as T;
}

function isErrorBody(value: unknown): value is ErrorBody {
  return typeof value === "object" && value !== null && "code" in value && "message" in value;
}

/** A file the Node serves (a checkpoint), fetched with the bearer token and saved by the browser as ``filename``. */
export async function download(path: string, filename: string): Promise<void> {
  const secret = token();
  const response = await fetch(new URL(`${nodeUrl}/api/v1${path}`, window.location.href), {
    headers: secret ? { Authorization: `Bearer ${secret}` } : {},
    credentials: "omit",
  }).catch(() => null);
  if (response === null) throw new ApiError(0, { code: "unreachable", message: `The Node at ${nodeLocation()} could not be reached.`, details: null });
  if (!response.ok) {
    const parsed: unknown = await response.json().catch(() => null);
    throw new ApiError(response.status, isErrorBody(parsed) ? parsed : { code: "error", message: `The Node answered ${response.status}.`, details: null });
  }
  const url = URL.createObjectURL(await response.blob());
  const link = document.createElement("a");
  link.href = url;
  link.download = filename;
  link.click();
  window.setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
