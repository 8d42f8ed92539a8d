"""Every ``vmgrade`` command the README and docs/ show is a command the CLI takes.

Each documented line is parsed by the real argument parser (the commands themselves are run
by the tests of their subcommand and by .ci/run's README blocks), so a renamed option or a
subcommand that moved cannot linger in the docs.
"""

from __future__ import annotations

import re
import shlex

import pytest
from conftest import ROOT

from vmgrade.cli import build_parser

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w*)\s*$")


def documented_commands() -> list[tuple[str, str]]:
    """(where, command line) for every line in a shell code block that starts with ``vmgrade``."""
    found = []
    for path in DOCS:
        inside, lang = False, ""
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            fence = FENCE.match(line.strip())
            if fence:
                inside, lang = (not inside, fence.group(1)) if not inside else (False, "")
                continue
            text = line.strip()
            # a synopsis ("vmgrade calibrate FILE [--out FILE]") is no command: its options are checked
            # in the CLI's help, which it repeats
            if inside and lang in ("sh", "bash", "console", "") and text.startswith("vmgrade ") \
                    and " [" not in text:
                found.append((f"{path.relative_to(ROOT)}:{number}", text))
    return found


COMMANDS = documented_commands()


def test_the_docs_show_commands():
    assert len(COMMANDS) > 20  # the extraction itself works


@pytest.mark.parametrize("where, line", COMMANDS, ids=[w for w, _ in COMMANDS])
def test_a_documented_command_parses(where, line, capsys):
    words = shlex.split(line, comments=True)[1:]
    for i, word in enumerate(words):  # the command ends at a pipe or the next command
        if word in ("|", "&&", ";", ">", "2>&1"):
            words = words[:i]
            break
    try:
        build_parser().parse_args(words)
    except SystemExit as exc:
        pytest.fail(f"{where}: `{line}` is refused by the CLI: {capsys.readouterr().err.strip()} ({exc})")
