"""MkDocs hook: the generated reference pages and the benchmark results put into the site.

A page says where with a marker on a line of its own:
`<!-- generated: config -->` (every tuner.toml key, from tuner/config.py),
`<!-- generated: cli -->` (every command and flag, from the argparse parsers),
`<!-- generated: storage -->` (the tuner's own tables, from their SQLAlchemy definitions),
`<!-- include: bench/RESULTS.md -->` (a file of the repository, its links made relative to the
page). A config key without a description fails the build (tuner/commands/reference.py says which).
"""

from __future__ import annotations

import re
from pathlib import Path

from tuner.commands.reference import cli_markdown, config_markdown, storage_markdown

ROOT = Path(__file__).resolve().parent.parent
GENERATORS = {"config": config_markdown, "cli": cli_markdown, "storage": storage_markdown}
MARKER = re.compile(r"^<!-- (generated|include): (\S+) -->$", re.MULTILINE)


def on_page_markdown(markdown: str, page, config, files) -> str:
    def replace(match: re.Match[str]) -> str:
        kind, name = match.groups()
        if kind == "generated":
            return GENERATORS[name]()
        return _included(ROOT / name, page.file.src_path)

    return MARKER.sub(replace, markdown)


def _included(path: Path, page_path: str) -> str:
    """The file's Markdown with its `../docs/...` links rewritten for the including page."""
    text = path.read_text(encoding="utf-8")
    depth = page_path.count("/")
    prefix = "../" * depth
    text = re.sub(r"\]\(\.\./docs/", f"]({prefix}", text)
    return re.sub(r"^# .*\n", "", text, count=1)
