"""What a trial measures: one configuration measured once under one fixed load
(fixed_load.py), the model server's start, the prediction service's process, the warm-up,
the requests sent and the model signature they fit, and telling a dead part of the bench
from a figure."""
