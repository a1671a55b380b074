"""How long the budget check takes for a user with many recorded privacy events.

Builds a database (SQLite in a temporary directory, or ``--database-url``) with one user holding ``--events``
ledger entries (DP-SGD, Gaussian and Laplace events, at the node's order and δ), then times what a new release
request pays before it can be decided: the Rényi filter over the ledger (``budget.service.check_budget``:
the SQL sums of RDP and ε, plus ``admits``), and separately the new event's own cost (dp-accounting's best
order search, which the Node caches per event). A third figure is the worst case after the node's order is
changed: every recorded event is re-read at the new order.

    python bench/ledger.py [--events 10000] [--repeats 50] [--database-url URL]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import insert  # noqa: E402

from grid_runtime.core.database import create_database_engine, make_sessionmaker, upgrade  # noqa: E402
from grid_runtime.node import models  # noqa: E402,F401  (every table)
from grid_runtime.node.budget import service as budget  # noqa: E402
from grid_runtime.node.budget.models import LedgerEntry  # noqa: E402
from grid_runtime.node.roles.models import Role  # noqa: E402
from grid_runtime.node.users.models import User  # noqa: E402
from grid_runtime.privacy import accounting, events  # noqa: E402


def _events() -> list[dict[str, object]]:
    kinds = [
        events.dp_sgd_event(sample_rate=0.01, noise_multiplier=2.0, steps=100),
        events.gaussian_event(noise_multiplier=50.0),
        events.laplace_event(noise_multiplier=1000.0),
    ]
    return [events.event_to_dict(e) for e in kinds]


def _timed(fn: object, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append((time.perf_counter() - start) * 1000)
    return times


def _line(label: str, times: list[float]) -> str:
    times = sorted(times)
    p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
    return f"{label:<58} p50 {statistics.median(times):8.2f} ms   p99 {p99:8.2f} ms   (n={len(times)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'ledger.db'}"
        engine = create_database_engine(url)
        upgrade(engine)
        sessions = make_sessionmaker(engine)
        cfg = budget.PrivacyConfig(delta=accounting.DEFAULT_DELTA, order=accounting.DEFAULT_RDP_ORDER,
                                   release_policy="dp_only", webhook_url=None, request_ttl=timedelta(days=14))
        kinds = _events()
        costs = [budget.cost_of(e, cfg) for e in kinds]
        with sessions.begin() as session:
            role = Role(name="bench", capabilities=[])
            session.add(role)
            session.flush()
            user = User(email="bench@example.com", password_hash="-", role=role, budget_epsilon=1e6)
            session.add(user)
            session.flush()
            user_id = user.id
            rows = [
                {"user_id": user_id, "user_email": user.email, "dataset_id": 1, "request_id": i, "event": kinds[i % 3],
                 "non_private": False, "rdp_order": cfg.order, "rdp": costs[i % 3].rdp,
                 "epsilon": costs[i % 3].epsilon, "delta": cfg.delta}
                for i in range(args.events)
            ]
            for start in range(0, len(rows), 1000):
                session.execute(insert(LedgerEntry), rows[start:start + 1000])

        new_event = events.dp_sgd_event(sample_rate=0.02, noise_multiplier=1.1, steps=250)
        new_cost = budget.cost_of(new_event, cfg)

        def check() -> None:
            with sessions.begin() as session:
                budget.check_budget(session, user=session.get(User, user_id), dataset_ids=[1], cost=new_cost,
                                    cfg=cfg)

        def own_cost() -> None:
            accounting.epsilon(new_event, cfg.delta)

        other_order = budget.PrivacyConfig(delta=cfg.delta, order=cfg.order + 1, release_policy="dp_only",
                                           webhook_url=None, request_ttl=cfg.request_ttl)

        def reread() -> None:
            with sessions() as session:
                budget.spent(session, other_order, user_id=user_id)

        check()  # warm up
        print(f"gridctl ledger benchmark: {args.events} events for one user; {engine.dialect.name}; "
              f"Python {platform.python_version()}, {platform.system()} {platform.machine()}, "
              f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
        print(_line("filter check (ledger sums at the node's order + admits)", _timed(check, args.repeats)))
        print(_line("new event's own ε (dp-accounting, uncached)", _timed(own_cost, max(5, args.repeats // 10))))
        print(_line("every event re-read at another order (after a change)", _timed(reread, 3)))
        engine.dispose()


if __name__ == "__main__":
    main()
