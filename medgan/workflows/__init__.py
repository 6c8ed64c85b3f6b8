"""The jobs a user runs, Qt-free; the CLI and the GUI are thin callers of these.

Each job is one function taking a typed request dataclass and ``progress`` / ``cancel``
keywords (``progress(stage, done, total)``, see :mod:`medgan.workflows.progress`; ``cancel``
a ``threading.Event``), and returning a result dataclass. Nothing is re-exported here:
import from the module.

- ``dataset.build_training_set(TrainingSetRequest) -> TrainingSetResult`` — series (or a
  folder and UIDs) with slice ranges → training set; ``dataset.select_series``,
  ``dataset.config_for_model`` (the settings a model file was trained with).
- ``training.train_and_save`` — train and write the model file (metadata built in one place).
- ``generation.generate_and_score(GenerateRequest) -> GenerationResult`` — seeded samples,
  scored against the training slices.
- ``curation.curate(CurateRequest) -> CurateResult`` — filters, distance filter and the
  user's choices → ``Decisions``.
- ``exporting.export_curated(ExportRequest) -> ExportResult`` — the kept slices, manifest
  and README, atomically; one manifest whichever front end wrote it.
- ``evaluation.evaluate(EvaluateRequest) -> EvaluateResult`` — the quality report of
  ``medgan evaluate``.
"""
