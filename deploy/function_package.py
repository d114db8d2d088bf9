"""What Chalice puts into every function's package besides the app: libraries, and nothing stale.

``prepare()`` runs before each ``chalice deploy`` and ``chalice package``:
- ``vendor/``, the libraries: ``requirements-functions.txt`` lists what the functions import and
  what that needs, except what the Lambda Python runtime provides (boto3 and its libraries);
  tests/unit/test_packaging.py keeps the list closed. They are installed at exactly the versions
  and hashes of requirements-run.lock, for the Lambda runtime, with uv, and without ``UNUSED``:
  the parts no function imports. Chalice adds ``vendor/`` to the zip as it is and installs
  nothing itself (the project has no requirements.txt), so no deploy runs Chalice's pip either.
- bytecode, compiled ahead: Lambda's ``/var/task`` is read-only, so a package without it compiles
  every module of the app and its libraries again on every cold start (about 250 ms of CPU here).
  ``vendor/`` and ``chalicelib/`` get one ``__pycache__`` each, fresh (a local run's, a moved
  module's, would ship too), for the runtime's Python: the one that runs the deploy. Hash-checked
  (PEP 552): valid whatever the zip does to file times, and never stale, since Python checks each
  one against its source.
"""

from __future__ import annotations

import compileall
import hashlib
import py_compile
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from deploy.stages import BUILD, PROJECT, build_lock

REQUIREMENTS = PROJECT / "requirements-functions.txt"
LOCK = PROJECT / "requirements-run.lock"  # the hashes every version is checked against
# The durable style's SDK (chalicelib/entrypoints/durable.py), locked apart without its
# dependencies (requirements-durable.txt says why): packaged from there, without its boto3.
DURABLE_REQUIREMENTS = PROJECT / "requirements-durable.txt"
DURABLE_LOCK = PROJECT / "requirements-durable.lock"
DURABLE_SDK = "aws-durable-execution-sdk-python"
VENDOR = PROJECT / "vendor"
# The runtime Chalice deploys to: the Python that runs it, on Lambda's default x86_64, whose
# Python 3.12+ runtimes (Amazon Linux 2023) have glibc 2.34: wheels are chosen as Chalice would.
PYTHON_VERSION = f"{sys.version_info.major}.{sys.version_info.minor}"
PLATFORM = "x86_64-manylinux_2_34"
# What no function imports (tests/unit/test_packaging.py checks it against what they load).
UNUSED = (
    # The API is Chalice's: Powertools' event handler (its resolvers, OpenAPI, a Swagger UI of
    # 1.7 MB) is never loaded. Of Powertools' utilities the functions use batch, parameters and
    # data_classes; the others below are never loaded (parser needs pydantic, not packaged).
    "aws_lambda_powertools/event_handler",
    "aws_lambda_powertools/utilities/auth_alpha",
    "aws_lambda_powertools/utilities/circuit_breaker",
    "aws_lambda_powertools/utilities/data_masking",
    "aws_lambda_powertools/utilities/feature_flags",
    "aws_lambda_powertools/utilities/idempotency",
    "aws_lambda_powertools/utilities/kafka",
    "aws_lambda_powertools/utilities/parser",
    "aws_lambda_powertools/utilities/streaming",
    "aws_lambda_powertools/utilities/validation",
    # cryptography's bindings load cffi's compiled backend (_cffi_backend) alone: cffi's Python
    # half and pycparser parse C declarations, which only building bindings needs.
    "cffi",
    "pycparser",
    # googleapis-common-protos is there for the OTLP exporter's protobuf runtime (google/protobuf,
    # protobuf's): its own Google API messages are never loaded.
    "google/api",
    "google/cloud",
    "google/gapic",
    "google/logging",
    "google/longrunning",
    "google/rpc",
    "google/type",
    # A C source, type stubs and a console script: nothing a function runs.
    "wrapt/_wrappers.c",
    "wrapt-stubs",
    "bin",
    ".lock",  # uv's, of the install
)


def prepare() -> None:
    """The libraries in ``vendor/``, and ``chalicelib/`` compiled afresh."""
    vendor()
    chalicelib = PROJECT / "chalicelib"
    for cache in chalicelib.rglob("__pycache__"):
        shutil.rmtree(cache, ignore_errors=True)
    compile_bytecode(chalicelib)  # (Chalice packages app.py alone, without a __pycache__)


def compile_bytecode(folder: Path) -> None:
    """Hash-checked bytecode for every module in ``folder``."""
    mode = py_compile.PycInvalidationMode.CHECKED_HASH
    if not compileall.compile_dir(folder, quiet=1, invalidation_mode=mode):
        raise SystemExit(f"compiling {folder} failed")


def vendor() -> Path:
    """``vendor/`` as the requirements, lock and ``UNUSED`` say; rebuilt only when one changed.

    The two deploy paths may ask at once (``make run`` runs them side by side): one builds.
    """
    fingerprint = _fingerprint()
    stamp = BUILD / "vendor.fingerprint"
    with build_lock("vendor"):
        if VENDOR.is_dir() and stamp.is_file() and stamp.read_text() == fingerprint:
            return VENDOR
        stamp.unlink(missing_ok=True)
        with tempfile.TemporaryDirectory(dir=BUILD, prefix="vendor-") as scratch:
            installed = Path(scratch) / "vendor"
            _install(installed)
            for part in UNUSED:
                _remove(installed, part)
            compile_bytecode(installed)
            shutil.rmtree(VENDOR, ignore_errors=True)
            installed.rename(VENDOR)
        stamp.write_text(fingerprint)
    return VENDOR


def _install(target: Path) -> None:
    completed = subprocess.run(
        [
            "bash",
            str(PROJECT / "scripts" / "uv"),
            "pip",
            "install",
            "--quiet",
            "--target",
            str(target),
            "--no-deps",  # the list is closed; the runtime has the rest
            "--require-hashes",  # each from the lock: a library not in it is refused
            "--only-binary",
            ":all:",
            "--python-platform",
            PLATFORM,
            "--python-version",
            PYTHON_VERSION,
            "-r",
            str(REQUIREMENTS),
            "-c",
            str(LOCK),
            durable_sdk(),
            "-c",
            str(DURABLE_LOCK),
        ],
        cwd=PROJECT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    if completed.returncode != 0:
        raise SystemExit(f"installing the functions' libraries failed:\n{completed.stdout}")


def durable_sdk() -> str:
    """The durable execution SDK's pinned requirement, as requirements-durable.txt lists it."""
    for line in DURABLE_REQUIREMENTS.read_text().splitlines():
        if line.startswith(f"{DURABLE_SDK}=="):
            return line.strip()
    raise SystemExit(f"{DURABLE_REQUIREMENTS.name} lists no pinned {DURABLE_SDK}")


def _remove(root: Path, part: str) -> None:
    path = root / part
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()
    else:
        raise SystemExit(
            f"{part} is listed as unused in deploy/function_package.py, but the functions' "
            "libraries have no such file: update UNUSED"
        )


def _fingerprint() -> str:
    digest = hashlib.sha256()
    # "bytecode": vendor/ folders made before it was compiled are made again.
    locks = (REQUIREMENTS, LOCK, DURABLE_REQUIREMENTS, DURABLE_LOCK)
    texts = (*(lock.read_text() for lock in locks), PYTHON_VERSION, PLATFORM, "bytecode")
    for text in (*texts, *UNUSED):
        digest.update(text.encode() + b"\0")
    return digest.hexdigest()
