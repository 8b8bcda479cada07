"""Tables, markdown and charts of recorded runs (sweep summaries, the suite table), used by sweeps, compare and
report; they read runs through diffexp.tracking and never import a consumer."""
