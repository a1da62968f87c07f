#!/usr/bin/env python3
"""Figures for docs/replication.md, on the release server
(not run in CI; about 8 minutes on 2 cores):

1. write throughput: order drafts per second with wrk (2 threads, 64
   connections) against a server on its own, the same with its automatic
   checkpoints off (what database.checkpoints = "litestream" does; not a
   setting to run without Litestream), and a server under Litestream (S3
   replica on moto_server), in turn, same run, fresh database each; and
   the share of a core Litestream itself used;
2. restore time at 100,000 orders: drafts under Litestream until the
   database holds 100,000 orders, a clean stop, then `litestream restore`
   of the S3 replica into a fresh folder, timed, with integrity_check;
3. RPO: the restore drill's kill -9 run several times per replica kind; the
   largest age at the kill of an acknowledged write missing after restore.

Rate limits are off (one user drafts thousands of orders a second). Needs
wrk (apt-get install wrk).

    cargo build --release && deploy/drill/measure --server-bin target/release/wemaster
"""

import argparse
import json
import os
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import drill
from drill import Machine, S3Replica, integrity, litestream_restore, log, stop


def wrk(api, token, offering, seconds, folder):
    script = Path(folder) / "draft.lua"
    body = json.dumps({"offeringId": offering["id"], "variantId": offering["variants"][0]["id"], "quantity": 1})
    script.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = '{body}'\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["Authorization"] = "Bearer {token}"\n'
    )
    out = subprocess.run(
        ["wrk", "-t2", "-c64", f"-d{seconds}s", "-s", str(script), f"{api.base}/api/v1/orders/draft"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    if "Non-2xx" in out:
        raise SystemExit(f"measure: drafts failed under wrk:\n{out}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def cpu_seconds(pid):
    """CPU time `pid` has used so far (user + system), not its children's."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def session(api):
    token = api.login("student@test.com", "password123")
    status, offerings = api.json("GET", "/api/v1/offerings?limit=1")
    assert status == 200
    return token, offerings[0]


def orders_in(db):
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT count(*) FROM orders").fetchone()[0]
    finally:
        conn.close()


def throughput(server_bin, root, rounds, seconds):
    s3 = S3Replica(root)
    rates = {"plain": [], "no-autocheckpoint": [], "litestream": []}
    litestream_cpu = []
    try:
        for r in range(rounds):
            for kind in rates:
                machine = Machine(root, f"throughput-{kind}-{r}")
                if kind == "plain":
                    proc = machine.serve(server_bin)
                elif kind == "no-autocheckpoint":
                    proc = machine.serve(server_bin, {"WEMASTER_DATABASE__CHECKPOINTS": "litestream"})
                else:
                    proc = machine.serve_under_litestream(server_bin, s3.url_for(f"throughput-{r}"), s3.env)
                token, offering = session(machine.api)
                cpu = cpu_seconds(proc.pid)
                rate = wrk(machine.api, token, offering, seconds, machine.dir)
                rates[kind].append(rate)
                if kind == "litestream":
                    # Share of one core Litestream itself used while wrk ran.
                    litestream_cpu.append((cpu_seconds(proc.pid) - cpu) / seconds)
                log(f"round {r + 1}: {kind}: {rate:.0f} drafts/s")
                assert stop(proc) == 0
    finally:
        s3.close()
    return rates, litestream_cpu


def restore_at(server_bin, root, target):
    s3 = S3Replica(root)
    try:
        primary = Machine(root, "hundred-thousand")
        proc = primary.serve_under_litestream(server_bin, s3.url, s3.env)
        token, offering = session(primary.api)
        started = time.monotonic()
        rate = 1000.0
        while (n := orders_in(primary.db)) < target:
            seconds = max(1, min(15, round((target - n) / rate)))
            rate = wrk(primary.api, token, offering, seconds, primary.dir)
        load = time.monotonic() - started
        assert stop(proc) == 0, "litestream did not stop cleanly"
        # A draft wrk gave up on may still have committed: count after the stop.
        n = orders_in(primary.db)
        log(f"{n} orders in {load:.0f} s under Litestream")
        size = primary.db.stat().st_size
        fresh = Machine(root, "restored")
        seconds = litestream_restore(s3.url, fresh.db, s3.env)
        restored = orders_in(fresh.db)
        assert restored == n, f"restored {restored} orders of {n}"
        check = integrity(fresh.db)
        assert check == "ok", check
        return {"orders": n, "database_bytes": size, "restore_seconds": round(seconds, 2)}
    finally:
        s3.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server-bin", default=str(drill.ROOT / "target" / "release" / "wemaster"))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=10, help="wrk duration per throughput round")
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--rpo-runs", type=int, default=3, help="kill -9 drills per replica kind")
    parser.add_argument("--parts", default="throughput,restore,rpo", help="which figures, comma-separated")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    server_bin = Path(args.server_bin).resolve()
    if shutil.which("wrk") is None:
        sys.exit("measure: needs wrk (apt-get install wrk)")
    root = Path(tempfile.mkdtemp(prefix="wemaster-measure-"))
    figures = {}
    try:
        if "throughput" in parts:
            rates, cpu = throughput(server_bin, root, args.rounds, args.seconds)
            median = {k: statistics.median(v) for k, v in rates.items()}
            figures["throughput"] = {
                "drafts_per_second": {k: [round(x) for x in v] for k, v in rates.items()},
                "median": {k: round(v) for k, v in median.items()},
                "litestream_vs_plain_percent": round(100 * (median["litestream"] / median["plain"] - 1), 1),
                "litestream_vs_no_autocheckpoint_percent": round(
                    100 * (median["litestream"] / median["no-autocheckpoint"] - 1), 1
                ),
                "litestream_cpu_share_of_one_core": [round(c, 3) for c in cpu],
            }
        if "restore" in parts:
            figures["restore"] = restore_at(server_bin, root, args.orders)
        rpos = {}
        for kind in ("s3", "file") if "rpo" in parts else ():
            runs = [drill.drill(kind, server_bin, 10, 4, False) for _ in range(args.rpo_runs)]
            rpos[kind] = {
                "rpo_seconds": [r["new_machine"]["rpo_seconds"] for r in runs],
                "lost_writes": [r["new_machine"]["lost_orders"] + r["new_machine"]["lost_payments"] for r in runs],
                "restore_seconds": [r["new_machine"]["restore_seconds"] for r in runs],
                "takeover_seconds": [r["standby"]["takeover_seconds"] for r in runs],
            }
        if rpos:
            figures["rpo"] = rpos
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
