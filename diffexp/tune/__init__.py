"""Measured auto-tuning: search the config groups for the fastest configuration that fits a VRAM (or host) budget
and passes the correctness review; every trial a real run in a fresh process (docs/tune.md).

    config     the tuner's own config and its spaces (conf/tune/*.yaml)
    space      Optuna suggestions → run overrides; the reference point; simplicity
    trial      one trial process (python -m diffexp.tune.trial) and its supervision
    gate       budgets (measured peaks) and the review: what may win
    search     the loop: reference, anchors, ask/tell, probe and prune, full repeats
    winner     the verdict against the noise, gains over the anchors, the command lines
    anchors    the guide's recipe and SGLang's auto placement (auto_mode) as trials
    record     tune.json, the trials table and chart; MLflow parent and children
"""
