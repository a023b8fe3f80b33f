"""`make up` (``complaints dev up``) as a person runs it: its screen shows where things are and the line to
source in another shell, never a secret; the secrets are in a file only its owner can read, and they work."""

from __future__ import annotations

import os
import re
import signal
import stat
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).parent.parent.parent
SECRETS = ("COMPLAINTS_REPLY_KEY", "COMPLAINTS_LINK_KEY", "COMPLAINTS_MASTER_KEY", "COMPLAINTS_SEAL_KEY",
           "COMPLAINTS_CODEC_KEYS", "COMPLAINTS_CODEC_TOKEN", "COMPLAINTS_TOKEN", "DATABASE_URL", "DATABASE_ADMIN_URL",
           "DATABASE_SEALER_URL", "DATABASE_ERASER_URL")


def _environment(path: Path) -> dict[str, str]:
    found = {}
    for line in path.read_text().splitlines():
        name, _, value = line.removeprefix("export ").partition("=")
        found[name] = value.strip("'")
    return found


def test_make_up_prints_where_to_source_the_secrets_never_the_secrets(tmp_path: Path) -> None:
    data = tmp_path / "dev"
    env = {**os.environ, "COLUMNS": "200"}
    for name in SECRETS:
        env.pop(name, None)
    process = subprocess.Popen([sys.executable, "-m", "cli.main", "dev", "up", "--data-dir", str(data), "--port", "0",
                                "--ui-port", "0"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    shown: list[str] = []
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            shown.append(line)
            if line.strip().startswith(". "):
                break
        source = shown[-1].strip()
        assert source.startswith(". "), "".join(shown)
        env_file = Path(source[2:])
        assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
        values = _environment(env_file)
        assert set(SECRETS) <= set(values)
        screen = "".join(shown)
        for name in SECRETS:
            assert values[name] not in screen, f"{name} is shown on the screen"
        # The file works: the CLI in another shell, sourced from it, acts with its token.
        checked = subprocess.run(["bash", "-c", f". {env_file} && {sys.executable} -m cli.main list --json"],
                                 cwd=ROOT, capture_output=True, text=True, timeout=60,
                                 env={k: v for k, v in os.environ.items() if k not in SECRETS})
        assert checked.returncode == 0, checked.stderr
        # The customer's page is served where the screen says, and where the messages' links point.
        [page] = re.findall(r"Customer page: (http://[0-9.]+:[0-9]+)", screen)
        assert values["COMPLAINTS_PAGE_URL"] == page
        with urllib.request.urlopen(f"{page}/healthz", timeout=10) as answer:
            assert answer.status == 200
        assert "COMPLAINTS_GATEWAY_ISSUER_KEY_FILE" in values and "maildir:" in values["COMPLAINTS_INBOUND"]
        # The worker's metrics are served where the screen says: the SDK's own among them.
        [metrics] = re.findall(r"Metrics: +(http://[0-9.]+:[0-9]+/metrics)", screen)
        lag = re.compile(r'^complaints_consumer_lag\{[^}]*consumer="report"[^}]*\} 0$', flags=re.M)
        for _ in range(50):  # the live report's consumer, in the same process, reports its lag there: caught up
            with urllib.request.urlopen(metrics, timeout=10) as answer:
                scraped = answer.read().decode()
                assert answer.status == 200 and "temporal_" in scraped
            if lag.search(scraped):
                break
            time.sleep(0.2)
        assert lag.search(scraped), scraped[-2000:]
        # The live report answers from figures kept current in the background.
        report = subprocess.run(["bash", "-c", f". {env_file} && {sys.executable} -m cli.main report --json"],
                                cwd=ROOT, capture_output=True, text=True, timeout=60,
                                env={k: v for k, v in os.environ.items() if k not in SECRETS})
        assert report.returncode == 0 and "live figures" in report.stderr, report.stderr
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
