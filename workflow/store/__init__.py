"""The SQL of the use cases: tables, the unit of work, aggregates, migrations."""
