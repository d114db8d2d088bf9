"""Command line of the embedded local cloud: `bash localcloud/run start|stop|status|logs|install`.

Standard library only: it runs on the interpreter scripts/find-python finds, before any venv
exists. Progress goes to stderr; `start` prints the endpoint as its last stdout line.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from localcloud import server
from localcloud.install import InstallError, install_all
from localcloud.paths import install_layout, instance_layout


def command_start(_: argparse.Namespace) -> int:
    endpoint = server.start()
    if not endpoint.started_here:
        print("localcloud: using the LocalStack already at this endpoint", file=sys.stderr)
    print(endpoint.url)
    return 0


def command_stop(_: argparse.Namespace) -> int:
    stopped = server.stop()
    print("localcloud: stopped" if stopped else "localcloud: was not running", file=sys.stderr)
    return 0


def command_status(_: argparse.Namespace) -> int:
    state = server.status()
    print(json.dumps(state, indent=2))
    return 0 if state["healthy"] else 3


def command_logs(arguments: argparse.Namespace) -> int:
    log_file = instance_layout().log_file
    if not log_file.exists():
        print(f"localcloud: no log yet at {log_file}", file=sys.stderr)
        return 1
    follow = ["-F"] if arguments.follow else []
    return subprocess.call(["tail", "-n", str(arguments.lines), *follow, str(log_file)])


def command_install(_: argparse.Namespace) -> int:
    layout = install_layout()
    with server.file_lock(layout.lock_file):
        install_all(layout)
    print(f"localcloud: installed under {layout.root}", file=sys.stderr)
    server.warn_if_executor_changed(instance_layout())
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="localcloud/run",
        description="Embedded local cloud (LocalStack on the host, no Docker). "
        "Port: LOCALCLOUD_PORT (default 4566). An endpoint in LOCALSTACK_ENDPOINT or "
        "AWS_ENDPOINT_URL is used as it is: nothing is started.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("start", help="install what is missing, start, wait, print the endpoint")
    commands.add_parser("stop", help="stop LocalStack and every process it started")
    commands.add_parser("status", help="print the state as JSON (exit 3 if not answering)")
    logs = commands.add_parser("logs", help="show LocalStack's log")
    logs.add_argument("-n", "--lines", type=int, default=100)
    logs.add_argument("-f", "--follow", action="store_true")
    commands.add_parser("install", help="only install (venvs, DynamoDB Local, agent jar)")
    arguments = parser.parse_args(argv)
    handlers = {
        "start": command_start,
        "stop": command_stop,
        "status": command_status,
        "logs": command_logs,
        "install": command_install,
    }
    try:
        return handlers[arguments.command](arguments)
    except (InstallError, server.StartError) as error:
        print(f"localcloud: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
