"""Typed, validated training settings with per-recipe defaults and a JSON round trip.

No torch import here: the GUI builds and validates configs before any engine is loaded.

Example::

    cfg = TrainConfig.for_recipe("default", resolution=64, minutes=10, checkpoint_dir="run1")
    cfg2 = TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert cfg == cfg2
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field, fields
from typing import Any

from medgan.core.errors import TrainingError
from medgan.models import D_BLOCKS, LEGACY_NETWORK_OPTIONS, MAX_LEVELS

RECIPE_NAMES: tuple[str, ...] = ("default", "dcgan", "conditional", "paired")
RESOLUTIONS: tuple[int, ...] = (32, 64, 128, 256)
LOSSES: tuple[str, ...] = ("bce", "hinge", "nonsat")
AUGMENTATIONS: tuple[str, ...] = (
    "translation",
    "cutout",
    "brightness",
    "contrast",
    "flip",
    "rotate",
)
# The small-data recipes' policy (docs/recipes.md, "Structure on the harder demo"): cutout is
# available but off — it blacks out half a slice's anatomy, and runs without it learn more.
DEFAULT_AUGMENT: tuple[str, ...] = ("translation", "brightness", "contrast", "flip", "rotate")
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda", "mps")
AMP_MODES: tuple[str, ...] = ("auto", "bf16", "off")

# Fields that define the networks: a checkpoint or model file must agree on all of them.
ARCHITECTURE_FIELDS: tuple[str, ...] = (
    "recipe",
    "resolution",
    "z_dim",
    "channels",
    "width",
    "d_block",
    "g_noise",
    "d_image",
    "mask_first",
    "labelled_layout",
    "levels",
)


class TrainConfigError(TrainingError, ValueError):
    """A training setting is missing, of the wrong type, or out of range."""


@dataclass(frozen=True)
class TrainConfig:
    """All settings of one training run. Build with :meth:`for_recipe` to get recipe defaults.

    Budget: ``steps`` and/or ``minutes`` (whichever ends first). ``checkpoint_dir=None``
    disables checkpoints (nothing to resume from): the CLI and the app always set one.
    Checkpoints come every ``checkpoint_every`` steps or ``checkpoint_minutes`` minutes of
    training, whichever first (``None`` minutes: by steps only), and when a run ends.
    """

    recipe: str = "default"
    resolution: int = 64
    steps: int | None = 2000
    minutes: float | None = None
    batch_size: int = 32
    lr_g: float = 2e-4
    lr_d: float = 4e-4  # TTUR: the discriminator learns faster (Heusel et al. 2017)
    betas: tuple[float, float] = (0.5, 0.99)
    z_dim: int = 128
    channels: int = 1
    width: int | None = None  # base channel count; None = the recipe's default
    d_block: str = "half"  # D blocks: second conv at half resolution ("full": the older layout)
    g_noise: bool = True  # per-pixel noise inputs from z in G (ZNoise; labelled: layout 2)
    d_image: bool = True  # labelled recipes with masks: D also judges the image alone
    mask_first: bool = True  # labelled recipes with masks: a mask, then the image painted for it
    labelled_layout: int = 3  # labelled generators: 3 segment patterns, 2 without, 1 older files
    levels: int = 0  # default recipe: conditioned on the slice's level in its series (bins; 0 off)
    loss: str = "hinge"
    # Differentiable augmentation of real and fake images in both steps (DiffAugment).
    augment: tuple[str, ...] = DEFAULT_AUGMENT
    augment_p: float = 0.0  # starting probability per augmentation and image
    ada_target: float | None = 0.6  # adapt p so that E[sign(D(real))] ≈ target; None = fixed p
    ada_interval: int = 4  # steps between adjustments
    ada_speed_images: int = 100_000  # images for p to travel from 0 to 1
    ada_p_max: float = 0.8
    ema_decay: float = 0.999  # 0 disables the EMA generator
    ema_rampup: float = 0.05  # EMA half-life at most this share of the steps done (0 = fixed)
    r1_gamma: float = 0.0  # R1 penalty weight on real images (0 = off)
    r1_every: int = 4  # lazy regularization interval
    label_smoothing: float = 0.0  # real target 1 - s (one-sided)
    lecam_weight: float = 0.0  # LeCam regularization of D (Tseng et al. 2021); 0 = off
    lecam_decay: float = 0.99  # moving-average decay of its logit anchors
    mode_seeking: float = 0.0  # mode-seeking term in G's loss (Mao et al. 2019); 0 = off
    paint_check: float = 0.0  # mask-first pairs: weight of a real-trained segmenter's loss on painted pairs
    device: str = "auto"
    amp: str = "auto"  # bf16 autocast where the device runs it natively (CUDA, bf16 CPUs)
    channels_last: bool = True
    compile: bool = False
    deterministic: bool = True
    seed: int = 0
    sample_every: int = 100
    n_samples: int = 16
    metrics_interval_s: float = 0.1  # at most ~10 StepMetrics per second
    checkpoint_every: int = 500  # a checkpoint every N steps ...
    checkpoint_minutes: float | None = 5.0  # ... or every M minutes of training, if sooner
    # Sample quality (SWD against training slices) every N steps; 0 = never (medgan.train.quality)
    quality_every: int = 50
    quality_samples: int = 128
    keep_best: bool = True  # the model file holds the generator with the best measured quality
    keep_checkpoints: int = 3
    checkpoint_dir: str | None = None
    freeze_d_blocks: int = 0  # freeze the first D blocks (FreezeD) when fine-tuning
    finetune_lr_scale: float = 0.5  # multiplies both learning rates when starting from a model
    # Labelled recipes (conditional, paired; docs/recipes.md):
    balanced_classes: bool = True  # draw each class equally often (conditional)
    class_pairs: bool = False  # conditional also draws masks / paired also takes classes
    extra: dict[str, Any] = field(default_factory=dict, hash=False, compare=True)

    def __post_init__(self) -> None:
        self.validate()

    # ---------------------------------------------------------------- construction
    @classmethod
    def for_recipe(cls, recipe: str = "default", **overrides: Any) -> TrainConfig:
        """Recipe defaults (see docs/recipes.md), then ``overrides``."""
        if recipe not in RECIPE_NAMES:
            raise TrainConfigError(
                f"Unknown recipe {recipe!r}.", advice=f"Choose one of: {', '.join(RECIPE_NAMES)}."
            )
        base: dict[str, Any] = {"recipe": recipe}
        if recipe == "dcgan":
            base.update(
                loss="bce",
                lr_g=2e-4,
                lr_d=2e-4,
                betas=(0.5, 0.999),
                augment=(),
                augment_p=0.0,
                ada_target=None,
                ema_decay=0.0,
                r1_gamma=0.0,
                label_smoothing=0.0,
                batch_size=64,
            )
        else:
            base.update(
                loss="nonsat",
                lecam_weight=0.05,
                lr_g=2e-4,
                lr_d=4e-4,
                betas=(0.5, 0.99),
                augment=DEFAULT_AUGMENT,
                augment_p=0.0,
                ada_target=0.6,
                ada_speed_images=100_000,
                ema_decay=0.999,
                ema_rampup=0.2,
                r1_gamma=0.0,
                batch_size=32,
            )
        if recipe == "default":
            # Twice the steps for the same images at the same CPU rate: more structure within
            # a CPU budget (docs/recipes.md, "Smaller batches"); probes per image unchanged.
            base.update(batch_size=16, quality_every=100)
        base.update(overrides)
        return cls._checked(base)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Rebuild from :meth:`to_dict` output (e.g. parsed JSON), with clear errors."""
        if not isinstance(data, dict):
            raise TrainConfigError(
                f"Training settings must be a mapping, got {type(data).__name__}."
            )
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        recipe = data.get("recipe", "default")
        legacy = LEGACY_NETWORK_OPTIONS.get(recipe, {}) if isinstance(recipe, str) else {}
        data = {**legacy, **data}  # settings saved before the options existed
        if unknown:
            raise TrainConfigError(
                f"Unknown training setting(s): {', '.join(unknown)}.",
                advice="Check the spelling; settings files from newer versions may not load here.",
            )
        return cls._checked(dict(data))

    @classmethod
    def _checked(cls, values: dict[str, Any]) -> TrainConfig:
        for key in ("betas", "augment"):
            if isinstance(values.get(key), list):
                values[key] = tuple(values[key])
        if isinstance(values.get("amp"), bool):
            values["amp"] = "auto" if values["amp"] else "off"
        try:
            return cls(**values)
        except TypeError as exc:
            raise TrainConfigError(f"Invalid training settings: {exc}.") from exc

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with some settings changed (validated)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-compatible values (tuples become lists)."""
        out = dataclasses.asdict(self)
        out["betas"] = list(self.betas)
        out["augment"] = list(self.augment)
        return out

    # ---------------------------------------------------------------- validation
    def validate(self) -> None:
        """Raise :class:`TrainConfigError` naming the first bad setting."""

        def bad(name: str, why: str) -> TrainConfigError:
            return TrainConfigError(
                f"Invalid training setting {name!r}: {why} (got {getattr(self, name)!r})."
            )

        def integer(name: str, lo: int, hi: int | None = None, optional: bool = False) -> None:
            v = getattr(self, name)
            if v is None and optional:
                return
            if isinstance(v, bool) or not isinstance(v, int):
                raise bad(name, "must be a whole number")
            if v < lo or (hi is not None and v > hi):
                raise bad(
                    name,
                    f"must be between {lo} and {hi}"
                    if hi is not None
                    else f"must be at least {lo}",
                )

        def number(
            name: str,
            lo: float,
            hi: float | None = None,
            optional: bool = False,
            lo_open: bool = False,
        ) -> None:
            v = getattr(self, name)
            if v is None and optional:
                return
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise bad(name, "must be a finite number")
            if (v <= lo if lo_open else v < lo) or (hi is not None and v > hi):
                bound = f"> {lo}" if lo_open else f">= {lo}"
                raise bad(name, f"must be {bound}" + (f" and <= {hi}" if hi is not None else ""))

        def choice(name: str, options: tuple[str, ...]) -> None:
            if getattr(self, name) not in options:
                raise bad(name, f"must be one of {', '.join(options)}")

        choice("recipe", RECIPE_NAMES)
        if self.resolution not in RESOLUTIONS:
            raise bad("resolution", f"must be one of {', '.join(map(str, RESOLUTIONS))}")
        integer("steps", 1, optional=True)
        number("minutes", 0.0, optional=True, lo_open=True)
        if self.steps is None and self.minutes is None:
            raise TrainConfigError(
                "No training budget: set 'steps', 'minutes' or both.",
                advice="For a first try on a CPU, 10 minutes at 64×64 is a good start.",
            )
        integer("batch_size", 1, 4096)
        number("lr_g", 0.0, 1.0, lo_open=True)
        number("lr_d", 0.0, 1.0, lo_open=True)
        if (
            not isinstance(self.betas, tuple)
            or len(self.betas) != 2
            or not all(isinstance(b, (int, float)) and 0 <= b < 1 for b in self.betas)
        ):
            raise bad("betas", "must be two numbers in [0, 1)")
        integer("z_dim", 1, 4096)
        integer("channels", 1, 4)
        integer("width", 4, 1024, optional=True)
        choice("d_block", D_BLOCKS)
        choice("loss", LOSSES)
        if not isinstance(self.augment, tuple) or any(a not in AUGMENTATIONS for a in self.augment):
            raise bad("augment", f"must list some of {', '.join(AUGMENTATIONS)}")
        number("augment_p", 0.0, 1.0)
        number("ada_target", 0.0, 1.0, optional=True)
        integer("ada_interval", 1)
        integer("ada_speed_images", 1)
        number("ada_p_max", 0.0, 1.0)
        number("ema_decay", 0.0, 0.99999)
        number("ema_rampup", 0.0, 10.0)
        number("r1_gamma", 0.0, 1e4)
        integer("r1_every", 1)
        number("label_smoothing", 0.0, 0.5)
        number("lecam_weight", 0.0, 100.0)
        number("lecam_decay", 0.0, 0.99999)
        number("mode_seeking", 0.0, 100.0)
        number("paint_check", 0.0, 100.0)
        choice("device", DEVICES)
        choice("amp", AMP_MODES)
        for flag in (
            "channels_last",
            "compile",
            "deterministic",
            "keep_best",
            "balanced_classes",
            "class_pairs",
            "g_noise",
            "d_image",
            "mask_first",
        ):
            if not isinstance(getattr(self, flag), bool):
                raise bad(flag, "must be true or false")
        integer("labelled_layout", 1, 3)
        integer("levels", 0, MAX_LEVELS)
        if self.levels == 1:
            raise bad("levels", f"must be 0 (off) or 2 to {MAX_LEVELS}")
        integer("seed", 0, 2**63 - 1)
        integer("sample_every", 1)
        integer("n_samples", 1, 256)
        number("metrics_interval_s", 0.0)
        integer("checkpoint_every", 1)
        number("checkpoint_minutes", 0.0, optional=True, lo_open=True)
        integer("quality_every", 0)
        integer("quality_samples", 8, 4096)
        integer("keep_checkpoints", 1)
        if self.checkpoint_dir is not None and not isinstance(self.checkpoint_dir, str):
            raise bad("checkpoint_dir", "must be a folder path or null")
        integer("freeze_d_blocks", 0, 16)
        number("finetune_lr_scale", 0.0, 10.0, lo_open=True)
        if not isinstance(self.extra, dict):
            raise bad("extra", "must be a mapping")

    def network_options(self) -> dict[str, Any]:
        """Extra arguments of the recipe's ``build`` from these settings (model files keep them)."""
        return {name: getattr(self, name) for name in LEGACY_NETWORK_OPTIONS.get(self.recipe, {})}

    def architecture(self) -> dict[str, Any]:
        """The settings that fix network shapes (compared on resume and fine-tuning)."""
        from medgan.models import RECIPES

        arch = {name: getattr(self, name) for name in ARCHITECTURE_FIELDS}
        arch["width"] = self.width or RECIPES[self.recipe].default_width
        options = self.network_options()  # None where the recipe has no such option
        for name in {key for table in LEGACY_NETWORK_OPTIONS.values() for key in table}:
            arch[name] = options.get(name)
        return arch


__all__ = ["RECIPE_NAMES", "RESOLUTIONS", "TrainConfig", "TrainConfigError"]
