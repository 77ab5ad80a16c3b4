#!/usr/bin/env python3
"""SQLite's own point-read cost on an authd store, without authd around it (issue 12).

Usage: python3 bench/sqlite-floor.py DATA_DIR [MMAP_BYTES]

Reads DATA_DIR/authd.db (read-only use) and the bench seeder's DATA_DIR/tokens file, then
times 50,000 reads by random token id, twice each: a bare primary-key read of `auths`, and
the token cache's miss query (its three-table join). Prints µs per read; each figure includes
the Python interpreter's own cost (~3 µs here). The first pair of passes also warms the OS page
cache (after other work it can be several times slower): read the second. MMAP_BYTES sets
PRAGMA mmap_size (default 0).
"""
import random
import sqlite3
import sys
import time

data_dir = sys.argv[1]
mmap = int(sys.argv[2]) if len(sys.argv) > 2 else 0
ids = []
with open(f"{data_dir}/tokens") as f:
    for i, line in enumerate(f):
        if i % 10 == 0:
            ids.append(line.split(".")[1])
conn = sqlite3.connect(f"file:{data_dir}/authd.db?mode=ro", uri=True)
conn.execute(f"PRAGMA mmap_size={mmap}")
MISS = (
    "SELECT a.id, a.account_id, a.kind, a.provider_id, a.name, a.label, a.description, "
    "a.user_id, a.user_name, a.parent_id, a.scopes, a.expires_ms, a.ttl_secs, a.created_ms, "
    "a.updated_ms, a.last_accessed_ms, c.aid, a.token_hash, u.roles AS user_roles "
    "FROM auths a JOIN accounts c ON c.id = a.account_id "
    "LEFT JOIN users u ON u.account_id = a.account_id AND u.id = a.user_id "
    "WHERE a.kind = 'api_token' AND a.id = ?"
)
BARE = "SELECT id FROM auths WHERE id = ?"
N = 50_000
for name, sql in (("primary-key read", BARE), ("miss query", MISS)) * 2:
    random.shuffle(ids)
    found = 0
    t = time.perf_counter()
    for i in ids[:N]:
        found += conn.execute(sql, (i,)).fetchone() is not None
    dt = time.perf_counter() - t
    print(f"{name}: {dt / N * 1e6:.1f} µs per read ({found} of {N} found, mmap_size {mmap})")
