"""CI's smoke of the quick start, run in the fresh virtualenv right after the README's install-and-deploy line
(``.ci/run``): the Node it deployed answers with its Workers, the Owner logs in, and the README's walk-through
(one DP training job, the officer approving access and then the release) runs as written; then the deployment
is destroyed with its data.

Needs what ``.ci/run`` exports: GRIDCTL_HOME (a temporary one), GRIDCTL_OWNER_PASSWORD (chosen for the deploy),
and GRIDCTL_LOCAL_PORT when the Node is not on the default port 8470. Exits non-zero on the first failure.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests import readme  # noqa: E402  (after the path tweak: scripts/ runs as a script)

WORKERS = 2  # the README's --workers 2


def say(text: str) -> None:
    print(f"smoke: {text}", flush=True)


def main() -> None:
    home = os.environ.get("GRIDCTL_HOME")
    password = os.environ.get("GRIDCTL_OWNER_PASSWORD")
    if not home or not password:
        sys.exit("scripts/smoke.py needs GRIDCTL_HOME and GRIDCTL_OWNER_PASSWORD (see .ci/run)")
    url = f"http://127.0.0.1:{os.environ.get('GRIDCTL_LOCAL_PORT') or 8470}"
    env = {k: v for k, v in os.environ.items() if k not in ("GRIDCTL_URL", "GRIDCTL_TOKEN", "GRIDCTL_CONTEXT",
                                                            "GRIDCTL_OUTPUT", "GRIDCTL_DEBUG")}
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="gridctl-smoke-") as tmp:
        gridctl = readme.Gridctl(env={**env, "COLUMNS": "200"}, cwd=Path(tmp))
        try:
            status = gridctl.json("gridctl status")
            say(f"deployments: {[(d.get('name'), d.get('running')) for d in status['deployments']]}")

            say("the Owner logs in")
            gridctl(f"gridctl login {url} --email owner@localhost", input=f"{password}\n")
            me = gridctl.json("gridctl users me")
            assert me["email"] == "owner@localhost", me

            say("the Admin is served at /admin/")
            _check_admin(url)

            deadline = time.monotonic() + 120
            while (alive := sum(bool(w["alive"]) for w in _workers(gridctl))) < WORKERS:
                assert time.monotonic() < deadline, f"only {alive} of {WORKERS} Workers joined"
                time.sleep(2)
            say(f"{alive} Workers")

            summary = readme.run(url, gridctl, Path(tmp), timeout=600, say=lambda text: say(text))
            assert summary["job_status"] == "succeeded", summary
            assert summary["weights"], summary
            say(f"the DP job succeeded: ε {summary['epsilon']:.3f} at δ {summary['delta']:g}; "
                f"Ada spent ε {summary['budget']['spent_epsilon']:.3f} of {summary['budget']['budget_epsilon']}; "
                f"weights released ({len(summary['weights'])} tensors)")
        except BaseException:
            print("\n".join(gridctl.log), file=sys.stderr)
            raise
    say(f"ok in {time.monotonic() - started:.0f} s")


def _check_admin(url: str) -> None:
    """The install built the Admin and the Node serves it: its page, and the script that page loads."""
    import re

    import httpx

    page = httpx.get(f"{url}/admin/", timeout=30)
    assert page.status_code == 200 and "text/html" in page.headers["content-type"], (page.status_code, page.text[:300])
    scripts = re.findall(r'<script[^>]+src="([^"]+)"', page.text)
    assert scripts, f"the Admin's page loads no script: {page.text[:300]}"
    for src in scripts:
        asset = httpx.get(f"{url}/admin/{src.removeprefix('./').removeprefix('/admin/')}", timeout=30)
        assert asset.status_code == 200 and "javascript" in asset.headers["content-type"], (src, asset.status_code)
        assert len(asset.content) > 1000, (src, len(asset.content))


def _workers(gridctl: readme.Gridctl) -> list[dict[str, object]]:
    found = gridctl.json("gridctl workers list")
    return list(found["workers"] if isinstance(found, dict) else found)


if __name__ == "__main__":
    main()
