"""Forensics: reconstruct an incident across members' logs, prove it, report it.

See docs/design/0030-forensics.md.
"""

__all__: list[str] = []
