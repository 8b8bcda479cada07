"""Measurement: device-synchronised clocks (`clocks`), statistics of repeated trials (`stats`), the GPU's state
during a measured window (`gpu`), and repeats / replicates folded into one RunResult (`aggregate`).

Nothing is imported here: `stats` and `aggregate` serve runs (SGLang replicates, compare) that never load torch."""
