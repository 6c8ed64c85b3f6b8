"""The Train page's settings form: recipe, resolution, budget, batch, rates, augmentation,
device and seed. It produces a plain dict that :func:`make_train_config` turns into a
``TrainConfig``."""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QRadioButton,
    QSpinBox,
    QWidget,
)

log = logging.getLogger(__name__)

try:  # medgan.models imports no torch at module level
    from medgan.models import MAX_LEVELS, RECIPES, SUPPORTED_RESOLUTIONS
except ImportError:  # pragma: no cover - only while the engine is incomplete
    RECIPES = {}
    SUPPORTED_RESOLUTIONS = (32, 64, 128, 256)
    MAX_LEVELS = 10

RECIPE_NAMES: tuple[str, ...] = tuple(RECIPES) or ("default", "dcgan")
AUGMENT_CHOICES: tuple[tuple[str, str], ...] = (
    ("adaptive", "Adaptive (recommended)"),
    ("fixed", "Always on"),
    ("off", "Off"),
)
DEVICE_CHOICES: tuple[str, ...] = ("auto", "cpu", "cuda", "mps")


def recipe_form_defaults(recipe: str) -> dict[str, Any] | None:
    """The form values that follow the recipe, read from ``TrainConfig.for_recipe``."""
    from medgan.train.config import RECIPE_NAMES, TrainConfig

    if recipe not in RECIPE_NAMES:
        return None
    cfg = TrainConfig.for_recipe(recipe)
    augment = "off" if not cfg.augment else ("adaptive" if cfg.ada_target is not None else "fixed")
    return {"lr_g": cfg.lr_g, "lr_d": cfg.lr_d, "batch_size": cfg.batch_size, "augment": augment}

MINORITY_SHARE = 0.1  # a class below this share of the labelled slices gets a warning
FIXED_AUGMENT_P = 0.3


def _rate_box(value: float) -> QDoubleSpinBox:
    box = QDoubleSpinBox()
    box.setDecimals(6)
    box.setRange(1e-6, 1e-1)
    box.setSingleStep(1e-5)
    box.setValue(value)
    return box


