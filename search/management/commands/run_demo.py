"""Run the demo: one Celery worker (Celery beat embedded) and a web server, stopped together.

The web server is Django's development server (`make demo`), or with --server gunicorn the production
shape (`make serve`: gunicorn.conf.py, static files from WhiteNoise, DJANGO_DEBUG off).

Each child runs in its own process group so that Ctrl-C (or SIGTERM) stops the whole tree of each:
the worker gets a warm shutdown, the web server a TERM, then anything left after a grace period is
killed. If either child dies, the other is stopped and the command exits non-zero.

The port is checked first (`--check-port` does only that, so `make demo` fails in a second, before its
slow steps). With SEARCH_VECTOR_BACKEND=milvus on a Milvus Lite folder (a path ending in .db), which one
process at a time may open, a third child serves that folder on a free loopback port (Lite's own gRPC
server, as a Milvus server would) and the worker and web server are pointed at it.

With DJANGO_DEBUG on, the demo's `admin` user is created on first start with a random
password, printed once in a box as the last thing, when the site answers.
"""

import errno
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

GRACE_SECONDS = 15
POLL_SECONDS = 0.5


class StopRequested(Exception):
    pass


class Command(BaseCommand):
    help = "Start a Celery worker (with beat) and the web server for the demo; Ctrl-C stops both."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--no-worker", action="store_true", help="Start only the web server.")
        parser.add_argument(
            "--server",
            choices=["runserver", "gunicorn"],
            default="runserver",
            help="runserver (development) or gunicorn (production shape, after collectstatic).",
        )
        parser.add_argument(
            "--check-port", action="store_true", help="Only check that HOST:PORT is free, then exit."
        )

    def handle(self, *args, host: str, port: int, no_worker: bool, server: str = "runserver", **options):
        port_problem = _port_problem(host, port)
        if port_problem:
            raise CommandError(port_problem)
        if options.get("check_port"):
            return
        if server == "runserver" and not settings.DEBUG:
            self.stderr.write(
                "DJANGO_DEBUG is off: static files need collectstatic first (make serve does both)."
            )
        children: dict[str, subprocess.Popen] = {}
        previous = {sig: signal.signal(sig, _raise_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            env = os.environ.copy()
            if _serves_milvus_lite():
                lite_port = _free_port()
                children["milvus lite"] = _start(_milvus_lite_command(lite_port))
                self._wait_until_up("127.0.0.1", lite_port, children, what="Milvus Lite")
                env["SEARCH_MILVUS_URI"] = f"http://127.0.0.1:{lite_port}"
                env["SEARCH_MILVUS_INDEX"] = settings.SEARCH_MILVUS_INDEX  # Lite's default, not a server's
            if not no_worker:
                children["celery worker"] = _start(_worker_command(server), env)
            children["web server"] = _start(_web_command(host, port, server), env)
            self._wait_until_up(host, port, children)
            self._announce(f"http://{host}:{port}")
            dead = _wait_for_a_death(children)
        except StopRequested:
            self.stdout.write("Stopping ...")
            dead = None
        finally:
            # A second Ctrl-C must not leave children behind half-stopped.
            for sig in previous:
                signal.signal(sig, signal.SIG_IGN)
            _stop_all(children)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if dead is not None:
            raise CommandError(f"The {dead} stopped unexpectedly (exit code {children[dead].returncode}).")
        self.stdout.write("Stopped.")

    def _announce(self, url: str) -> None:
        """The last lines of the start: where the site is and, in the demo, how to log in."""
        lines = [
            f"shop_search is running at {url} (admin: /admin/, API docs: /api/v1/docs/)",
            "Ctrl-C stops everything.",
        ]
        if settings.DEBUG:
            lines[1:1] = _demo_admin_lines()
        width = max(len(line) for line in lines)
        box = ["+" + "-" * (width + 2) + "+", *(f"| {line.ljust(width)} |" for line in lines)]
        box.append(box[0])
        self.stdout.write(self.style.SUCCESS("\n".join(["", *box])))
        self.stdout.flush()

    def _wait_until_up(
        self, host: str, port: int, children: dict[str, subprocess.Popen], what: str = "The web server"
    ) -> None:
        deadline = time.monotonic() + 60
        while not _port_in_use(host, port):
            dead = _first_dead(children)
            if dead is not None:
                raise CommandError(
                    f"The {dead} exited while starting (exit code {children[dead].returncode})."
                )
            if time.monotonic() > deadline:
                raise CommandError(f"{what} did not answer on {host}:{port} within 60 s.")
            time.sleep(POLL_SECONDS)


def _demo_admin_lines() -> list[str]:
    """Creates the demo's `admin` with a random password when no superuser exists (shown only now)."""
    users = get_user_model()
    if users.objects.filter(is_superuser=True).exists():
        return ["Admin: an admin user exists already (reset: manage.py changepassword admin)."]
    password = secrets.token_urlsafe(12)
    users.objects.create_superuser("admin", "admin@example.invalid", password)
    return [
        f"Demo admin created: user 'admin', password '{password}'",
        "  (shown this once; change it with: manage.py changepassword admin)",
    ]


def _port_problem(host: str, port: int) -> str:
    """Why the web server could not listen on host:port ("" when it can), with what to do about it."""
    if _port_in_use(host, port):
        other = _free_port_after(host, port)
        return (
            f"{host}:{port} is already in use (another server?). Stop it, or pick another port: "
            f"make demo PORT={other}  (or: manage.py run_demo --port {other})"
        )
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers do: TIME_WAIT is free
            sock.bind((host, port))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            other = _free_port_after(host, port)
            return f"{host}:{port} is already in use. Pick another port: make demo PORT={other}"
        return f"Cannot listen on {host}:{port} ({exc.strerror or exc}). Check HOST= and PORT=."
    return ""


def _free_port_after(host: str, port: int) -> int:
    for candidate in range(port + 1, min(port + 100, 65536)):
        if not _port_in_use(host, candidate):
            return candidate
    return port + 1


def _raise_stop(signum, frame):
    raise StopRequested


def _worker_command(server: str = "runserver") -> list[str]:
    # solo pool: one task at a time in the worker process itself; the model is loaded once.
    # --beat: the periodic reapers that heal builds and imports of a killed worker (one machine only;
    # production runs one separate `celery beat`). The demo's worker reports warnings and errors only
    # (no banner, no line per task), so the start ends with the box of _announce; `make serve`, the
    # production shape, logs every task.
    quiet = ["--quiet"] if server == "runserver" else []
    level = "warning" if server == "runserver" else "info"
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "shop_search",
        *quiet,
        "worker",
        "--pool=solo",
        "-c",
        "1",
        "--beat",
        "-l",
        level,
    ]


def _web_command(host: str, port: int, server: str = "runserver") -> list[str]:
    if server == "gunicorn":
        config = Path(settings.BASE_DIR) / "gunicorn.conf.py"
        return [sys.executable, "-m", "gunicorn", "-c", str(config), "--bind", f"{host}:{port}"]
    manage = Path(settings.BASE_DIR) / "manage.py"
    return [sys.executable, str(manage), "runserver", f"{host}:{port}", "--noreload"]


def _start(command: list[str], env: dict | None = None) -> subprocess.Popen:
    # A new session: terminal Ctrl-C reaches only this command, which then stops each group itself.
    return subprocess.Popen(
        command, cwd=settings.BASE_DIR, env=env or os.environ.copy(), start_new_session=True
    )


def _serves_milvus_lite() -> bool:
    return settings.SEARCH_VECTOR_BACKEND == "milvus" and settings.SEARCH_MILVUS_URI.endswith(".db")


def _milvus_lite_command(port: int) -> list[str]:
    folder = Path(settings.SEARCH_MILVUS_URI).resolve()
    folder.parent.mkdir(parents=True, exist_ok=True)
    return [
        sys.executable, "-m", "milvus_lite", "server",
        "--data-dir", str(folder), "--host", "127.0.0.1", "--port", str(port),
    ]  # fmt: skip


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def _first_dead(children: dict[str, subprocess.Popen]) -> str | None:
    return next((name for name, child in children.items() if child.poll() is not None), None)


def _wait_for_a_death(children: dict[str, subprocess.Popen]) -> str:
    while True:
        dead = _first_dead(children)
        if dead is not None:
            return dead
        time.sleep(POLL_SECONDS)


def _signal_group(child: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(child.pid, sig)
    except ProcessLookupError:
        pass


def _stop_all(children: dict[str, subprocess.Popen]) -> None:
    """TERM every child's process group, wait, then KILL what is left."""
    for child in children.values():
        _signal_group(child, signal.SIGTERM)
    deadline = time.monotonic() + GRACE_SECONDS
    for child in children.values():
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
        # Grandchildren (none expected with --pool=solo and --noreload) die with the group.
        _signal_group(child, signal.SIGKILL)
        child.wait()
