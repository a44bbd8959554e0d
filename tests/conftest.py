"""Shared fixtures: a fresh workspace per test, and a helper to run the CLI in-process."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from roots import cli, workspace


@pytest.fixture()
def ws(tmp_path: Path) -> workspace.Workspace:
    return workspace.init(tmp_path / "ws")


@pytest.fixture()
def run_cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    def _run(*argv: str) -> tuple[int, str, str]:
        rc = cli.main(list(argv))
        out, err = capsys.readouterr()
        return rc, out, err

    return _run
