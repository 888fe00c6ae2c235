"""Models and datasets of the paper tasks: a hub id or a local path, checked before any work.

Every asset is named by a role (e.g. "dataset", "policy", "helpful reward model") and a source,
which is either a Hugging Face hub id or a local path (a folder saved with save_pretrained, or data
files). Offline mode is explicit: `mobench run --offline` (or HF_HUB_OFFLINE=1) allows only local
paths and what the hub cache already holds, and `require` fails fast, naming every missing asset
and the parameter that points it at a local copy. Without --offline, `require` asks the hub about each
asset it would download, so a machine without the network gets the same one list. `mobench ls tasks`
shows where each asset comes from (local, cached, hub) without asking the network.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from mobench.errors import MobenchError

OFFLINE_ENV = ("MOBENCH_OFFLINE", "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")
DATA_SUFFIXES = {".json": "json", ".jsonl": "json", ".parquet": "parquet", ".csv": "csv"}


@dataclass(frozen=True)
class Asset:
    role: str  # what it is for, e.g. "helpful reward model"
    source: str  # hub id or local path
    kind: Literal["model", "dataset"]
    param: str  # how to point it at a local copy, e.g. "dataset=PATH" (named in errors)


def offline() -> bool:
    return any(os.environ.get(name, "").lower() in ("1", "true", "yes", "on") for name in OFFLINE_ENV)


def set_offline() -> None:
    """Make every library refuse the network (transformers, datasets, huggingface_hub)."""
    for name in OFFLINE_ENV:
        os.environ[name] = "1"


def is_local(source: str) -> bool:
    return source.startswith(("/", "./", "../", "~")) or Path(source).expanduser().exists()


def _hub_cache() -> Path:
    home = Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface"))
    return Path(os.environ.get("HF_HUB_CACHE", home / "hub"))


def status(asset: Asset) -> str:
    """'local', 'cached', 'hub' (will download), or 'missing: why'."""
    if not asset.source:
        return "missing: not set"
    if is_local(asset.source):
        return "local" if Path(asset.source).expanduser().exists() else f"missing: no such path {asset.source}"
    folder = _hub_cache() / f"{asset.kind}s--{asset.source.replace('/', '--')}"
    if folder.is_dir() and any(folder.glob("snapshots/*")):
        return "cached"
    return "missing: not in the hub cache (offline)" if offline() else "hub"


HUB_TIMEOUT_S = 10.0
UNREACHABLE = "not in the hub cache, and the hub is unreachable"
# Exception class names of a network that cannot be reached (httpx, requests, sockets): anything else
# the hub answers (rate limits, server errors, a mirror without the API) is left to the download.
_NETWORK_ERRORS = ("ConnectError", "ConnectTimeout", "TimeoutException", "NetworkError", "ConnectionError",
                   "ProxyError", "Timeout", "timeout", "gaierror")
_HUB_PROBES: dict[tuple[str, str], str | None] = {}
_UNREACHABLE_BECAUSE: list[str] = []  # the first network error, shown once under the list of assets


def hub_problem(asset: Asset) -> str | None:
    """None when the hub lists `asset`'s repository (or answers in a way only a download can judge);
    else why not. Asked once per repository and process, and not again once the network has failed,
    so a run without the network names every asset at once instead of retrying each download."""
    key = (asset.kind, asset.source)
    if key not in _HUB_PROBES:
        _HUB_PROBES[key] = UNREACHABLE if _UNREACHABLE_BECAUSE else _ask_hub(asset)
    return _HUB_PROBES[key]


def _ask_hub(asset: Asset) -> str | None:
    from huggingface_hub import HfApi
    from huggingface_hub.errors import GatedRepoError, HFValidationError, RepositoryNotFoundError

    try:
        HfApi().repo_info(asset.source, repo_type=asset.kind, timeout=HUB_TIMEOUT_S)
    except GatedRepoError:  # listed; the download says what the login needs
        return None
    except RepositoryNotFoundError:
        return f"no such {asset.kind} on the hub (or a private one: `huggingface-cli login`)"
    except HFValidationError:
        return "neither an existing local path nor a valid hub id"
    except Exception as exc:  # the network layers' errors share no base class: told apart by name
        if not {c.__name__ for c in type(exc).__mro__} & set(_NETWORK_ERRORS):
            return None
        _UNREACHABLE_BECAUSE.append(f"{type(exc).__name__}: {str(exc).splitlines()[0][:100]}")
        return UNREACHABLE
    return None


def require(assets: Sequence[Asset]) -> None:
    """Raise one clear error naming every asset that cannot be reached (the hub is asked about those
    it would have to download)."""
    lines = []
    for asset in assets:
        found = status(asset)
        problem = hub_problem(asset) if found == "hub" else found[len("missing: "):] if found.startswith("missing") \
            else None
        if problem:
            lines.append(f"  - {asset.role}: {asset.source or '(none)'} ({problem}); give a local copy with {asset.param}")
    if lines:
        if any(UNREACHABLE in line for line in lines):
            lines.append(f"  (the hub: {_UNREACHABLE_BECAUSE[0]}; with local copies, --offline skips it)")
        raise MobenchError("these assets are not reachable:\n" + "\n".join(lines))


def pretrained(loader: Any, source: str, what: str, **kwargs: Any) -> Any:
    """`loader.from_pretrained(source)`, with a clear error for a gated, private or broken model."""
    try:
        return loader.from_pretrained(source, **kwargs)
    except (OSError, ValueError) as exc:
        raise MobenchError(f"cannot load {what} from {source!r}: {str(exc).splitlines()[0]} "
                           "(gated models need `huggingface-cli login`; or pass a local folder)") from None


def load_tokenizer(source: str, what: str) -> Any:
    """The tokenizer in `source`, or a clear error when it cannot load or encodes nothing (transformers
    builds an empty tokenizer from a model folder saved without its tokenizer files)."""
    from transformers import AutoTokenizer

    tokenizer = pretrained(AutoTokenizer, source, what)
    if not tokenizer("hello world", verbose=False)["input_ids"]:
        raise MobenchError(f"{what} from {source!r} encodes text as nothing: the folder lacks its tokenizer files "
                           "(save the tokenizer beside the model)")
    return tokenizer


def count_tokens(tokenizer: Any, texts: list[str], chunk: int = 1000) -> list[int]:
    """Tokens of each text as `tokenizer(text)` encodes it (special tokens included, like the reference's
    `encode`), in chunks and without attention masks: pools run to ~10⁵ transcripts."""
    counts: list[int] = []
    for start in range(0, len(texts), chunk):
        encoded = tokenizer(texts[start:start + chunk], return_attention_mask=False, verbose=False)
        counts += [len(ids) for ids in encoded["input_ids"]]
    return counts


def load_rows(source: str, split: str, config: str | None = None, data_dir: str | None = None) -> list[dict[str, Any]]:
    """Rows of a dataset split, from the hub or from local files.

    A local source is a data file (.json/.jsonl/.parquet/.csv, taken as the split itself), a folder
    saved with `Dataset.save_to_disk`, or a folder holding `SPLIT.{jsonl,json,parquet,csv}`."""
    from datasets import load_dataset, load_from_disk

    from mobench.training import quiet_libraries

    quiet_libraries()
    if is_local(source):
        path = Path(source).expanduser()
        try:
            if path.is_file():
                return list(load_dataset(DATA_SUFFIXES.get(path.suffix, "json"), data_files=str(path), split="train"))
            if (path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists():
                loaded = load_from_disk(str(path))
                if hasattr(loaded, "keys") and split not in loaded:
                    raise MobenchError(f"{source} has splits {sorted(loaded)}, not {split!r}")
                return list(loaded[split] if hasattr(loaded, "keys") else loaded)
            for suffix, builder in DATA_SUFFIXES.items():
                candidate = path / f"{split}{suffix}"
                if candidate.exists():
                    return list(load_dataset(builder, data_files=str(candidate), split="train"))
        except MobenchError:
            raise
        except Exception as exc:  # a malformed local file: say which one
            raise MobenchError(f"cannot read the {split} split of {source}: {exc}") from None
        raise MobenchError(f"{source} holds no {split} split ({split}.jsonl/.json/.parquet/.csv or save_to_disk)")
    try:
        return list(load_dataset(source, name=config, data_dir=data_dir, split=split))
    except Exception as exc:  # datasets raises many types; the message is what a user needs
        raise MobenchError(f"cannot load dataset {source!r} (split {split}): {exc}") from None
