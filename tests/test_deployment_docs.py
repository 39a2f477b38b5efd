"""The command lines in docs/deployment.md are ones fastbase accepts."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from fastbase.cli import build_parser

DOC = Path(__file__).resolve().parent.parent / "docs" / "deployment.md"


def command_lines() -> list:
    text = DOC.read_text()
    found = []
    for block in re.findall(r"```(\w*)\n(.*?)```", text, re.S):
        language, body = block
        for line in body.splitlines():
            line = line.strip()
            if language == "sh" and line.startswith("fastbase "):
                found.append(shlex.split(line)[1:])
            elif line.startswith("ExecStart="):
                found.append(shlex.split(line.split("=", 1)[1])[1:])
            elif line.startswith("CMD ["):
                found.append(json.loads(line[4:])[1:])
    return found


def test_the_document_has_commands():
    assert len(command_lines()) >= 5


@pytest.mark.parametrize("argv", command_lines(), ids=lambda argv: " ".join(argv)[:60])
def test_command_parses(argv):
    args = build_parser().parse_args(argv)
    assert args.app.endswith((":application", ":app"))
