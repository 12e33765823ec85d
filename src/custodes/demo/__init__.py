"""The alliance on one machine: the demo's scenario and its fixtures, out of the product.

* ``run_demo``: GB, FR, DE and CA member nodes on loopback, agents recording signed
  decisions, a kill order, safety benchmarks, witnessing and verification
  (``custodes demo``; ``--serve`` leaves the alliance running to explore).
* ``custodes.demo.weak_model``: a deliberately weak OpenAI-compatible endpoint
  (``python -m custodes.demo.weak_model``).
* ``custodes.demo.fakes``: test doubles for code that embeds the SDK (FakeClock,
  FakeNode).
"""

from custodes.demo.alliance import run_demo

__all__ = ["run_demo"]
