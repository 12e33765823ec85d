"""The red-teaming repository: disclosures as STIX 2.1 under TLP 2.0, a signed lifecycle
on the log, served over TAXII 2.1 and shared across the alliance (DESIGN.md 4.6,
docs/design/0029)."""

__all__: list[str] = []
