// One user's ε spent against their budget as a labelled bar (a native <meter>, read out with its figures).
import type { Budget } from "./api";
import { epsilon } from "./data";

export function BudgetMeter({ budget }: { budget: Budget }) {
  const spent = budget.spent_epsilon;
  const cap = budget.budget_epsilon;
  const text = `${epsilon(spent)} of ${epsilon(cap)} ε spent`;
  const max = Math.max(cap, spent) || 1; // a budget of 0 with nothing spent: an empty bar
  return (
    <span class="meter" data-testid="budget-meter">
      <meter min={0} max={max} low={max * 0.5} high={max * 0.8} optimum={0} value={spent}
             aria-label={`ε of ${budget.email}: ${text}`} />
      <span>{text}</span>
    </span>
  );
}
