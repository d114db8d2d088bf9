"""One unzipped copy of each deployment package, shared by every function that deploys it.

LocalStack unzips a function's package once per function (``S3Code.prepare_for_execution``,
into ``<tmp>/lambda/<bucket>/<code id>/code``), although a Chalice or SAM deployment gives all
its functions one and the same package: a deploy of this project's two paths unzipped about
36 MB thirty times, on the deploy's critical path (LocalStack prepares each version as it is
created). Here a package is unzipped once per content, by its SHA-256, and each function runs
from that copy. A changed package has another hash, so no function ever runs another's code.

The copies live in the instance's temporary directory (LocalStack's ``TMPDIR``), which goes with
the instance; a stale one costs disk, never correctness.
"""

from __future__ import annotations

import tempfile
import threading
from collections import defaultdict
from pathlib import Path
from typing import Any

from localstack.services.lambda_.invocation.lambda_models import S3Code
from localstack.utils.archives import unzip
from localstack.utils.files import chmod_r

_locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)
_locks_guard = threading.Lock()


def code_root() -> Path:
    return Path(tempfile.gettempdir()) / "lambda" / "code-by-sha256"


def code_dir(code: Any) -> Path:
    """Where a function whose package is ``code`` runs from: the package's shared copy, made
    on first use; other kinds of code (hot reloading's host folder) where LocalStack puts it."""
    if not isinstance(code, S3Code):
        code.prepare_for_execution()
        return Path(code.get_unzipped_code_location())
    target = code_root() / code.code_sha256
    with _locks_guard:
        lock = _locks[code.code_sha256]
    with lock:
        if target.is_dir():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        # Unzipped aside and renamed: a process never sees half a package.
        unpacked = Path(tempfile.mkdtemp(dir=target.parent, prefix=".unzipping-"))
        with tempfile.NamedTemporaryFile() as archive:
            code._download_archive_to_file(archive)
            unzip(archive.name, str(unpacked))
        chmod_r(str(unpacked), 0o755)
        unpacked.rename(target)
    return target
