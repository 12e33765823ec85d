"""TAXII 2.1 on every node: the red-teaming repository as one collection (docs/design/0029).

Endpoints (TAXII 2.1 OS, 10 Jun 2021)::

    GET  /taxii2/                                        discovery
    GET  /taxii2/redteam/                                the API root
    GET  /taxii2/redteam/collections/[{id}/]             the collection
    GET  /taxii2/redteam/collections/{id}/objects/       objects (filters, pages)
    POST /taxii2/redteam/collections/{id}/objects/       a researcher's report (202, status)
    GET  /taxii2/redteam/collections/{id}/objects/{oid}/ [versions/]
    DEL  /taxii2/redteam/collections/{id}/objects/{oid}/ 403: nothing is ever deleted
    GET  /taxii2/redteam/collections/{id}/manifest/
    GET  /taxii2/redteam/status/{id}/                    a POST's status, to its poster

Authentication is the node's API tokens, as ``Bearer`` or HTTP Basic (the principal id
and the token; taxii2-client sends Basic); without credentials the caller is the public.
What a caller reads is what ``custodes.redteam.tlp.can_read`` allows, object by object
(``custodes.redteam.taxii``). Every error under ``/taxii2/`` is TAXII's error shape,
with ``error_id`` the request id of the node's logs.
"""

from __future__ import annotations

import base64
import binascii
import logging
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import replace
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.routing import Match

from custodes.api.bodies import body_gate, read_body
from custodes.api.deps import get_node
from custodes.api.logs import REQUEST_ID
from custodes.errors import AuthError, BadRequest, CustodesError, NotFound
from custodes.node import Node
from custodes.redteam import taxii
from custodes.redteam.taxii import COLLECTION_ID, STIX_MEDIA_TYPE, Page, TaxiiQuery
from custodes.redteam.tlp import Reader
from custodes.redteam.validation import validate_objects
from custodes.registry.principals import Principal
from custodes.store.db import read_tx, write_tx

__all__ = ["MAX_CONTENT_LENGTH", "TAXII_MEDIA_TYPE", "router"]

log = logging.getLogger("custodes.api")

TAXII_MEDIA_TYPE = "application/taxii+json;version=2.1"
MAX_CONTENT_LENGTH = 2 * 1024 * 1024
ROOT = "/taxii2/redteam"
COLLECTION = f"{ROOT}/collections/{{collection_id}}"
WRITERS = ("researcher", "auditor")
_ANY = "/taxii2/{rest:path}"
_CHALLENGE = {"WWW-Authenticate": 'Basic realm="custodes", Bearer'}
_SPEC = "https://docs.oasis-open.org/cti/taxii/v2.1/os/taxii-v2.1-os.html"
_TITLES = {
    400: "Bad request",
    401: "Unauthenticated",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    413: "Request too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
}


# -- errors in TAXII's shape -----------------------------------------------------------------
def taxii_error(exc: CustodesError, headers: dict[str, str] | None = None) -> Response:
    body = {
        "title": _TITLES.get(exc.status, "Server error"),
        "description": exc.message,
        "error_id": REQUEST_ID.get() or uuid.uuid4().hex,
        "error_code": exc.code,
        "http_status": str(exc.status),
        "external_details": _SPEC,
        "details": exc.detail,
    }
    extra = dict(headers or {})
    if exc.status == 401:
        extra.update(_CHALLENGE)
    if getattr(exc, "close_connection", False):
        extra["Connection"] = "close"
    return _taxii(orjson.dumps(body), exc.status, extra)


def _translated(exc: Exception) -> Response:
    if isinstance(exc, CustodesError):
        return taxii_error(exc)
    if isinstance(exc, HTTPException):
        error = CustodesError(str(exc.detail), code="http_error", status=exc.status_code)
        return taxii_error(error, dict(exc.headers or {}))
    if isinstance(exc, RequestValidationError):
        return taxii_error(BadRequest(f"invalid request: {exc.errors()}", code="bad_request"))
    log.exception("unhandled error on a TAXII endpoint", exc_info=exc)
    return taxii_error(CustodesError("the node hit an internal error; it has been logged"))


