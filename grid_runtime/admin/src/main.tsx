import { render } from "preact";
import { useCallback, useEffect, useState } from "preact/hooks";
import { api, loadConfig, setToken, token, whenUnauthorized } from "./api";
import type { User } from "./api";
import { SignedContext } from "./context";
import { explain } from "./explain";
import { Layout } from "./Layout";
import { navigate, useLocation } from "./router";
import { routeFor } from "./routes";
import { loadService, serviceKind, whoAmI } from "./service";
import "./styles.css";

function App() {
  const location = useLocation();
  const [me, setMe] = useState<User | null>(null);
  const [checking, setChecking] = useState(token() !== null);

  const signedIn = useCallback(async (secret: string) => {
    setToken(secret);
    setMe(await whoAmI());
  }, []);

  const signOut = useCallback(async () => {
    try {
      if (token()) await api("POST", "/auth/logout");
    } catch {
      // the token is forgotten here whatever the Node answered
    }
    setToken(null);
    setMe(null);
    navigate("/sign-in");
  }, []);

  useEffect(() => {
    whenUnauthorized(() => {
      setToken(null);
      setMe(null);
      navigate("/sign-in", { expired: 1 });
    });
    if (token() === null) return;
    whoAmI()
      .then(setMe)
      .catch(() => setToken(null))
      .finally(() => setChecking(false));
  }, []);

  const route = routeFor(location.path);
  useEffect(() => {
    document.title = `${route?.title ?? "Not found"} · gridctl Admin`;
  }, [route]);

  if (checking) return <p class="loading" role="status">Loading…</p>;
  if (route === undefined) {
    return (
      <main class="narrow">
        <h1>Page not found</h1>
        <p>
          There is no page at {location.path}.{" "}
          <a href="#/">{serviceKind() === "network" ? "Go to the search" : "Go to the dashboard"}</a>.
        </p>
      </main>
    );
  }
  const Page = route.component;
  const context = { me, signedIn, signOut };
  if (route.public) {
    return (
      <SignedContext.Provider value={context}>
        <Page />
      </SignedContext.Provider>
    );
  }
  if (me === null) {
    navigate("/sign-in");
    return null;
  }
  return (
    <SignedContext.Provider value={context}>
      <Layout path={location.path}>
        <Page />
      </Layout>
    </SignedContext.Provider>
  );
}

const root = document.getElementById("app")!;
loadConfig()
  .then(loadService)
  .then(() => render(<App />, root))
  .catch((error: unknown) => {
    root.textContent = `The Admin could not start: ${explain(error, null)}`;
  });
