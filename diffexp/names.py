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
# The prompt is longer than an MLflow param holds: prompt.txt (an artifact) has it whole.
PROMPT_TRUNCATED = "prompt.truncated_in_params"
INGESTED = "ingested"
UPLOADED_FROM = "uploaded_from"

# Sweeps.
SWEEP = "sweep"
SWEEP_ROLE = "sweep.role"  # parent | point
SWEEP_POINT = "sweep.point"  # the Hydra job number, 0-based, in launch order
SWEEP_BASELINE = "sweep.baseline"  # "true" on the point the others are judged against
SWEEP_OVERRIDES = "sweep.overrides"  # JSON list of the point's swept overrides, e.g. ["model=tiny_wan", "compile=on"]
SWEEP_KEYS = "sweep.keys"  # on the parent: JSON list of the swept keys, in sweep order
SWEEP_DIR = "sweep.dir"

# The correctness review.
CORRECTNESS = "correctness"

# The compute floor (measure.floor=true): what it was timed on (a GPU's name, or "cpu (N threads)"), and why
# a run that asked for it has none.
FLOOR_DEVICE = "floor.device"
FLOOR_PROBLEM = "floor.problem"

# Experiments: MLflow's UI opens an experiment on the view its kind names (runs, not the GenAI overview).
EXPERIMENT_KIND = "mlflow.experimentKind"
EXPERIMENT_KIND_RUNS = "custom_model_development"
