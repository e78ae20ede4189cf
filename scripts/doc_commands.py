"""Print the shell commands of a documented block, one per line, so CI runs what the docs say.

    python3 scripts/doc_commands.py docs/jetson.md "make test-py38 runs this block"

The block is the first fenced block after the Markdown comment (``<!-- ... -->``) that contains
the marker text. Comment lines and trailing comments (two or more spaces, then ``# ``) are
dropped; everything else is printed as written. Exits 1, naming the file, when the marker or
its block is missing.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path


def block_after(text: str, marker: str) -> list[str]:
    """The command lines of the first fenced block after the comment containing ``marker``."""
    lines = text.splitlines()
    start = next((i for i, ln in enumerate(lines)
                  if ln.lstrip().startswith("<!--") and marker in ln), None)
    if start is None:
        raise LookupError(f"no '<!-- ... {marker} ... -->' comment")
    fence = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("```")), None)
    end = next((i for i in range(fence + 1, len(lines)) if lines[i].startswith("```")), None) \
        if fence is not None else None
    if end is None:
        raise LookupError(f"no fenced block after the comment '{marker}'")
    commands = []
    for line in lines[fence + 1:end]:
        command = re.sub(r"\s{2,}#\s.*$", "", line).rstrip()
        if command and not command.lstrip().startswith("#"):
            commands.append(command)
    return commands


def main(argv: list[str]) -> int:
    path, marker = Path(argv[0]), argv[1]
    try:
        commands = block_after(path.read_text(encoding="utf-8"), marker)
    except (OSError, LookupError) as e:
        print(f"Error: {path}: {e}", file=sys.stderr)
        return 1
    print("\n".join(commands))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
