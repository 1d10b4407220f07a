"""The Cascade API (FastAPI + JWT), the hub and the pipeline-runs UI: `create_app()`, `serve()`."""

API_PORT = 8000  # `cascade api` / `cascade hub` default port
