"""Helpers of the training-set builder (:mod:`medgan.dataset.training_set`): the on-disk cache."""
