"""Evaluation: `run` (datasets, scores, `srgrad eval`), `report` (tables and report files),
`compare` (detail crops beside bicubic) and `ablation` (ablations of the gradient term)."""
