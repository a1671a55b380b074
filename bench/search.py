"""Tensor search at 10k and 100k tensors: p50/p95 latency of several kinds of query.

Rows are bulk-inserted straight into a fresh database (metadata only, no blobs: search never reads them),
with realistic names, descriptions and tags, a few datasets and a few hundred grants for the searching user.
Each query runs what ``GET /api/v1/tensors/search`` runs (the filtered page, the total, the page's tags and
the caller's effective level on every hit), in process, without HTTP.

    python bench/search.py [--database-url URL] [--repeat 40] [--sizes 10000 100000]

SQLite in a temporary directory by default; pass a PostgreSQL URL to measure there (the database must be
empty; it is migrated to head).
"""

from __future__ import annotations

import argparse
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

from sqlalchemy import insert, select  # noqa: E402

from grid_runtime.core.database import create_database_engine, make_sessionmaker, upgrade  # noqa: E402
from grid_runtime.core.security import hash_password  # noqa: E402
from grid_runtime.node.datasets.models import Dataset, DatasetMember  # noqa: E402
from grid_runtime.node.groups.models import Group, GroupMember  # noqa: E402
from grid_runtime.node.permissions.models import Grant  # noqa: E402
from grid_runtime.node.roles.models import Role  # noqa: E402
from grid_runtime.node.tensors import service  # noqa: E402
from grid_runtime.node.tensors.models import Tensor, TensorTag, shape_key  # noqa: E402
from grid_runtime.node.users.models import User  # noqa: E402

SUBJECTS = ["mnist", "cifar10", "imagenet", "census", "adult", "mimic", "chexpert", "criteo", "movielens",
            "wikitext", "librispeech", "covid", "retail", "credit", "fraud", "ehr", "genomics", "satellite"]
PARTS = ["train", "test", "validation", "holdout", "features", "labels", "embeddings", "logits", "weights"]
WORDS = [
    "patients", "hospital", "admissions", "images", "labelled", "handwritten", "digits", "colour", "photos",
    "tabular", "survey", "income", "transactions", "clicks", "ratings", "reviews", "sentences", "audio",
    "clips", "spectrograms", "pixels", "normalised", "standardised", "anonymised", "deidentified", "sampled",
    "stratified", "cohort", "quarterly", "monthly", "regional", "scans", "xray", "ct", "mri", "sequences",
    "variants", "expression", "counts", "sensor", "readings", "telemetry",
]
TAGS = ["vision", "tabular", "text", "audio", "medical", "finance", "pii", "synthetic", "benchmark", "raw",
        "clean", "v1", "v2", "v3", "eu", "us", "quarantine", "approved", "gold", "silver"]
DTYPES = ["float32"] * 6 + ["float16", "float64", "int64", "uint8", "int32", "bool"]
SHAPES = [(60000, 784), (10000, 784), (50000, 3, 32, 32), (3000, 14), (3000,), (1000, 512), (128, 128),
          (25000, 300), (100000,), (64, 3, 224, 224)]


def _rows(start: int, count: int, rng: random.Random, owner_id: int) -> tuple[list[dict[str, Any]],
                                                                             list[dict[str, Any]]]:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    tensors, tags = [], []
    for i in range(start, start + count):
        subject, part = rng.choice(SUBJECTS), rng.choice(PARTS)
        shape = list(rng.choice(SHAPES))
        tensors.append({
            "id": i, "name": f"{subject}_{part}_{rng.randint(2015, 2026)}_{i}",
            "description": " ".join(rng.choices(WORDS, k=rng.randint(6, 18))),
            "shape": shape, "ndim": len(shape), "shape_key": shape_key(shape), "dtype": rng.choice(DTYPES),
            "size_bytes": rng.randint(1_000, 2_000_000_000), "sha256": f"{i:064x}",
            "visibility": "public" if rng.random() < 0.3 else "private", "columns": None,
            "object_key": f"tensors/bench-{i}.safetensors", "uploader_id": owner_id,
            "created_at": now + timedelta(seconds=i),
        })
        for tag in rng.sample(TAGS, rng.randint(1, 4)):
            tags.append({"tensor_id": i, "tag": tag})
    return tensors, tags


def _fill(sessions: Any, *, start: int, count: int, rng: random.Random, owner_id: int) -> None:
    batch = 5_000
    for offset in range(start, start + count, batch):
        tensors, tags = _rows(offset, min(batch, start + count - offset), rng, owner_id)
        with sessions.begin() as session:
            session.execute(insert(Tensor), tensors)
            session.execute(insert(TensorTag), tags)


def _people(sessions: Any) -> tuple[int, int]:
    with sessions.begin() as session:
        role = session.scalar(select(Role).where(Role.name == "Data Scientist"))
        assert role is not None
        owner = User(email="owner@bench", password_hash=hash_password("bench password"), role=role)
        scientist = User(email="scientist@bench", password_hash=hash_password("bench password"), role=role)
        session.add_all([owner, scientist])
        session.flush()
        return owner.id, scientist.id


