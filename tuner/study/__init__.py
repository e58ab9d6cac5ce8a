"""The study's run: the loop (run.py), one trial (objective.py), the confirmation
pass, and what they decide with: pruning a trial (trial_pruning.py), samplers, ratios,
progress, warm start."""
