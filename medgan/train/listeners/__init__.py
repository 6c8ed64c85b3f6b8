"""Trainer listeners: plain ``on_event`` callables, attached like the GUI's or the progress bar.

- :class:`HistoryRecorder` keeps a compact training history (losses, probes, a few sample
  grids) for the model file and its report.
- :class:`CsvMetricsWriter` appends one CSV row per metrics event.
- :class:`TensorBoardWriter` writes scalars, sample grids and hyper-parameters (needs the
  optional ``tensorboard`` package).
- :func:`fan_out` calls several listeners with each event.
"""

from __future__ import annotations

from medgan.train.listeners.csv_writer import CsvMetricsWriter
from medgan.train.listeners.fanout import fan_out
from medgan.train.listeners.history import HistoryRecorder, TrainingHistory
from medgan.train.listeners.tensorboard import TensorBoardWriter

__all__ = ["CsvMetricsWriter", "HistoryRecorder", "TensorBoardWriter", "TrainingHistory", "fan_out"]
