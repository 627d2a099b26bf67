"""PostgreSQL schema and migrations, the ``Sink`` protocol and its asyncpg implementation."""