# -- negotiation ------------------------------------------------------------------------------
def _media(value: str) -> tuple[str, dict[str, str]]:
    kind, *params = (p.strip() for p in value.split(";"))
    named = dict(p.partition("=")[::2] for p in params if p)
    return kind.lower(), {k.strip().lower(): v.strip() for k, v in named.items()}


def _taxii_media(value: str) -> bool:
    kind, params = _media(value)
    return kind == "application/taxii+json" and params.get("version", "2.1") == "2.1"


def _acceptable(value: str) -> bool:
    return _media(value)[0] in ("*/*", "application/*") or _taxii_media(value)


def _check_accept(request: Request) -> None:
    accept = request.headers.get("accept", "").strip()
    ranges = [r for r in accept.split(",") if r.strip()]
    if not ranges or any(_acceptable(r) for r in ranges):
        return
    raise CustodesError(
        f"this server answers {TAXII_MEDIA_TYPE}; send it in Accept (not {accept!r})",
        code="not_acceptable",
        status=406,
    )


class TaxiiRoute(APIRoute):
    """A TAXII route: Accept checked first, every error in TAXII's shape."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                _check_accept(request)
                return await handler(request)
            except Exception as exc:  # each becomes TAXII's error shape
                return _translated(exc)

        return route


router = APIRouter(route_class=TaxiiRoute, include_in_schema=False)


def _taxii(body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(body, status_code=status, media_type=TAXII_MEDIA_TYPE, headers=headers)


def _json(value: Any, status: int = 200) -> Response:
    return _taxii(orjson.dumps(value), status)


# -- the caller -------------------------------------------------------------------------------
def _basic(value: str) -> tuple[str, str]:
    """Basic's user and password. A principal id has a colon (``regulator:gb``) and a
    token never does, so the password is what follows the last colon."""
    try:
        user, sep, password = base64.b64decode(value, validate=True).decode().rpartition(":")
    except (binascii.Error, UnicodeDecodeError):
        user, sep, password = "", "", ""
    if not sep or not password:
        raise AuthError("HTTP Basic credentials are <principal id>:<API token>", code="bad_token")
    return user, password


def _principal(request: Request) -> Principal | None:
    """The caller: a principal by Bearer or Basic token, or None for the public."""
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    user = None
    if scheme.lower() == "basic":
        user, token = _basic(value.strip())
    elif scheme.lower() == "bearer" and value.strip():
        token = value.strip()
    else:
        raise AuthError("use 'Authorization: Bearer <API token>' or HTTP Basic", code="bad_token")
    principal = get_node(request).tokens.authenticate(token)
    if user is not None and user != principal.id:
        raise AuthError("the Basic user name is not the token's principal", code="bad_token")
    return principal


def _reader(request: Request) -> Reader:
    return Reader.of(_principal(request))


def _collection(collection_id: str) -> None:
    if collection_id != COLLECTION_ID:
        raise NotFound(f"no collection {collection_id}; this root has {COLLECTION_ID}")


def _pager(node: Node) -> taxii.Pager:
    return taxii.Pager.for_node(node.entry_signer.seed())


def _page(request: Request, query: TaxiiQuery, endpoint: str, objects: bool = True) -> Page:
    reader, node = _reader(request), get_node(request)
    with read_tx(node.engine) as conn:
        return taxii.read_page(
            conn, query, reader, _pager(node), endpoint=endpoint, objects=objects
        )


def _paged(page: Page, key: str, values: list[bytes]) -> Response:
    """An envelope (or versions) page with its X-TAXII-Date-Added headers."""
    if not page.items and not page.more:
        return _taxii(b"{}")
    head = {"more": page.more} | ({"next": page.next} if page.next else {})
    body = orjson.dumps(head)[:-1] + b',"%s":[' % key.encode() + b",".join(values) + b"]}"
    span = page.date_added_range
    if span is None:
        return _taxii(body)
    headers = {"X-TAXII-Date-Added-First": span[0], "X-TAXII-Date-Added-Last": span[1]}
    return _taxii(body, headers=headers)


def _query(request: Request, endpoint: str) -> TaxiiQuery:
    return taxii.parse_query(endpoint, request.query_params.multi_items())


# -- discovery, root, collections ---------------------------------------------------------
def _collection_resource(principal: Principal | None) -> dict[str, Any]:
    return {
        "id": COLLECTION_ID,
        "title": "Red-teaming repository",
        "description": "Jailbreaks and vulnerabilities disclosed across the alliance, "
        "with their probes and each affected agent's status, under TLP 2.0.",
        "can_read": True,  # the public reads TLP:CLEAR
        "can_write": principal is not None and principal.role in WRITERS,
        "media_types": [STIX_MEDIA_TYPE],
    }


@router.get("/taxii2/")
def discovery(request: Request) -> Response:
    root = f"{str(request.base_url).rstrip('/')}{ROOT}/"
    node = get_node(request)
    return _json(
        {
            "title": f"Custodes {node.settings.jurisdiction} node",
            "description": "TAXII 2.1 for the alliance's red-teaming repository",
            "default": root,
            "api_roots": [root],
        }
    )


@router.get(f"{ROOT}/")
def api_root(request: Request) -> Response:
    return _json(
        {
            "title": "Red-teaming repository",
            "description": "Disclosures as STIX 2.1 under TLP 2.0 (docs/design/0029)",
            "versions": [TAXII_MEDIA_TYPE],
            "max_content_length": MAX_CONTENT_LENGTH,
        }
    )


@router.get(f"{ROOT}/collections/")
def collections(request: Request) -> Response:
    return _json({"collections": [_collection_resource(_principal(request))]})


@router.get(f"{COLLECTION}/")
def collection(request: Request, collection_id: str) -> Response:
    _collection(collection_id)
    return _json(_collection_resource(_principal(request)))


# -- objects --------------------------------------------------------------------------------
@router.get(f"{COLLECTION}/objects/")
def get_objects(request: Request, collection_id: str) -> Response:
    _collection(collection_id)
    page = _page(request, _query(request, "objects"), "objects")
    return _paged(page, "objects", [i.raw.encode() for i in page.items if i.raw])


@router.get(f"{COLLECTION}/manifest/")
def get_manifest(request: Request, collection_id: str) -> Response:
    _collection(collection_id)
    page = _page(request, _query(request, "manifest"), "manifest", objects=False)
    return _paged(page, "objects", [orjson.dumps(i.manifest_record()) for i in page.items])


def _one(request: Request, object_id: str, endpoint: str, objects: bool) -> Page:
    query = _query(request, endpoint)
    filters = replace(query.filters, ids=(object_id,))
    page = _page(request, TaxiiQuery(filters, query.limit, query.next), endpoint, objects)
    if not page.items:
        raise NotFound(f"no object {object_id} that you may read matches this request")
    return page


@router.get(f"{COLLECTION}/objects/{{object_id}}/")
def get_object(request: Request, collection_id: str, object_id: str) -> Response:
    _collection(collection_id)
    page = _one(request, object_id, "object", objects=True)
    return _paged(page, "objects", [i.raw.encode() for i in page.items if i.raw])


@router.get(f"{COLLECTION}/objects/{{object_id}}/versions/")
def get_versions(request: Request, collection_id: str, object_id: str) -> Response:
    _collection(collection_id)
    page = _one(request, object_id, "versions", objects=False)
    return _paged(page, "versions", [orjson.dumps(i.modified) for i in page.items])


@router.delete(f"{COLLECTION}/objects/{{object_id}}/")
def delete_object(request: Request, collection_id: str, object_id: str) -> Response:
    """Never: the repository is tamper-evident (403 for what the caller may read, else 404)."""
    _collection(collection_id)
    _one(request, object_id, "object", objects=False)
    raise AuthError(
        "nothing is deleted from the red-teaming repository: its history is logged; "
        "a disclosure changes by a new version (relabel, status, summary)",
        code="delete_forbidden",
        status=403,
    )


# -- POST: a researcher's report --------------------------------------------------------------
def _check_content_type(request: Request) -> None:
    sent = request.headers.get("content-type", "")
    if not _taxii_media(sent):
        raise CustodesError(
            f"send the envelope as Content-Type: {TAXII_MEDIA_TYPE} (not {sent!r})",
            code="unsupported_media_type",
            status=415,
        )


def _writer(request: Request) -> Principal:
    principal = _principal(request)
    if principal is None:
        raise AuthError("adding objects needs a researcher's or auditor's API token")
    if principal.role not in WRITERS:
        raise AuthError(
            f"only researchers and auditors add objects; {principal.id} is a {principal.role}",
            code="forbidden",
            status=403,
        )
    return principal


def _envelope_objects(raw: bytes) -> list[dict[str, Any]]:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the body is not JSON: {exc}", code="malformed_json") from None
    objects = body.get("objects") if isinstance(body, dict) else None
    if (
        not isinstance(objects, list)
        or not objects
        or not all(isinstance(o, dict) for o in objects)
    ):
        raise BadRequest(
            'the body is a TAXII envelope: {"objects": [<STIX objects>]}, with at least one',
            code="invalid_envelope",
            status=422,
        )
    invalid = validate_objects(objects)
    if invalid:
        raise BadRequest(
            f"{len(invalid)} object(s) are not valid STIX 2.1; nothing was added",
            code="invalid_stix",
            status=422,
            detail={"invalid": invalid},
        )
    return objects


def _version(obj: dict[str, Any]) -> str:
    return str(obj.get("modified") or obj.get("created") or "")


def _store_status(
    node: Node, principal: Principal, objects: list[dict[str, Any]]
) -> dict[str, Any]:
    now = time.time()
    successes = [(str(o.get("id")), _version(o)) for o in objects]
    status = taxii.status_resource(str(uuid.uuid4()), requested_at=now, successes=successes)
    with write_tx(node.engine) as conn:
        taxii.save_status(conn, status, taxii.caller_key(Reader.of(principal)), now)
    return status


@router.post(f"{COLLECTION}/objects/")
async def add_objects(request: Request, collection_id: str) -> Response:
    """A researcher's (or auditor's) disclosure, as a STIX envelope: checked, then
    logged as a report (``RedteamService.intake``); 202 with its complete status."""
    _collection(collection_id)
    _check_content_type(request)
    principal = await run_in_threadpool(_writer, request)
    raw = await read_body(request, MAX_CONTENT_LENGTH)
    objects = await body_gate(request).run(_envelope_objects, raw)
    node = get_node(request)
    await run_in_threadpool(node.redteam.intake, principal, objects)
    status = await run_in_threadpool(_store_status, node, principal, objects)
    return _json(status, 202)


@router.get(f"{ROOT}/status/{{status_id}}/")
def get_status(request: Request, status_id: str) -> Response:
    principal = _principal(request)
    key = taxii.caller_key(Reader.of(principal))
    with read_tx(get_node(request).engine) as conn:
        status = None if principal is None else taxii.load_status(conn, status_id, key)
    if status is None:
        raise NotFound(f"no status {status_id} of yours; statuses are kept for their poster")
    return _json(status)


# -- anything else under /taxii2/ ------------------------------------------------------------
def _allowed(request: Request) -> list[str]:
    """The methods TAXII routes allow at this path (none: the path is unknown)."""
    methods: set[str] = set()
    for route in router.routes:
        ours = isinstance(route, APIRoute) and route.path != _ANY
        if ours and route.matches(request.scope)[0] is Match.PARTIAL:
            methods |= getattr(route, "methods", None) or set()
    return sorted(methods)


@router.api_route(_ANY, methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
def unknown(request: Request, rest: str) -> Response:
    allowed = _allowed(request)
    if allowed:
        message = f"{request.method} is not allowed here"
        raise HTTPException(405, message, {"Allow": ", ".join(allowed)})
    hint = " (TAXII paths end in '/')" if not rest.endswith("/") else ""
    raise NotFound(f"no TAXII resource at {request.url.path}{hint}")
