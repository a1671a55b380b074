"""The operator's side of a rehearsal, run inside its network namespace (providers/rehearsal.py runs it with
``ip netns exec``): wait for the two Workers, then the README's walk-through (tests/readme.py) against the
rehearsed Node over HTTPS, trusting only the Node's pinned TLS root (``SSL_CERT_FILE``, which the CLI's and
the notebook's HTTP client read). Prints ``SUMMARY=<json>``.

    python -m tests.rehearsal.operator_walk URL TOKEN CA_FILE
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

from tests import readme

WORKERS = 2


def main(url: str, token: str, ca_file: str) -> None:
    with tempfile.TemporaryDirectory(prefix="gridrh-operator-") as tmp:
        env = {**os.environ, "GRIDCTL_URL": url, "GRIDCTL_TOKEN": token, "SSL_CERT_FILE": ca_file,
               "GRIDCTL_HOME": str(Path(tmp) / "home"), "COLUMNS": "200"}
        os.environ["SSL_CERT_FILE"] = ca_file  # the notebook inherits it
        gridctl = readme.Gridctl(env=env, cwd=Path(tmp))
        try:
            deadline = time.monotonic() + 180
            while True:
                found = gridctl.json("gridctl workers list")
                workers = list(found["workers"] if isinstance(found, dict) else found)
                alive = [w for w in workers if w.get("alive")]
                if len(alive) >= WORKERS:
                    break
                if time.monotonic() > deadline:
                    raise readme.WalkthroughError(f"only {len(alive)} of {WORKERS} Workers joined: {workers}")
                time.sleep(2)
            summary = readme.run(url, gridctl, Path(tmp), timeout=600)
            summary["workers"] = alive
        except BaseException:
            print("\n".join(gridctl.log), file=sys.stderr)
            raise
    print("SUMMARY=" + json.dumps(summary, default=str))


if __name__ == "__main__":
    main(*sys.argv[1:4])
