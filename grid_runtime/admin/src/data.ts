// Loading state for a page's calls: what a section shows while it waits, when it failed, and when it has data.
import { useEffect, useState } from "preact/hooks";

export interface Loaded<T> {
  data: T | null;
  error: unknown;
  loading: boolean;
  reload: () => void;
}

export function useLoad<T>(load: () => Promise<T>, deps: unknown[]): Loaded<T> {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [loading, setLoading] = useState(true);
  const [round, setRound] = useState(0);
  useEffect(() => {
    let live = true;
    setLoading(true);
    load()
      .then((value) => {
        if (live) {
          setData(value);
          setError(null);
        }
      })
      .catch((caught: unknown) => {
        if (live) {
          setError(caught);
          setData(null);
        }
      })
      .finally(() => {
        if (live) setLoading(false);
      });
    return () => {
      live = false;
    };
  }, [...deps, round]);
  return { data, error, loading, reload: () => setRound((r) => r + 1) };
}

export function when(iso: string): string {
  return new Date(iso).toLocaleString();
}

export function epsilon(value: number | null): string {
  return value === null ? "not DP" : value.toFixed(value < 10 ? 3 : 1);
}
