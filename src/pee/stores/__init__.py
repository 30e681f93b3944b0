"""The stores every worker, client and codec server of a deployment share: one database for the
caches (pee.stores.sql; SQLite by default, PostgreSQL with PEE_CACHE_URL) and one blob store for
large payloads (pee.stores.blobs and pee.stores.payloads; a local folder by default, S3 with
PEE_ARTIFACT_URL). Below the activities: they, the runtime and the CLI open them."""
