"""The environment the embedded local cloud starts LocalStack with (no cloud needed)."""

from __future__ import annotations

import pytest

from localcloud.paths import InstallLayout, InstanceLayout
from localcloud.server import localstack_environment

POLL_INTERVAL = "LAMBDA_EVENT_SOURCE_MAPPING_POLL_INTERVAL_SEC"
MAX_EMPTY_BACKOFF = "LAMBDA_EVENT_SOURCE_MAPPING_MAX_BACKOFF_ON_EMPTY_POLL_SEC"


def environment(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("localcloud")
    return localstack_environment(
        InstallLayout(root / "install"), InstanceLayout(root / "instance", 4599)
    )


def test_event_source_mappings_poll_far_more_often_than_localstacks_defaults(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # GIVEN nothing about polling in the caller's environment
    monkeypatch.delenv(POLL_INTERVAL, raising=False)
    monkeypatch.delenv(MAX_EMPTY_BACKOFF, raising=False)

    # WHEN the environment for LocalStack is made
    env = environment(tmp_path_factory)

    # THEN the poller sleeps 0.05 s after a poll that found messages (LocalStack: 1 s)
    assert env[POLL_INTERVAL] == "0.05"
    # AND backs off at most 0.5 s after empty polls (LocalStack: 10 s)
    assert env[MAX_EMPTY_BACKOFF] == "0.5"


def test_poll_settings_from_the_callers_environment_win(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # GIVEN other values chosen by the caller (e.g. the benchmark trying settings out)
    monkeypatch.setenv(POLL_INTERVAL, "1")
    monkeypatch.setenv(MAX_EMPTY_BACKOFF, "10")

    # WHEN the environment for LocalStack is made
    env = environment(tmp_path_factory)

    # THEN they are passed on unchanged
    assert env[POLL_INTERVAL] == "1"
    assert env[MAX_EMPTY_BACKOFF] == "10"
