"""The names of the files and folders a run directory holds (format.py says what is in each)."""

CONFIG_FILE = "config.json"
HISTORY_FILE = "history.csv"
METRICS_FILE = "metrics.json"
POSTERIOR_FILE = "posterior.npz"
STATE_FILE = "state.npz"
CRITIC_FILE = "critic.npz"
NETWORK_SUFFIX = ".keras"
RUN_FILES = (CONFIG_FILE, HISTORY_FILE, METRICS_FILE, POSTERIOR_FILE, STATE_FILE)
OPTIONAL_RUN_FILES = (CRITIC_FILE,)      # written by some runs only (AVBs where D = 2)
RUN_DIRS = ("tensorboard",)
