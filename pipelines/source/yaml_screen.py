"""The project's YAML files are input too: screened before any loader sees them. Pure.

A YAML loader expands anchors (a "billion laughs" of nested aliases held a code location for
minutes), lets a repeated key silently take the last value, and reads a quoted ``"abc\\n"`` as a
name with a line break in it. A file is refused, naming it and the line, when it is

* larger than ``MAX_BYTES`` (a declaration is a page; ten megabytes took half a minute to load);
* using an anchor or an alias (nothing a declaration says needs one);
* repeating a key in one mapping;
* holding a control character, written or escaped, anywhere but the line breaks and tabs
  between tokens (a header name with a CR in it passes no HTTP server).

The screen only tokenizes and composes (linear in the file's size, no alias expanded).
"""

from __future__ import annotations

from pathlib import Path

import yaml

MAX_BYTES = 1 << 20


class UnsafeYaml(ValueError):
    """A YAML file refused before loading; the message names the file and the line."""


def screen_file(path: str | Path) -> str:
    """The text of ``path`` once screened (``screen``)."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise UnsafeYaml(f"{path}: cannot read it: {exc.strerror}") from None
    if size > MAX_BYTES:
        raise UnsafeYaml(f"{path}: {size:,} bytes, more than a declaration's {MAX_BYTES:,}: not loaded")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise UnsafeYaml(f"{path}: not UTF-8 ({exc.reason} at byte {exc.start})") from None
    screen(text, str(path))
    return text


def screen(text: str, origin: str) -> None:
    if len(text.encode("utf-8", "replace")) > MAX_BYTES:
        raise UnsafeYaml(f"{origin}: more than a declaration's {MAX_BYTES:,} bytes: not loaded")
    for number, line in enumerate(text.splitlines(), start=1):
        bad = next((c for c in line if _control(c) and c != "\t"), None)
        if bad is not None:
            raise UnsafeYaml(f"{origin}: line {number}: holds the control character {bad!r}")
    try:
        for token in yaml.scan(text, Loader=yaml.SafeLoader):
            if isinstance(token, yaml.AnchorToken | yaml.AliasToken):
                what = "an anchor" if isinstance(token, yaml.AnchorToken) else "an alias"
                raise UnsafeYaml(
                    f"{origin}: line {token.start_mark.line + 1}: {what} (&/*): not allowed in a declaration "
                    "(aliases can expand without bound); write the value out"
                )
            if isinstance(token, yaml.ScalarToken) and any(_control(c) for c in token.value):
                bad = next(c for c in token.value if _control(c))
                raise UnsafeYaml(
                    f"{origin}: line {token.start_mark.line + 1}: the value {token.value[:40]!r} holds the control "
                    f"character {bad!r}"
                )
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return  # not valid YAML: the loader says where and why
    _no_repeated_keys(root, origin)


def _control(c: str) -> bool:
    return ord(c) < 32 or 127 <= ord(c) < 160


def _no_repeated_keys(node: yaml.Node | None, origin: str) -> None:
    stack = [node] if node is not None else []
    while stack:
        current = stack.pop()
        if isinstance(current, yaml.MappingNode):
            seen: dict[str, int] = {}
            for key, value in current.value:
                name = getattr(key, "value", None)
                if isinstance(name, str):
                    if name in seen:
                        raise UnsafeYaml(
                            f"{origin}: line {key.start_mark.line + 1}: the key {name!r} is given twice (first on line "
                            f"{seen[name]}); YAML would keep the last without a word"
                        )
                    seen[name] = key.start_mark.line + 1
                stack.append(value)
        elif isinstance(current, yaml.SequenceNode):
            stack.extend(current.value)
