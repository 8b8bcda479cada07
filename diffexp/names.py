"""Names that cross module borders on recorded runs: tags, params and metrics written by one module and read by
others (engines, tracking, consumers): a foundation module, so every layer can use it. Defined once here; MLflow's
own names (the parent-run tag) come from MLflow (`tracking.writer.PARENT_TAG`)."""

# Metrics.
STEP_SERIES = "denoise_step_ms_series"  # one MLflow metric step per denoise step

# Params: the settings the engine really ran (SGLang rewrites what it is given), beside the requested config.
RESOLVED_PREFIX = "resolved."
RESOLVED_MISMATCH = "resolved.mismatch"  # what the engine ran that contradicts the request
RESOLVED_AUTO_TUNED = "resolved.auto_tuned_baseline"  # the engine chose the placement itself
RESOLVED_UNKNOWN = "resolved.unknown"  # the log did not say what ran

# Tags every run gets.
ENGINE = "engine"
MODEL = "model"
WEIGHTS = "weights"
WEIGHTS_RANDOM = "weights.random"
WARMUP_EXCLUDED = "warmup_excluded"
PROFILED = "profiled"
VALID = "valid"
INVALID_REASON = "invalid_reason"
ERROR = "error"
# The process that owns a RUNNING run: a run whose process is gone is reconciled (tracking.reconcile).
PID = "diffexp.pid"
PID_START = "diffexp.pid_start"  # the process's start time: a reused pid is not the same process
HOST = "host"
# What the saved outputs really are (WxH or WxHxF), and what differs from the request, if anything.
OUTPUT_SHAPE = "output.shape"
OUTPUT_SHAPE_MISMATCH = "output.shape_mismatch"
# On figures kept before a run's profile read and floor (metrics.json): why they may lack those; absent once the
# run finished.
INCOMPLETE = "incomplete"
# The prompt is longer than an MLflow param holds: prompt.txt (an artifact) has it whole.
PROMPT_TRUNCATED = "prompt.truncated_in_params"
INGESTED = "ingested"
UPLOADED_FROM = "uploaded_from"
# A hash of what an upload logged (the folder's config and figures): the same folder is not logged twice.
UPLOAD_KEY = "upload.key"

# Sweeps.
SWEEP = "sweep"
SWEEP_ROLE = "sweep.role"  # parent | point
SWEEP_POINT = "sweep.point"  # the Hydra job number, 0-based, in launch order
SWEEP_BASELINE = "sweep.baseline"  # "true" on the point the others are judged against
SWEEP_OVERRIDES = "sweep.overrides"  # JSON list of the point's swept overrides, e.g. ["model=tiny_wan", "compile=on"]
SWEEP_KEYS = "sweep.keys"  # on the parent: JSON list of the swept keys, in sweep order
SWEEP_DIR = "sweep.dir"

# Tunings (diffexp.tune): the parent run of a tuning, read back by `report tune` and the grid comparison.
TUNE_ROLE = "tune"  # the parent's diffexp.role
TUNE_SEARCH = "tune.search"  # param: tpe | grid
TUNE_TPE, TUNE_GRID = "tpe", "grid"  # its values: Optuna's TPE, or every point of the space once
TUNE_RUN_OVERRIDES = "tune.run_overrides"  # param: JSON list of the overrides every trial got
TUNE_STATE = "tune.state"  # on each trial stage's child: feasible | infeasible | pruned | promoted
TUNE_FEASIBLE = "feasible"  # the state of a trial that may win: it ran, fits the budget and passed the review
TUNE_WINNER = "tune.winner"  # the winning trial's number, or "None"
TUNE_INTERRUPTED = "tune.interrupted"
TUNE_STOPPED = "tune.stopped"  # why the search stopped (a budget, every point ran)
TUNE_TRIALS = "tune.trials"  # how many trials ran
TUNE_SPACE_KEY = "tune.space_key"  # a hash of the searched space and base overrides: equal for the same points
TUNE_SPACE_SIZE = "tune.space_size"  # its distinct points ("None": a continuous range)
TUNE_VISITED = "tune.visited"  # the distinct points that ran
TUNE_EXHAUSTIVE = "tune.exhaustive"  # "true" when every point of the space ran
TUNE_WALL_S = "tune.wall_s"  # metric: the tuning's wall time, every session of a resumed one together

# The correctness review.
CORRECTNESS = "correctness"

# The compute floor (measure.floor=true): what it was timed on (a GPU's name, or "cpu (N threads)"), and why
# a run that asked for it has none.
FLOOR_DEVICE = "floor.device"
FLOOR_PROBLEM = "floor.problem"

# Experiments: MLflow's UI opens an experiment on the view its kind names (runs, not the GenAI overview).
EXPERIMENT_KIND = "mlflow.experimentKind"
EXPERIMENT_KIND_RUNS = "custom_model_development"
