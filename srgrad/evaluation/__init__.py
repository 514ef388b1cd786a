"""Evaluation beyond `srgrad eval`'s scores: ablations of the gradient term."""
