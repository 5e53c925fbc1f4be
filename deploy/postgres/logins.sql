-- Lets the services' roles (made, without a login, by sql/0005_roles.sql) log in with the
-- passwords compose passes from .env. Run by compose's one-shot `db-logins` job after
-- `migrate`, as the administrator (POSTGRES_USER), on every `docker compose up`: a
-- password changed in .env takes effect at the next start.
--
--   psql -X -f logins.sql   with INGESTER_PASSWORD, COLLECTOR_PASSWORD, EXPORTER_PASSWORD set
--
-- The passwords are read from the environment by psql itself (\getenv, psql 15 or later:
-- not on a command line, where `ps` would show them), sent once and stored hashed (password_encryption,
-- SCRAM-SHA-256 by default). Neither this session's statements nor its errors go to the
-- server log (the two SETs below need the superuser that runs it), and psql prints an
-- error without the statement that caused it.
\set ON_ERROR_STOP on
\set ECHO none
\set VERBOSITY terse
SET log_statement = 'none';
SET log_min_error_statement = 'panic';

\getenv ingester_password INGESTER_PASSWORD
\getenv collector_password COLLECTOR_PASSWORD
\getenv exporter_password EXPORTER_PASSWORD

ALTER ROLE ecomstream_ingester WITH LOGIN PASSWORD :'ingester_password';
ALTER ROLE ecomstream_collector WITH LOGIN PASSWORD :'collector_password';
ALTER ROLE ecomstream_exporter WITH LOGIN PASSWORD :'exporter_password';
