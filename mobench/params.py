"""Typed parameters for registered components (methods, tasks, judges).

A component's parameters are one dataclass (its `Params`); the CLI spec parser, YAML configs,
`mobench ls`, validation and the results file all read that one class. Specs look like
`bone-soup:beta=0.7:alpha=0`; list values are written in brackets, `gammas=[0.1,1,3]`.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Union, get_args, get_origin

from mobench.errors import MobenchError, did_you_mean


@dataclass(frozen=True)
class NoParams:
    """For components without parameters."""


@dataclass(frozen=True)
class ParamInfo:
    name: str
    type: str
    default: Any
    help: str
    required: bool


def split_top_level(text: str, sep: str = ",") -> list[str]:
    """Split on `sep` outside brackets and quotes, so `a:xs=[1,2],b` gives ['a:xs=[1,2]', 'b'] and
    `j:url='http://h:8000/v1'` keeps the URL whole. Unbalanced brackets or an unclosed quote are an error."""
    parts: list[str] = []
    depth = 0
    quote = ""
    current: list[str] = []
    for char in text:
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "[(":
            depth += 1
        elif char in "])":
            depth -= 1
            if depth < 0:
                raise MobenchError(f"unbalanced brackets in {text!r}: a closing {char!r} has no opening one")
        if char == sep and depth == 0 and not quote:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    if quote:
        raise MobenchError(f"unclosed quote {quote} in {text!r}")
    if depth:
        raise MobenchError(f"unbalanced brackets in {text!r}: {depth} bracket(s) left open")
    parts.append("".join(current))
    return [p.strip() for p in parts]


def parse_spec(spec: str) -> tuple[str, dict[str, str]]:
    """`name:key=value:key=value` -> (name, {key: value}); values stay strings until coerced."""
    pieces = split_top_level(spec.strip(), sep=":")
    name = pieces[0]
    if not name:
        raise MobenchError(f"empty name in spec {spec!r}")
    values: dict[str, str] = {}
    for piece in pieces[1:]:
        key, eq, value = piece.partition("=")
        key = key.strip()
        if not eq or not key:
            raise MobenchError(f"malformed parameter {piece!r} in {spec!r}: expected key=value")
        if key in values:
            raise MobenchError(f"parameter {key!r} given twice in {spec!r}")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]  # quoted: taken as is (URLs hold ':')
        values[key] = value
    return name, values


def _type_hints(params_cls: type) -> dict[str, Any]:
    return typing.get_type_hints(params_cls, include_extras=False)


def format_type(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return "|".join(repr(a) if isinstance(a, str) else str(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        return " | ".join(format_type(a) for a in get_args(tp))
    if origin in (tuple, list):
        args = [a for a in get_args(tp) if a is not Ellipsis]
        return f"list[{format_type(args[0])}]" if args else "list"
    if tp is type(None):
        return "none"
    return getattr(tp, "__name__", str(tp))


def param_fields(params_cls: type) -> list[ParamInfo]:
    hints = _type_hints(params_cls)
    infos = []
    for field in dataclasses.fields(params_cls):
        required = field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
        if field.default is not dataclasses.MISSING:
            default = field.default
        elif field.default_factory is not dataclasses.MISSING:
            default = field.default_factory()
        else:
            default = None
        infos.append(ParamInfo(field.name, format_type(hints[field.name]), default,
                               field.metadata.get("help", ""), required))
    return infos


class _CoercionError(ValueError):
    pass


def coerce(value: Any, tp: Any) -> Any:
    """Convert a CLI string or YAML value to the declared type, or raise _CoercionError."""
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin is Literal:
        for allowed in get_args(tp):
            if value == allowed or (isinstance(value, str) and str(allowed) == value):
                return allowed
        raise _CoercionError(f"expected one of {format_type(tp)}")
    if origin in (Union, types.UnionType):
        options = get_args(tp)
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            if type(None) in options:
                return None
        # Literal options first, so that 'auto' is not tried as a float.
        ordered = sorted(options, key=lambda o: get_origin(o) is not Literal)
        for option in ordered:
            if option is type(None):
                continue
            try:
                return coerce(value, option)
            except _CoercionError:
                continue
        raise _CoercionError(f"expected {format_type(tp)}")
    if origin in (tuple, list):
        (item_type, *_rest) = [a for a in get_args(tp) if a is not Ellipsis] or [Any]
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("[") and text.endswith("]"):
                text = text[1:-1]
            items: list[Any] = [t for t in split_top_level(text) if t != ""]
        elif isinstance(value, (list, tuple)):
            items = list(value)
        else:
            items = [value]
        converted = [coerce(item, item_type) for item in items]
        return tuple(converted) if origin is tuple else converted
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "yes", "1", "on"):
            return True
        if isinstance(value, str) and value.lower() in ("false", "no", "0", "off"):
            return False
        raise _CoercionError("expected true or false")
    if tp is int:
        if isinstance(value, bool):
            raise _CoercionError("expected an integer")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        try:
            return int(str(value))
        except ValueError as exc:
            raise _CoercionError("expected an integer") from exc
    if tp is float:
        if isinstance(value, bool):
            raise _CoercionError("expected a number")
        try:
            number = float(value)
        except (TypeError, ValueError) as exc:
            raise _CoercionError("expected a number") from exc
        if not math.isfinite(number):
            raise _CoercionError("expected a finite number")
        return number
    if tp is str:
        if isinstance(value, (dict, list)):
            raise _CoercionError("expected a string")
        return str(value)
    raise _CoercionError(f"unsupported parameter type {tp!r}")


def build_params(params_cls: type, raw: Mapping[str, Any], where: str) -> Any:
    """Validate and convert raw values into an instance of the component's Params dataclass.

    Unknown keys, bad types and failed checks (a ValueError from `__post_init__`) all become a
    MobenchError that names the component and the parameter.
    """
    hints = _type_hints(params_cls)
    known = {f.name for f in dataclasses.fields(params_cls)}
    kwargs: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in known:
            accepted = ", ".join(sorted(known)) or "none"
            raise MobenchError(
                f"unknown parameter {key!r} for {where}{did_you_mean(key, known)}; accepted: {accepted}")
        try:
            kwargs[key] = coerce(value, hints[key])
        except _CoercionError as exc:
            raise MobenchError(f"bad value {value!r} for parameter {key!r} of {where}: {exc}") from None
    missing = [p.name for p in param_fields(params_cls) if p.required and p.name not in kwargs]
    if missing:
        raise MobenchError(f"{where} needs parameter(s): {', '.join(missing)}")
    try:
        return params_cls(**kwargs)
    except ValueError as exc:
        raise MobenchError(f"invalid parameters for {where}: {exc}") from None


def params_to_dict(params: Any) -> dict[str, Any]:
    """Resolved parameters, in declaration order, as plain JSON-able values."""
    out: dict[str, Any] = {}
    for field in dataclasses.fields(params):
        value = getattr(params, field.name)
        out[field.name] = list(value) if isinstance(value, tuple) else value
    return out


def artifact_params(params: Any, uses_rl: bool = True) -> dict[str, Any]:
    """The parameters that define trained artifacts: all but the fields marked `eval_only` (how many test
    prompts, samples per prompt, where a judge's files live), so a `--limit` trial reuses every model;
    with `uses_rl=False` also all but the fields marked `rl_only`, so an RL-only change (a learning rate)
    reuses the SFT policy and everything else built without RL."""
    import dataclasses

    skip = {f.name for f in dataclasses.fields(params)
            if f.metadata.get("eval_only") or (not uses_rl and f.metadata.get("rl_only"))}
    return {k: v for k, v in params_to_dict(params).items() if k not in skip}
