"""Starting, stopping and inspecting one embedded LocalStack instance (standard library only)."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from localcloud import processes
from localcloud.install import (
    dynamodb_local_dir,
    executor_digest,
    find_java_home,
    install_all,
    log,
)
from localcloud.paths import (
    EXECUTOR_PLUGIN_NAME,
    FUNCTION_HOOK,
    InstallLayout,
    InstanceLayout,
    install_layout,
    instance_layout,
)

EXTERNAL_ENDPOINT_VARIABLES = ("LOCALSTACK_ENDPOINT", "AWS_ENDPOINT_URL")
LOCALSTACK_MAIN = "localstack.runtime.main"


class StartError(RuntimeError):
    """LocalStack did not become ready; the message points at its log."""


@dataclass(frozen=True)
class Endpoint:
    url: str
    # False when the endpoint belongs to someone else (an env var or an already running LocalStack).
    started_here: bool


def external_endpoint() -> str | None:
    """An endpoint the user chose through LOCALSTACK_ENDPOINT or AWS_ENDPOINT_URL, if any."""
    for name in EXTERNAL_ENDPOINT_VARIABLES:
        if value := os.environ.get(name, "").strip():
            return value.rstrip("/")
    return None


def local_url(port: int) -> str:
    return f"http://127.0.0.1:{port}"


def is_healthy(url: str, timeout: float = 1.0) -> bool:
    """True if a LocalStack answers its health endpoint at `url`."""
    try:
        with urllib.request.urlopen(f"{url}/_localstack/health", timeout=timeout) as response:
            return response.status == 200 and "services" in json.loads(response.read() or b"{}")
    except (OSError, ValueError, urllib.error.URLError):
        return False


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Serialises start/stop of one instance across processes (e.g. parallel test sessions)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# --- pid file -----------------------------------------------------------------------------


def running_pid(instance: InstanceLayout) -> int | None:
    """The pid of this instance's LocalStack if it is alive (and really is LocalStack)."""
    try:
        pid = int(instance.pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    if processes.is_alive(pid) and LOCALSTACK_MAIN in processes.command_line(pid):
        return pid
    return None


# --- start --------------------------------------------------------------------------------


def wire_offline_packages(install: InstallLayout, instance: InstanceLayout) -> None:
    """Puts DynamoDB Local, the machine's JDK and the no-op agent where LocalStack looks.

    LocalStack's DynamoDB provider would otherwise download Java 21, DynamoDB Local and a
    patching agent at first use. Its package manager skips a package whose marker file exists,
    so links in its `var_libs` make it use ours (see localstack/services/dynamodb/packages.py).
    """
    dynamodb_dir = instance.var_libs / "dynamodb-local" / "2"
    dynamodb_dir.mkdir(parents=True, exist_ok=True)
    source = dynamodb_local_dir(install)
    links = {
        dynamodb_dir / "DynamoDBLocal.jar": source / "DynamoDBLocal.jar",
        dynamodb_dir / "DynamoDBLocal_lib": source / "DynamoDBLocal_lib",
        dynamodb_dir / "ddb-local-loader-0.1.jar": install.java_agent_jar,
        # LocalStack asks for "Java 21"; DynamoDB Local 3.x runs on 17, which the machine has.
        instance.var_libs / "java" / "21": find_java_home(),
    }
    for link, target in links.items():
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() or link.exists():
            if link.is_symlink() and link.resolve() == target.resolve():
                continue
            link.unlink()
        link.symlink_to(target)


def localstack_environment(install: InstallLayout, instance: InstanceLayout) -> dict[str, str]:
    # LocalStack caches the bytecode of what it imports in its own venv, even where the shell
    # says not to (PYTHONDONTWRITEBYTECODE): a start and a service's first use compile half as
    # much the next time (Step Functions' parser: 3.8 s -> 1.9 s to import).
    ignored = {*EXTERNAL_ENDPOINT_VARIABLES, "PYTHONDONTWRITEBYTECODE"}
    env = {k: v for k, v in os.environ.items() if k not in ignored}
    host = f"127.0.0.1:{instance.port}"
    env.update(
        {
            "GATEWAY_LISTEN": host,
            # URLs LocalStack hands out (queue URLs, ...) must resolve offline.
            "LOCALSTACK_HOST": host,
            # These machines look like containers to LocalStack; this keeps every directory
            # (libs, cache, tmp, state) under FILESYSTEM_ROOT.
            "OVERRIDE_IN_DOCKER": "0",
            "FILESYSTEM_ROOT": str(instance.filesystem_root),
            "LOCALSTACK_VOLUME_DIR": str(instance.volume_dir),
            # LocalStack unzips function code under the temp dir: keep that in the state too.
            "TMPDIR": str(instance.tmp_dir),
            "LAMBDA_RUNTIME_EXECUTOR": EXECUTOR_PLUGIN_NAME,
            "LOCALCLOUD_RUNTIMES_DIR": str(install.runtimes_dir),
            # Function processes carry it on their command line, so a stop can find strays.
            "LOCALCLOUD_INSTANCE_DIR": f"{instance.root}{os.sep}",
        }
    )
    defaults = {
        "SQS_ENDPOINT_STRATEGY": "path",
        # No DNS server: it would bind port 53 and is not needed on the host.
        "DNS_ADDRESS": "0",
        "SKIP_SSL_CERT_DOWNLOAD": "1",
        "DISABLE_EVENTS": "1",
        "DYNAMODB_IN_MEMORY": "1",
        # Table streams (the orders table's outbox) from DynamoDB Local itself: the default
        # provider runs them through Kinesis, which it would `npm install` on first use, offline.
        "PROVIDER_OVERRIDE_DYNAMODB": "v2",
        "PROVIDER_OVERRIDE_DYNAMODBSTREAMS": "v2",
        # Event source mapping pollers (localstack/services/lambda_/event_source_mapping/
        # esm_worker.py) sleep between polls; Lambda's own long polling hands a message over at
        # once. After a poll that found messages they sleep the poll interval (LocalStack: 1 s),
        # so a message following another closely waits up to that long, at every hop. Measured
        # (localcloud/README.md, "Event source mapping polling"), a hop is 20-30x the raw
        # SNS -> SQS floor at 1 s, p95 over 3x at 0.2 s, ~2x at 0.05 s. No idle cost: the sleep
        # only follows a poll that found work, and the local stages' SQS mappings then long-poll.
        "LAMBDA_EVENT_SOURCE_MAPPING_POLL_INTERVAL_SEC": "0.05",
        # After an empty poll they back off from 1 s x random(0.5-1.5), growing 1.5x a time, up
        # to this maximum (LocalStack: 10 s, i.e. up to 15 s). The local stages give SQS mappings
        # a batching window (deploy/stages.json local_tuning), so the poller long-polls 20 s and
        # this sleep only follows 20 idle seconds: at 10 s, a message sent after some idle
        # minutes waits ~5 s one time in three; at 0.5 s, under a second one time in forty. A
        # mapping without a window (AWS-like, or a test's) short-polls at this rate while idle:
        # about 2.5 % of a core each at 0.5 s (1.4 % at 1 s, 0.3 % at 10 s).
        "LAMBDA_EVENT_SOURCE_MAPPING_MAX_BACKOFF_ON_EMPTY_POLL_SEC": "0.5",
        # CloudFormation re-checks a resource still in progress (a function Pending, a table
        # CREATING) this many times at once, then once a second (LocalStack: 5). A local function
        # is Active ~0.2 s after it is created, so each one cost a stack a whole second.
        "CFN_NO_WAIT_ITERATIONS": "200",
        # LocalStack's services call each other (a poller's receive and invoke, SNS -> SQS, API
        # Gateway -> Lambda, Step Functions tasks) through its gateway's handler chain on the
        # caller's thread instead of an HTTP request to itself (serialised, sent, received by
        # Twisted, handed to a WSGI thread, and the answer back): about a sixth of LocalStack's
        # CPU per order at 8 customers (docs/benchmark.md). The request is still signed, parsed,
        # logged and dispatched as one from outside; only the HTTP round trip is left out.
        "IN_MEMORY_CLIENT": "1",
        # The requests LocalStack makes to itself (SQS pollers' receives, empty ones too; SNS
        # deliveries; Lambda invokes) in its log too, so the benchmark can count what AWS bills.
        "LOG_LEVEL_OVERRIDES": "localstack.request.internal.aws=INFO",
        # POST /_localstack/config may change settings while it runs: the fault run
        # (tools/fault_run.py) turns DYNAMODB_ERROR_PROBABILITY (throttling) on and off with it.
        "ENABLE_CONFIG_UPDATES": "1",
        # Run in every function process before its handler (the Lambda executor's run_hook):
        # attaches the fault switch where a local stage's environment names it. Test instruments
        # come from this checkout, never from a deployment package (an empty value: none).
        "LOCALCLOUD_FUNCTION_HOOK": str(FUNCTION_HOOK),
    }
    for name, value in defaults.items():
        env.setdefault(name, value)
    return env


def spawn_localstack(install: InstallLayout, instance: InstanceLayout) -> int:
    for directory in (
        instance.root,
        instance.filesystem_root,
        instance.volume_dir,
        instance.tmp_dir,
    ):
        directory.mkdir(parents=True, exist_ok=True)
    wire_offline_packages(install, instance)
    with instance.log_file.open("ab") as log_handle:
        log_handle.write(
            f"\n=== localcloud start {time.strftime('%Y-%m-%dT%H:%M:%S')} ===\n".encode()
        )
        log_handle.flush()
        process = subprocess.Popen(
            [str(install.localstack_python), "-m", LOCALSTACK_MAIN],
            cwd=instance.root,
            env=localstack_environment(install, instance),
            stdin=subprocess.DEVNULL,
            stdout=log_handle,
            stderr=subprocess.STDOUT,
            # Its own session: it outlives this command, and a stop can signal the whole group.
            start_new_session=True,
        )
    instance.pid_file.write_text(str(process.pid))
    instance.executor_file.write_text(executor_digest())  # just installed: what it runs
    return process.pid


def warn_if_executor_changed(instance: InstanceLayout) -> None:
    """A running LocalStack keeps the Lambda executor it was started with, for every function
    process it starts from then on; says so if this checkout's has changed since."""
    if running_pid(instance) is None:
        return
    try:
        started_with = instance.executor_file.read_text()
    except FileNotFoundError:
        started_with = ""
    if started_with != executor_digest():
        log(
            f"the LocalStack on port {instance.port} runs the Lambda executor as it was when it "
            "started; localcloud/lambda_executor/ has changed since. To use it: "
            "bash localcloud/run stop && bash localcloud/run start"
        )


def wait_until_ready(instance: InstanceLayout, pid: int, timeout: float) -> None:
    url = local_url(instance.port)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not processes.is_alive(pid):
            raise StartError(f"LocalStack exited during start-up; see {instance.log_file}")
        if is_healthy(url):
            return
        time.sleep(0.2)
    raise StartError(f"LocalStack not ready after {timeout:.0f} s; see {instance.log_file}")


def start(port: int | None = None) -> Endpoint:
    """Starts the instance on `port` unless a LocalStack is already reachable; idempotent."""
    if url := external_endpoint():
        return Endpoint(url, started_here=False)
    instance = instance_layout(port)
    with file_lock(instance.lock_file):
        url = local_url(instance.port)
        if running_pid(instance) is None and is_healthy(url):
            return Endpoint(url, started_here=False)  # someone else's LocalStack on this port
        if running_pid(instance) is not None and is_healthy(url):
            warn_if_executor_changed(instance)
            return Endpoint(url, started_here=True)
        install = install_layout()
        with file_lock(install.lock_file):
            install_all(install)
        if (stale := running_pid(instance)) is not None:
            _stop_locked(instance, stale)  # alive but not answering: start afresh
        began = time.monotonic()
        pid = spawn_localstack(install, instance)
        try:
            wait_until_ready(instance, pid, float(os.environ.get("LOCALCLOUD_START_TIMEOUT", 120)))
        except StartError:
            _stop_locked(instance, pid)
            _print_log_tail(instance)
            raise
        elapsed = time.monotonic() - began
        log(f"LocalStack ready in {elapsed:.1f} s (pid {pid}, log {instance.log_file})")
        return Endpoint(url, started_here=True)


def _print_log_tail(instance: InstanceLayout, lines: int = 40) -> None:
    try:
        tail = instance.log_file.read_text(errors="replace").splitlines()[-lines:]
    except FileNotFoundError:
        return
    print("\n".join(tail), file=sys.stderr)


# --- stop ---------------------------------------------------------------------------------


def instance_marker(instance: InstanceLayout) -> str:
    """Text on the command line of the JVM and of every function process of this instance."""
    return f"{instance.root}{os.sep}"


def _stop_locked(instance: InstanceLayout, pid: int) -> None:
    """SIGTERM, a grace period, then SIGKILL for LocalStack and everything it started."""
    # LocalStack 2026.3 on the host logs "Stopping all services" on SIGTERM but then often never
    # exits (event source mapping pollers keep running), so the grace period is short.
    grace = float(os.environ.get("LOCALCLOUD_STOP_GRACE", 3))
    marker = instance_marker(instance)
    # Collected before and during the grace period: once LocalStack has exited, its children are
    # re-parented and no longer show up as its descendants.
    family = processes.descendants(pid) | processes.processes_mentioning(marker)
    processes.send([pid], signal.SIGTERM)
    deadline = time.monotonic() + grace
    while processes.is_alive(pid) and time.monotonic() < deadline:
        family |= processes.descendants(pid)
        time.sleep(0.1)
    family |= processes.descendants(pid) | processes.processes_mentioning(marker)
    everyone = {pid} | family
    processes.send(everyone, signal.SIGKILL)
    if leftovers := processes.wait_until_gone(everyone, timeout=10):
        raise RuntimeError(f"processes survived SIGKILL: {sorted(leftovers)}")
    instance.pid_file.unlink(missing_ok=True)
    # Unzipped function code and LocalStack's temp files: regenerated at every start.
    shutil.rmtree(instance.tmp_dir, ignore_errors=True)


def stop(port: int | None = None) -> bool:
    """Stops the instance on `port`; True if one was running. Leaves no process behind."""
    instance = instance_layout(port)
    with file_lock(instance.lock_file):
        pid = running_pid(instance)
        if pid is None:
            instance.pid_file.unlink(missing_ok=True)
            # A crashed LocalStack may have left function processes or a JVM behind.
            strays = processes.processes_mentioning(instance_marker(instance))
            processes.send(strays, signal.SIGKILL)
            processes.wait_until_gone(strays, timeout=10)
            return False
        _stop_locked(instance, pid)
        return True


def status(port: int | None = None) -> dict[str, object]:
    instance = instance_layout(port)
    pid = running_pid(instance)
    url = external_endpoint() or local_url(instance.port)
    return {
        "endpoint": url,
        "external": external_endpoint() is not None,
        "pid": pid,
        "healthy": is_healthy(url),
        "log": str(instance.log_file),
        "state_dir": str(instance.root),
    }
