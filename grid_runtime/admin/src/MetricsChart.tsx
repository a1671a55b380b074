// A training job's metrics per epoch (loss, accuracy, ...) as a line chart (Chart.js on a canvas), with the same
// figures in a table for screen readers and keyboard users. Officers only: the Node puts them on the cost card.
import {
  CategoryScale,
  Chart,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  PointElement,
  Tooltip,
} from "chart.js";
import { useEffect, useRef } from "preact/hooks";

Chart.register(LineController, LineElement, PointElement, CategoryScale, LinearScale, Legend, Tooltip);

export type Metric = Record<string, unknown>;

const COLOURS = ["#b4451f", "#2f6f9f", "#4d7f3a", "#7a4f9a", "#8a6d1f"];

/** The numeric series of the rows (every key but epoch), in the order they first appear. */
export function series(metrics: Metric[]): string[] {
  const names: string[] = [];
  for (const row of metrics) {
    for (const [key, value] of Object.entries(row)) {
      if (key !== "epoch" && typeof value === "number" && !names.includes(key)) names.push(key);
    }
  }
  return names;
}

function figure(value: unknown): string {
  return typeof value === "number" ? value.toPrecision(4).replace(/\.?0+$/, "") : "—";
}

export function MetricsChart({ metrics }: { metrics: Metric[] }) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const names = series(metrics);
  const labels = metrics.map((row, i) => String(typeof row.epoch === "number" ? row.epoch : i + 1));
  useEffect(() => {
    if (!canvas.current) return;
    const chart = new Chart(canvas.current, {
      type: "line",
      data: {
        labels,
        datasets: names.map((name, i) => ({
          label: name,
          data: metrics.map((row) => (typeof row[name] === "number" ? (row[name] as number) : null)),
          borderColor: COLOURS[i % COLOURS.length],
          backgroundColor: COLOURS[i % COLOURS.length],
        })),
      },
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        scales: { x: { title: { display: true, text: "epoch" } } },
      },
    });
    return () => chart.destroy();
  }, [metrics]);
  return (
    <figure class="chart">
      <div class="chart-box" style={{ height: "220px" }}>
        <canvas ref={canvas} role="img" aria-label="Training metrics per epoch; the table below has the figures" />
      </div>
      <figcaption>
        <table class="compact" aria-label="Training metrics">
          <thead>
            <tr>
              <th scope="col">Epoch</th>
              {names.map((name) => (
                <th scope="col" key={name}>{name}</th>
              ))}
            </tr>
          </thead>
          <tbody>
            {metrics.map((row, i) => (
              <tr key={labels[i]}>
                <td>{labels[i]}</td>
                {names.map((name) => (
                  <td key={name}>{figure(row[name])}</td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      </figcaption>
    </figure>
  );
}
