"""Publishing marts to PostgreSQL: the database (`postgres`) and the publisher (`publisher`)."""
