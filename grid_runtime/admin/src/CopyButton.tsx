// A Copy button for a secret or a command shown on the page, and its status line (what happened, read out).
import { useState } from "preact/hooks";

export function CopyButton({ text, testId = "copied" }: { text: string; testId?: string }) {
  const [said, setSaid] = useState("");
  return (
    <>
      <button
        type="button"
        onClick={() =>
          navigator.clipboard.writeText(text).then(
            () => setSaid("Copied."),
            () => setSaid("The browser did not allow copying: select the text and copy it."),
          )
        }
      >
        Copy
      </button>{" "}
      <span role="status" data-testid={testId}>{said}</span>
    </>
  );
}
