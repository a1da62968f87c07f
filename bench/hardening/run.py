#!/usr/bin/env python3
"""Replays the hardening attacks against a real server binary and prints the
figures that show they no longer work:

1. a flood of made-up HTTP methods and paths: RSS and the number of metric
   series before and after, and the size and time of a scrape;
2. a client trickling its headers one byte a second: how long until the
   server closes the connection;
3. slow connections past the connection cap: a probe client's latency
   before and while the cap is reached, and how many slow ones were closed.

    python3 bench/hardening/run.py --server-bin target/release/wemaster \
        [--requests 150000] [--cap 200] [--no-limits]

Standard library only. The server runs on a temporary database with the
shipped wemaster.toml and loopback ports of its own.
"""

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def scrape(metrics_url):
    started = time.perf_counter()
    with urllib.request.urlopen(metrics_url, timeout=30) as r:
        text = r.read().decode()
    elapsed = time.perf_counter() - started
    series = sum(1 for line in text.splitlines() if line and not line.startswith("#"))
    return series, len(text), elapsed


def get_ms(port, path="/livez"):
    """One request on a new connection; milliseconds until the whole answer."""
    started = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nhost: probe\r\nconnection: close\r\n\r\n".encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    if not data.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"probe got {data[:40]!r}")
    return (time.perf_counter() - started) * 1000


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def flood_methods(port, total, connections=4):
    """`total` requests, each with its own method and path, pipelined over a
    few keep-alive connections; returns the statuses seen."""
    statuses = {}
    lock = threading.Lock()

    def worker(first, count):
        seen = {}
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        batch = 200
        sent = 0
        buffer = b""
        while sent < count:
            n = min(batch, count - sent)
            # The reported attack: /livez with M1, M2, ...; every other
            # request also on a path of its own.
            requests = "".join(
                f"M{k} {'/livez' if k % 2 == 0 else f'/made-up/{k}'} HTTP/1.1\r\nhost: f\r\n\r\n"
                for k in range(first + sent, first + sent + n)
            )
            s.sendall(requests.encode())
            answered = 0
            while answered < n:
                chunk = s.recv(1 << 20)
                if not chunk:
                    raise RuntimeError("server closed a flood connection")
                buffer += chunk
                # Each answer is a head plus a small body with content-length.
                while True:
                    end = buffer.find(b"\r\n\r\n")
                    if end < 0:
                        break
                    head = buffer[:end].decode("latin-1")
                    length = 0
                    for line in head.split("\r\n")[1:]:
                        name, _, value = line.partition(":")
                        if name.lower() == "content-length":
                            length = int(value.strip())
                    if len(buffer) < end + 4 + length:
                        break
                    status = head[9:12]
                    seen[status] = seen.get(status, 0) + 1
                    buffer = buffer[end + 4 + length:]
                    answered += 1
            sent += n
        s.close()
        with lock:
            for k, v in seen.items():
                statuses[k] = statuses.get(k, 0) + v

    share = total // connections
    threads = [
        threading.Thread(target=worker, args=(i * share, share)) for i in range(connections)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return statuses


def trickle_close_seconds(port, limit=60):
    """Sends a request's headers one byte a second; seconds until closed."""
    s = socket.create_connection(("127.0.0.1", port), timeout=limit)
    started = time.perf_counter()
    headers = b"GET /livez HTTP/1.1\r\nhost: slow\r\nx-slow: " + b"a" * 200
    s.settimeout(1.0)
    for byte in headers:
        try:
            s.sendall(bytes([byte]))
        except OSError:
            break
        try:
            if s.recv(1024) == b"":
                break
        except socket.timeout:
            pass
        except OSError:
            break
        if time.perf_counter() - started > limit:
            break
    elapsed = time.perf_counter() - started
    s.close()
    return elapsed


def slow_connections(port, count):
    """Opens `count` connections that send half a request line and stop."""
    opened = []
    for _ in range(count):
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(b"GET /livez HTTP/1.1\r\nhost: sl")
            opened.append(s)
        except OSError:
            pass
    return opened


def closed_count(sockets):
    closed = 0
    for s in sockets:
        s.setblocking(False)
        try:
            if s.recv(1024) == b"":
                closed += 1
        except BlockingIOError:
            pass
        except OSError:
            closed += 1
    return closed


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server-bin", default=os.path.join(ROOT, "target/release/wemaster"))
    parser.add_argument("--requests", type=int, default=150_000)
    parser.add_argument("--cap", type=int, default=200, help="server.max_connections for part 3")
    parser.add_argument(
        "--no-limits",
        action="store_true",
        help="rate_limit.enabled = false, so that every made-up request reaches the router",
    )
    args = parser.parse_args()

    port, metrics_port = free_port(), free_port()
    workdir = tempfile.mkdtemp(prefix="wemaster-hardening-")
    env = dict(os.environ)
    env.update(
        WEMASTER_SERVER__ADDR=f"127.0.0.1:{port}",
        WEMASTER_METRICS__ADDR=f"127.0.0.1:{metrics_port}",
        WEMASTER_DATABASE__PATH=os.path.join(workdir, "w.db"),
        WEMASTER_SERVER__MAX_CONNECTIONS=str(args.cap),
        WEMASTER_LOG__LEVEL="warn",
    )
    if args.no_limits:
        env["WEMASTER_RATE_LIMIT__ENABLED"] = "false"
    log = open(os.path.join(workdir, "server.log"), "w")
    server = subprocess.Popen(
        [os.path.abspath(args.server_bin), "--config", os.path.join(ROOT, "wemaster.toml"), "serve"],
        env=env,
        stdout=log,
        stderr=log,
        cwd=workdir,
    )
    metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
    try:
        deadline = time.time() + 60
        while True:
            try:
                get_ms(port, "/readyz")
                break
            except Exception:
                if time.time() > deadline or server.poll() is not None:
                    sys.exit("the server did not start; see " + log.name)
                time.sleep(0.1)
        print(f"server {args.server_bin} pid {server.pid} on 127.0.0.1:{port}")

        # 1. Made-up methods and paths.
        series0, size0, _ = scrape(metrics_url)
        rss0 = rss_mb(server.pid)
        started = time.perf_counter()
        statuses = flood_methods(port, args.requests)
        took = time.perf_counter() - started
        series1, size1, scrape_s = scrape(metrics_url)
        rss1 = rss_mb(server.pid)
        print(f"1. {sum(statuses.values())} requests with distinct made-up methods and paths "
              f"in {took:.1f} s; statuses {dict(sorted(statuses.items()))}")
        print(f"   RSS {rss0:.1f} MB before, {rss1:.1f} MB after; metric series "
              f"{series0} before, {series1} after; scrape {size1 / 1024:.0f} KiB in "
              f"{scrape_s * 1000:.1f} ms")

        # 2. A trickling client.
        seconds = trickle_close_seconds(port)
        print(f"2. headers trickled one byte a second: closed after {seconds:.1f} s "
              f"(server.header_timeout_seconds = 10)")

        # 3. Slow connections past the cap.
        baseline = [get_ms(port) for _ in range(200)]
        slow = slow_connections(port, args.cap + 100)
        time.sleep(0.5)
        under = [get_ms(port) for _ in range(200)]
        closed = closed_count(slow)
        print(f"3. {len(slow)} slow connections opened against a cap of {args.cap}: "
              f"{closed} closed to make room")
        print(f"   probe GET /livez on a new connection each time: p50 "
              f"{statistics.median(baseline):.2f} ms / p95 {percentile(baseline, 95):.2f} ms "
              f"before, p50 {statistics.median(under):.2f} ms / p95 {percentile(under, 95):.2f} ms "
              f"at the cap; 200 of 200 answered 200 both times")
        print(f"   RSS at the end {rss_mb(server.pid):.1f} MB")
        for s in slow:
            s.close()
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()


if __name__ == "__main__":
    main()
