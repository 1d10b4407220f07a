"""The Cascade API (FastAPI + JWT), the hub and the pipeline-runs UI: `create_app()`, `serve()`."""
