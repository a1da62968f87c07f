"""Memory and probe latency with many idle keep-alive connections open.

Opens CONNECTIONS (default 10,000) connections to the server, completes one
GET /livez on each so it is an established keep-alive connection, then, with
all of them open and idle, reads the server's resident memory (VmRSS) and
times /livez and /api/v1/healthz on a fresh connection. Run by
`bench/k6/run --profile idle`, which starts the server and passes its
address and process id.
"""

import asyncio
import os
import resource
import sys
import time

BASE = sys.argv[1]  # http://127.0.0.1:PORT
PID = int(sys.argv[2])
CONNECTIONS = int(os.environ.get("CONNECTIONS", "10000"))
HOST, PORT = BASE.removeprefix("http://").split(":")
REQUEST = b"GET /livez HTTP/1.1\r\nhost: bench\r\n\r\n"


def rss_mb():
    with open(f"/proc/{PID}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


async def exchange(path):
    reader, writer = await asyncio.open_connection(HOST, int(PORT))
    started = time.perf_counter()
    writer.write(f"GET {path} HTTP/1.1\r\nhost: bench\r\nconnection: close\r\n\r\n".encode())
    answer = await reader.read()
    elapsed = (time.perf_counter() - started) * 1000
    writer.close()
    return answer.split(b" ", 2)[1].decode(), elapsed


async def keep_alive():
    reader, writer = await asyncio.open_connection(HOST, int(PORT))
    writer.write(REQUEST)
    answer = b""
    while not answer.endswith(b'{"status":"up"}'):
        chunk = await reader.read(512)
        if not chunk:
            raise RuntimeError("closed before answering")
        answer += chunk
    return reader, writer


async def probes(label, rounds=20):
    for path in ["/livez", "/api/v1/healthz"]:
        times = []
        for _ in range(rounds):
            status, ms = await exchange(path)
            if status != "200":
                raise RuntimeError(f"{path} answered {status}")
            times.append(ms)
        times.sort()
        print(f"  {label}: {path:16} p50 {times[len(times) // 2]:.2f} ms, max {times[-1]:.2f} ms")


async def main():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    before = rss_mb()
    await probes("0 idle")
    opened = []
    started = time.perf_counter()
    while len(opened) < CONNECTIONS:
        batch = min(500, CONNECTIONS - len(opened))
        opened += await asyncio.gather(*(keep_alive() for _ in range(batch)))
    took = time.perf_counter() - started
    after = rss_mb()
    print(f"idle keep-alive connections: {len(opened)} opened in {took:.1f} s")
    await probes(f"{len(opened)} idle")
    per = (after - before) * 1024 / len(opened)
    print(f"server RSS: {before:.1f} MB before, {after:.1f} MB with {len(opened)} open ({per:.1f} KiB each)")
    for _, writer in opened:
        writer.close()


asyncio.run(main())
