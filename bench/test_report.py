#!/usr/bin/env python3
"""Self-test of bench/report.py on synthetic rows (stdlib only; not part of .ci/run).

Run: python3 bench/test_report.py
"""

import json
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))


def load_row(scenario, rps, cpu_us=10.0, p99=1000, rnd=1):
    dur = 1.0
    req = int(rps * dur)
    return {"scenario": scenario, "round": rnd, "requests": req, "ok": req, "errors": 0,
            "non_2xx": 0, "rps": rps, "p50_us": p99 / 2, "p99_us": p99, "max_us": p99 * 2,
            "duration_s": dur, "server_cpu_s": cpu_us * req / 1e6, "client_cpu_s": 0.1,
            "machine_cpu_s": 0.5}


def run_report(rows, meta, check=False):
    with tempfile.TemporaryDirectory() as d:
        raw, m, md, js = (os.path.join(d, n) for n in ("raw.jsonl", "meta.json", "r.md", "r.json"))
        with open(raw, "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in rows)
        with open(m, "w") as f:
            json.dump(meta, f)
        args = [sys.executable, os.path.join(HERE, "report.py"), "--raw", raw, "--meta", m, "--md", md, "--json", js]
        p = subprocess.run(args + (["--check"] if check else []), capture_output=True, text=True)
        with open(js) as f:
            out = json.load(f)
        return p.returncode, {t["id"]: t for t in out["targets"]}, open(md).read()


class ReportTest(unittest.TestCase):
    def rows(self):
        return [
            load_row("baseline", 1000, cpu_us=10, p99=1000),
            load_row("authd_1token", 900, cpu_us=12, p99=1200),
            load_row("authd_1k", 800),
            load_row("peer", 100),
            load_row("auth_self", 300),
            {"scenario": "sqlite_commit", "round": 1, "commits_per_sec": 500.0},
            load_row("createtoken", 600),
        ]

    def test_ratios_share_and_thresholds(self):
        _, t, md = run_report(self.rows(), {"pg": "skipped: --skip-pg", "skip_big": True})
        self.assertAlmostEqual(t["one_token"]["value"], 0.9)
        self.assertTrue(t["one_token"]["pass"])
        self.assertAlmostEqual(t["cpu_per_request"]["value"], 1.2)
        self.assertTrue(t["cpu_per_request"]["pass"])          # <= 1.3
        self.assertAlmostEqual(t["p99"]["value"], 1.2)
        # (800 / 100) / (1000 / 100) = 0.80: below 0.85
        self.assertAlmostEqual(t["peer_share"]["value"], 0.8)
        self.assertFalse(t["peer_share"]["pass"])
        self.assertIn("(8.0 ÷ 10.0)", md)
        self.assertAlmostEqual(t["createtoken"]["value"], 1.2)
        self.assertTrue(t["createtoken"]["pass"])
        self.assertFalse(t["auth_self"]["pass"])              # 0.30 < 0.80

    def test_skipped_groups_do_not_fail_check(self):
        # Every SQLite target met; the 1M store and PostgreSQL left out.
        rows = [r for r in self.rows() if r["scenario"] not in ("auth_self", "authd_1k")]
        for s in ("authd_1k", "authd_100k", "auth_self", "account_current", "account_aid",
                  "account_list", "user_read", "introspect", "provider_read", "account_setting",
                  "entity_read", "auth_list_100"):
            rows.append(load_row(s, 900))
        rc, t, md = run_report(rows, {"pg": "skipped: PostgreSQL is not installed", "skip_big": True}, check=True)
        self.assertEqual(t["pg_cached"]["skipped"], "skipped (see the PostgreSQL line above)")
        self.assertEqual(t["size_1M"]["skipped"], "skipped (--skip-big)")
        self.assertIn("PostgreSQL: skipped: PostgreSQL is not installed", md)
        self.assertEqual(rc, 0, md)

    def test_miss_cost_is_a_difference(self):
        rows = self.rows() + [load_row("pg_1token", 900, cpu_us=50), load_row("pg_miss", 200, cpu_us=250)]
        _, t, _ = run_report(rows, {"pg": "measured: test"})
        self.assertAlmostEqual(t["pg_miss_cpu"]["value"], 200.0, places=3)
        self.assertIsNone(t["pg_cached"]["skipped"])


if __name__ == "__main__":
    unittest.main()
