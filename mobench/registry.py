"""One generic registry for tasks, methods and judges.

Built-in components register with a decorator in their plugin module (`mobench/methods/*.py`,
`tasks/`, `judges/`); third-party packages expose modules in the entry-point group
`mobench.plugins`; a single file or module can be loaded with `--plugin` or `MOBENCH_PLUGINS`.
Plugin modules import nothing heavy at import time, so listing is instant.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
import pkgutil
import sys
from abc import ABC
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

from mobench.errors import MobenchError, did_you_mean
from mobench.params import NoParams, build_params, params_to_dict, parse_spec

BUILTIN_PLUGIN_PACKAGES = ("mobench.tasks", "mobench.methods", "mobench.judges")
ENTRY_POINT_GROUP = "mobench.plugins"
PLUGIN_ENV = "MOBENCH_PLUGINS"


class Component(ABC):
    """Base of everything registered: typed `Params`, a name, a version, a one-line description.

    `version` keys a method's cells (with its name and parameters) and a judge's or task's id: bump it
    whenever a change alters what the component computes, or runs reuse results of the old code.
    Artifacts are keyed by their recipes, which must name whatever changes them."""

    Params: ClassVar[type] = NoParams
    name: ClassVar[str] = ""
    version: ClassVar[str] = "1"

    def __init__(self, params: Any | None = None) -> None:
        self.params = params if params is not None else self.Params()

    @classmethod
    def description(cls) -> str:
        doc = (cls.__doc__ or "").strip()
        return doc.splitlines()[0].strip() if doc else ""

    def resolved_params(self) -> dict[str, Any]:
        return params_to_dict(self.params)


C = TypeVar("C", bound=type[Component])


class Registry(Generic[C]):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Any] = {}

    def register(self, name: str) -> Callable[[C], C]:
        """Class decorator: `@methods.register("rs")`. Names are unique across all plugins."""

        def decorator(cls: C) -> C:
            existing = self._entries.get(name)
            if existing is not None and _origin(existing) != _origin(cls):
                raise MobenchError(
                    f"duplicate {self.kind} name {name!r}: {_origin(cls)} clashes with {_origin(existing)}")
            missing = sorted(getattr(cls, "__abstractmethods__", ()))
            if missing:
                raise MobenchError(f"{self.kind} {name!r} ({_origin(cls)}) does not implement {', '.join(missing)}")
            cls.name = name
            self._entries[name] = cls
            return cls

        return decorator

    def names(self) -> list[str]:
        load_plugins()
        return sorted(self._entries)

    def get(self, name: str) -> C:
        load_plugins()
        if name not in self._entries:
            raise MobenchError(f"unknown {self.kind} {name!r}{did_you_mean(name, self._entries)}; "
                               f"see `mobench ls {self.kind}s`")
        return self._entries[name]

    def create(self, spec: str, overrides: Mapping[str, Any] | None = None) -> Any:
        """Instantiate from a spec string such as `bone-soup:beta=0.7`, plus optional typed values."""
        name, raw = parse_spec(spec)
        cls = self.get(name)
        merged: dict[str, Any] = dict(raw)
        for key, value in (overrides or {}).items():
            if key in merged:
                raise MobenchError(f"parameter {key!r} of {self.kind} {name!r} given twice")
            merged[key] = value
        params = build_params(cls.Params, merged, where=f"{self.kind} {name!r}")
        return cls(params)


def _origin(obj: Any) -> str:
    return f"{obj.__module__}.{obj.__qualname__}"


_plugins_loaded = False


def load_plugins() -> None:
    """Import built-in plugin modules, entry points and MOBENCH_PLUGINS, once per process."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for package_name in BUILTIN_PLUGIN_PACKAGES:
        package = importlib.import_module(package_name)
        for info in pkgutil.walk_packages(package.__path__, prefix=package_name + "."):
            importlib.import_module(info.name)
    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            entry_point.load()
        except MobenchError:
            raise
        except Exception as exc:  # a broken third-party plugin is the user's environment problem
            raise MobenchError(f"plugin {entry_point.name!r} ({entry_point.value}) failed to load: "
                               f"{type(exc).__name__}: {exc}") from None
    for target in os.environ.get(PLUGIN_ENV, "").split(os.pathsep):
        if target.strip():
            load_plugin(target.strip())


_plugin_targets: list[str] = []  # what load_plugin imported (files as absolute paths): Ray workers load them too


def loaded_plugin_targets() -> list[str]:
    """The plugins given with `--plugin` (or load_plugin) in this process, in load order."""
    return list(_plugin_targets)


def load_plugin(target: str) -> None:
    """Import a plugin given as a module name or a path to a .py file."""
    try:
        if target.endswith(".py") or os.sep in target:
            path = Path(target).resolve()
            if not path.is_file():
                raise MobenchError(f"plugin file {target!r} does not exist")
            if str(path) not in _plugin_targets:
                _plugin_targets.append(str(path))
            module_name = f"mobench_plugin_{path.stem}"
            if module_name in sys.modules:
                return
            spec = importlib.util.spec_from_file_location(module_name, path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module
            spec.loader.exec_module(module)
        else:
            importlib.import_module(target)
            if target not in _plugin_targets:
                _plugin_targets.append(target)
    except MobenchError:
        raise
    except Exception as exc:
        raise MobenchError(f"plugin {target!r} failed to load: {type(exc).__name__}: {exc}") from None


tasks: Registry[Any] = Registry("task")
methods: Registry[Any] = Registry("method")
judges: Registry[Any] = Registry("judge")
