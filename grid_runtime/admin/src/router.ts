// Hash routes (#/users?q=ada): they work on any static host without rewrite rules, and under the Node's /admin/.
import { useEffect, useState } from "preact/hooks";

export interface Location {
  path: string;
  query: URLSearchParams;
}

function current(): Location {
  const raw = window.location.hash.replace(/^#/, "") || "/";
  const [path, search = ""] = raw.split("?", 2);
  return { path: path || "/", query: new URLSearchParams(search) };
}

export function useLocation(): Location {
  const [location, setLocation] = useState(current);
  useEffect(() => {
    const changed = () => setLocation(current());
    window.addEventListener("hashchange", changed);
    changed(); // a navigation made before this listener was added (during the first render)
    return () => window.removeEventListener("hashchange", changed);
  }, []);
  return location;
}

export function href(path: string, query: Record<string, string | number | undefined> = {}): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) if (value !== undefined && value !== "") search.set(key, String(value));
  const text = search.toString();
  return `#${path}${text ? `?${text}` : ""}`;
}

export function navigate(path: string, query: Record<string, string | number | undefined> = {}): void {
  window.location.hash = href(path, query);
}
