"""Serve the orders API with ``chalice local`` against the (local) cloud the functions run in.

It runs through ``localdev/chalice_local_server.py``: ``chalice local`` with API Gateway's
payload limit and a 405 for every method the routes do not take. It serves the stage's
``chalice deploy`` deployment, from the project the deploy rendered (``build/chalice/<prefix>/``,
whose config hands the functions' environment to the app).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from deploy.stages import PROJECT, Deployment, DeployPath, load_stage

SERVER = [sys.executable, "-m", "localdev.chalice_local_server"]


def start(
    port: int, env: dict[str, str], log: Path | None = None, stage: str = "local"
) -> subprocess.Popen[bytes]:
    """Start ``chalice local`` for the deployed stage and wait until it answers.

    Its request log goes to ``log``, or to this terminal when no file is given. The
    server does not reload on file changes: deploys write into the project folder.
    """
    project = Deployment(load_stage(stage), DeployPath.CHALICE).chalice_project
    if not (project / ".chalice" / "config.json").exists():
        raise RuntimeError(f"stage {stage} is not deployed: python -m deploy up --stage {stage}")
    with socket.socket() as probe:
        # Otherwise a server already on the port would answer the readiness check below.
        if probe.connect_ex(("127.0.0.1", port)) == 0:
            raise RuntimeError(f"port {port} is in use: stop what serves it, or pick another port")
    output = log.open("ab") if log is not None else None
    server = subprocess.Popen(
        [*SERVER, "--project-dir", str(project), "local", "--no-autoreload"]
        + ["--stage", stage, "--host", "127.0.0.1", "--port", str(port)],
        cwd=PROJECT,
        env=env,
        stdout=output,
        stderr=subprocess.STDOUT if output is not None else None,
    )
    if output is not None:
        output.close()  # the child has its own copy
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            where = f"; see {log}" if log is not None else ""
            raise RuntimeError(f"chalice local exited with {server.returncode}{where}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/orders/ping", timeout=2)
        except urllib.error.HTTPError:
            return server  # any HTTP answer (404 for an unknown order) means it serves
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise RuntimeError(f"chalice local did not answer on port {port} within 30 s")


def stop(server: subprocess.Popen[bytes]) -> None:
    server.terminate()
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()