class TrainSettings(QWidget):
    """Form for one training run; ``changed`` fires on any edit."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)

        self.recipe = QComboBox()
        for name in RECIPE_NAMES:
            info = RECIPES.get(name)
            self.recipe.addItem(info.title if info else name, name)
            if info:
                self.recipe.setItemData(self.recipe.count() - 1, info.description, 3)  # tooltip
        form.addRow("Recipe", self.recipe)

        self.resolution = QComboBox()
        for r in SUPPORTED_RESOLUTIONS:
            self.resolution.addItem(f"{r} × {r}", int(r))
        self.resolution.setCurrentIndex(max(0, self.resolution.findData(64)))
        form.addRow("Resolution", self.resolution)

        self.by_steps = QRadioButton("Steps")
        self.by_time = QRadioButton("Minutes")
        self.by_steps.setChecked(True)
        group = QButtonGroup(self)
        group.addButton(self.by_steps)
        group.addButton(self.by_time)
        self.steps = QSpinBox()
        self.steps.setRange(1, 10_000_000)
        self.steps.setValue(2000)
        self.steps.setSingleStep(100)
        self.minutes = QDoubleSpinBox()
        self.minutes.setRange(0.1, 7 * 24 * 60)
        self.minutes.setValue(10.0)
        self.minutes.setEnabled(False)
        budget = QHBoxLayout()
        budget.addWidget(self.by_steps)
        budget.addWidget(self.steps, 1)
        budget.addWidget(self.by_time)
        budget.addWidget(self.minutes, 1)
        form.addRow("Budget", budget)
        self.expectation = QLabel()
        self.expectation.setWordWrap(True)
        self.expectation.setObjectName("trainExpectation")
        form.addRow("", self.expectation)
        self.by_steps.toggled.connect(self._on_budget_toggled)

        self.batch = QSpinBox()
        self.batch.setRange(1, 4096)
        self.batch.setValue(32)
        form.addRow("Batch size", self.batch)

        self.lr_g = _rate_box(2e-4)
        self.lr_d = _rate_box(4e-4)
        rates = QHBoxLayout()
        rates.addWidget(QLabel("G"))
        rates.addWidget(self.lr_g, 1)
        rates.addWidget(QLabel("D"))
        rates.addWidget(self.lr_d, 1)
        form.addRow("Learning rates", rates)

        self.augment = QComboBox()
        for key, label in AUGMENT_CHOICES:
            self.augment.addItem(label, key)
        form.addRow("Augmentation", self.augment)

        self.device = QComboBox()
        for key in DEVICE_CHOICES:
            self.device.addItem(key, key)
        self.device_info = QLabel("Detecting devices…")
        self.device_info.setWordWrap(True)
        form.addRow("Device", self.device)
        form.addRow("", self.device_info)

        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        form.addRow("Seed", self.seed)

        self.freeze_d = QSpinBox()
        self.freeze_d.setRange(0, 6)
        self.freeze_d.setToolTip(
            "When fine-tuning: keep the first discriminator blocks fixed (FreezeD)"
        )
        form.addRow("Freeze D blocks", self.freeze_d)

        self.checkpoint_every = QSpinBox()
        self.checkpoint_every.setRange(1, 10_000_000)
        self.checkpoint_every.setValue(500)
        self.checkpoint_every.setSingleStep(50)
        self.checkpoint_every.setSuffix(" steps")
        self.checkpoint_minutes = QDoubleSpinBox()
        self.checkpoint_minutes.setRange(0.0, 24 * 60)
        self.checkpoint_minutes.setDecimals(1)
        self.checkpoint_minutes.setValue(5.0)
        self.checkpoint_minutes.setSuffix(" min")
        self.checkpoint_minutes.setSpecialValueText("by steps only")
        tip = (
            "A checkpoint is saved every N steps or every M minutes of training, whichever "
            "comes first, so a crash or a kill loses at most that much work."
        )
        self.checkpoint_every.setToolTip(tip)
        self.checkpoint_minutes.setToolTip(tip)
        ckpt = QHBoxLayout()
        ckpt.addWidget(self.checkpoint_every, 1)
        ckpt.addWidget(QLabel("or"))
        ckpt.addWidget(self.checkpoint_minutes, 1)
        form.addRow("Checkpoint every", ckpt)

        self.keep_best = QCheckBox("Keep the best generator")
        self.keep_best.setChecked(True)
        self.keep_best.setToolTip(
            "Every 50 steps the samples are compared with the training slices (SWD). When on, "
            "the saved model holds the generator of the best check instead of the last step: "
            "on small data sets GANs often peak and then drift."
        )
        form.addRow("Model", self.keep_best)
        self.keep_best.toggled.connect(self.changed)
        self.levels = QComboBox()
        self.levels.addItem("Off", 0)
        for n in range(2, MAX_LEVELS + 1):
            self.levels.addItem(f"{n} levels", n)
        self.levels.setToolTip(
            "Default recipe: condition on each slice's position in its series (N bins from the "
            "first to the last slice). On the demo, 2 levels drew skull-base and ventricle "
            "slices the plain recipe did not, with SWD at the real floor at every scale, but a "
            "classifier tells its samples from real ones more easily (docs/recipes.md)."
        )
        form.addRow("Slice levels", self.levels)
        self.levels.currentIndexChanged.connect(self.changed)
        self._build_classes(form)
        self.log_run = QCheckBox("Also log for TensorBoard and as CSV")
        self.log_run.setToolTip(
            "Writes tensorboard/ (scalars, sample grids, settings) and metrics.csv into the run's "
            "folder, next to its checkpoints. View with: tensorboard --logdir <run folder>."
        )
        form.addRow("Logging", self.log_run)

        for w in (self.recipe, self.resolution, self.augment, self.device):
            w.currentIndexChanged.connect(self.changed)
        for s in (self.steps, self.batch, self.seed, self.freeze_d, self.checkpoint_every):
            s.valueChanged.connect(self.changed)
        for d in (self.minutes, self.lr_g, self.lr_d, self.checkpoint_minutes):
            d.valueChanged.connect(self.changed)
        self.recipe.currentIndexChanged.connect(self._on_recipe_changed)
        self._on_recipe_changed()  # the first recipe's rates, batch and augmentation
        self.changed.connect(self._update_expectation)
        self._update_expectation()

    def _build_classes(self, form: QFormLayout) -> None:
        """Labelled recipes: which classes to train on (counts shown), class-balanced
        sampling, class-conditional pairs; a warning for a small minority class."""
        self.classes = QListWidget()
        self.classes.setMaximumHeight(96)
        self.classes.setToolTip("Untick a class to leave its slices out of this run")
        self.classes.itemChanged.connect(lambda _item: self._update_classes())
        form.addRow("Classes", self.classes)
        self.balanced = QCheckBox("Class-balanced sampling")
        self.balanced.setChecked(True)
        self.balanced.setToolTip(
            "Draw each class equally often, so a small (minority) class is learnt as well as "
            "the large one"
        )
        self.class_pairs = QCheckBox("Image + mask pairs per class")
        self.class_pairs.setToolTip(
            "Conditional: also draw masks; paired: also condition on the classes"
        )
        row = QHBoxLayout()
        row.addWidget(self.balanced)
        row.addWidget(self.class_pairs)
        form.addRow("", row)
        self.class_info = QLabel()
        self.class_info.setWordWrap(True)
        self.class_info.setObjectName("trainClassInfo")
        form.addRow("", self.class_info)
        self._class_counts: dict[str, int] = {}
        self._segments: tuple[str, ...] = ()
        for box in (self.balanced, self.class_pairs):
            box.toggled.connect(self.changed)
        self.recipe.currentIndexChanged.connect(self._update_classes)
        self._update_classes()

    def set_classes(self, class_counts: dict[str, int], segments: tuple[str, ...] = ()) -> None:
        """Show the training set's classes (name → slices) and mask segments."""
        self._class_counts = {str(k): int(v) for k, v in class_counts.items()}
        self._segments = tuple(segments)
        self.classes.blockSignals(True)
        self.classes.clear()
        for name, count in self._class_counts.items():
            item = QListWidgetItem(f"{name} — {count} slices")
            item.setData(Qt.ItemDataRole.UserRole, name)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked)
            self.classes.addItem(item)
        self.classes.blockSignals(False)
        self._update_classes()

    def chosen_classes(self) -> list[str]:
        """The ticked classes, in the training set's order."""
        out = []
        for i in range(self.classes.count()):
            item = self.classes.item(i)
            if item.checkState() == Qt.CheckState.Checked:
                out.append(str(item.data(Qt.ItemDataRole.UserRole)))
        return out

    def _update_classes(self) -> None:
        info = RECIPES.get(self.recipe.currentData())
        labelled = bool(info and getattr(info, "labelled", False))
        for w in (self.classes, self.balanced, self.class_pairs):
            w.setEnabled(labelled)
        self.class_info.setText(self.class_message())
        self.changed.emit()

    def class_message(self) -> str:
        """What the chosen recipe will learn from, with a warning where it cannot or where a
        class is a small minority."""
        info = RECIPES.get(self.recipe.currentData())
        if not (info and getattr(info, "labelled", False)):
            return ""
        counts = {k: v for k, v in self._class_counts.items() if k in self.chosen_classes()}
        if getattr(info, "needs_masks", False) and not self._segments:
            return "⚠ The paired recipe needs masks (SEG, RTSTRUCT or NIfTI) on the Data page."
        if getattr(info, "needs_labels", False) and len(counts) < 2:
            return (
                "⚠ The conditional recipe needs at least two labelled classes; add labels on "
                "the Data page or choose the default recipe."
            )
        total = sum(counts.values())
        parts = []
        if counts:
            parts.append(", ".join(f"{k}: {v}" for k, v in counts.items()))
        if self._segments:
            parts.append("masks: " + ", ".join(self._segments))
        text = "; ".join(parts)
        small = [k for k, v in counts.items() if total and v / total < MINORITY_SHARE]
        if small:
            text += (
                f". ⚠ Minority class {', '.join(small)} (under {MINORITY_SHARE:.0%} of the "
                "slices): class-balanced sampling helps; more slices of it help most."
            )
        return text

    def _update_expectation(self) -> None:
        """Images this budget will show the networks, and a warning when structure is out of
        reach (medgan.models.expectations; the figures are in docs/benchmarks.md)."""
        from medgan.models.expectations import expect

        v = self.values()
        device = v["device"] or "auto"
        if device == "auto":  # training picks CUDA, then MPS, then the CPU
            device = getattr(self, "_auto_device", "cpu")
        e = expect(v["recipe"], v["resolution"], device=device,
                   minutes=v["minutes"], steps=v["steps"], batch_size=v["batch_size"],
                   cpu_bf16=getattr(self, "_cpu_bf16", None))  # fmt: skip
        self.expectation.setText(("⚠ " if e.warn else "") + e.message())
        self.expectation.setStyleSheet("color: #b36b00;" if e.warn else "")

    # ------------------------------------------------------------------ API
    def set_resolution(self, resolution: int) -> None:
        i = self.resolution.findData(int(resolution))
        if i >= 0:
            self.resolution.setCurrentIndex(i)

    def set_devices(self, devices: list[dict[str, Any]]) -> None:
        """Show probed devices: dicts with ``key``, ``label`` and ``available``."""
        by_key = {d["key"]: d for d in devices}
        model = self.device.model()
        lines = []
        for i in range(self.device.count()):
            key = self.device.itemData(i)
            info = by_key.get(key)
            if info is None:
                continue
            self.device.setItemText(i, f"{key} — {info['label']}")
            item = model.item(i) if hasattr(model, "item") else None
            if item is not None:
                item.setEnabled(bool(info.get("available", True)))
            if key != "auto" and info.get("available"):
                lines.append(f"{key}: {info['label']}")
        self.device_info.setText("; ".join(lines) or "CPU only")
        usable = [k for k in ("cuda", "mps") if by_key.get(k, {}).get("available")]
        self._auto_device = usable[0] if usable else "cpu"
        bf16 = by_key.get("cpu", {}).get("bf16")
        self._cpu_bf16 = None if bf16 is None else bool(bf16)
        self._update_expectation()

    def values(self) -> dict[str, Any]:
        """The form as plain values (the budget is either ``steps`` or ``minutes``)."""
        return {
            "recipe": self.recipe.currentData(),
            "resolution": int(self.resolution.currentData()),
            "steps": int(self.steps.value()) if self.by_steps.isChecked() else None,
            "minutes": float(self.minutes.value()) if self.by_time.isChecked() else None,
            "batch_size": int(self.batch.value()),
            "lr_g": float(self.lr_g.value()),
            "lr_d": float(self.lr_d.value()),
            "augment": self.augment.currentData(),
            "device": self.device.currentData(),
            "seed": int(self.seed.value()),
            "freeze_d_blocks": int(self.freeze_d.value()),
            "keep_best": self.keep_best.isChecked(),
            "checkpoint_every": int(self.checkpoint_every.value()),
            "checkpoint_minutes": float(self.checkpoint_minutes.value()) or None,
            "balanced_classes": self.balanced.isChecked(),
            "class_pairs": self.class_pairs.isChecked(),
            "levels": int(self.levels.currentData()) if self.levels.isEnabled() else 0,
        }

    def set_values(self, values: dict[str, Any]) -> None:
        """Fill the form (e.g. from a model's saved config); unknown keys are ignored."""
        if "recipe" in values:
            i = self.recipe.findData(values["recipe"])
            if i >= 0:
                self.recipe.setCurrentIndex(i)
        if "resolution" in values:
            self.set_resolution(int(values["resolution"]))
        if values.get("steps"):
            self.by_steps.setChecked(True)
            self.steps.setValue(int(values["steps"]))
        elif values.get("minutes"):
            self.by_time.setChecked(True)
            self.minutes.setValue(float(values["minutes"]))
        for key, box in (("batch_size", self.batch), ("seed", self.seed)):
            if key in values:
                box.setValue(int(values[key]))
        for key, dbox in (("lr_g", self.lr_g), ("lr_d", self.lr_d)):
            if key in values:
                dbox.setValue(float(values[key]))
        if "keep_best" in values:
            self.keep_best.setChecked(bool(values["keep_best"]))
        if values.get("checkpoint_every"):
            self.checkpoint_every.setValue(int(values["checkpoint_every"]))
        if "checkpoint_minutes" in values:
            self.checkpoint_minutes.setValue(float(values["checkpoint_minutes"] or 0.0))
        if "levels" in values:
            self.levels.setCurrentIndex(max(0, self.levels.findData(int(values["levels"] or 0))))

    def _on_budget_toggled(self, by_steps: bool) -> None:
        self.steps.setEnabled(by_steps)
        self.minutes.setEnabled(not by_steps)
        self.changed.emit()

    def _on_recipe_changed(self) -> None:
        """Load the recipe's defaults for rates, batch and augmentation."""
        self.levels.setEnabled(self.recipe.currentData() == "default")
        defaults = recipe_form_defaults(str(self.recipe.currentData()))
        if defaults:
            self.lr_g.setValue(defaults["lr_g"])
            self.lr_d.setValue(defaults["lr_d"])
            self.batch.setValue(defaults["batch_size"])
            self.augment.setCurrentIndex(max(0, self.augment.findData(defaults["augment"])))


