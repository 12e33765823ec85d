"""Federation: the alliance roster and how member nodes talk to each other over HTTP."""

__all__: list[str] = []
