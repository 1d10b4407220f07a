"""Superset, natively: its own venv (`venv`), the server under `CASCADE_HOME/superset` (`server`), and
the dashboards-as-code bundle in `dashboards/superset/` (`bundle`)."""
