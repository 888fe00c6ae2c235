"""The one exception type that the CLI turns into a one-line message and exit code 2."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class MobenchError(Exception):
    """A problem with the user's input or environment, reported without a traceback."""


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """A short suggestion suffix, e.g. " (did you mean 'rs', 'mod'?)", or "" if nothing is close."""
    # Case-insensitive: `QUAD` should find `quad`.
    by_lower: dict[str, str] = {}
    for candidate in sorted(candidates):
        by_lower.setdefault(candidate.lower(), candidate)
    matches = [by_lower[m] for m in difflib.get_close_matches(name.lower(), list(by_lower), n=3, cutoff=0.5)]
    if not matches:
        return ""
    return " (did you mean " + ", ".join(repr(m) for m in matches) + "?)"
