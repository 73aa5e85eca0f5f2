"""`lamdagent ui`: the MLflow UI on a study's store, and the direct links to its best model
(docs/ui.md). A local store (sqlite, a database, a file store) is served by `mlflow server` on
127.0.0.1, light (no job workers) unless asked; a tracking server serves its own UI: then the links
are only printed. Other commands end with the same links (`print_study_links`)."""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from rich.console import Console

from lamdagent.config.loading import DEFAULT_STUDY
from lamdagent.errors import UserError
from lamdagent.tracking.ui_links import DEFAULT_UI, StudyLinks, is_server, reachable_ui, unreachable, without_credentials

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"  # MLflow's own default: mlflow.db in the working folder
START_TIMEOUT = 120.0  # seconds `mlflow server` gets to answer


def add_parser(commands, parents: list[argparse.ArgumentParser]) -> None:
    ui = commands.add_parser("ui", parents=parents, help="serve the MLflow UI on a study's store and print the links to its best model "
                                                         "(--tracking-uri of a tracking server: its own UI, the links only printed)")
    ui.add_argument("--study", default=DEFAULT_STUDY, help=f"the study whose links are printed (default: {DEFAULT_STUDY})")
    ui.add_argument("--host", default="127.0.0.1", help="the address to serve on (default: 127.0.0.1, this machine only)")
    ui.add_argument("--port", type=int, default=int(DEFAULT_UI.rsplit(":", 1)[1]), help="default: 5000, where the other commands look for a UI")
    ui.add_argument("--open", action="store_true", help="open the ranked models in a browser, where there is one")
    ui.add_argument("--job-workers", action="store_true", help="also start MLflow's background job workers "
                                                             "(~1.8 GB instead of ~370 MB; the runs, models and registry need none)")


def tracking_uri(given: str | None) -> str:
    return given or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def ui(args, console: Console) -> int:
    """Serve the UI (or find the tracking server's), print the links; until Ctrl-C."""
    uri = tracking_uri(args.tracking_uri)
    if is_server(uri):
        base = without_credentials(uri).rstrip("/")
        why = unreachable(base)
        if why:
            raise UserError(f"the tracking server {base} does not answer ({why}): start it, or pass another --tracking-uri")
        links = study_links(uri, args.study)
        console.print(f"The tracking server serves the UI of study [bold]{args.study}[/]:", highlight=False)
        show_links(console, links, base)
        _maybe_open(console, args.open, links.urls(base)[0][1])
        return 0
    _check_store(uri)
    links = study_links(uri, args.study)  # a store without the study: one line, before anything starts
    if args.port < 1 or args.port > 65535:
        raise UserError(f"--port must be between 1 and 65535, got {args.port}")
    _check_port(args.host, args.port)
    from lamdagent.files import cache_dir

    log = cache_dir() / "ui" / f"mlflow-server-{args.port}.log"
    try:
        with _stop_on_sigterm(), serve(uri, args.host, args.port, job_workers=args.job_workers, log=log) as (base, server):
            shown = base if args.host not in ("0.0.0.0", "::") else f"http://{socket.gethostname()}:{args.port}"
            mode = "with job workers" if args.job_workers else "light: no job workers"
            console.print(f"MLflow UI of study [bold]{args.study}[/] at {shown} ({mode}; server log {log}); Ctrl-C stops it", highlight=False)
            show_links(console, links, shown)
            _maybe_open(console, args.open, links.urls(shown)[0][1])
            code = server.wait()
    except KeyboardInterrupt:  # the server is stopped by now (serve's exit)
        console.print("MLflow UI stopped", highlight=False)
        return 0
    raise UserError(f"the MLflow server stopped by itself (exit code {code}): {_last_line(log)}")


def study_links(uri: str, study: str) -> StudyLinks:
    from lamdagent.tracking import Tracker

    tracker = Tracker(uri)
    return tracker.models.study_links(tracker.find_experiment(study), study)


def show_links(console: Console, links: StudyLinks, base: str) -> None:
    """One line per page: what it is, its URL (never wrapped: a terminal keeps it clickable)."""
    urls = links.urls(base)
    width = max(len(what) for what, _ in urls)
    for what, url in urls:
        console.print(f"  {what:<{width}}  {url}", highlight=False, soft_wrap=True, markup=False)
    if links.best is None:
        console.print("  (no model of the study is scored yet)", highlight=False)


