"""The commands: parsing and printing (cli.py), `init`, `export`, and the generated
reference of every key and flag. `show` and `report` live in tuner/review/, `optimize`'s
library in tuner/study/run.py."""
