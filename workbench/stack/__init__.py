"""The stack profile's services (versitygw S3, PostgreSQL, Nessie, Trino) as native processes."""