def print_study_links(console: Console, tracker, study: str) -> None:
    """The end of explore, report and compare-policies: the study's direct links on a UI that
    serves the store (the tracking server, $LAMDAGENT_UI_URL, or `lamdagent ui` at its default
    address), else the command that serves them. Never fails the command it ends."""
    try:
        links = tracker.models.study_links(tracker.find_experiment(study), study)
        base = reachable_ui(tracker.tracking_uri, links)
    except Exception as error:  # a convenience: the command's results are written already
        console.print(f"[dim]MLflow UI links unavailable: {type(error).__name__}: {str(error)[:200]}", highlight=False)
        return
    if base:
        console.print(f"In the MLflow UI ({base}):", highlight=False)
        show_links(console, links, base)
        return
    command = f"lamdagent ui --study {study}"
    if not _same_store(tracker.tracking_uri, DEFAULT_TRACKING_URI):  # (MLflow exports the URI in use: the shell's may differ)
        command += f" --tracking-uri {tracker.tracking_uri}"
    best = f"; the best model, {links.best.name}, is two clicks from them" if links.best else ""
    console.print(f"MLflow UI: `{command}` serves the study's models ranked by val.score{best}", highlight=False, soft_wrap=True)


@contextmanager
def serve(uri: str, host: str, port: int, job_workers: bool = False, log: Path | None = None,
          timeout: float = START_TIMEOUT) -> Iterator[tuple[str, subprocess.Popen]]:
    """`mlflow server` on the store at host:port; yields (its base URL, its process) once /health
    answers, and stops it (its whole process group) on the way out."""
    env = dict(os.environ, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="true" if job_workers else "false")
    cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", uri, "--host", host, "--port", str(port), "--workers", "1"]
    if log:
        log.parent.mkdir(parents=True, exist_ok=True)
    out = open(log, "wb") if log else subprocess.DEVNULL
    # a session of its own: the terminal's Ctrl-C reaches this process only, which stops the server in order
    server = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::', '') else host}:{port}"
    try:
        deadline = time.monotonic() + timeout
        while unreachable(base, timeout=2.0):
            if server.poll() is not None:
                raise UserError(f"mlflow server exited with code {server.returncode}: {_last_line(log)}")
            if time.monotonic() > deadline:
                raise UserError(f"mlflow server did not answer on {base} within {timeout:.0f} s" + (f"; see {log}" if log else ""))
            time.sleep(0.3)
        yield base, server
    finally:
        _stop(server)
        if log:
            out.close()


def _stop(server: subprocess.Popen) -> None:
    """SIGTERM to the server's process group (uvicorn and its worker), SIGKILL after 10 s."""
    if server.poll() is None:
        try:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        except ProcessLookupError:
            pass


@contextmanager
def _stop_on_sigterm():
    """A SIGTERM (a service manager, `kill`) stops the UI as Ctrl-C does: the server goes with it."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _check_store(uri: str) -> None:
    """A sqlite store must exist: MLflow would create an empty one."""
    from lamdagent.tracking.sqlite import store_file

    path = store_file(uri)
    if path is not None and not path.is_file():
        raise UserError(f"no tracking store at {path} ({uri}): run `lamdagent explore` there first, or pass --tracking-uri")


def _same_store(a: str, b: str) -> bool:
    from lamdagent.tracking.sqlite import store_file

    return a == b or (store_file(a) is not None and store_file(a) == store_file(b))


def _check_port(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server will: a closed UI's lingering connections do not count
        try:
            probe.bind((host, port))
        except OSError as error:
            raise UserError(f"port {port} on {host} is in use ({error.strerror}): another UI may be running there "
                            f"(open {DEFAULT_UI if port == 5000 else f'http://{host}:{port}'}), or pick a free port with --port") from None


def _maybe_open(console: Console, wanted: bool, url: str) -> None:
    if not wanted:
        return
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or os.environ.get("BROWSER")):
        console.print("no graphical browser here (no display): open the link above yourself", highlight=False)
        return
    import webbrowser

    if not webbrowser.open(url, new=2):
        console.print("no browser could be opened here: open the link above yourself", highlight=False)


def _last_line(log: Path | None) -> str:
    if not log or not log.is_file():
        return "no server log"
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1].strip()[:300] if lines else f"nothing in {log}"
