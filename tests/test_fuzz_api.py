"""Schemathesis against the Node's own OpenAPI document, in process (ASGI), as an officer and as a data scientist,
on SQLite and on PostgreSQL.

Every operation gets generated requests, valid ones and (negative mode) ones that break the schema, with each
principal's token. Each response must not be a server error (a 503 is allowed only where the Node honestly
has no Workers: this app runs without Ray) and must conform to the schema the document gives for its status.
Hypothesis is derandomized, so CI runs the same cases every time; the figures of the last run go to
``.reliability/fuzz.json`` (one entry per backend, tests/reliability.py) for ``scripts/reliability_report.py``.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import response_schema_conformance

from grid_runtime.core.security import new_token
from grid_runtime.core.settings import NodeSettings
from grid_runtime.node.app import create_app
from grid_runtime.node.auth.models import API, Token
from tests.factories import Factory, MadeUser
from tests.live import throwaway_postgres
from tests.reliability import record_figures
from tests.test_tensors_helpers import npy_bytes

DEFAULT_CASES_PER_MODE = 17
CASES_PER_MODE = int(os.environ.get("GRID_FUZZ_CASES", str(DEFAULT_CASES_PER_MODE)))
"""Generated cases per operation, principal and mode (positive and negative): about 5,700 in all, per backend."""
MIN_CASES = 5_000
"""What the two principals must run together on each backend at the default size (the issue's bar)."""


def cases_per_mode(backend: str) -> int:
    """This backend's cases per mode: ``GRID_FUZZ_CASES_<BACKEND>`` (e.g. ``GRID_FUZZ_CASES_POSTGRESQL``, a
    lever for CI's time) or else ``GRID_FUZZ_CASES``."""
    return int(os.environ.get(f"GRID_FUZZ_CASES_{backend.upper()}", str(CASES_PER_MODE)))


NO_WORKERS = "unavailable"  # the code of the honest 503 a Node without Workers gives for jobs


@dataclass
class Tally:
    cases: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    nonconforming: list[str] = field(default_factory=list)
    operations: set[str] = field(default_factory=set)
    seconds: float = 0.0


@dataclass
class FuzzNode:
    backend: str
    schema: Any
    factory: Factory
    principals: dict[str, MadeUser]
    tallies: dict[str, Tally]


def _fresh_token(factory: Factory, user_id: int) -> str:
    """A new API token (a case may log out, revoke tokens or change the password)."""
    secret, digest = new_token("gapi")
    with factory.sessions.begin() as session:
        session.add(Token(user_id=user_id, kind=API, name=f"fuzz-{time.monotonic_ns()}", token_hash=digest))
    return secret


def _seed(schema: Any, factory: Factory, owner: MadeUser) -> None:
    """Real objects with low ids, so generated ids and refs reach past the 404s."""
    from schemathesis.python import asgi

    with asgi.get_client(schema.app) as client:
        headers = owner.headers
        for index in range(3):
            response = client.post("/api/v1/tensors", params={"name": f"seed-{index}", "format": "npy",
                                                              "visibility": "public" if index else "private"},
                                   data=npy_bytes(np.arange(6, dtype=np.float32).reshape(3, 2)), headers=headers)
            assert response.status_code == 201, response.text
        response = client.post("/api/v1/datasets", json={"name": "seed", "members": {"features": 1, "labels": 2}},
                               headers=headers)
        assert response.status_code == 201, response.text
        assert client.post("/api/v1/groups", json={"name": "seed"}, headers=headers).status_code == 201
    factory.role("seed-role")


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def fuzz_node(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzNode]:
    backend = request.param
    state = tmp_path_factory.mktemp(f"fuzz-node-{backend}")
    with ExitStack() as stack:
        url = (f"sqlite:///{state / 'node.db'}" if backend == "sqlite"
               else stack.enter_context(throwaway_postgres("grid_fuzz")))
        node = NodeSettings(state_dir=state / "state", database_url=url, login_max_failures=1000,
                            max_upload_bytes=1024**2)
        app = create_app(node)
        schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)  # starts the app's lifespan
        factory = Factory(SimpleNamespace(app=app))  # type: ignore[arg-type]
        stack.callback(app.state.engine.dispose)  # close the pool before the database is dropped
        owner = factory.owner()
        _seed(schema, factory, owner)
        principals = {"officer": factory.user("Compliance Officer", budget=10.0),
                      "scientist": factory.user("Data Scientist", budget=10.0)}
        fuzz = FuzzNode(backend=backend, schema=schema, factory=factory, principals=principals,
                        tallies={name: Tally() for name in principals})
        yield fuzz
        _write_figures(fuzz)


