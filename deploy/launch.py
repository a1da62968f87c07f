#!/usr/bin/env python3
"""Waits until a wemaster server this process or a shell started is ready:
GET /readyz answers 200. The one readiness wait of every tool that starts a
server: the bench binary (which times it), contract/, deploy/ and bench/mail/.

From a shell, after starting the server in the background:

    "$BIN" serve >"$LOG" 2>&1 &
    python3 deploy/launch.py wait http://127.0.0.1:PORT $! "$LOG"

exits 0 once ready; 1, with the end of the log, when the process exits
first or 60 s pass. From Python: `launch.wait_ready(base, proc.poll, log)`.
Standard library only.
"""

import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

# Loopback only: never through a proxy from the environment.
_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def tail(log, lines=40):
    try:
        return "\n".join(Path(log).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no log at {log})"


def wait_ready(base, exited, log, seconds=60):
    """Polls `base`/readyz until 200. `exited()` returns None while the
    server runs, else its exit status. Raises SystemExit with the log's tail
    when the server exits first or `seconds` pass."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        status = exited()
        if status is not None:
            how = "" if status == "gone" else f" ({status})"
            raise SystemExit(f"the server exited{how} before it was ready; its log:\n{tail(log)}")
        try:
            with _HTTP.open(f"{base}/readyz", timeout=1) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.05)
    raise SystemExit(f"{base} did not answer /readyz 200 within {seconds} s; its log:\n{tail(log)}")


def _pid_exited(pid):
    """None while `pid` runs (a zombie counts as exited), else 'gone'."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "gone"
    return "gone" if state == "Z" else None


def main(argv):
    if len(argv) not in (4, 5) or argv[0] != "wait":
        sys.exit(__doc__)
    _, base, pid, log, *rest = argv
    wait_ready(base, lambda: _pid_exited(int(pid)), log, float(rest[0]) if rest else 60)


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except SystemExit as e:
        if isinstance(e.code, str):
            print(f"launch: {e.code}", file=sys.stderr)
            sys.exit(1)
        raise

