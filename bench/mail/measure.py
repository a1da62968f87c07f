#!/usr/bin/env python3
"""Mail delivery figures: the release server delivering to a real SMTP
server (aiosmtpd, from tests/tools/.venv, installed there by the mail tests
or by this script) on a loopback port, each message written to a Maildir.

  python3 bench/mail/measure.py [--server-bin target/release/wemaster]
                                [--messages 2000] [--samples 30]
                                [--concurrency 4]

Latency: sign-ups one after another, each timed from its 201 to its
verification mail's file in the Maildir (the whole path: the queue, the
wake-up, rendering, SMTP, the server writing the file). Throughput:
`--messages` receipts inserted into the queue in one transaction (as
payments would queue them), timed from the first message's arrival to the
last one's. Standard library only, besides aiosmtpd.
"""

import argparse
import json
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "deploy"))
import launch  # noqa: E402

HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def python_with_aiosmtpd():
    tools = ROOT / "tests/tools"
    venv = tools / ".venv"
    python = venv / "bin/python"
    if subprocess.run([python, "-c", "import aiosmtpd"], capture_output=True).returncode != 0:
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
        subprocess.run([venv / "bin/pip", "install", "--quiet", "--disable-pip-version-check",
                        "-r", tools / "requirements.txt"], check=True)
    return python


def delivered(maildir):
    try:
        return len(os.listdir(maildir / "new"))
    except FileNotFoundError:
        return 0


def post(base, path, body):
    request = urllib.request.Request(base + path, data=json.dumps(body).encode(),
                                     headers={"content-type": "application/json"})
    with HTTP.open(request, timeout=30) as response:
        return response.status


def main():
    args = argparse.ArgumentParser()
    args.add_argument("--server-bin", default=str(ROOT / "target/release/wemaster"))
    args.add_argument("--messages", type=int, default=2000)
    args.add_argument("--samples", type=int, default=30)
    args.add_argument("--concurrency", type=int, default=4)
    a = args.parse_args()

    work = Path(tempfile.mkdtemp(prefix="wemaster-mail-"))
    maildir = work / "maildir"
    smtp_port, port = free_port(), free_port()
    smtp = subprocess.Popen([python_with_aiosmtpd(), "-m", "aiosmtpd", "-n", "-l",
                             f"127.0.0.1:{smtp_port}", "-c", "aiosmtpd.handlers.Mailbox",
                             maildir], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = work / "server.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEMASTER_")}
    env.update({
        "WEMASTER_SERVER__ADDR": f"127.0.0.1:{port}",
        "WEMASTER_METRICS__ADDR": "127.0.0.1:0",
        "WEMASTER_DATABASE__PATH": str(work / "wemaster.db"),
        "WEMASTER_MAIL__TRANSPORT": "smtp",
        "WEMASTER_MAIL__SMTP_URL": f"smtp://127.0.0.1:{smtp_port}",
        "WEMASTER_MAIL__FROM": "WeMaster <no-reply@bench.test>",
        "WEMASTER_MAIL__CONCURRENCY": str(a.concurrency),
    })
    with open(log, "w") as out:
        server = subprocess.Popen([a.server_bin, "serve"], env=env, cwd=work,
                                  stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        launch.wait_ready(base, server.poll, log)
        latencies = []
        for i in range(a.samples):
            before = delivered(maildir)
            status = post(base, "/api/v1/auth/register",
                          {"email": f"bench{i}@bench.test", "password": "password123"})
            assert status == 201, status
            answered = time.perf_counter()
            while delivered(maildir) == before:
                if time.perf_counter() - answered > 30:
                    raise SystemExit("a verification mail never arrived")
                time.sleep(0.0005)
            latencies.append((time.perf_counter() - answered) * 1000)
        latencies.sort()
        p95 = latencies[max(0, int(len(latencies) * 0.95) - 1)]
        print(f"latency (201 -> file in the Maildir), {a.samples} sign-ups: "
              f"p50 {statistics.median(latencies):.1f} ms, p95 {p95:.1f} ms, "
              f"max {latencies[-1]:.1f} ms")

        before = delivered(maildir)
        db = sqlite3.connect(work / "wemaster.db", timeout=30)
        now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
        data = json.dumps({"name": "Bench", "orderId": "o-bench", "date": now[:10],
                           "total": "49.00 USD", "items": [{"title": "Bench course",
                           "variant": "Standard", "quantity": 1, "amount": "49.00 USD"}]})
        with db:
            db.executemany(
                "INSERT INTO mail (id, kind, recipient, locale, data, status, next_attempt_at,"
                " created_at, queued_at) VALUES (?, 'RECEIPT', ?, 'en', ?, 'QUEUED', ?, ?, ?)",
                [(str(uuid.uuid4()), f"buyer{i}@bench.test", data, now, now, now)
                 for i in range(a.messages)])
        queued = time.perf_counter()
        first = None
        while delivered(maildir) < before + a.messages:
            if first is None and delivered(maildir) > before:
                first = time.perf_counter()
            if time.perf_counter() - queued > 600:
                raise SystemExit(f"{delivered(maildir) - before} of {a.messages} arrived in 600 s")
            time.sleep(0.005)
        last = time.perf_counter()
        first = first or last
        print(f"throughput, {a.messages} receipts, concurrency {a.concurrency}: "
              f"{(a.messages - 1) / max(last - first, 1e-9):.0f} messages/s "
              f"(first to last arrival {last - first:.2f} s; "
              f"commit to last {last - queued:.2f} s)")
    finally:
        server.terminate()
        server.wait()
        smtp.terminate()
        smtp.wait()


if __name__ == "__main__":
    main()
