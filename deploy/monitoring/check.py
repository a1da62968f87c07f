#!/usr/bin/env python3
"""Checks the monitoring that ships in deploy/monitoring/ against the real
tools and the real server:

  python3 deploy/monitoring/check.py --server-bin target/debug/wemaster [--no-drill]

1. promtool check config (and with it check rules), promtool test rules on
   tests/alerts.test.yml, amtool check-config.
2. A live server (after a backup, with backups scheduled and a Litestream
   socket named, so those series exist), driven through sign-in, the
   catalogue, a draft and a password reset: `promtool check metrics` on its
   /metrics, and every metric name the rules and the dashboard use must be
   in it (node_exporter's and Litestream's own excepted).
3. The drill: Prometheus scraping the server every second with the shipped
   rules, Alertmanager with the shipped routes, a webhook receiver on
   loopback. Every rule must load healthy; then the server is killed with
   SIGKILL: WemasterDown must be pending within 15 s and reach the receiver.

Prometheus, promtool, Alertmanager and amtool come from Debian's
`prometheus` and `prometheus-alertmanager` packages, unpacked with
`dpkg -x` into deploy/monitoring/.tools (no service is started).
"""

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "deploy"))
import launch  # noqa: E402

HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))
TOOLS = HERE / ".tools"
# Series the rules may use that this server does not export: node_exporter's,
# Litestream's own, Prometheus's `up`, and the replica's lag, which exists
# once Litestream has confirmed a sync (the drill in deploy/drill/ runs one).
FOREIGN = re.compile(r"^(node_|litestream_|up$|wemaster_replication_lag_seconds$)")


def step(text):
    print(f"monitoring: {text}", flush=True)


def tool(name):
    path = TOOLS / "usr/bin" / name
    if not path.exists():
        TOOLS.mkdir(exist_ok=True)
        debs = TOOLS / "debs"
        debs.mkdir(exist_ok=True)
        step("fetching prometheus and prometheus-alertmanager from Debian (apt-get download)")
        subprocess.run(["apt-get", "download", "prometheus", "prometheus-alertmanager"],
                       cwd=debs, check=True, stdout=subprocess.DEVNULL)
        for deb in debs.glob("*.deb"):
            subprocess.run(["dpkg", "-x", deb, TOOLS], check=True)
    return str(path)


# Debian's Alertmanager reads its built-in notification templates from this
# fixed folder (a Debian patch; no flag moves it); an unpacked package has
# them under .tools instead. Put there if missing, as installing the package
# would.
AM_TEMPLATES = Path("/usr/share/prometheus/alertmanager")


def alertmanager():
    binary = tool("prometheus-alertmanager")
    for unpacked in (TOOLS / str(AM_TEMPLATES).lstrip("/")).glob("*.tmpl"):
        target = AM_TEMPLATES / unpacked.name
        if target.exists():
            continue
        try:
            AM_TEMPLATES.mkdir(parents=True, exist_ok=True)
            target.write_bytes(unpacked.read_bytes())
        except OSError as e:
            sys.exit(f"monitoring: FAILED Debian's Alertmanager needs {target} ({e}); "
                     "install prometheus-alertmanager or run this as root")
    return binary


def run(*args, stdin=None):
    result = subprocess.run(args, input=stdin, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"monitoring: FAILED {' '.join(map(str, args))}\n{result.stdout}{result.stderr}")
    return result.stdout


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url):
    with HTTP.open(url, timeout=10) as r:
        return r.read().decode()


def request(url, body=None, token=None):
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers=headers)
    with HTTP.open(req, timeout=30) as r:
        return json.loads(r.read() or b"null")


def static_checks():
    promtool, amtool = tool("promtool"), tool("amtool")
    run(promtool, "check", "config", HERE / "prometheus.yml")
    step("promtool check config (and check rules): ok")
    run(promtool, "test", "rules", HERE / "tests/alerts.test.yml")
    step("promtool test rules tests/alerts.test.yml: ok")
    run(amtool, "check-config", HERE / "alertmanager.yml")
    step("amtool check-config: ok")
    runbook = (ROOT / "docs/runbook.md").read_text()
    anchors = {re.sub(r"[^a-z0-9-]", "", h.strip().lower().replace(" ", "-"))
               for h in re.findall(r"^## (.+)$", runbook, re.M)}
    for rules in (HERE / "rules").glob("*.yml"):
        for anchor in re.findall(r"runbook_url: docs/runbook\.md#(\S+)", rules.read_text()):
            if anchor not in anchors:
                sys.exit(f"monitoring: FAILED {rules.name}: no section #{anchor} in docs/runbook.md")
    step("every runbook_url names a section of docs/runbook.md")


