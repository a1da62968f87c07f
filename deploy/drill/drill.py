#!/usr/bin/env python3
"""Restore drill: WeMaster under Litestream loses a machine and comes back
on another one.

For each replica kind (s3: a real S3 API, moto_server on a loopback port;
file: a folder), in a fresh temporary folder:

1. graceful stop: serve under `litestream replicate -exec`, take orders and
   payments, SIGTERM Litestream; the signal reaches the server, the server
   checkpoints (PASSIVE) and exits, Litestream uploads the rest and exits 0;
   a restore holds every write.
2. crash: serve under Litestream again on the same file, with a standby
   machine following the replica (`litestream restore -f`); draft orders and
   pay some through signed webhooks from several threads, then kill -9 both
   processes mid-stream.
3. new machine: `litestream restore` into a fresh folder; PRAGMA
   integrity_check; `wemaster serve` on it; every order and payment
   acknowledged more than the configured window (monitor-interval +
   sync-interval of deploy/litestream.yml, 2 s, plus 0.5 s for the upload)
   before the kill is there.
4. standby: stop the follower and serve its copy under Litestream, to the
   same replica; the same checks, then every webhook event of the run is
   delivered again, as Stripe retries (events acknowledged before the kill,
   lost with the primary, or never answered): each applies exactly once, a
   second round changes nothing, and money for an order lost with the old
   primary is listed by reconciliation.
5. a restore after the failover holds what the new primary wrote.
6. point-in-time: `litestream restore -timestamp` of a moment between the
   first and the second run gives exactly the first run's orders.

Measures the data-loss window (RPO): the age at the kill of the oldest
acknowledged write missing after restore, and the restore and takeover
times. Writes only to 127.0.0.1. Rate limits are off (the drill writes
faster than one person may), which does not touch replication.

    deploy/drill/run --server-bin target/debug/wemaster [--replica s3|file] [--seconds 12]
"""

import argparse
import csv
import hashlib
import hmac
import io
import json
import os
import random
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

# The readiness wait shared with contract/ (deploy/launch.py).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import launch  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
LITESTREAM = HERE / ".venv" / "bin" / "litestream"
MOTO_SERVER = HERE / ".venv" / "bin" / "moto_server"
CONFIG = ROOT / "deploy" / "litestream.yml"
# A write is off the machine within monitor-interval + sync-interval plus
# the upload itself; the drill allows the upload this long.
UPLOAD_ALLOWANCE = 0.5
# The dev provider's webhook secret (wemaster.toml); the drill's servers use it.
SECRET = "whsec_dev_only_change_me"
BUCKET = "wemaster-drill"
# Every request goes to 127.0.0.1: never through a proxy from the environment.
HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def environ(extra):
    """This process's environment with `extra` applied (None unsets)."""
    env = dict(os.environ)
    for k, v in extra.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    return env


def log(*args):
    print("drill:", *args, flush=True)


def configured_window():
    """monitor-interval + sync-interval of deploy/litestream.yml, seconds."""
    text = CONFIG.read_text()

    def seconds(key):
        m = re.search(rf"^\s*{key}:\s*(\d+(?:\.\d+)?)(ms|s)\s*$", text, re.M)
        if not m:
            sys.exit(f"drill: {CONFIG} has no {key}")
        value = float(m.group(1))
        return value / 1000 if m.group(2) == "ms" else value

    return seconds("monitor-interval") + seconds("sync-interval")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- HTTP


