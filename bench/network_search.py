"""Search on a Network (5 Nodes of 20,000 entries each) against the same search on one Node holding all 100,000.

The Network's catalogue is bulk-inserted straight into a fresh Network database (what 5 Nodes' pushes leave
there), the Node's tensors into a fresh Node database, both from the same generator as ``bench/search.py``
(names, descriptions, tags). Each query runs what the route runs (``GET /api/v1/search`` on the Network: one
page of 50 hits with its total; ``GET /api/v1/tensors`` on the Node: the page, its total, tags and the caller's
level on each hit), in process, without HTTP.

    python bench/network_search.py [--repeat 40] [--nodes 5] [--per-node 20000]

Prints p50/p95 in ms for each query on both, and the ratio of the p50s.
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import insert  # noqa: E402

from grid_runtime.core.database import create_database_engine, make_sessionmaker, read_engine, upgrade  # noqa: E402
from grid_runtime.core.settings import NetworkSettings, NodeSettings  # noqa: E402
from grid_runtime.network import catalogue  # noqa: E402
from grid_runtime.network.database import upgrade_network  # noqa: E402
from grid_runtime.network.models import (  # noqa: E402
    APPROVED,
    Association,
    CatalogueEntry,
    CatalogueTag,
    CatalogueWord,
)

_spec = importlib.util.spec_from_file_location("bench_search", Path(__file__).with_name("search.py"))
assert _spec is not None and _spec.loader is not None
node_bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(node_bench)

QUERIES: dict[str, dict[str, Any]] = {
    "one common word": {"text": "patients"},
    "two words": {"text": "mnist train"},
    "rare word": {"text": "chexpert 2019"},
    "prefix + word": {"text": "chexp* 2019", "node_text": "chexp 2019"},  # the Node's words are prefixes already
    "one tag": {"tags": ["medical"]},
    "all of 2 tags": {"tags": ["medical", "gold"]},
    "text + tag": {"text": "images", "tags": ["vision"]},
}


def measure(run: Callable[[], int], repeat: int) -> tuple[float, float, int]:
    run()
    times, hits = [], 0
    for _ in range(repeat):
        start = time.perf_counter()
        hits = run()
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return statistics.median(times), times[max(0, int(len(times) * 0.95) - 1)], hits


def fill_network(url: str, *, nodes: int, per_node: int) -> Any:
    engine = create_database_engine(url)
    upgrade_network(engine)
    sessions = make_sessionmaker(engine)
    rng = random.Random(7)
    now = datetime.now(UTC)
    with sessions.begin() as session:
        associations = [Association(node_name=f"node-{n}", node_url=f"https://node-{n}.example.com", state=APPROVED,
                                    push_hash=f"{n:064x}", node_credential=None, last_push_at=now)
                        for n in range(nodes)]
        session.add_all(associations)
        session.flush()
        ids = [a.id for a in associations]
    entry_id = 0
    for association_id in ids:
        for start in range(1, per_node + 1, 5000):
            tensors, tags = node_bench._rows(start, min(5000, per_node + 1 - start), rng, 1)
            entries: list[dict[str, Any]] = []
            entry_tags: list[dict[str, Any]] = []
            entry_words: list[dict[str, Any]] = []
            by_tensor: dict[int, list[str]] = {}
            for tag in tags:
                by_tensor.setdefault(tag["tensor_id"], []).append(tag["tag"])
            for tensor in tensors:
                entry_id += 1
                names = sorted(by_tensor.get(tensor["id"], []))
                entries.append({"id": entry_id, "association_id": association_id, "kind": "tensor",
                                "object_id": tensor["id"], "name": tensor["name"],
                                "description": tensor["description"], "tags": names, "shape": tensor["shape"],
                                "dtype": tensor["dtype"], "visibility": tensor["visibility"],
                                "created_at": tensor["created_at"],
                                "seen_at": now - timedelta(seconds=1)})
                entry_tags.extend({"entry_id": entry_id, "tag": t} for t in names)
                entry_words.extend({"entry_id": entry_id, "word": w}
                                   for w in catalogue.words_of(f"{tensor['name']} {tensor['description']}"))
            with sessions.begin() as session:
                session.execute(insert(CatalogueEntry), entries)
                session.execute(insert(CatalogueTag), entry_tags)
                session.execute(insert(CatalogueWord), entry_words)
    with engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")
    return engine


def fill_node(url: str, tmp: Path, *, total: int) -> tuple[Any, int]:
    engine = create_database_engine(url)
    upgrade(engine)
    sessions = make_sessionmaker(engine)
    from grid_runtime.node import bootstrap

    with sessions.begin() as session:
        bootstrap.prepare(session, NodeSettings(state_dir=tmp))
    owner_id, user_id = node_bench._people(sessions)
    node_bench._fill(sessions, start=1, count=total, rng=random.Random(7), owner_id=owner_id)
    with engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")
    return engine, user_id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=40)
    parser.add_argument("--nodes", type=int, default=5)
    parser.add_argument("--per-node", type=int, default=20_000)
    args = parser.parse_args()
    total = args.nodes * args.per_node
    settings = NetworkSettings()
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        network = fill_network(f"sqlite:///{Path(tmp) / 'network.db'}", nodes=args.nodes, per_node=args.per_node)
        node, user_id = fill_node(f"sqlite:///{Path(tmp) / 'node.db'}", Path(tmp), total=total)
        print(f"SQLite; a Network of {args.nodes} Nodes x {args.per_node:,} entries and one Node of {total:,} "
              f"tensors (filled in {time.perf_counter() - started:.0f} s); {args.repeat} runs of one page (limit 50) "
              "with its total")
        network_reads = make_sessionmaker(read_engine(network))
        node_reads = make_sessionmaker(read_engine(node))
        from grid_runtime.node.tensors import service

        print(f"  {'query':18} {'Network p50':>12} {'p95':>7} {'hits':>8}   {'one Node p50':>12} {'p95':>7} "
              f"{'hits':>8}   {'ratio':>6}")
        for label, query in QUERIES.items():
            def on_network(query: dict[str, Any] = query) -> int:
                with network_reads() as session:
                    return catalogue.search(session, text=query.get("text"), tags=query.get("tags", []), kind=None,
                                            node=None, limit=50, offset=0, settings=settings).total

            def on_node(query: dict[str, Any] = query) -> int:
                with node_reads() as session:
                    text = query.get("node_text", query.get("text"))
                    rows, found = service.search(session, query=service.TensorQuery(text=text,
                                                                                    tags=query.get("tags", [])))
                    service.to_out(session, rows, user_id=user_id)
                    return found

            n50, n95, nhits = measure(on_network, args.repeat)
            s50, s95, shits = measure(on_node, args.repeat)
            print(f"  {label:18} {n50:12.1f} {n95:7.1f} {nhits:8,}   {s50:12.1f} {s95:7.1f} {shits:8,}   "
                  f"{n50 / s50:6.2f}")
        network.dispose()
        node.dispose()


if __name__ == "__main__":
    main()
