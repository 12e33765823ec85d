"""The regulators' dashboard: server-rendered pages under ``/ui/`` (docs/design/0031).

An adapter, like the HTTP API: pages read the node's services with the signed-in
principal as the reader, so a page shows exactly what the API would answer that
principal. Jinja2 templates, plain forms, no JavaScript build; every asset is in the
package (``static/``). The one script, ``static/sign.js``, signs a kill order in the
browser with the regulator's own key (WebCrypto Ed25519); without it, the page takes an
order signed by ``custodes kill prepare``.
"""

__all__: list[str] = []