class Api:
    def __init__(self, port):
        self.base = f"http://127.0.0.1:{port}"

    def call(self, method, path, body=None, token=None, headers=None, timeout=10):
        data = None
        h = dict(headers or {})
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            h.setdefault("content-type", "application/json")
        if token:
            h["authorization"] = f"Bearer {token}"
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=h)
        try:
            with HTTP.open(req, timeout=timeout) as resp:
                return resp.status, resp.read(), resp.headers
        except urllib.error.HTTPError as e:
            return e.code, e.read(), e.headers

    def json(self, method, path, body=None, token=None, headers=None):
        status, raw, _ = self.call(method, path, body, token, headers)
        return status, (json.loads(raw) if raw else None)

    def wait_ready(self, proc, log, seconds=60):
        try:
            launch.wait_ready(self.base, proc.poll, log, seconds)
        except SystemExit as e:
            raise SystemExit(f"drill: {e.code}") from None

    def login(self, email, password):
        status, body = self.json("POST", "/api/v1/auth/login", {"email": email, "password": password})
        assert status == 200, f"login {email}: {status} {body}"
        return body["accessToken"]

    def deliver(self, event):
        """Delivers a Stripe event signed now, as Stripe does."""
        payload = json.dumps(event, separators=(",", ":")).encode()
        t = int(time.time())
        sig = hmac.new(SECRET.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
        return self.json(
            "POST",
            "/api/v1/payments/webhooks/stripe",
            payload,
            headers={"Stripe-Signature": f"t={t},v1={sig}"},
        )

    def orders(self, admin):
        status, raw, _ = self.call("GET", "/api/v1/orders/export.csv", token=admin, timeout=60)
        assert status == 200, f"export: {status}"
        return {row["id"]: row["status"] for row in csv.DictReader(io.StringIO(raw.decode()))}

    def payments(self, admin):
        """Order id -> number of payments recorded for it."""
        counts, page = {}, 1
        while True:
            status, body = self.json("GET", f"/api/v1/payments?limit=100&page={page}", token=admin)
            assert status == 200, f"payments: {status} {body}"
            for p in body:
                if p.get("orderId"):
                    counts[p["orderId"]] = counts.get(p["orderId"], 0) + 1
            if len(body) < 100:
                return counts
            page += 1


def paid_event(order):
    return {
        "id": f"evt_drill_{order['id']}",
        "object": "event",
        "type": "checkout.session.completed",
        "created": int(time.time()),
        "data": {
            "object": {
                "id": f"cs_drill_{order['id']}",
                "object": "checkout.session",
                "amount_total": order["amount"],
                "currency": order["currency"],
                "payment_status": "paid",
                "payment_intent": f"pi_drill_{order['id']}",
                "metadata": {"orderId": order["id"]},
            }
        },
    }


# ---------------------------------------------------------------- processes


class Machine:
    """One folder standing for one machine's disk."""

    def __init__(self, root, name):
        self.dir = Path(root) / name
        self.dir.mkdir(parents=True)
        self.db = self.dir / "wemaster.db"
        self.port = free_port()
        self.api = Api(self.port)
        self.log_path = self.dir / "server.log"

    def env(self, replica_url, extra_env):
        env = environ(extra_env)
        env.update(
            {
                "WEMASTER_DATABASE__PATH": str(self.db),
                "WEMASTER_SERVER__ADDR": f"127.0.0.1:{self.port}",
                "WEMASTER_METRICS__ADDR": "127.0.0.1:0",
                "WEMASTER_RATE_LIMIT__ENABLED": "false",
                "NO_COLOR": "1",
            }
        )
        if replica_url:
            env.update(
                {
                    "LITESTREAM_REPLICA_URL": replica_url,
                    "WEMASTER_DATABASE__CHECKPOINTS": "litestream",
                    "WEMASTER_HEALTH__LITESTREAM_SOCKET": f"{self.db}.litestream.sock",
                }
            )
        return env

    def serve_under_litestream(self, server_bin, replica_url, extra_env):
        cmd = [str(LITESTREAM), "replicate", "-config", str(CONFIG), "-exec", f"{server_bin} serve"]
        return self._start(cmd, self.env(replica_url, extra_env))

    def serve(self, server_bin, extra_env=None):
        return self._start([str(server_bin), "serve"], self.env(None, extra_env or {}))

    def _start(self, cmd, env):
        out = open(self.log_path, "a")
        proc = subprocess.Popen(cmd, cwd=self.dir, env=env, stdout=out, stderr=subprocess.STDOUT)
        self.api.wait_ready(proc, self.log_path)
        return proc


def children(pid):
    """Child pids of `pid` (Go starts the child from any of its threads)."""
    kids = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            kids += [int(k) for k in (task / "children").read_text().split()]
        except OSError:
            pass
    return kids


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def stop(proc, sig=signal.SIGTERM, seconds=30):
    if proc.poll() is None:
        proc.send_signal(sig)
    return proc.wait(seconds)


def litestream_restore(replica_url, output, extra_env):
    started = time.monotonic()
    env = environ(extra_env)
    result = subprocess.run(
        [str(LITESTREAM), "restore", "-o", str(output), replica_url],
        env=env,
        capture_output=True,
        text=True,
    )
    elapsed = time.monotonic() - started
    if result.returncode != 0:
        raise SystemExit(f"drill: litestream restore failed:\n{result.stdout}{result.stderr}")
    return elapsed


def integrity(db):
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()


# ---------------------------------------------------------------- replicas


class S3Replica:
    kind = "s3"

    def __init__(self, root):
        self.port = free_port()
        self.log = open(Path(root) / "moto.log", "w")
        self.proc = subprocess.Popen(
            [str(MOTO_SERVER), "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.time() + 30
        while True:
            try:
                req = urllib.request.Request(f"http://127.0.0.1:{self.port}/{BUCKET}", method="PUT")
                HTTP.open(req, timeout=2).read()
                break
            except OSError:
                if time.time() > deadline or self.proc.poll() is not None:
                    raise SystemExit("drill: moto_server did not start")
                time.sleep(0.2)
        self.env = {
            # Litestream 0.5.17 cannot load its S3 client when AWS_CA_BUNDLE
            # is set ("unable to add custom RootCAs HTTPClient"); the
            # endpoint here is plain HTTP on loopback, so no CA is needed.
            "AWS_CA_BUNDLE": None,
            "AWS_ACCESS_KEY_ID": "drill",
            "AWS_SECRET_ACCESS_KEY": "drill",
            "AWS_REGION": "us-east-1",
        }
        self.url = self.url_for("wemaster")

    def url_for(self, path):
        return f"s3://{BUCKET}/{path}?endpoint=http://127.0.0.1:{self.port}&region=us-east-1"

    def close(self):
        stop(self.proc)


class FileReplica:
    kind = "file"

    def __init__(self, root):
        self.dir = Path(root) / "replica"
        self.env = {}
        self.url = f"file://{self.dir}"

    def close(self):
        pass


# ---------------------------------------------------------------- load


class Ledger:
    """What the server acknowledged, and when (time.time() at the answer)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.orders = {}  # id -> (order, acked_at)
        self.payments = {}  # order id -> acked_at
        self.events = []  # every event sent, acknowledged or not
        self.errors = 0

    def order(self, order):
        with self.lock:
            self.orders[order["id"]] = (order, time.time())

    def sent(self, event):
        with self.lock:
            self.events.append(event)

    def paid(self, order_id):
        with self.lock:
            self.payments[order_id] = time.time()


def writer(api, token, offerings, ledger, stop_at, stopped, seed):
    rng = random.Random(seed)
    while not stopped.is_set() and time.time() < stop_at:
        o = rng.choice(offerings)
        body = {"offeringId": o["id"], "variantId": o["variants"][0]["id"], "quantity": 1}
        try:
            status, order = api.json("POST", "/api/v1/orders/draft", body, token=token)
        except OSError:
            if stopped.is_set():
                return
            ledger.errors += 1
            continue
        if status not in (200, 201):
            ledger.errors += 1
            continue
        ledger.order(order)
        if rng.random() < 0.5:
            event = paid_event(order)
            ledger.sent(event)
            try:
                status, ack = api.deliver(event)
            except OSError:
                if stopped.is_set():
                    return
                ledger.errors += 1
                continue
            if status == 200 and ack["outcome"] == "APPLIED":
                ledger.paid(order["id"])
            else:
                ledger.errors += 1


def run_load(api, ledger, seconds, threads, kill=None):
    """Writes from `threads` threads for `seconds`; then, if `kill` is given,
    calls it while the writers are still writing and returns its time."""
    tokens = [api.login(f"student{i % 5 + 1}@test.com", "password123") for i in range(threads)]
    status, offerings = api.json("GET", "/api/v1/offerings?limit=100")
    assert status == 200 and offerings, f"offerings: {status}"
    offerings = [o for o in offerings if o.get("variants")]
    stopped = threading.Event()
    stop_at = time.time() + seconds + (3600 if kill else 0)
    workers = [
        threading.Thread(target=writer, args=(api, tokens[i], offerings, ledger, stop_at, stopped, i), daemon=True)
        for i in range(threads)
    ]
    for w in workers:
        w.start()
    time.sleep(seconds)
    killed_at = kill() if kill else None
    stopped.set()
    for w in workers:
        w.join(30)
    return killed_at


# ---------------------------------------------------------------- checks


def check_restored(api, admin, ledger, killed_at, window, label):
    """Every acknowledged write older than `window` at the kill is there.
    Returns the figures."""
    orders = api.orders(admin)
    payments = api.payments(admin)
    lost_orders = [(killed_at - t, oid) for oid, (_, t) in ledger.orders.items() if oid not in orders]
    lost_payments = [
        (killed_at - t, oid)
        for oid, t in ledger.payments.items()
        if orders.get(oid) != "PAID" or payments.get(oid, 0) != 1
    ]
    lost = sorted(lost_orders + lost_payments, reverse=True)
    rpo = lost[0][0] if lost else 0.0
    newest = killed_at - max([t for _, t in ledger.orders.values()] + list(ledger.payments.values()))
    log(
        f"{label}: {len(ledger.orders)} orders and {len(ledger.payments)} payments acknowledged; "
        f"lost {len(lost_orders)} orders and {len(lost_payments)} payments, "
        f"the oldest acknowledged {rpo:.3f} s before the kill (window {window:g} s; "
        f"newest write acknowledged {max(newest, 0):.3f} s before the kill)"
    )
    bound = window + UPLOAD_ALLOWANCE
    too_old = [(age, oid) for age, oid in lost if age > bound]
    assert not too_old, f"{label}: writes acknowledged more than {bound} s before the kill are missing: {too_old[:5]}"
    assert not any(payments.get(oid, 0) > 1 for oid in payments), f"{label}: an order paid twice"
    return {"lost_orders": len(lost_orders), "lost_payments": len(lost_payments), "rpo_seconds": round(rpo, 3)}


def check_late_webhooks(api, admin, ledger, window, killed_at, label):
    """After failover Stripe delivers again what the old primary lost or
    never answered; each event applies exactly once."""
    before = api.orders(admin)
    outcomes = {}
    for event in ledger.events:
        status, ack = api.deliver(event)
        assert status == 200, f"{label}: redelivery answered {status} {ack}"
        outcomes[ack["outcome"]] = outcomes.get(ack["outcome"], 0) + 1
        oid = event["data"]["object"]["metadata"]["orderId"]
        acked = ledger.payments.get(oid)
        if acked is not None and killed_at - acked > window:
            assert ack.get("alreadyProcessed") is True, f"{label}: {event['id']} applied twice: {ack}"
    orders = api.orders(admin)
    payments = api.payments(admin)
    for event in ledger.events:
        oid = event["data"]["object"]["metadata"]["orderId"]
        if oid in before:
            assert orders[oid] == "PAID", f"{label}: {oid} is {orders[oid]} after its payment arrived"
            assert payments.get(oid) == 1, f"{label}: {oid} has {payments.get(oid)} payments"
    # A second round, as a retry storm would bring: nothing changes.
    for event in ledger.events:
        status, ack = api.deliver(event)
        assert status == 200 and ack.get("alreadyProcessed") is True, f"{label}: second delivery {ack}"
    assert api.payments(admin) == payments, f"{label}: a repeated event changed the payments"
    # Money for an order the old primary took and lost is not dropped: the
    # event is kept and listed for a person to settle (refund, or make the
    # order again).
    status, report = api.json("GET", "/api/v1/admin/reconciliation", token=admin)
    assert status == 200, f"reconciliation: {status}"
    unmatched = {e["eventId"] for e in report["unmatchedEvents"] if e["outcome"] == "UNKNOWN_ORDER"}
    unknown = {
        e["id"] for e in ledger.events if e["data"]["object"]["metadata"]["orderId"] not in before
    }
    # Reconciliation lists at most 500 of a kind (src/admin/repo.rs).
    if len(unknown) <= 500:
        assert unknown <= unmatched, f"{label}: events for lost orders missing from reconciliation"
    else:
        assert len(unmatched) == 500 and unmatched <= unknown, f"{label}: reconciliation lists {len(unmatched)}"
    log(
        f"{label}: {len(ledger.events)} webhook events delivered again after failover: "
        + ", ".join(f"{n} {k}" for k, n in sorted(outcomes.items()))
        + "; a second round: all alreadyProcessed, payments unchanged"
    )
    return outcomes


# ---------------------------------------------------------------- the drill


def drill(kind, server_bin, seconds, threads, keep):
    window = configured_window()
    root = Path(tempfile.mkdtemp(prefix=f"wemaster-drill-{kind}-"))
    log(f"== {kind} replica, folder {root}")
    replica = S3Replica(root) if kind == "s3" else FileReplica(root)
    figures = {"replica": kind, "window_seconds": window}
    procs = []
    try:
        primary = Machine(root, "primary")

        # 1. Graceful stop: SIGTERM reaches the server, Litestream flushes.
        ls = primary.serve_under_litestream(server_bin, replica.url, replica.env)
        procs.append(ls)
        ledger = Ledger()
        run_load(primary.api, ledger, 2, 2)
        [server_pid] = children(ls.pid)
        rc = stop(ls, signal.SIGTERM)
        assert rc == 0, f"litestream exited {rc} after SIGTERM"
        assert not alive(server_pid), "the server outlived Litestream"
        text = primary.log_path.read_text()
        assert "shutdown signal received" in text, "SIGTERM did not reach the server"
        assert 'database closed' in text and 'checkpoint="PASSIVE"' in text, "no PASSIVE checkpoint at shutdown"
        assert "litestream shut down" in text
        out = root / "after-sigterm.db"
        litestream_restore(replica.url, out, replica.env)
        conn = sqlite3.connect(out)
        have = {r[0] for r in conn.execute("SELECT id FROM orders")}
        paid = {r[0] for r in conn.execute("SELECT id FROM orders WHERE status = 'PAID'")}
        conn.close()
        missing = [o for o in ledger.orders if o not in have] + [o for o in ledger.payments if o not in paid]
        assert not missing, f"graceful stop lost acknowledged writes: {missing[:5]}"
        log(
            f"SIGTERM: server stopped with a PASSIVE checkpoint, Litestream flushed and exited 0; "
            f"the replica holds all {len(ledger.orders)} orders and {len(ledger.payments)} payments"
        )
        before_crash = set(have)
        # A point in time between the two runs, for step 6.
        time.sleep(1)
        point_in_time = time.time()
        time.sleep(1)

        # 2. Crash under load, with a standby following the replica.
        ls = primary.serve_under_litestream(server_bin, replica.url, replica.env)
        procs.append(ls)
        [server_pid] = children(ls.pid)
        standby = Machine(root, "standby")
        follower = subprocess.Popen(
            # As deploy/wemaster-standby.service runs it.
            [str(LITESTREAM), "restore", "-f", "-o", str(standby.db), replica.url],
            env=environ(replica.env),
            stdout=open(standby.dir / "follow.log", "w"),
            stderr=subprocess.STDOUT,
        )
        procs.append(follower)
        admin = primary.api.login("admin@test.com", "admin123")
        status, health = primary.api.json("GET", "/healthz")
        ledger = Ledger()
        health_seen = {}

        def watch_health():
            time.sleep(seconds / 2)
            health_seen.update(primary.api.json("GET", "/healthz")[1]["services"].get("replication", {}))

        watcher = threading.Thread(target=watch_health, daemon=True)
        watcher.start()

        def kill():
            at = time.time()
            os.kill(server_pid, signal.SIGKILL)
            os.kill(ls.pid, signal.SIGKILL)
            return at

        killed_at = run_load(primary.api, ledger, seconds, threads, kill=kill)
        ls.wait(10)
        watcher.join(5)
        log(
            f"kill -9 of Litestream and the server after {seconds} s of writes from {threads} threads "
            f"({len(ledger.orders) / seconds:.0f} drafts/s); /healthz replication mid-run: "
            f"{health_seen.get('state')}, lag {health_seen.get('lagSeconds')} s"
        )
        assert health_seen.get("state") == "replicating", f"/healthz mid-run: {health_seen}"
        assert health_seen.get("lagSeconds", 99) <= window + 1, f"/healthz mid-run: {health_seen}"

        # 3. A new machine restores from the replica alone.
        fresh = Machine(root, "new-machine")
        restore_seconds = litestream_restore(replica.url, fresh.db, replica.env)
        check = integrity(fresh.db)
        assert check == "ok", f"integrity_check: {check}"
        server = fresh.serve(server_bin)
        procs.append(server)
        admin = fresh.api.login("admin@test.com", "admin123")
        figures["new_machine"] = check_restored(fresh.api, admin, ledger, killed_at, window, "new machine")
        figures["new_machine"]["restore_seconds"] = round(restore_seconds, 3)
        log(f"new machine: litestream restore took {restore_seconds:.2f} s; integrity_check ok")
        stop(server)

        # 4. The standby takes over, and replicates to the same place: the
        # old primary is dead, so there is still one writer.
        started = time.monotonic()
        stop(follower, signal.SIGINT)
        check = integrity(standby.db)
        assert check == "ok", f"standby integrity_check: {check}"
        ls = standby.serve_under_litestream(server_bin, replica.url, replica.env)
        procs.append(ls)
        takeover = time.monotonic() - started
        admin = standby.api.login("admin@test.com", "admin123")
        figures["standby"] = check_restored(standby.api, admin, ledger, killed_at, window, "standby")
        figures["standby"]["takeover_seconds"] = round(takeover, 3)
        log(
            f"standby: followed the replica continuously; serving under Litestream "
            f"{takeover:.2f} s after the order to take over"
        )
        figures["late_webhooks"] = check_late_webhooks(standby.api, admin, ledger, window, killed_at, "standby")
        orders, payments = standby.api.orders(admin), standby.api.payments(admin)
        assert stop(ls) == 0

        # 5. What the new primary wrote is in the replica too.
        again = root / "after-failover.db"
        litestream_restore(replica.url, again, replica.env)
        conn = sqlite3.connect(again)
        have = dict(conn.execute("SELECT id, status FROM orders"))
        paid = conn.execute("SELECT count(*) FROM payments WHERE order_id IS NOT NULL").fetchone()[0]
        conn.close()
        assert have == orders, "the replica after failover differs from the new primary's orders"
        assert paid == sum(payments.values()), "the replica after failover differs in payments"
        log(f"new primary: its writes reached the same replica; a restore holds its {len(have)} orders")

        # 6. Point-in-time restore: the database as it was between the runs.
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(point_in_time))
        pitr = root / "point-in-time.db"
        env = environ(replica.env)
        result = subprocess.run(
            [str(LITESTREAM), "restore", "-timestamp", stamp, "-o", str(pitr), replica.url],
            env=env,
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, f"restore -timestamp: {result.stdout}{result.stderr}"
        conn = sqlite3.connect(pitr)
        then = {r[0] for r in conn.execute("SELECT id FROM orders")}
        conn.close()
        assert then == before_crash, (
            f"restore -timestamp {stamp}: {len(then)} orders, expected the {len(before_crash)} of the first run"
        )
        log(f"point in time: restore -timestamp {stamp} gives the {len(then)} orders of the first run, none later")
        figures["acknowledged"] = {"orders": len(ledger.orders), "payments": len(ledger.payments)}
        return figures
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        replica.close()
        if keep:
            log(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server-bin", default=str(ROOT / "target" / "debug" / "wemaster"))
    parser.add_argument("--replica", action="append", choices=["s3", "file"])
    parser.add_argument("--seconds", type=float, default=12, help="writes before the kill")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folders")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()
    server_bin = Path(args.server_bin).resolve()
    if not server_bin.exists():
        sys.exit(f"drill: no server binary at {server_bin}")
    results = []
    failed = 0
    for kind in args.replica or ["s3", "file"]:
        started = time.monotonic()
        try:
            figures = drill(kind, server_bin, args.seconds, args.threads, args.keep)
            figures["drill_seconds"] = round(time.monotonic() - started, 1)
            results.append(figures)
            log(f"{kind}: PASS in {figures['drill_seconds']} s")
        except (AssertionError, SystemExit) as e:
            failed += 1
            log(f"{kind}: FAIL: {e}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    print(f"drill: {len(results)} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
