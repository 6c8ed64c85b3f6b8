"""Helpers of the training-set builder (:mod:`medgan.data`): the on-disk cache."""
