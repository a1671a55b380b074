// Every page of the Admin on a Node: adding a page is its file under pages/ and one entry here (a Network's pages are
// in networkRoutes.ts; the app shows the set of the service it talks to, service.ts).
// `anyOf`: the capabilities of which the signed-in user needs one for the page to be in the navigation (none: every
// signed-in user); the Node still decides every call: a page reached by its address without them explains the 403.
// `public`: shown without signing in, outside the layout.
import { Account } from "./pages/Account";
import { Audit } from "./pages/Audit";
import { Dashboard } from "./pages/Dashboard";
import { Data } from "./pages/Data";
import { FederatedLearning } from "./pages/FederatedLearning";
import { Groups } from "./pages/Groups";
import { Jobs } from "./pages/Jobs";
import { Networks } from "./pages/Networks";
import { Requests } from "./pages/Requests";
import { Roles } from "./pages/Roles";
import { Settings } from "./pages/Settings";
import { Setup } from "./pages/Setup";
import { SignIn } from "./pages/SignIn";
import { Users } from "./pages/Users";
import { Workers } from "./pages/Workers";
import { NETWORK_ROUTES } from "./networkRoutes";
import type { PageRoute } from "./pageRoute";
import { serviceKind } from "./service";

export type { PageRoute } from "./pageRoute";

export const ROUTES: PageRoute[] = [
  { path: "/sign-in", title: "Sign in", component: SignIn, anyOf: [], public: true },
  { path: "/setup", title: "First-run setup", component: Setup, anyOf: [], public: true },
  {
    path: "/",
    title: "Dashboard",
    component: Dashboard,
    anyOf: ["triage_requests", "manage_budgets", "view_statistics", "manage_users"],
  },
  { path: "/requests", title: "Requests", component: Requests, anyOf: ["triage_requests", "manage_budgets"] },
  { path: "/jobs", title: "Jobs", component: Jobs, anyOf: ["triage_requests"] },
  { path: "/users", title: "Users", component: Users, anyOf: ["manage_users"] },
  { path: "/groups", title: "Groups", component: Groups, anyOf: ["manage_groups"] },
  { path: "/data", title: "Tensors and datasets", component: Data, anyOf: ["manage_permissions", "upload_data"] },
  { path: "/fl", title: "Federated learning", component: FederatedLearning, anyOf: ["upload_data"] },
  { path: "/roles", title: "Roles", component: Roles, anyOf: ["edit_roles", "manage_users"] },
  { path: "/workers", title: "Workers", component: Workers, anyOf: ["view_statistics"] },
  { path: "/networks", title: "Networks", component: Networks, anyOf: ["manage_infrastructure"] },
  { path: "/audit", title: "Audit log", component: Audit, anyOf: ["view_statistics"] },
  { path: "/settings", title: "Settings", component: Settings, anyOf: ["edit_settings", "manage_budgets"] },
  { path: "/account", title: "Account", component: Account, anyOf: [] },
];

/** The pages of the service this Admin talks to. */
export function activeRoutes(): PageRoute[] {
  return serviceKind() === "network" ? NETWORK_ROUTES : ROUTES;
}

export function routeFor(path: string): PageRoute | undefined {
  return activeRoutes().find((r) => r.path === path);
}
