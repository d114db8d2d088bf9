"""``make run``: start the local cloud, deploy both paths, serve the API with chalice local.

Each phase prints one line with the time since start (``[ 12.3s] local cloud up``);
a failing phase is named, with the log to read. The two deploy paths run side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from deploy.stages import Deployment, DeployPath, load_stage
from localdev import chalice_local, dev_issuer
from localdev.orders_api import OrdersApi
from tools import demo

PROJECT = Path(__file__).resolve().parents[1]
LOGS = PROJECT / "build" / "logs"
BEGAN = float(os.environ.get("ORDERS_RUN_STARTED", time.time()))


class PhaseFailed(RuntimeError):
    pass


def progress(message: str) -> None:
    print(f"[{time.time() - BEGAN:5.1f}s] {message}", flush=True)


def run_phase(name: str, command: list[str], env: dict[str, str] | None = None) -> str:
    """Run a phase's command with its output in build/logs/<name>.log; its stdout."""
    LOGS.mkdir(parents=True, exist_ok=True)
    log = LOGS / f"{name}.log"
    with log.open("w") as stderr:
        completed = subprocess.run(
            command, cwd=PROJECT, env=env, stdout=subprocess.PIPE, stderr=stderr, text=True
        )
    if completed.returncode != 0:
        with log.open("a") as output:
            output.write(completed.stdout)
        raise PhaseFailed(f"{name} failed; read {log.relative_to(PROJECT)}")
    return completed.stdout


def deploy(env: dict[str, str], command: str) -> dict[str, str]:
    run_phase(f"deploy-{command}", [sys.executable, "-m", "deploy", command], env)
    path = DeployPath.SAM if command == "sam-up" else DeployPath.CHALICE
    outputs = json.loads(Deployment(load_stage("local"), path).outputs_file.read_text())
    progress(f"deployed with {outputs['deployed_with']}")
    return dict(outputs)


def stop_on_sigterm(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt  # so chalice local is stopped with us, as on Ctrl-C


def main() -> int:
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parser.add_argument("--demo", action="store_true", help="run one order through each flow first")
    parser.add_argument("--skip-sam", action="store_true", help="deploy only with chalice deploy")
    args = parser.parse_args()
    progress("project environment ready")
    try:
        endpoint = run_phase("local-cloud", ["bash", "localcloud/run", "start"]).splitlines()[-1]
        progress(f"local cloud up at {endpoint}")
        env = dict(os.environ) | {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", "test"),
            "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", "test"),
            "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        }
        with ThreadPoolExecutor(max_workers=2) as pool:
            sam: Future[dict[str, str]] | None = None
            if not args.skip_sam:
                sam = pool.submit(deploy, env, "sam-up")
            deployed = deploy(env, "up")
            log = LOGS / "chalice-local.log"
            server = chalice_local.start(args.port, env, log)
            url = f"http://127.0.0.1:{args.port}"
            progress(f"orders API served at {url}")
            sam_outputs = sam.result() if sam is not None else None
    except RuntimeError as failure:  # a phase failed, or chalice local did not start
        progress(str(failure))
        return 1
    viewer_token = dev_issuer.token(load_stage("local"), "restaurant", demo.ORDER["restaurant_id"])
    print(
        f"""
Local cloud:                 {endpoint}   (stop it with: make localcloud-stop)
Orders API (chalice local):  {url}   (request log: {log.relative_to(PROJECT)})
Orders API (API Gateway):    {deployed["api_url"]}
{"Orders API (SAM stack):      " + sam_outputs["api_url"] if sam_outputs else ""}
Flow viewer (local demo login: the link carries a development token; the restaurant of
the orders below and make demo's sees all of them):
  {url}/viewer#token={viewer_token}
Try (tokens from the local development issuer: python -m tools.token --help):
  CUSTOMER=$(.venv/bin/python -m tools.token customer customer-42 | tail -n 1)
  RESTAURANT=$(.venv/bin/python -m tools.token restaurant restaurant-7 | tail -n 1)
  curl -s -XPOST {url}/orders -H "Authorization: Bearer $CUSTOMER" \\
       -H 'Content-Type: application/json' -H 'Idempotency-Key: demo-1' \\
       -d '{{"customer_id":"customer-42","restaurant_id":"restaurant-7","flow":"orchestration",
            "items":[{{"name":"Margherita","quantity":1,"unit_price_cents":950}}]}}'
  curl -s {url}/orders/<order_id> -H "Authorization: Bearer $CUSTOMER"
  curl -s -XPOST {url}/orders/<order_id>/accept -H "Authorization: Bearer $RESTAURANT"
       (then /complete as the restaurant; or /reject; /cancel as the customer)
""",
        flush=True,
    )
    try:
        if args.demo:
            demo.run(OrdersApi(url))
        server.wait()
    except KeyboardInterrupt:
        pass
    finally:
        chalice_local.stop(server)
    return 0


if __name__ == "__main__":
    sys.exit(main())
