"""Downstream utility ("Does it help?"): does adding synthetic slices to the real labelled
ones make a classifier or segmenter better on new patients?

Qt-free building blocks of :mod:`medgan.workflows.utility`: patient folds (``splits``), the
downstream networks and their training (``tasks``), classic augmentation (``augment``), the
training pool of each arm (``arms``), synthetic-set sources (``sources``, ``export_folder``),
the controls (``controls``), scores (``scores``), statistics and the verdict (``stats``) and the
typed request/result records with their JSON form (``records``). See ``docs/utility.md``.
"""
