"""Audits: accreditation, the common scheme, attestations, mutual recognition, gates.

See DESIGN.md 4.4 and docs/design/0028-mutual-recognition.md.
"""

__all__: list[str] = []
