"""The documentation site: pages generated from the code (CLI, metric definitions) and the mkdocs build."""
