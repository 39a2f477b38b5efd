"""``--env-file PATH``: environment variables from a dotenv file, set before
the application is imported.

The format is the one python-dotenv, docker compose and systemd users write::

    # a comment
    DJANGO_SETTINGS_MODULE=mysite.settings
    export SECRET_KEY='s3cr3t #not a comment'
    GREETING="two\\nlines"   # a comment after a value
    EMPTY=

Single quotes keep their text as written; double quotes understand ``\\n``,
``\\t``, ``\\"`` and ``\\\\``; an unquoted value ends at `` #`` and is
stripped. A variable already in the environment wins over the file (as
python-dotenv does), so ``VAR=x fastbase --env-file .env ...`` overrides one
value. A line that is not an assignment is an error naming the line.
"""

from __future__ import annotations

import os
import re
from typing import Dict, MutableMapping, Optional

__all__ = ["EnvFileError", "parse_env", "load_env_file"]

_ASSIGNMENT = re.compile(r"(?:export[ \t]+)?([A-Za-z_][A-Za-z0-9_.]*)[ \t]*=[ \t]*(.*)")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "$": "$"}


class EnvFileError(ValueError):
    """The env file cannot be read or parsed; the message is one line."""


def _double_quoted(text: str, lineno: int) -> tuple:
    """The value inside double quotes starting at text[0], and what follows."""
    out = []
    i = 1
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            out.append(_ESCAPES.get(nxt, "\\" + nxt))
            i += 2
            continue
        if char == '"':
            return "".join(out), text[i + 1 :]
        out.append(char)
        i += 1
    raise EnvFileError(f"line {lineno}: unterminated double quote")


def parse_env(text: str) -> Dict[str, str]:
    """The assignments of a dotenv file, in order (a later one wins)."""
    values: Dict[str, str] = {}
    lines = text.splitlines()
    lineno = 0
    while lineno < len(lines):
        line = lines[lineno]
        lineno += 1
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _ASSIGNMENT.fullmatch(stripped)
        if match is None:
            raise EnvFileError(f"line {lineno}: expected NAME=VALUE, got {stripped[:40]!r}")
        name, raw = match.group(1), match.group(2)
        if raw.startswith("'"):
            end = raw.find("'", 1)
            # A single-quoted value may span lines, as in python-dotenv.
            start = lineno
            while end < 0 and lineno < len(lines):
                raw += "\n" + lines[lineno]
                lineno += 1
                end = raw.find("'", 1)
            if end < 0:
                raise EnvFileError(f"line {start}: unterminated single quote")
            value, rest = raw[1:end], raw[end + 1 :]
        elif raw.startswith('"'):
            start = lineno
            while True:
                try:
                    value, rest = _double_quoted(raw, start)
                    break
                except EnvFileError:
                    if lineno >= len(lines):
                        raise
                    raw += "\n" + lines[lineno]
                    lineno += 1
        else:
            value, rest = raw.split(" #", 1)[0].split("\t#", 1)[0].strip(), ""
        rest = rest.strip()
        if rest and not rest.startswith("#"):
            raise EnvFileError(f"line {lineno}: unexpected text after the quoted value of {name}: {rest[:40]!r}")
        values[name] = value
    return values


def load_env_file(path: str, environ: Optional[MutableMapping[str, str]] = None) -> Dict[str, str]:
    """Read ``path`` and set its variables that ``environ`` (default
    ``os.environ``) lacks; returns what the file assigns. Raises EnvFileError."""
    if environ is None:
        environ = os.environ
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise EnvFileError(f"--env-file {path!r}: no such file") from None
    except IsADirectoryError:
        raise EnvFileError(f"--env-file {path!r} is a directory, not a file") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise EnvFileError(f"--env-file {path!r}: cannot read it ({reason})") from None
    try:
        values = parse_env(text)
    except EnvFileError as exc:
        raise EnvFileError(f"--env-file {path!r}: {exc}") from None
    for name, value in values.items():
        environ.setdefault(name, value)
    return values
