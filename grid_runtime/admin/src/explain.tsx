// Errors in words: a 403 says which capability or rule refused it, and what to do about it.
import { ApiError, nodeLocation } from "./api";
import { describe } from "./capabilities";
import type { User } from "./api";
import { useSigned } from "./context";
import { serviceWord } from "./service";

export function explain(error: unknown, me: User | null): string {
  if (!(error instanceof ApiError)) return error instanceof Error ? error.message : String(error);
  if (error.status === 0) {
    if (nodeLocation() === window.location.origin) {
      return `The ${serviceWord()} at ${nodeLocation()} could not be reached: is it running? Try again in a moment.`;
    }
    return (
      `The Node at ${nodeLocation()} could not be reached. Is it running? This Admin is hosted on another origin ` +
      `(${window.location.origin}): the Node must list that origin in its allowed origins (GRID_NODE_CORS_ORIGINS).`
    );
  }
  if (error.status === 401) {
    // signing in: the Node's own words ("invalid email or password"); signed in: the session ended
    return me === null ? error.message : "You are not signed in, or your session has ended. Sign in again.";
  }
  if (error.status === 403) {
    const details = (error.details ?? {}) as { missing?: unknown; rule?: unknown };
    const role = me ? `your role, ${me.role.name},` : "your role";
    const missing = Array.isArray(details.missing) ? details.missing.map((c) => describe(String(c))) : [];
    if (missing.length > 0 && error.message.startsWith("this needs the capability")) {
      // the route's own capability (Requires): the page or action is not for this role
      return (
        `You are not allowed to do this: it needs the capability ${missing.join(" and ")}, which ${role} does ` +
        `not include. The ${serviceWord()} decides what each role may do;` +
        " ask the Owner or an administrator for a role that has it."
      );
    }
    if (missing.length > 0) {
      // an anti-escalation rule: nobody gives or manages more than they hold themselves
      return (
        `The ${serviceWord()} refused this: ${error.message}. Nobody may give or manage capabilities they do not hold ` +
        `themselves; this involves ${missing.join(" and ")}, which ${role} does not include.`
      );
    }
    return `The ${serviceWord()} refused this: ${error.message}.`;
  }
  if (error.status === 429) return `Too many attempts: ${error.message}. Wait a little and try again.`;
  return error.message;
}

export function ErrorNote({ error, me }: { error: unknown; me: User | null }) {
  if (error === null || error === undefined) return null;
  return (
    <p class="error" role="alert">
      {explain(error, me)}
    </p>
  );
}

/** The Node's membership rule: a 403 naming manage_permissions as missing (the group carries grants on data). */
function widensAccess(error: unknown): error is ApiError {
  if (!(error instanceof ApiError) || error.status !== 403) return false;
  const missing = (error.details as { missing?: unknown } | undefined)?.missing;
  return Array.isArray(missing) && missing.includes("manage_permissions");
}

/** A refused change of a group's members, in words (the groups page and a user's groups on the users page). */
export function MembershipError({ error }: { error: unknown }) {
  const { me } = useSigned();
  if (!widensAccess(error)) return <ErrorNote error={error} me={me} />;
  return (
    <p class="error" role="alert">
      The Node refused this: {error.message}. This group carries grants on data, so its members are part of who may
      read what; only a role with “Manage permissions” (grant and revoke permissions on tensors and datasets) may
      change them. Ask the Owner or an administrator who has it.
    </p>
  );
}
