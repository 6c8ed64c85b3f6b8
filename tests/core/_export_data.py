"""Plain arrays and model facts for the export tests (no engine needed)."""

from __future__ import annotations

import numpy as np

from medgan.export import Provenance, SliceSet

RES = 16
WINDOW = (40.0, 400.0)  # CT soft tissue, HU


def provenance(**overrides: object) -> Provenance:
    values: dict[str, object] = dict(
        model_sha256="0123456789abcdef" * 4,
        model_name="model.safetensors",
        recipe="default",
        resolution=RES,
        seed=11,
        modality="CT",
        window=WINDOW,
        units="HU",
        pixel_spacing=(2.0, 1.5),
        model_step=100,
    )
    values.update(overrides)
    return Provenance(**values)  # type: ignore[arg-type]


def synthetic(n: int = 5, *, seed: int = 11, keep: list[bool] | None = None) -> SliceSet:
    rng = np.random.default_rng(seed)
    images = rng.uniform(-1.0, 1.0, (n, RES, RES)).astype(np.float32)
    keep_arr = None if keep is None else np.array(keep, dtype=bool)
    reasons = None
    if keep is not None:
        reasons = ["" if k else "memorization: too close to a training slice" for k in keep]
    return SliceSet(
        images,
        seeds=np.full(n, seed),
        indices=np.arange(n),
        scores={"realism": rng.random(n), "nn_distance": rng.random(n)},
        keep=keep_arr,
        reasons=reasons,
    )


def real(n: int = 3) -> SliceSet:
    rng = np.random.default_rng(99)
    return SliceSet(rng.uniform(-1.0, 1.0, (n, RES, RES)).astype(np.float32), kind="real")
