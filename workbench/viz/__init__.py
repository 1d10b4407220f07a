"""Glucose dashboards and reports: mart access, period summaries, plotly figures, Voila and HTML export.

```python
from workbench.viz.data import GlucoseData
from workbench.viz.view import load_view
view = load_view(ref="main", patient="p001", days=14)
view.agp_figure            # plotly Figure (offline)
```
"""
