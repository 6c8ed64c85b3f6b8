"""The plain values that describe one synthetic head: lesions, anatomy, textures."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

AIR_HU = -1000.0
LESION_KINDS = ("haemorrhage", "infarct", "tumour", "subdural")


@dataclass(frozen=True)
class Lesion:
    """One focal abnormality, in head coordinates (mm from the head centre)."""

    kind: str  # one of LESION_KINDS
    center: tuple[float, float, float]
    radius: float  # mm
    hu: float  # core density
    edema_mm: float = 0.0  # rim of low density around it
    push_mm: float = 0.0  # mass effect: how far it displaces neighbouring structures


@dataclass(frozen=True)
class HeadParams:
    """Anatomy and acquisition of one synthetic patient."""

    semi_axes: tuple[float, float, float] = (74.0, 94.0, 105.0)  # L-R, A-P, S-I (mm)
    center: tuple[float, float, float] = (0.0, 0.0, 0.0)  # head centre in world mm
    yaw: float = 0.0  # rotation about the S-I axis (degrees)
    pitch: float = 0.0  # chin up/down (degrees)
    roll: float = 0.0  # head tilt to a shoulder (degrees)
    scalp_mm: float = 5.0
    skull_mm: float = 6.5
    csf_mm: float = 1.5  # subarachnoid space; grows with atrophy
    atrophy: float = 0.3  # 0 young .. 1 very atrophic (wider sulci and ventricles)
    ventricle_scale: float = 1.0
    grey_hu: float = 39.0
    white_hu: float = 27.0
    bone_hu: float = 1400.0
    noise_hu: float = 4.0
    calcified_pineal: bool = True
    calcified_choroid: bool = False
    lesions: tuple[Lesion, ...] = field(default_factory=tuple)
    texture_seed: int = 0
    ventricle_asymmetry: float = 0.0  # right/left size ratio - 1 (lateral ventricles)
    temporal_horns: float = 0.5  # 0 slit .. 1 wide temporal horns
    cerebellum_spread: float = 22.0  # mm from the midline to each hemisphere's centre
    folia_mm: float = 3.5  # spacing of the cerebellar folia
    gyrus_scale: float = 1.0  # >1 coarser gyri


class SmoothField:
    """Smooth random field (unit variance, features ~``wavelength`` mm) over a fixed grid.

    Built separably (random knots times three small Gaussian interpolation matrices), so any
    block of it costs a few matrix products instead of a 3D filter, and blocks agree.
    """

    def __init__(
        self,
        rng: np.random.Generator,
        z: np.ndarray,
        y: np.ndarray,
        x: np.ndarray,
        wavelength: float,
    ) -> None:
        self.m = [self._matrix(np.asarray(c, np.float64), wavelength) for c in (z, y, x)]
        shape = tuple(m.shape[1] for m in self.m)
        self.knots = rng.standard_normal(shape).astype(np.float32)

    @staticmethod
    def _matrix(coords: np.ndarray, wavelength: float) -> np.ndarray:
        lo, hi = float(coords.min()) - wavelength, float(coords.max()) + wavelength
        knots = np.arange(lo, hi + 1e-6, wavelength / 2.0)
        w = np.exp(-(((coords[:, None] - knots[None, :]) / (0.5 * wavelength)) ** 2))
        return (w / np.sqrt((w**2).sum(axis=1, keepdims=True))).astype(np.float32)

    def block(self, zs: slice, ys: slice, xs: slice) -> np.ndarray:
        mz, my, mx = self.m[0][zs], self.m[1][ys], self.m[2][xs]
        out = np.tensordot(self.knots, mx, axes=([2], [1]))  # (kz, ky, X)
        out = np.einsum("yk,zkx->zyx", my, out, optimize=True)  # (kz, Y, X)
        return np.ascontiguousarray(np.tensordot(mz, out, axes=([1], [0])), dtype=np.float32)


@dataclass
class Textures:
    bumps: SmoothField
    sulci: np.ndarray  # angular table: zero set = sulci
    sulcal_depth: np.ndarray  # angular table
    cells: SmoothField | None = None  # ~8 mm features: air cells, folia jitter, white matter
