"""The study's run: the loop (run.py), one trial (objective.py), the confirmation
pass, and what they decide with: pruning, samplers, ratios, progress, warm start."""
