"""The Train page's settings form says what a budget can reach and warns before a short CPU run."""

from __future__ import annotations

from ui.widgets.train_settings import TrainSettings


def test_form_warns_for_ten_cpu_minutes_and_not_for_a_gpu(qtbot) -> None:  # type: ignore[no-untyped-def]
    form = TrainSettings()
    qtbot.addWidget(form)
    form.set_values({"recipe": "default", "resolution": 64, "minutes": 10.0, "device": "cpu"})
    form.by_time.setChecked(True)
    form.minutes.setValue(10.0)
    assert "blobs" in form.expectation.text() and form.expectation.text().startswith("⚠")
    form.set_devices([{"key": "cuda", "label": "Test GPU", "available": True},
                      {"key": "cpu", "label": "CPU", "available": True},
                      {"key": "auto", "label": "auto", "available": True}])  # fmt: skip
    i = form.device.findData("cuda")
    if i >= 0:
        form.device.setCurrentIndex(i)
        assert not form.expectation.text().startswith("⚠")
        assert "assumed" in form.expectation.text()
