"""The docs site's generated reference: every `tuner.toml` key and every command-line flag.

Generated from the definitions themselves, so the reference cannot drift from the code: a key's
meaning is the attribute docstring below its field in tuner/config.py, its type the field's
annotation, its default the dataclass's own. `python -m tuner.commands.reference config|cli|storage`
prints a page; docs/hooks.py puts them into the site when `make docs` builds it.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import sys
import textwrap
import typing
from dataclasses import dataclass
from typing import Any

from tuner import config as config_module


@dataclass(frozen=True)
class ConfigKey:
    section: str
    key: str
    type: str
    default: str
    doc: str


class UndocumentedKeyError(Exception):
    """A config key without a description: the reference would have a hole."""


def attribute_docs(cls: type) -> dict[str, str]:
    """Each field's attribute docstring (the string literal right below it), by field name."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs: dict[str, str] = {}
    for node, after in zip(body, [*body[1:], None], strict=True):
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        if (
            isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            docs[node.target.id] = " ".join(inspect.cleandoc(after.value.value).split())
    return docs


def config_keys() -> list[ConfigKey]:
    """Every key of every section, in the order of the definitions; raises on an undocumented
    one, naming it and saying how to document it."""
    defaults = config_module.TunerConfig()
    hints = typing.get_type_hints(config_module.TunerConfig)
    keys: list[ConfigKey] = []
    missing: list[str] = []
    for section in config_module.SECTIONS:
        cls = hints[section]
        docs = attribute_docs(cls)
        annotations = _annotations(cls)
        for field in dataclasses.fields(cls):
            doc = docs.get(field.name, "")
            if not doc:
                missing.append(f"{section}.{field.name}")
            value = getattr(getattr(defaults, section), field.name)
            keys.append(ConfigKey(section, field.name, annotations[field.name], _toml(value), doc))
    if missing:
        raise UndocumentedKeyError(
            f"{', '.join(missing)} in tuner/config.py {'has' if len(missing) == 1 else 'have'} "
            'no description: put a """docstring""" on the line below each field saying what '
            "it means"
        )
    return keys


def _annotations(cls: type) -> dict[str, str]:
    """The annotations as written (`float | None`), which read better than typing's repr."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    return {
        node.target.id: ast.unparse(node.annotation).replace(" | ", " or ")
        for node in tree.body[0].body  # type: ignore[attr-defined]
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
    }


def _toml(value: Any) -> str:
    """A default as it would be written in tuner.toml; none for an unset optional key."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dict):
        return (
            "{}"
            if not value
            else "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
        )
    return str(value)


def config_markdown() -> str:
    """One table per section: key, type, default, meaning."""
    out: list[str] = []
    hints = typing.get_type_hints(config_module.TunerConfig)
    by_section: dict[str, list[ConfigKey]] = {}
    for key in config_keys():
        by_section.setdefault(key.section, []).append(key)
    for section, keys in by_section.items():
        out.append(f"## `[{section}]`\n")
        summary = inspect.getdoc(hints[section]) or ""
        meaning = summary.split(": ", 1)[-1]
        out.append(meaning[:1].upper() + meaning[1:] + "\n")
        out.append("| key | type | default | meaning |")
        out.append("|---|---|---|---|")
        for key in keys:
            out.append(
                f"| `{section}.{key.key}` | `{key.type}` | `{key.default}` | "
                f"{key.doc.replace('|', '&#124;')} |"
            )
        out.append("")
    return "\n".join(out)


def cli_markdown(parser: argparse.ArgumentParser | None = None) -> str:
    """Every command with its description and a table of its options."""
    if parser is None:
        from tuner.commands.cli import build_parser

        parser = build_parser()
    out = [parser.description or "", ""]
    if parser.epilog:
        out += [parser.epilog, ""]
    out += _options_table(parser)
    for name, sub in _subcommands(parser).items():
        out += [f"## `tuner {name}`", "", sub.description or "", "", "```"]
        out += [sub.format_usage().strip().replace("usage: ", "", 1), "```", ""]
        out += _options_table(sub)
    return "\n".join(out)


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:  # argparse exposes subparsers only this way
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _options_table(parser: argparse.ArgumentParser) -> list[str]:
    rows = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction | argparse._HelpAction):
            continue
        names = ", ".join(f"`{n}`" for n in action.option_strings) or f"`{action.dest.upper()}`"
        help_text = (action.help or "") % {"default": action.default, "prog": parser.prog}
        if action.default not in (None, False, argparse.SUPPRESS) and "default" not in help_text:
            help_text += f" (default: `{action.default}`)"
        if action.choices and not isinstance(action.choices, dict):
            help_text += f"; one of {', '.join(f'`{c}`' for c in action.choices)}"
        if action.required:
            help_text += " (required)"
        rows.append(f"| {names} | {help_text.replace('|', '&#124;')} |")
    if not rows:
        return []
    return ["| option | meaning |", "|---|---|", *rows, ""]


def storage_markdown() -> str:
    """The columns of the tuner's own tables, from their SQLAlchemy definitions."""
    from tuner.storage.samples import _SampleRow
    from tuner.storage.steps import _StepRow

    out: list[str] = []
    for row in (_SampleRow, _StepRow):
        table = row.__table__
        out += [f"### `{table.name}`", "", "| column | type | empty allowed |", "|---|---|---|"]
        out += [
            f"| `{c.name}` | {c.type.__class__.__name__} | {'yes' if c.nullable else 'no'} |"
            for c in table.columns
        ]
        out.append("")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    pages = {"config": config_markdown, "cli": cli_markdown, "storage": storage_markdown}
    if len(args) != 1 or args[0] not in pages:
        print("usage: python -m tuner.commands.reference config|cli|storage", file=sys.stderr)
        return 2
    try:
        print(pages[args[0]]())
    except UndocumentedKeyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
