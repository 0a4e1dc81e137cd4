"""What the report commands (``stats``, ``import-purchases``, ``completeness`` ...) share: the
choices their parsers offer. They mirror reports.SCOPES and ledger.MAPPINGS (tests check)."""

from __future__ import annotations

SCOPE_CHOICES = ("children", "subtree")
MAPPING_CHOICES = ("ygh", "p832", "gdg", "dxb", "generic")
