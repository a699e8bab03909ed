"""The README's command examples still match the CLI (STYLE.md: the CLI is thin)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import typer.main

from carechain.cli.main import app

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_commands() -> list[str]:
    blocks = re.findall(r"```sh\n(.*?)```", README.read_text("utf-8"), flags=re.S)
    return [
        line.strip()
        for block in blocks
        for line in block.splitlines()
        if line.strip().startswith("carechain ")
    ]


def test_readme_has_a_tour() -> None:
    assert len(readme_commands()) >= 15


@pytest.mark.parametrize("line", readme_commands())
def test_readme_command_matches_help(line: str) -> None:
    words = shlex.split(line)[1:]
    # Typer ships its own copy of click, so walk groups by their ``commands`` mapping.
    command: Any = typer.main.get_command(app)
    path = ["carechain"]
    while hasattr(command, "commands") and words and not words[0].startswith("-"):
        name = words.pop(0)
        sub = command.commands.get(name)
        assert sub is not None, f"{' '.join(path)} has no command {name!r}"
        command, path = sub, [*path, name]
    assert not hasattr(command, "commands"), f"{line}: names a group, not a command"
    options = {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}
    for word in words:
        if word.startswith("--"):
            name = word.split("=", 1)[0]
            assert name in options, f"{' '.join(path)} has no option {name}"