def used_names():
    """Metric names in the rules' expressions and the dashboard's queries."""
    texts = []
    for rules in (HERE / "rules").glob("*.yml"):
        texts += re.findall(r"expr: \|?\n?((?:.+\n)+?)(?=\s+(?:for|labels|- record|- alert)|\Z)",
                            rules.read_text())
    dashboard = json.loads((HERE / "grafana/wemaster.json").read_text())

    def exprs(node):
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "expr":
                    yield v
                else:
                    yield from exprs(v)
        elif isinstance(node, list):
            for v in node:
                yield from exprs(v)
    texts += list(exprs(dashboard))
    names = set()
    for text in texts:
        text = re.sub(r'"[^"]*"', '""', text)  # label values
        text = re.sub(r"\{[^}]*\}", "", text)  # matchers
        for word in re.findall(r"\b[a-z_][a-z0-9_]*\b", text):
            if word.startswith(("wemaster_", "process_", "node_", "litestream_")) or word == "up":
                names.add(word)
    return names


class Server:
    def __init__(self, binary, work):
        self.port, self.metrics_port = free_port(), free_port()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("WEMASTER_")}
        self.env.update({
            "WEMASTER_SERVER__ADDR": f"127.0.0.1:{self.port}",
            "WEMASTER_METRICS__ADDR": f"127.0.0.1:{self.metrics_port}",
            "WEMASTER_AUTH__ARGON2_MEMORY_KIB": "64",
            "WEMASTER_AUTH__ARGON2_ITERATIONS": "1",
            "WEMASTER_BACKUP__INTERVAL_MINUTES": "60",
            "WEMASTER_BACKUP__DIR": str(work / "backups"),
            "WEMASTER_HEALTH__LITESTREAM_SOCKET": str(work / "litestream.sock"),
        })
        (work / "backups").mkdir()
        subprocess.run([binary, "migrate"], cwd=work, env=self.env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        subprocess.run([binary, "backup", work / "backups/wemaster-20260101-000000.db"],
                       cwd=work, env=self.env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.log = work / "server.log"
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen([binary, "serve"], cwd=work, env=self.env,
                                         stdout=out, stderr=subprocess.STDOUT)
        self.base = f"http://127.0.0.1:{self.port}"
        launch.wait_ready(self.base, self.proc.poll, self.log)

    def drive(self):
        """The requests that make the event-driven series exist: a sign-in,
        catalogue reads, a draft paid on the dev checkout (a webhook, a
        receipt), a password reset (mail)."""
        api = self.base + "/api/v1"
        offerings = request(api + "/offerings?limit=1")
        request(f"{api}/offerings/{offerings[0]['slug']}")
        token = request(api + "/auth/login",
                        {"email": "student@test.com", "password": "password123"})["accessToken"]
        order = request(api + "/orders/draft", {"offeringId": offerings[0]["id"]}, token)
        # Paying on the dev checkout page delivers a signed webhook.
        HTTP.open(urllib.request.Request(order["checkoutUrl"] + "/pay", data=b""), timeout=30).read()
        request(api + "/auth/forgot-password", {"email": "student@test.com"})
        time.sleep(2.5)  # a round of health checks and the mail worker

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=30)


def live_checks(server):
    promtool = tool("promtool")
    server.drive()
    exposition = get(f"http://127.0.0.1:{server.metrics_port}/metrics")
    run(promtool, "check", "metrics", stdin=exposition)
    step("promtool check metrics: no problems in the live /metrics")
    exported = set(re.findall(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)[ {]", exposition, re.M))
    used = used_names()
    missing = sorted(n for n in used if n not in exported and not FOREIGN.match(n))
    if missing:
        sys.exit(f"monitoring: FAILED the rules or the dashboard use metrics the server does not export: {missing}")
    step(f"all {len([n for n in used if not FOREIGN.match(n)])} wemaster and process metrics "
         f"the rules and the dashboard use are in the live /metrics")


RECEIVER = r'''
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["content-length"]))
        with open(sys.argv[2], "ab") as f:
            f.write(body + b"\n")
        self.send_response(200); self.end_headers()
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
'''


def drill(server, work):
    received = work / "received.jsonl"
    receiver_port, am_port, prom_port = free_port(), free_port(), free_port()
    am_config = work / "alertmanager.yml"
    am_config.write_text((HERE / "alertmanager.yml").read_text()
                         .replace("127.0.0.1:5001", f"127.0.0.1:{receiver_port}"))
    prom_config = work / "prometheus.yml"
    prom_config.write_text(f"""
global: {{scrape_interval: 1s, evaluation_interval: 1s}}
rule_files: ["{HERE}/rules/*.yml"]
alerting:
  alertmanagers: [{{static_configs: [{{targets: ["127.0.0.1:{am_port}"]}}]}}]
scrape_configs:
  - job_name: wemaster
    static_configs: [{{targets: ["127.0.0.1:{server.metrics_port}"]}}]
""")
    procs = [
        subprocess.Popen([sys.executable, "-c", RECEIVER, str(receiver_port), str(received)]),
        subprocess.Popen([alertmanager(), f"--config.file={am_config}",
                          f"--storage.path={work / 'am'}", f"--web.listen-address=127.0.0.1:{am_port}",
                          "--cluster.listen-address="],
                         stdout=subprocess.DEVNULL, stderr=open(work / "alertmanager.log", "w")),
        subprocess.Popen([tool("prometheus"), f"--config.file={prom_config}",
                          f"--storage.tsdb.path={work / 'prom'}",
                          f"--web.listen-address=127.0.0.1:{prom_port}"],
                         stdout=subprocess.DEVNULL, stderr=open(work / "prometheus.log", "w")),
    ]
    prom = f"http://127.0.0.1:{prom_port}/api/v1"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                groups = json.loads(get(prom + "/rules"))["data"]["groups"]
                rules = [r for g in groups for r in g["rules"]]
                targets = json.loads(get(prom + "/targets"))["data"]["activeTargets"]
                if rules and all(r["health"] == "ok" for r in rules) and \
                        all(t["health"] == "up" for t in targets):
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                sys.exit(f"monitoring: FAILED rules or target not healthy in 60 s; see {work}")
            time.sleep(0.5)
        step(f"Prometheus scrapes the server every second; all {len(rules)} rules loaded healthy")
        server.proc.kill()
        server.proc.wait()
        killed = time.monotonic()
        pending = delivered = None
        while delivered is None:
            if time.monotonic() - killed > 120:
                sys.exit(f"monitoring: FAILED no WemasterDown at the receiver 120 s after the kill; see {work}")
            if pending is None:
                alerts = json.loads(get(prom + "/alerts"))["data"]["alerts"]
                if any(a["labels"]["alertname"] == "WemasterDown" for a in alerts):
                    pending = time.monotonic() - killed
            if received.exists() and any(
                    a["labels"]["alertname"] == "WemasterDown" and a["status"] == "firing"
                    for line in received.read_text().splitlines()
                    for a in json.loads(line)["alerts"]):
                delivered = time.monotonic() - killed
            time.sleep(0.2)
        if pending is None or pending > 15:
            sys.exit(f"monitoring: FAILED WemasterDown became active {pending} s after the kill (15 s allowed)")
        step(f"killed the server: WemasterDown pending after {pending:.1f} s, "
             f"at the Alertmanager receiver after {delivered:.1f} s (for: 30s, group_wait: 10s)")
    finally:
        for p in procs:
            p.terminate()
            p.wait()


def main():
    args = argparse.ArgumentParser()
    args.add_argument("--server-bin", default=str(ROOT / "target/debug/wemaster"))
    args.add_argument("--no-drill", action="store_true")
    a = args.parse_args()
    static_checks()
    work = Path(tempfile.mkdtemp(prefix="wemaster-monitoring-"))
    server = Server(str(Path(a.server_bin).resolve()), work)
    try:
        live_checks(server)
        if not a.no_drill:
            drill(server, work)
    finally:
        server.stop()
    step("PASS")


if __name__ == "__main__":
    main()
