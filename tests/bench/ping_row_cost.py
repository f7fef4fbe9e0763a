#!/usr/bin/env python3
"""What one location ping's row costs SQLite to store, by the indexes it carries and the ids it has.

Each variant is the `location_pings` row (server/migrations/sqlite/0001_foundation.sql) in a fresh file
with the server's settings (WAL, synchronous = full), 200,000 rows already in it spread over 10,000
sessions, then 300 transactions of 64 rows each, timed. Ping ids are random (version 4, as phones sent
them until stop 16) or begin with the ping's time (version 7, `LocationPing::new_id`). Each variant runs
twice, interleaved, so a noisy moment does not favour one. Prints rows a second.

    python3 tests/bench/ping_row_cost.py [DIR]
"""
import os
import random
import sqlite3
import sys
import tempfile
import time
import uuid

COLUMNS = (
    "ping_id text {key}, session_id text not null, school_id text not null, user_id text not null, "
    "at bigint not null, latitude double precision not null, longitude double precision not null, "
    "accuracy_m double precision not null, battery_percent bigint null, received_at bigint not null"
)
INSERT = (
    "insert into location_pings (ping_id, session_id, school_id, user_id, at, latitude, longitude, "
    "accuracy_m, battery_percent, received_at) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) on conflict do nothing"
)
TODAY = [
    f"create table location_pings ({COLUMNS.format(key='primary key')})",
    "create index location_pings_session on location_pings (session_id, at)",
]
# name: (statements, time-ordered ids, cache_size pragma or None)
VARIANTS = {
    "today: ping_id key + (session_id, at) index, random ids": (TODAY, False, None),
    "today, random ids, 64 MB page cache": (TODAY, False, -65536),
    "today, time-ordered ids": (TODAY, True, None),
    "ping_id key only, random ids": ([f"create table location_pings ({COLUMNS.format(key='primary key')})"], False, None),
    "(session_id, ping_id) key, without rowid, random ids": (
        [f"create table location_pings ({COLUMNS.format(key='not null')}, primary key (session_id, ping_id)) without rowid"],
        False,
        None,
    ),
    "(session_id, at, ping_id) key, without rowid, random ids": (
        [f"create table location_pings ({COLUMNS.format(key='not null')}, primary key (session_id, at, ping_id)) without rowid"],
        False,
        None,
    ),
    "no key, no index (rows appended)": ([f"create table location_pings ({COLUMNS.format(key='not null')})"], False, None),
}


def time_ordered_id(millis):
    """A version-7 UUID: the time in its first 48 bits, then random bits (the version and variant set)."""
    n = (millis << 80) | random.getrandbits(80)
    n = (n & ~(0xF << 76)) | (0x7 << 76)
    n = (n & ~(0x3 << 62)) | (0x2 << 62)
    return str(uuid.UUID(int=n))


def rows_per_second(path, ddl, time_ordered, cache, before=200_000, transactions=300, per_transaction=64, sessions=10_000):
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("pragma journal_mode = wal")
    db.execute("pragma synchronous = full")
    if cache:
        db.execute(f"pragma cache_size = {cache}")
    for statement in ddl:
        db.execute(statement)
    visits = [str(uuid.uuid4()) for _ in range(sessions)]
    at = 1_764_000_000_000

    def row():
        nonlocal at
        at += 1
        ping_id = time_ordered_id(at) if time_ordered else str(uuid.uuid4())
        return (ping_id, random.choice(visits), "school", "user", at, 51.5, -0.12, 10.0, 80, at)

    db.execute("begin")
    db.executemany(INSERT, (row() for _ in range(before)))
    db.execute("commit")
    started = time.monotonic()
    for _ in range(transactions):
        db.execute("begin immediate")
        for _ in range(per_transaction):
            db.execute(INSERT, row())
        db.execute("commit")
    elapsed = time.monotonic() - started
    db.close()
    return transactions * per_transaction / elapsed


def main():
    folder = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="ping-row-cost-")
    print(f"load average at the start: {os.getloadavg()}")
    print("| row | run 1 | run 2 |\n|---|---|---|")
    results = {name: [] for name in VARIANTS}
    for _ in range(2):
        for name, (ddl, time_ordered, cache) in VARIANTS.items():
            results[name].append(rows_per_second(os.path.join(folder, "pings.db"), ddl, time_ordered, cache))
    for name, rates in results.items():
        print(f"| {name} | {rates[0]:,.0f}/s | {rates[1]:,.0f}/s |")


if __name__ == "__main__":
    main()
