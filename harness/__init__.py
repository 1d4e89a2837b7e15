"""The plumbing of a run: starting a script (arguments, run directory claims), the training
loop and its checkpoints, memory checks, progress, the sweep's grid, ending a script (exit
statuses), and the run directory (rundir/)."""
