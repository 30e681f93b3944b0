-- The Parallel Execution Engine's caches (output cache, context snapshots, learned durations)
-- in a database of their own beside Temporal's, with a role that owns only it.
-- docker-compose.yml mounts this into /docker-entrypoint-initdb.d/: it runs once, when the
-- PostgreSQL data volume is created. Workers reach it as PEE_CACHE_URL (the tables are created
-- on first use). Change the password here and in PEE_CACHE_URL together.
CREATE ROLE pee LOGIN PASSWORD 'pee';
CREATE DATABASE pee OWNER pee;
