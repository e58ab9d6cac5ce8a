"""Tuners working on one study with no coordinator of their own: shared trials and the
study lock in the database, resume, and on each host its slot, runtime directory,
private temporary directory and the leftovers of a killed tuner."""
