"""The Node's start path carries no heavy import (issue 11: healthy in <= 2 s from `gridctl deploy local`):
dp-accounting (and scipy with it), torch, Ray and OpenDP load only when a job, a charge or a statistic needs
them; the dummy hash that evens out login timing is made, not computed, at import."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("dp_accounting", "scipy", "torch", "ray", "opendp")


def test_importing_the_node_app_loads_no_heavy_module() -> None:
    code = ("import sys, grid_runtime.node.app, grid_runtime.node.__main__; "
            f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == ""


def test_privacy_accounting_still_works_once_loaded_on_first_use() -> None:
    code = ("import sys; from grid_runtime.privacy import accounting, events; "
            "assert 'dp_accounting' not in sys.modules; "
            "e = events.laplace_event(noise_multiplier=1.0); "
            "print(round(accounting.epsilon(e), 3), events.event_to_dict(e)['type'], "
            "round(accounting.calibrate_noise(3.0, sample_rate=0.01, steps=100), 2) > 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    epsilon, kind, calibrated = done.stdout.split()
    assert 1.0 <= float(epsilon) < 1.1 and kind == "laplace" and calibrated == "True"


def test_the_dummy_hash_has_the_hashers_parameters_and_never_verifies() -> None:
    from grid_runtime.core import security

    hasher = security._hasher
    assert security._DUMMY_HASH.startswith(
        f"$argon2id$v=19$m={hasher.memory_cost},t={hasher.time_cost},p={hasher.parallelism}$")
    assert security.verify_password(None, "any password at all") is False
    assert security.verify_password(security.hash_password("right password"), "right password") is True
