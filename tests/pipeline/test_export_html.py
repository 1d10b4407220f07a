"""The HTML copy of an executed notebook opens offline: nothing is loaded from a CDN (require.js,
MathJax, Mermaid, widget managers), and plotly charts carry plotly.js inline."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat

from workbench.pipeline.runner import export_html


def test_exported_notebook_html_loads_nothing_from_the_network(tmp_path: Path) -> None:
    import plotly.graph_objects as go

    figure = go.Figure(go.Scatter(x=[1, 2, 3], y=[100, 140, 120]))
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Audit\nmath $x^2$ stays text"),
        nbformat.v4.new_code_cell(
            "fig",
            outputs=[
                nbformat.v4.new_output("display_data", data={"application/vnd.plotly.v1+json": figure.to_plotly_json()})
            ],
        ),
    ]
    path = tmp_path / "60_audit.ipynb"
    nbformat.write(nb, path)
    html = export_html(path).read_text()
    tags = re.findall(r"<(?:script|link|img|iframe)\b[^>]*>", html)
    remote = [t for t in tags if re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", t)]
    assert tags and remote == [], remote
    assert "cdnjs" not in html  # no dynamic import( ) of Mermaid or MathJax either
    assert "Plotly.newPlot" in html or "Plotly.react" in html  # the chart is drawn from inlined plotly.js
    assert "Audit" in html
