"""sweep.compare_url points at the store in use: a server's own UI, or how to start one on a local store."""

from __future__ import annotations

from diffexp.sweeps.parent import compare_view_url


def test_http_store_links_to_that_server():
    url = compare_view_url("http://mlflow.lab:8080/", "3", ["a", "b"])
    assert url == 'http://mlflow.lab:8080/#/compare-runs?runs=["a","b"]&experiments=["3"]'


def test_local_store_says_how_to_open_it_with_the_port_it_names(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    text = compare_view_url(uri, "1", ["a"])
    assert text.startswith(f"run `mlflow ui --backend-store-uri {uri} --port 5000`, then open http://127.0.0.1:5000/")
    assert text.endswith('/#/compare-runs?runs=["a"]&experiments=["1"]')