def make_train_config(values: dict[str, Any], **overrides: Any) -> Any:
    """Build a validated ``TrainConfig`` from form values (recipe defaults, then the form).

    ``overrides`` (e.g. ``checkpoint_dir``, ``sample_every``) win over the form.
    Raises ``TrainConfigError`` (a ``MedganError``) with advice when a value is out of range.
    """
    from medgan.train.config import DEFAULT_AUGMENT, TrainConfig

    v = dict(values)
    augment = v.pop("augment", "adaptive")
    aug: dict[str, Any]
    if augment == "off":
        aug = {"augment": (), "ada_target": None, "augment_p": 0.0}
    elif augment == "fixed":
        aug = {"augment": DEFAULT_AUGMENT, "ada_target": None, "augment_p": FIXED_AUGMENT_P}
    else:
        aug = {"augment": DEFAULT_AUGMENT, "ada_target": 0.6, "augment_p": 0.0}
    recipe = v.pop("recipe", "default")
    fields = {
        "resolution": v.get("resolution"),
        "steps": v.get("steps"),
        "minutes": v.get("minutes"),
        "batch_size": v.get("batch_size"),
        "lr_g": v.get("lr_g"),
        "lr_d": v.get("lr_d"),
        "device": v.get("device"),
        "seed": v.get("seed"),
        "freeze_d_blocks": v.get("freeze_d_blocks"),
        "keep_best": v.get("keep_best"),
        "checkpoint_every": v.get("checkpoint_every"),
        "balanced_classes": v.get("balanced_classes"),
        "class_pairs": v.get("class_pairs"),
        "levels": v.get("levels") if recipe == "default" else None,
    }
    kwargs = {k: val for k, val in fields.items() if val is not None}
    if "checkpoint_minutes" in v:
        kwargs["checkpoint_minutes"] = v["checkpoint_minutes"] or None  # 0/None: by steps only
    if v.get("minutes") is not None and v.get("steps") is None:
        kwargs["steps"] = None  # a time budget only
    return TrainConfig.for_recipe(recipe, **{**aug, **kwargs, **overrides})
