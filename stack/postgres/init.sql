-- Databases of the stack's PostgreSQL: `nessie` (Nessie's JDBC version store) and `cascade`
-- (published marts; created by POSTGRES_DB in Compose). The native launcher creates the same ones.
create database nessie;
