"""A shared MLflow tracking server on a throwaway PostgreSQL, as deploy/tracking-server.sh runs one:
`tracking_server` starts both once per session; `on_server` points a test at it."""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

DB_USER, DB_NAME = "lamdagent", "mlflow"
SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "tracking-server.sh"
START_TIMEOUT = 120  # seconds for `mlflow server` to answer /health (about 25 s on a busy 2-core machine)


@dataclass
class TrackingServer:
    uri: str  # http://127.0.0.1:PORT, what workers get as MLFLOW_TRACKING_URI
    artifacts: Path  # --artifacts-destination: where the server writes every artifact
    db_uri: str  # the backend store URI (holds the password: never log it)
    dsn: dict  # psycopg2.connect(**dsn)
    password: str
    log: Path  # the server's output
    command: list[str] = None  # how it was started (deploy/tracking-server.sh ...), for a restart
    env: dict = None
    process: subprocess.Popen | None = None

    def log_tail(self, n: int = 60) -> str:
        return _tail(self.log, n)

    def start(self) -> None:
        """`mlflow server` (again, on the same port and database), once it answers /health."""
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(self.command, stdout=out, stderr=subprocess.STDOUT, env=self.env, start_new_session=True,
                                            cwd=self.log.parent)
        _wait_healthy(self.process, self.uri, self.log)

    def stop(self) -> None:
        """The server goes away (its database stays): what a restart or a crash looks like to clients."""
        if self.process is not None:
            _stop_server(self.process)


def postgres_bin() -> Path | None:
    """The folder of initdb and pg_ctl: on PATH, else Debian's /usr/lib/postgresql/<version>/bin."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(os.path.realpath(found)).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    return Path(candidates[-1]).parent if candidates else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres(cmd: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: as root, run its tools as the `postgres` user."""
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def _run(cmd: list[str], what: str) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{what} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")


def _tail(path: Path, n: int = 60) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-n:]) if path.exists() else "(no log)"


def _start_postgres(pg: Path, root: Path, password: str) -> int:
    """initdb a cluster in root/data (password auth) and start it on a free 127.0.0.1 port, its
    unix socket in root; creates the database. Returns the port."""
    (root / "pwfile").write_text(password + "\n")
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(root / "pwfile", "postgres")
    _run(_as_postgres([str(pg / "initdb"), "-D", str(root / "data"), "-U", DB_USER, f"--pwfile={root / 'pwfile'}", "-A", "scram-sha-256",
                       "-E", "UTF8", "--no-sync"]), "initdb")
    (root / "pwfile").unlink()
    port = _free_port()
    options = f"-h 127.0.0.1 -p {port} -k {root} -F"  # -F: no fsync, a throwaway cluster
    _run(_as_postgres([str(pg / "pg_ctl"), "-D", str(root / "data"), "-l", str(root / "postgres.log"), "-o", options, "-w", "-t", "60", "start"]),
         "pg_ctl start")
    import psycopg2

    connection = psycopg2.connect(host="127.0.0.1", port=port, user=DB_USER, password=password, dbname="postgres")
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE {DB_NAME}")
    connection.close()
    return port


def _stop_postgres(pg: Path, root: Path) -> None:
    subprocess.run(_as_postgres([str(pg / "pg_ctl"), "-D", str(root / "data"), "-m", "fast", "-w", "-t", "30", "stop"]), capture_output=True)


def _stop_server(process: subprocess.Popen) -> None:
    """SIGTERM to the server's process group (uvicorn and its workers), SIGKILL if it lingers."""
    if process.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _wait_healthy(process: subprocess.Popen, uri: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"mlflow server exited with {process.returncode} before answering /health; its log:\n{_tail(log)}")
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"mlflow server did not answer {uri}/health within {START_TIMEOUT} s; its log:\n{_tail(log)}")


def pytest_collection_modifyitems(items):
    """A test on the shared server needs PostgreSQL: it skips without, and fails in CI (tests/conftest.py)."""
    for item in items:
        if "tracking_server" in item.fixturenames:
            item.add_marker(pytest.mark.requires("postgres"))


@pytest.fixture(scope="session")
def tracking_server():
    """PostgreSQL + `mlflow server` started by deploy/tracking-server.sh (proxied artifacts in a
    temp folder); both stopped at the end, also when starting fails."""
    pytest.importorskip("psycopg2", reason="psycopg2 is needed for the PostgreSQL backend: pip install psycopg2-binary")
    pg = postgres_bin()
    if pg is None:
        pytest.skip("PostgreSQL binaries (initdb, pg_ctl) not found on PATH nor in /usr/lib/postgresql/*/bin: apt-get install postgresql")
    if os.geteuid() == 0 and not shutil.which("runuser"):
        pytest.skip("running as root without runuser: cannot start PostgreSQL as the postgres user")
    # not pytest's tmp_path: its parents are private to root, and postgres must reach its folder
    base = Path(tempfile.mkdtemp(prefix="lamdagent-tracking-"))
    base.chmod(0o711)
    root, artifacts, log = base / "postgres", base / "artifacts", base / "mlflow-server.log"
    root.mkdir()
    password = secrets.token_hex(16)
    server = None
    try:
        port = _start_postgres(pg, root, password)
        db_uri = f"postgresql+psycopg2://{DB_USER}:{password}@127.0.0.1:{port}/{DB_NAME}"
        http_port = _free_port()
        uri = f"http://127.0.0.1:{http_port}"
        env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "MLFLOW_BACKEND_STORE_URI": db_uri, "PYTHON": sys.executable}
        env.pop("MLFLOW_TRACKING_URI", None)
        command = ["bash", str(SCRIPT), "--host", "127.0.0.1", "--port", str(http_port), "--artifacts", str(artifacts), "--workers", "2"]
        dsn = {"host": "127.0.0.1", "port": port, "user": DB_USER, "password": password, "dbname": DB_NAME}
        server = TrackingServer(uri, artifacts, db_uri, dsn, password, log, command, env)
        server.start()
        yield server
    finally:
        if server is not None:
            server.stop()
        if (root / "data" / "postmaster.pid").exists():
            _stop_postgres(pg, root)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def on_server(tracking_server, monkeypatch):
    """This test's MLflow calls (and its subprocesses) go to the shared server."""
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_server.uri)
    mlflow.set_tracking_uri(tracking_server.uri)
    yield tracking_server
    mlflow.set_tracking_uri(None)  # back to the environment's (restored by monkeypatch after this)