def _grants_and_datasets(sessions: Any, *, total: int, owner_id: int, user_id: int, rng: random.Random) -> int:
    """A few hundred grants on tensors and datasets, for the user and two groups they belong to; a dataset of
    1000 members. Returns that dataset's id."""
    with sessions.begin() as session:
        groups = [Group(name=f"bench-group-{i}-{total}") for i in range(2)]
        session.add_all(groups)
        session.flush()
        session.add_all(GroupMember(group_id=g.id, user_id=user_id) for g in groups)
        dataset = Dataset(name=f"bench-{total}", description="", tags=[], bounds={}, visibility="private",
                          owner_id=owner_id)
        session.add(dataset)
        session.flush()
        members = rng.sample(range(1, total + 1), 1000)
        session.execute(insert(DatasetMember), [{"dataset_id": dataset.id, "role": f"part{i}", "tensor_id": t}
                                                for i, t in enumerate(members)])
        levels = ["search", "compute", "download", "deny"]
        taken: set[tuple[str, int, int]] = set()
        rows = []
        for _ in range(300):
            subject = rng.choice([("user", user_id), ("group", groups[0].id), ("group", groups[1].id)])
            tensor_id = rng.randint(1, total)
            if (subject[0], subject[1], tensor_id) in taken:
                continue
            taken.add((subject[0], subject[1], tensor_id))
            rows.append({"user_id": subject[1] if subject[0] == "user" else None,
                         "group_id": subject[1] if subject[0] == "group" else None,
                         "tensor_id": tensor_id, "dataset_id": None, "level": rng.choice(levels)})
        session.execute(insert(Grant), rows)
        session.add(Grant(group_id=groups[0].id, dataset_id=dataset.id, level="compute"))
        return dataset.id


def _measure(run: Callable[[], Any], repeat: int) -> tuple[float, float, int]:
    run()  # warm caches and the statement cache
    times = []
    hits = 0
    for _ in range(repeat):
        start = time.perf_counter()
        hits = run()
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return statistics.median(times), times[max(0, int(len(times) * 0.95) - 1)], hits


def _queries(dataset_id: int) -> dict[str, service.TensorQuery]:
    return {
        "text, one common word": service.TensorQuery(text="patients"),
        "text, two words": service.TensorQuery(text="mnist train"),
        "text, rare prefix": service.TensorQuery(text="chexp 2019"),
        "tag": service.TensorQuery(tags=["medical"]),
        "tags all (2)": service.TensorQuery(tags=["medical", "gold"]),
        "tags any (3)": service.TensorQuery(tags=["pii", "quarantine", "eu"], tags_mode="any"),
        "text+tag+dtype+visibility": service.TensorQuery(text="images", tags=["vision"], dtype="float32",
                                                         visibility="public"),
        "shape *,784": service.TensorQuery(shape="*,784"),
        "dataset (1000 members)": service.TensorQuery(dataset=str(dataset_id)),
        "no filter, by name, offset 5000": service.TensorQuery(sort="name", offset=5000),
        "no filter, newest first": service.TensorQuery(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", help="an empty database (default: SQLite in a temporary directory)")
    parser.add_argument("--repeat", type=int, default=40)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        engine = create_database_engine(url)
        upgrade(engine)
        sessions = make_sessionmaker(engine)
        from grid_runtime.core.settings import NodeSettings
        from grid_runtime.node import bootstrap

        with sessions.begin() as session:
            bootstrap.prepare(session, NodeSettings(state_dir=Path(tmp)))
        owner_id, user_id = _people(sessions)
        rng = random.Random(7)
        filled = 0
        print(f"database: {engine.dialect.name}; each figure: {args.repeat} runs of one page (limit 50) with "
              "its total, tags and the caller's levels")
        for size in sorted(args.sizes):
            start = time.perf_counter()
            _fill(sessions, start=filled + 1, count=size - filled, rng=rng, owner_id=owner_id)
            filled = size
            dataset_id = _grants_and_datasets(sessions, total=size, owner_id=owner_id, user_id=user_id, rng=rng)
            if engine.dialect.name == "postgresql":
                with engine.begin() as conn:
                    conn.exec_driver_sql("ANALYZE")
            else:
                with engine.begin() as conn:
                    conn.exec_driver_sql("ANALYZE")
            print(f"\n{size:,} tensors (filled in {time.perf_counter() - start:.1f} s)")
            print(f"  {'query':34} {'p50 ms':>8} {'p95 ms':>8} {'hits':>8}")
            for label, query in _queries(dataset_id).items():
                def run(query: service.TensorQuery = query) -> int:
                    with sessions() as session:
                        rows, total = service.search(session, query=query)
                        service.to_out(session, rows, user_id=user_id)
                        return total

                p50, p95, hits = _measure(run, args.repeat)
                print(f"  {label:34} {p50:8.1f} {p95:8.1f} {hits:8,}")
        engine.dispose()


if __name__ == "__main__":
    main()
