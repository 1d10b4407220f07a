"""Monitoring: Prometheus metrics of the pipeline and the lake (`collector`), the exporter that serves
them (`exporter`, also mountable in the API), the API's request metrics (`api_metrics`), and the
native Prometheus launcher behind `cascade monitor up|down|status` (`prometheus`)."""
