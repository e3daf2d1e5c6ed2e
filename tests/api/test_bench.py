"""`bench_api` on a small database (the million-row runs are for `phatnguoi bench api`, not tests)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.bench import BenchWorld, bench_api, fill_violations
from api.db import make_engine
from api.models import Violation
from tests.api.conftest import Db


def test_bench_api_fills_and_measures(db: Db, session: Session) -> None:
    messages: list[str] = []
    result = bench_api(db.url, rows=3000, samples=5, ingest_count=4, ingest_clients=2, evidence_kb=40,
                       progress=messages.append)  # fmt: skip
    assert result["database"] == db.kind and result["rows"] == 3000
    assert set(result["latency_ms"]) == {
        "list_first_page", "list_first_page_new", "list_deep_page", "search_exact", "search_prefix",
        "search_suffix", "search_fuzzy1", "search_fuzzy2", "map_day",
    }  # fmt: skip
    for stats in result["latency_ms"].values():
        assert 0 < stats["p50"] <= stats["p95"] <= stats["max"] and stats["n"] == 5
    assert result["ingest"]["sequential_per_s"] > 0 and result["ingest"]["concurrent_per_s"] > 0
    assert any("filled 3,000/3,000" in m for m in messages)
    # 3000 synthetic rows plus 2 x 4 ingested packages.
    assert session.scalar(select(func.count()).select_from(Violation)) == 3008
    # A second fill finds the rows there and adds none.
    engine = make_engine(db.url)
    try:
        assert fill_violations(engine, BenchWorld({}, {}, 0, "", 0), 3000) == 0.0
    finally:
        engine.dispose()