def _write_figures(fuzz: FuzzNode) -> None:
    tallies = fuzz.tallies
    if not all(t.cases for t in tallies.values()):
        return  # a partial run (-k) records nothing
    figures = {
        "cases": sum(t.cases for t in tallies.values()),
        "server_errors": sum(len(t.server_errors) for t in tallies.values()),
        "nonconforming": sum(len(t.nonconforming) for t in tallies.values()),
        "operations": len(set().union(*(t.operations for t in tallies.values()))),
        "principals": {name: {"cases": t.cases, "server_errors": len(t.server_errors),
                              "statuses": {str(k): v for k, v in sorted(t.statuses.items())},
                              "seconds": round(t.seconds, 1)} for name, t in tallies.items()},
        "cases_per_mode": cases_per_mode(fuzz.backend),
    }
    record_figures("fuzz", fuzz.backend, figures)


def _is_server_error(response: Any) -> bool:
    if response.status_code < 500:
        return False
    if response.status_code == 503:
        try:
            return bool(json.loads(response.content)["code"] != NO_WORKERS)
        except (ValueError, KeyError, TypeError):
            return True
    return True


def _is_error_body(content: bytes) -> bool:
    """The one error body every refusal has: ``{"code": str, "message": str, "details": ...}``."""
    try:
        body = json.loads(content)
    except ValueError:
        return False
    return (isinstance(body, dict) and set(body) == {"code", "message", "details"}
            and isinstance(body["code"], str) and isinstance(body["message"], str))


def _fuzz_operation(fuzz: FuzzNode, principal: str, operation: Any, mode: GenerationMode) -> None:
    tally = fuzz.tallies[principal]
    user = fuzz.principals[principal]
    token = _fresh_token(fuzz.factory, user.id)
    headers = {"Authorization": f"Bearer {token}"}

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=cases_per_mode(fuzz.backend), deadline=None, derandomize=True, database=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    def run(case: Any) -> None:
        case.headers = {**(case.headers or {}), **headers}
        response = case.call()
        tally.cases += 1
        tally.statuses[response.status_code] += 1
        if _is_server_error(response):
            tally.server_errors.append(f"{operation.label} -> {response.status_code}: {case.as_curl_command()}"
                                       f"\n{response.content[:500]!r}")
            return
        try:
            case.validate_response(response, checks=[response_schema_conformance])
        except AssertionError as exc:
            tally.nonconforming.append(f"{operation.label} -> {response.status_code}: {str(exc)[:500]}")
        if response.status_code >= 400 and not _is_error_body(response.content):
            tally.nonconforming.append(f"{operation.label} -> {response.status_code}: not the error body "
                                       f"{{code, message, details}}: {response.content[:300]!r}")

    try:
        run()
    except Unsatisfiable:
        if mode is not GenerationMode.NEGATIVE:
            raise
        # nothing in this operation's request can be made invalid (no parameters, no body)


def _operations(schema: Any) -> list[Any]:
    operations = []
    for result in schema.get_all_operations():
        operations.append(result.ok())
    return operations


@pytest.mark.timeout(1800)  # about 1 minute on an idle 2-core machine; much longer on a shared one
@pytest.mark.parametrize("principal", ["officer", "scientist"])
def test_no_operation_answers_a_server_error_or_breaks_its_schema(fuzz_node: FuzzNode, principal: str) -> None:
    tally = fuzz_node.tallies[principal]
    started = time.monotonic()
    for operation in _operations(fuzz_node.schema):
        tally.operations.add(operation.label)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            _fuzz_operation(fuzz_node, principal, operation, mode)
    tally.seconds = time.monotonic() - started
    assert tally.server_errors == [], "\n\n".join(tally.server_errors[:20])
    assert tally.nonconforming == [], "\n\n".join(tally.nonconforming[:20])
    assert tally.cases >= MIN_CASES // 2 * cases_per_mode(fuzz_node.backend) // DEFAULT_CASES_PER_MODE, tally.cases
