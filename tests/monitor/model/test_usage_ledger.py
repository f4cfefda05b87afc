"""UsageLedger: the documented interface (add/after/load/records/trim/cursor) on columnar storage,
and the per-user totals behind the /metrics counters."""

from __future__ import annotations

from monitor.model.usage import UsageLedger, UsageRecord


def record(start: float, user: str = "ann", gpu_s: float = 60.0, run: str = "") -> UsageRecord:
    return UsageRecord(start, 60.0, "h", "0", "GPU-x", user, run, 60.0, gpu_s, 10.0, 30.0, 6000.0)


def test_records_come_back_equal_in_order_with_cursors() -> None:
    ledger = UsageLedger()
    assert ledger.cursor == 0 and ledger.after(0) == (0, [])
    first = [record(0.0), record(60.0, "bob", run="r1")]
    ledger.add(first)
    cursor = ledger.cursor
    assert cursor == 2
    ledger.add([record(120.0)])
    assert ledger.after(0) == (3, [*first, record(120.0)])
    assert ledger.after(cursor) == (3, [record(120.0)])
    assert ledger.after(3) == (3, [])
    assert ledger.records(60.0, 120.0) == [record(60.0, "bob", run="r1")]
    assert len(ledger) == 3


def test_load_returns_the_cursor_after_the_file_and_does_not_count_as_live_usage() -> None:
    ledger = UsageLedger()
    assert ledger.load([record(0.0), record(60.0)]) == 2
    ledger.add([record(120.0, gpu_s=30.0)])
    assert ledger.after(2) == (3, [record(120.0, gpu_s=30.0)])
    totals = ledger.user_totals()
    assert (totals["ann"].gpu_s, totals["ann"].idle_s, totals["ann"].energy_j) == (30.0, 10.0, 6000.0)


def test_trim_drops_old_records_but_not_the_totals_and_columns_slice_by_start() -> None:
    ledger = UsageLedger(max_age_s=3600.0)
    ledger.add([record(0.0), record(4000.0, "bob"), record(5000.0)])
    assert ledger.trim(5000.0) == 1
    assert ledger.records(0.0, 1e9) == [record(4000.0, "bob"), record(5000.0)]
    assert ledger.user_totals()["ann"].gpu_s == 120.0
    columns = ledger.columns(4500.0, 6000.0)
    assert columns.rows["start"].tolist() == [5000.0]
    assert [columns.field("user")[k] for k in columns.rows["key"]] == ["ann"]


def test_old_minutes_roll_into_hours_so_memory_stays_bounded() -> None:
    from monitor.model.usage import UsageLedger, UsageRecord

    ledger = UsageLedger(max_age_s=30 * 86400.0, minute_age_s=2 * 86400.0)
    day = 86400.0
    t0 = 1_800_000_000.0 - 1_800_000_000.0 % 3600.0  # a whole hour
    minutes = [UsageRecord(t0 + 60 * i, 60.0, "h", "0", "u0", user, "r", 60.0, 30.0, 10.0, 15.0, 100.0)
               for i in range(180) for user in ("alice", "bob")]  # 3 hours, 2 users
    ledger.add(minutes)
    cursor = ledger.cursor
    totals = ledger.user_totals()
    assert ledger.trim(t0 + 1 * day) == 0, "younger than minute_age_s: kept as minutes"
    gone = ledger.trim(t0 + 3 * day)
    rows = ledger.records(t0, t0 + 3 * 3600)
    assert gone == 360 - 6 and len(rows) == 6 and {r.span_s for r in rows} == {3600.0}
    alice = sorted((r for r in rows if r.user == "alice"), key=lambda r: r.start)
    assert [r.start for r in alice] == [t0, t0 + 3600, t0 + 7200]
    assert all(r.gpu_s == 60 * 30.0 and r.energy_j == 60 * 100.0 and r.held_s == 3600.0 for r in alice)
    assert ledger.after(cursor) == (cursor, []), "rolled rows are not new to the durable writer"
    assert ledger.user_totals() == totals, "the /metrics counters never go down"
    assert ledger.trim(t0 + 31 * day) == 6, "beyond max_age_s everything goes"
