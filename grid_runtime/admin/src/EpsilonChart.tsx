// ε spent against each user's budget, as a horizontal bar chart (Chart.js on a canvas), with the same figures in a
// table for screen readers and keyboard users. Only budget figures: never anything computed from private data.
import {
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  Legend,
  LinearScale,
  Tooltip,
} from "chart.js";
import { useEffect, useRef } from "preact/hooks";
import type { Budget } from "./api";
import { epsilon } from "./data";

Chart.register(BarController, BarElement, CategoryScale, LinearScale, Legend, Tooltip);

export function EpsilonChart({ budgets }: { budgets: Budget[] }) {
  const canvas = useRef<HTMLCanvasElement>(null);
  useEffect(() => {
    if (!canvas.current) return;
    const chart = new Chart(canvas.current, {
      type: "bar",
      data: {
        labels: budgets.map((b) => b.email),
        datasets: [
          { label: "ε spent", data: budgets.map((b) => b.spent_epsilon), backgroundColor: "#b4451f" },
          { label: "ε budget", data: budgets.map((b) => b.budget_epsilon), backgroundColor: "#9bb7d4" },
        ],
      },
      options: {
        indexAxis: "y",
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        scales: { x: { beginAtZero: true, title: { display: true, text: "ε" } } },
      },
    });
    return () => chart.destroy();
  }, [budgets]);
  const height = Math.max(120, 48 * budgets.length + 60);
  return (
    <figure class="chart">
      <div class="chart-box" style={{ height: `${height}px` }}>
        <canvas ref={canvas} role="img" aria-label="ε spent against each user's budget; the table below has the figures" />
      </div>
      <figcaption>
        <table class="compact" aria-label="ε spent and budgets">
          <thead>
            <tr>
              <th scope="col">User</th>
              <th scope="col">ε spent</th>
              <th scope="col">ε budget</th>
              <th scope="col">Largest next event</th>
            </tr>
          </thead>
          <tbody>
            {budgets.map((b) => (
              <tr key={b.user_id}>
                <td>{b.email}</td>
                <td>{epsilon(b.spent_epsilon)}</td>
                <td>{epsilon(b.budget_epsilon)}</td>
                <td>{epsilon(b.remaining_epsilon)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </figcaption>
    </figure>
  );
}
