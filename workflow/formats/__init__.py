"""Bytes <-> rows, no database: ledger parsing and the export writers."""
