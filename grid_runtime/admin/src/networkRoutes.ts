// Every page of the Admin on a Network (docs/network.md): adding one is its file under pages/ and one entry here.
// `anyOf` names the Network's capabilities (manage_nodes, manage_users, view_statistics...); the Network decides every
// call. Sign-in, first-run setup, roles and your account are the Node's pages, in the Network's words and showing
// only what its API has (service.ts, accounts()).
import type { PageRoute } from "./pageRoute";
import { Account } from "./pages/Account";
import { NetworkAssociations } from "./pages/NetworkAssociations";
import { NetworkAudit } from "./pages/NetworkAudit";
import { NetworkInvitations } from "./pages/NetworkInvitations";
import { NetworkNodes } from "./pages/NetworkNodes";
import { NetworkSearch } from "./pages/NetworkSearch";
import { NetworkUsers } from "./pages/NetworkUsers";
import { Roles } from "./pages/Roles";
import { Setup } from "./pages/Setup";
import { SignIn } from "./pages/SignIn";

export const NETWORK_ROUTES: PageRoute[] = [
  { path: "/sign-in", title: "Sign in", component: SignIn, anyOf: [], public: true },
  { path: "/setup", title: "First-run setup", component: Setup, anyOf: [], public: true },
  { path: "/", title: "Search", component: NetworkSearch, anyOf: [] },
  { path: "/associations", title: "Associations", component: NetworkAssociations, anyOf: ["manage_nodes"] },
  { path: "/invitations", title: "Invitations", component: NetworkInvitations, anyOf: ["manage_nodes"] },
  { path: "/nodes", title: "Nodes", component: NetworkNodes, anyOf: [] },
  { path: "/users", title: "Users", component: NetworkUsers, anyOf: ["manage_users"] },
  { path: "/roles", title: "Roles", component: Roles, anyOf: ["edit_roles"] },
  { path: "/audit", title: "Audit log", component: NetworkAudit, anyOf: ["view_statistics"] },
  { path: "/account", title: "Account", component: Account, anyOf: [] },
];
