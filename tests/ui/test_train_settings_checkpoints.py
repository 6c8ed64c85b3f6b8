"""Train page settings: checkpoints every N steps or M minutes reach the TrainConfig."""

from __future__ import annotations

from ui.widgets.train_settings import TrainSettings, make_train_config


def test_checkpoint_interval_by_steps_and_minutes(qtbot):
    form = TrainSettings()
    qtbot.addWidget(form)
    config = make_train_config(form.values())
    assert (config.checkpoint_every, config.checkpoint_minutes) == (500, 5.0)  # the defaults

    form.checkpoint_every.setValue(200)
    form.checkpoint_minutes.setValue(2.5)
    config = make_train_config(form.values())
    assert (config.checkpoint_every, config.checkpoint_minutes) == (200, 2.5)

    form.checkpoint_minutes.setValue(0.0)  # shown as "by steps only"
    assert make_train_config(form.values()).checkpoint_minutes is None
    form.set_values({"checkpoint_every": 50, "checkpoint_minutes": 1.0})
    assert (form.checkpoint_every.value(), form.checkpoint_minutes.value()) == (50, 1.0)


def test_the_form_starts_from_each_recipes_own_defaults(qtbot):
    from medgan.train.config import TrainConfig

    form = TrainSettings()
    qtbot.addWidget(form)
    for recipe in ("default", "dcgan", "paired", "default"):
        form.recipe.setCurrentIndex(form.recipe.findData(recipe))
        expected = TrainConfig.for_recipe(recipe)
        config = make_train_config(form.values())
        assert config.batch_size == expected.batch_size
        assert (config.lr_g, config.lr_d) == (expected.lr_g, expected.lr_d)
        assert config.augment == expected.augment and config.ada_target == expected.ada_target
    assert TrainConfig.for_recipe("default").batch_size == 16  # CPU-sized: more steps
