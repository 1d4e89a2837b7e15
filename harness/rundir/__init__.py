"""The run directory: the one package that knows which files a run holds and how each is written,
read back and checked. Training writes through it, compare.py and resuming read through it.

It also owns run names (run_name, run_dir) and what state a run directory is in
(run_state): new, unfinished, finished, in progress, or holding other settings; the scripts,
compare.py and sweep.py all decide by it.

No TensorFlow here: the checks run before it is imported (a saved network is loaded with Keras
only by check_networks).

A run directory holds:
- config.json: the model's name, every setting, the data set's size and the package versions;
- history.csv: one row per log step: step, seconds, the model's metrics, log_px (empty on rows
  without an exact evaluation) and, where the data set has a validation split, valid_log_px
  (empty on rows without a validation evaluation);
- posterior.npz: per log step, `steps`, posterior samples `z` [logs, points, samples, 2], and
  the decoded `reconstructions` [logs, points, pixels] and `prior_images` [logs, 16, pixels];
- state.npz: the step and every weight and optimiser value, for resuming, and the best step by
  the validation figure with its weights;
- <network>.keras for each of the model's networks; metrics.json: the final evaluation;
- tensorboard/: the metrics as TensorBoard scalars;
- .lock: the writer lock (below), holding the process id and host of its last holder.

One process writes a run at a time: every writer holds an exclusive lock (flock) on .lock for
as long as it writes, which the operating system releases when the process ends, however it
ends. Readers never take it.

The package is split by job: files.py (atomic writes), layout.py (the names of a run's files),
lock.py (the writer lock), paths.py (checks on given paths), format.py (each file written
and read back), state.py (run names and run states). Every name is imported here, so that
callers write `rundir.<name>` whichever part defines it.
"""

from harness.rundir.files import (RunDirError, WriteFailed, TEMPORARY_GLOB, temporary_path,
                                  remove_leftovers, write_atomic, write_json, write_csv, write_npz,
                                  first_line, read_text)  # noqa: F401
from harness.rundir.layout import (CONFIG_FILE, HISTORY_FILE, METRICS_FILE, POSTERIOR_FILE,
                                   STATE_FILE, CRITIC_FILE, NETWORK_SUFFIX, RUN_FILES,
                                   OPTIONAL_RUN_FILES, RUN_DIRS)  # noqa: F401
from harness.rundir.lock import (LOCK_FILE, LOCK_RETRY_SECONDS, LOCK_RETRY_INTERVAL, RunLocked,
                                 acquire_lock, sign_lock, release_lock, writing, writer_of,
                                 check_not_in_progress)  # noqa: F401
from harness.rundir.paths import (is_run_dir, is_empty, refusals, deepest_existing, check_writable,
                                  check_readable, clear_run)  # noqa: F401
from harness.rundir.format import (PRIOR_IMAGES, UNCHECKED_ON_RESUME, NOT_SETTINGS, CONFIG_KEYS,
                                   FINAL_METRICS, OPTIONAL_METRICS, CRITIC_ELBO, Snapshot,
                                   DataRecord, Run, VALIDATION_COLUMN, Best, write_config,
                                   history_fields, write_history,
                                   write_posterior, write_critic, read_critic, write_state,
                                   write_network, write_metrics, saved_settings, saved_step,
                                   read_state, read_best, changed_settings, read_record_upto, read_record,
                                   read_config, read_metrics, parse_csv, read_history,
                                   history_columns, read_posterior, check_posterior_shapes,
                                   check_complete, read_run, check_networks, final_metrics,
                                   elbo_converged, elbo_text, settings_of)  # noqa: F401
from harness.rundir.state import (RUNS_ROOT, run_name, named_settings, run_dir, NEW, NOT_A_RUN,
                                  UNSAVED, UNFINISHED, FINISHED, IN_PROGRESS, OTHER_SETTINGS,
                                  RunState, run_state, is_unfinished, kept_save)  # noqa: F401
