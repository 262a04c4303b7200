"""Reading a source declaration from YAML, with every mistake named by its key and line.

``parse_declaration`` takes one document (a bare declaration, or a Dagster ``defs.yaml`` whose
``attributes`` are one); a mistake raises ``DeclarationError``: the file, the line, the dotted
key and what was expected, for every problem at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, get_args

import yaml
from pydantic import ValidationError

from pipelines.source.declaration import Auth, Paginator, SourceDeclaration
from pipelines.source.yaml_screen import UnsafeYaml, screen, screen_file


class DeclarationError(ValueError):
    """A source declaration is invalid; the message names the file, line and key."""


def load_declaration(path: str | Path) -> SourceDeclaration:
    try:
        text = screen_file(path)
    except UnsafeYaml as exc:
        raise DeclarationError(str(exc)) from None
    return parse_declaration(text, str(path), screened=True)


def parse_declaration(text: str, origin: str = "<declaration>", screened: bool = False) -> SourceDeclaration:
    if not screened:
        try:
            screen(text, origin)
        except UnsafeYaml as exc:
            raise DeclarationError(str(exc)) from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise DeclarationError(f"{origin}:{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    prefix: tuple[str, ...] = ()
    if isinstance(data, dict) and "attributes" in data and "type" in data:  # a Dagster defs.yaml
        data, prefix = data["attributes"], ("attributes",)
    if not isinstance(data, dict):
        raise DeclarationError(f"{origin}: a source declaration is a mapping of keys, got {type(data).__name__}")
    try:
        return SourceDeclaration.model_validate(data)
    except ValidationError as exc:
        problems = [_problem(root, prefix, err) for err in exc.errors(include_url=False)]
        raise DeclarationError(f"{origin}: invalid source declaration:\n  " + "\n  ".join(problems)) from None


def _problem(root: yaml.Node | None, prefix: tuple[str, ...], err: Any) -> str:
    # pydantic names a union member it tried (``bearer``) in the location: not a key of the file
    loc = [str(p) for p in err["loc"] if not (isinstance(p, str) and p in _UNION_TAGS)]
    key = ".".join(loc) or "(the declaration)"
    node = _node_at(root, [*prefix, *loc])
    line = f"line {node.start_mark.line + 1}: " if node is not None else ""
    message = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        message = "is not a key of this section (a typo?)"
    return f"{line}{key}: {message}"


def _tags(union: Any) -> frozenset[str]:
    """The ``type`` values of an annotated union of specs (what pydantic puts in an error's loc)."""
    members = get_args(get_args(union)[0])
    return frozenset(tag for member in members for tag in get_args(member.model_fields["type"].annotation))


_UNION_TAGS = _tags(Auth) | _tags(Paginator)


def _node_at(node: yaml.Node | None, loc: list[str]) -> yaml.Node | None:
    """The deepest YAML node on ``loc`` (a key's value, or the mapping that lacks the key)."""
    for name in loc:
        if isinstance(node, yaml.MappingNode):
            found = next((v for k, v in node.value if getattr(k, "value", None) == name), None)
            if found is None:
                key = next((k for k, _ in node.value if getattr(k, "value", None) == name), None)
                return key or node
            node = found
        elif isinstance(node, yaml.SequenceNode) and name.isdigit() and int(name) < len(node.value):
            node = node.value[int(name)]
        else:
            return node
    return node
