"""The Train page's settings form says what a budget can reach and warns before a short CPU run."""

from __future__ import annotations

from ui.widgets.train_settings import TrainSettings


def test_form_warns_for_a_short_cpu_run_and_not_for_a_gpu(qtbot) -> None:  # type: ignore[no-untyped-def]
    form = TrainSettings()
    qtbot.addWidget(form)
    form.set_values({"recipe": "default", "resolution": 64, "minutes": 3.0, "device": "cpu"})
    form.by_time.setChecked(True)
    form.minutes.setValue(3.0)  # short of anatomy on up to 8 CPU threads
    text = form.expectation.text()
    assert text.startswith("⚠") and ("blobs" in text or "ventricles" in text)
    form.set_devices([{"key": "cuda", "label": "Test GPU", "available": True},
                      {"key": "cpu", "label": "CPU", "available": True},
                      {"key": "auto", "label": "auto", "available": True}])  # fmt: skip
    i = form.device.findData("cuda")
    if i >= 0:
        form.device.setCurrentIndex(i)
        assert not form.expectation.text().startswith("⚠")
        assert "assumed" in form.expectation.text()


def test_the_probed_cpu_precision_reaches_the_estimate(qtbot) -> None:  # type: ignore[no-untyped-def]
    form = TrainSettings()
    qtbot.addWidget(form)
    form.set_values({"recipe": "default", "resolution": 64, "minutes": 10.0, "device": "cpu"})
    form.by_time.setChecked(True)
    form.minutes.setValue(10.0)
    for bf16, slow in ((True, False), (False, True)):
        form.set_devices([{"key": "cpu", "label": "CPU", "available": True, "bf16": bf16},
                          {"key": "auto", "label": "auto", "available": True}])  # fmt: skip
        assert ("float32" in form.expectation.text()) is slow
