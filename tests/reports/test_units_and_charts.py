"""A sweep's report from a real MLflow store: memory in GiB, said in the header; plotly.js inlined once per page."""

from __future__ import annotations

import json

import plotly.offline

from diffexp import names
from diffexp.reports.charts import CHARTS_HTML
from diffexp.reports.sweep_report import write_sweep_report
from diffexp.results import RunResult
from diffexp.tracking.records import find_parent
from diffexp.tracking.store import client_for
from diffexp.tracking.writer import RunRecorder


def _sweep(uri: str) -> str:
    tags = {names.SWEEP: "units", names.SWEEP_ROLE: "parent", names.SWEEP_KEYS: json.dumps(["compile"])}
    with RunRecorder(uri, "units", "units-sweep", {}, tags) as parent:
        pass
    for point, (compile_, denoise) in enumerate([("off", 2.0), ("on", 1.5), ("max", 1.7)]):
        point_tags = {
            names.SWEEP_ROLE: "point",
            names.SWEEP_POINT: str(point),
            names.SWEEP_OVERRIDES: json.dumps([f"compile={compile_}"]),
        }
        with RunRecorder(uri, "units", f"p{point}", {"model.name": "m"}, point_tags, parent.run_id) as rec:
            result = RunResult(denoise_s=denoise, e2e_s=denoise + 1, peak_mem_gib=30.25, denoise_step_ms=[100.0] * 4)
            rec.log_result(result)
    return parent.run_id


def test_table_headers_name_gib_and_the_charts_page_carries_plotly_once(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = client_for(uri)
    report = write_sweep_report(client, find_parent(client, _sweep(uri)), tmp_path / "out")

    markdown = (tmp_path / "out" / "summary.md").read_text()
    header = markdown.splitlines()[0]
    assert "Peak Mem (GiB)" in header and "(GB)" not in header
    assert "| 30.25 |" in markdown
    assert (tmp_path / "out" / "summary.csv").read_text().splitlines()[0].count("Peak Mem (GiB)") == 1

    page = (tmp_path / "out" / "charts" / CHARTS_HTML).read_text()
    bundle = plotly.offline.get_plotlyjs()
    assert page.count(bundle[:2000]) == 1  # the library once, not once per chart
    assert page.count('class="plotly-graph-div"') == 3
    # Three charts cost their figures' JSON beyond the one bundle, not another 4.8 MB each.
    assert len(page.encode()) < len(bundle.encode()) + 200_000
    assert len(report.points) == 3
