// A model spec one row per layer (the Node computes output shapes and parameter counts): a release's cost card and
// a training job's detail.
import { Table } from "./ui";

export interface Layer {
  index: number;
  layer: string;
  args: Record<string, unknown>;
  output_shape: number[] | null;
  parameters: number;
}

export function LayerTable({ layers }: { layers: Layer[] }) {
  const total = layers.reduce((sum, l) => sum + (typeof l.parameters === "number" ? l.parameters : 0), 0);
  return (
    <section aria-label="Model layers">
      <h4>Model</h4>
      <Table
        rows={layers.map((l) => ({ ...l, id: l.index }))}
        testId="layers"
        compact
        columns={[
          { label: "#", cell: (l) => l.index },
          { label: "Layer", cell: (l) => l.layer },
          {
            label: "Arguments",
            cell: (l) => Object.entries(l.args ?? {}).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(", ") || "—",
          },
          { label: "Output shape", cell: (l) => (l.output_shape ? `[${l.output_shape.join(", ")}]` : "—") },
          { label: "Parameters", cell: (l) => l.parameters },
        ]}
        footer={
          <tr>
            <th scope="row" colSpan={4}>Total parameters</th>
            <td data-testid="parameters-total">{total}</td>
          </tr>
        }
      />
    </section>
  );
}
