"""Reviewing a study: `show` (every trial as a table), the self-contained HTML report
(`python -m tuner report`), its plots as PNG files, and what the tuner leaves in the study for
optuna-dashboard."""
