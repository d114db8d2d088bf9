"""``make run``: start the local cloud, deploy both paths, serve the API with chalice local."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from localdev import chalice_local
from localdev.orders_api import OrdersApi
from tools import demo

PROJECT = Path(__file__).resolve().parents[1]


def start_local_cloud() -> str:
    started = subprocess.run(
        ["bash", "localcloud/run", "start"],
        cwd=PROJECT,
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    return started.stdout.strip().splitlines()[-1]


def deploy(env: dict[str, str], command: str) -> dict[str, str]:
    print(f"== python -m deploy {command} --stage local", file=sys.stderr, flush=True)
    subprocess.run(
        [sys.executable, "-m", "deploy", command, "--stage", "local"],
        cwd=PROJECT,
        env=env,
        check=True,
    )
    prefix = "orders-sam" if command == "sam-up" else "orders"
    return dict(json.loads((PROJECT / "build" / f"outputs-{prefix}-local.json").read_text()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parser.add_argument("--demo", action="store_true", help="run one order through each flow first")
    parser.add_argument("--skip-sam", action="store_true", help="deploy only with chalice deploy")
    args = parser.parse_args()

    endpoint = start_local_cloud()
    env = dict(os.environ) | {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", "test"),
        "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", "test"),
        "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
    }
    deployed = deploy(env, "up")
    sam = None if args.skip_sam else deploy(env, "sam-up")

    log = PROJECT / "build" / "chalice-local.log"
    server = chalice_local.start(args.port, env, log)
    url = f"http://127.0.0.1:{args.port}"
    print(
        f"""
Local cloud:                 {endpoint}   (stop it with: make localcloud-stop)
Orders API (chalice local):  {url}   (request log: {log.relative_to(PROJECT)})
Orders API (API Gateway):    {deployed["api_url"]}
{"Orders API (SAM stack):      " + sam["api_url"] if sam else ""}
Try:
  curl -s -XPOST {url}/orders -H 'Content-Type: application/json' -H 'Idempotency-Key: demo-1' \\
       -d '{{"customer_id":"c-1","restaurant_id":"r-1","flow":"orchestration",
            "items":[{{"name":"Margherita","quantity":1,"unit_price_cents":950}}]}}'
  curl -s {url}/orders/<order_id>
  curl -s -XPOST {url}/orders/<order_id>/accept     (then /complete; or /reject, /cancel)
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
