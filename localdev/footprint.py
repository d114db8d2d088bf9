"""What the functions weigh: deployment package size and handler import time, ours next to an
empty Chalice app's, imported by the local cloud's Lambda runtime interpreter as Lambda would
(no bytecode written, a fresh process each time).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from deploy import chalice_app, function_package
from localcloud.paths import install_layout

PROJECT = Path(__file__).resolve().parents[1]
EMPTY_APP = """from chalice import Chalice

app = Chalice(app_name="empty")


@app.route("/")
def index():
    return {}
"""
TIME_IMPORT = (
    "import time; began = time.perf_counter(); import app; "
    "print((time.perf_counter() - began) * 1000)"
)


@dataclass(frozen=True)
class Footprint:
    package_bytes: int
    import_ms_median: float


def _package(project: Path, out: Path, stage: str, env: dict[str, str]) -> Path:
    subprocess.run(
        [str(chalice_app.CHALICE), "package", "--stage", stage, str(out)],
        cwd=project,
        env=env | chalice_app.CHALICE_ENVIRONMENT,  # packaged as the deploy packages
        check=True,
        capture_output=True,
    )
    return out / "deployment.zip"


def _import_ms(package: Path, env: dict[str, str], runs: int) -> float:
    interpreter = next((install_layout().runtimes_dir).glob("python3*/bin/python"))
    with tempfile.TemporaryDirectory() as unzipped:
        zipfile.ZipFile(package).extractall(unzipped)
        times = []
        for _ in range(runs):
            completed = subprocess.run(
                [str(interpreter), "-c", TIME_IMPORT],
                cwd=unzipped,
                env=env | {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": unzipped},
                check=True,
                capture_output=True,
                text=True,
            )
            times.append(float(completed.stdout.strip().splitlines()[-1]))
    return statistics.median(times)


def measure(runs: int = 5) -> dict[str, Footprint]:
    """``{"orders": ..., "empty chalice app": ...}``."""
    env = dict(os.environ) | {
        "ORDERS_RESOURCE_PREFIX": "orders-footprint",
        # What app.py reads when it builds the app: the relay's stream (any well-formed ARN).
        "ORDERS_TABLE_STREAM_ARN": "arn:aws:dynamodb:us-east-1:0:table/orders-footprint/stream/x",
        "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
    }
    results: dict[str, Footprint] = {}
    function_package.prepare()  # the orders app's package as the deploy makes it
    with tempfile.TemporaryDirectory() as scratch:
        empty = Path(scratch) / "empty"
        (empty / ".chalice").mkdir(parents=True)
        (empty / "app.py").write_text(EMPTY_APP)
        (empty / "requirements.txt").write_text("")
        (empty / ".chalice" / "config.json").write_text(
            json.dumps({"version": "2.0", "app_name": "empty", "stages": {"dev": {}}})
        )
        for name, project, stage in (
            ("orders", PROJECT, "local"),
            ("empty chalice app", empty, "dev"),
        ):
            package = _package(project, Path(scratch) / f"out-{stage}-{len(results)}", stage, env)
            results[name] = Footprint(package.stat().st_size, _import_ms(package, env, runs))
    return results
