// The frame of every signed-in page: the navigation shows only the pages the user's capabilities open.
import type { ComponentChildren } from "preact";
import { holdsAny } from "./capabilities";
import { useSigned } from "./context";
import { activeRoutes } from "./routes";
import { href } from "./router";
import { serviceKind, serviceName } from "./service";

export function Layout({ path, children }: { path: string; children: ComponentChildren }) {
  const { me, signOut } = useSigned();
  const held = me?.capabilities ?? [];
  const pages = activeRoutes().filter((r) => !r.public && holdsAny(held, r.anyOf));
  return (
    <div class="shell">
      <a class="skip" href="#main" onClick={(e) => { e.preventDefault(); document.getElementById("main")?.focus(); }}>
        Skip to content
      </a>
      <header class="top">
        <span class="brand" data-testid="service">
          gridctl Admin{serviceKind() === "network" ? ` · Network${serviceName() ? ` ${serviceName()}` : ""}` : ""}
        </span>
        <nav aria-label="Pages">
          <ul>
            {pages.map((r) => (
              <li key={r.path}>
                <a href={href(r.path)} aria-current={r.path === path ? "page" : undefined}>
                  {r.title}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <div class="account">
          <span class="who" data-testid="who">
            {me ? `${me.email} · ${me.role.name}` : ""}
          </span>
          <button type="button" onClick={() => void signOut()}>
            Sign out
          </button>
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        {serviceKind() === "node" && pages.every((r) => r.anyOf.length === 0) ? (
          <p class="note" role="status">
            Your role ({me?.role.name}) has none of the capabilities the Admin is for: it serves owners,
            administrators and compliance officers. Data scientists use the gridctl CLI or the Python SDK.
          </p>
        ) : null}
        {children}
      </main>
    </div>
  );
}
