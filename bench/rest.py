"""Latency and load shedding of the forecast endpoint of a real Jupyter server on 127.0.0.1."""

from __future__ import annotations

import http.client
import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.synthetic import research_export
from bench.timing import summarize_seconds

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
SERVER_START_SECONDS = 120.0
REQUEST_TIMEOUT_SECONDS = 300.0


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


class Server:
    """A ``jupyter server`` subprocess with the glurpc_lab extension, stopped on exit.

    Parameters
    ----------
    folder : Path
        Scratch folder for the server's root, home, runtime files, store and log.
    model_source : str
        ``GlurpcLabApp.model_source``.
    max_queued_interactive : int
        ``GlurpcLabApp.max_queued_interactive``: queued jobs before HTTP 503.
    """

    def __init__(self, folder: Path, model_source: str, *, max_queued_interactive: int) -> None:
        self.folder = Path(folder)
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self.model_source = model_source
        self.max_queued_interactive = max_queued_interactive
        self.log_path = self.folder / "server.log"
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> Server:
        root = self.folder / "root"
        root.mkdir(parents=True, exist_ok=True)
        environment = dict(os.environ)
        # Keep Jupyter's settings and runtime files out of the real home folder.
        environment.update(
            HOME=str(self.folder / "home"),
            JUPYTER_CONFIG_DIR=str(self.folder / "jupyter-config"),
            JUPYTER_RUNTIME_DIR=str(self.folder / "jupyter-runtime"),
            HF_HUB_OFFLINE="1",
        )
        command = [
            sys.executable, "-m", "jupyter_server",
            "--ServerApp.open_browser=False",
            "--allow-root",
            f"--ServerApp.ip={HOST}",
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={root}",
            "--ServerApp.jpserver_extensions={'glurpc_lab': True}",
            f"--GlurpcLabApp.model_source={self.model_source}",
            f"--GlurpcLabApp.cache_dir={self.folder / 'store'}",
            f"--GlurpcLabApp.max_queued_interactive={self.max_queued_interactive}",
            # Nothing computes ahead of a request, so the uncached requests below are really uncached.
            "--GlurpcLabApp.prefetch_forecasts=False",
            "--GlurpcLabApp.background_fill=False",
        ]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command, cwd=root, env=environment, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        try:
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + SERVER_START_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = self.log_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"jupyter server exited with code {self.process.returncode}; log tail:\n{tail}")
            try:
                status, _ = self.request("GET", "/glurpc-lab/health/ready", timeout=2.0)
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.5)
        # The log sits in a temporary folder that is removed on exit, so its tail goes into the message.
        tail = self.log_path.read_text(errors="replace")[-2000:]
        raise TimeoutError(f"jupyter server was not ready within {SERVER_START_SECONDS:.0f} s; log tail:\n{tail}")

    def stop(self) -> None:
        """Stop the server: SIGTERM to its process group, SIGKILL after 30 s."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def connection(self, timeout: float = REQUEST_TIMEOUT_SECONDS) -> http.client.HTTPConnection:
        """Open a keep-alive connection to the server."""
        return http.client.HTTPConnection(HOST, self.port, timeout=timeout)

    @property
    def headers(self) -> dict:
        """Authorization header for the extension's routes."""
        return {"Authorization": f"token {self.token}"}

    def request(self, method: str, path: str, body: bytes | None = None, *, timeout: float = REQUEST_TIMEOUT_SECONDS) -> tuple[int, bytes]:
        """Send one request on a new connection and return the status and body."""
        connection = self.connection(timeout)
        try:
            connection.request(method, path, body=body, headers=self.headers)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def upload(self, content: bytes) -> str:
        """Upload an export and return its dataset handle."""
        status, body = self.request("POST", "/glurpc-lab/datasets", content)
        if status != 201:
            raise RuntimeError(f"upload failed with HTTP {status}: {body[:200]!r}")
        return json.loads(body)["handle"]


def run_clients(server: Server, paths: list[list[str]]) -> dict:
    """Run one thread per entry of ``paths``, each sending its GET requests in order on one connection.

    All clients start together. Returns latency summaries of the 200 responses,
    the count of each status, the wall time and the rate of 200 responses.
    """
    barrier = threading.Barrier(len(paths))
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()

    def client(client_paths: list[str]) -> None:
        connection = server.connection()
        barrier.wait()
        try:
            for path in client_paths:
                started = time.perf_counter()
                connection.request("GET", path, headers=server.headers)
                response = connection.getresponse()
                response.read()
                elapsed = time.perf_counter() - started
                with lock:
                    statuses[response.status] = statuses.get(response.status, 0) + 1
                    if response.status == 200:
                        latencies.append(elapsed)
        finally:
            connection.close()

    threads = [threading.Thread(target=client, args=(client_paths,)) for client_paths in paths]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    ok = statuses.get(200, 0)
    return {
        "clients": len(paths),
        "requests": sum(len(client_paths) for client_paths in paths),
        "statuses": {str(code): count for code, count in sorted(statuses.items())},
        "latency_s": summarize_seconds(latencies),
        "wall_s": wall,
        "ok_per_s": ok / wall if wall > 0 else None,
    }


def rest_benchmark(
    model_source: str,
    *,
    days: float,
    client_counts: tuple[int, ...],
    requests_per_client: int,
    burst_datasets: int,
    max_queued_interactive: int,
) -> dict:
    """Measure the forecast endpoint with cached forecasts, then its load shedding with uncached ones.

    Cached: one ``days``-long export's latest window is computed once; then each
    of ``client_counts`` concurrent clients sends ``requests_per_client``
    requests for it. Uncached: ``burst_datasets`` new exports are uploaded, and
    one client per export requests its latest window at the same moment, so
    the queue (``max_queued_interactive`` jobs behind the running one) fills
    and the rest get 503.

    Returns
    -------
    dict
        Per client count: latency median and p99, statuses, 200 responses per second;
        for the burst: statuses and the rate of computed forecasts.
    """
    with tempfile.TemporaryDirectory(prefix="glurpc-bench-rest-") as folder:
        with Server(Path(folder), model_source, max_queued_interactive=max_queued_interactive) as server:
            handle = server.upload(research_export(days, seed=21))
            path = f"/glurpc-lab/datasets/{handle}/series/0/forecasts?windows=latest"
            first_started = time.perf_counter()
            status, _ = server.request("GET", path)
            first_s = time.perf_counter() - first_started
            if status != 200:
                raise RuntimeError(f"the first forecast request failed with HTTP {status}")

            cached = {}
            for clients in client_counts:
                cached[str(clients)] = run_clients(server, [[path] * requests_per_client for _ in range(clients)])

            handles = [server.upload(research_export(min(days, 2.0), seed=100 + number)) for number in range(burst_datasets)]
            burst = run_clients(
                server, [[f"/glurpc-lab/datasets/{h}/series/0/forecasts?windows=latest"] for h in handles]
            )
    return {
        "model_source": model_source,
        "days": days,
        "endpoint": "GET datasets/<handle>/series/0/forecasts?windows=latest",
        "first_uncached_request_s": first_s,
        "cached": cached,
        "burst_uncached": {**burst, "max_queued_interactive": max_queued_interactive},
    }
