import { createContext } from "preact";
import { useContext } from "preact/hooks";
import type { User } from "./api";

export interface Signed {
  me: User | null;
  signedIn: (token: string) => Promise<void>;
  signOut: () => Promise<void>;
}

export const SignedContext = createContext<Signed>({
  me: null,
  signedIn: async () => undefined,
  signOut: async () => undefined,
});

export function useSigned(): Signed {
  return useContext(SignedContext);
}
