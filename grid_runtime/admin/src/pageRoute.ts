import type { ComponentType } from "preact";

/** One page: its path (the URL's fragment), title, component, the capabilities of which one puts it in the
 * navigation (none: every signed-in user), and whether it is shown without signing in. */
export interface PageRoute {
  path: string;
  title: string;
  component: ComponentType;
  anyOf: string[];
  public?: boolean;
}
