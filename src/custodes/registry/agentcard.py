"""A2A AgentCards (A2A v1.0, proto ``lf.a2a.v1``): parse them and check their signatures.

An AgentCard is an agent's self-description (§8). It may carry JWS signatures (§8.4) in
the RFC 7515 JSON serialization with a detached payload: each ``signatures[]`` entry holds
``protected`` (base64url header JSON) and ``signature``; the payload is the card's canonical
form, which the verifier rebuilds. Errors::

    AgentCardError (custodes.errors.BadRequest)
      bad_agent_card            422  not JSON, over 256 KiB, or not the AgentCard shape
      bad_agent_card_signature  422  a signature is malformed, uses a refused alg, or
                                     fails under the trusted key its ``kid`` names
      bad_agent_card_key        422  a trusted JWK or a signing key cannot be used
      untrusted_agent_card      403  signed, but by no key in ``trusted_keys``

Canonical form (§8.4.1), as read for a card received as JSON
-----------------------------------------------------------
The spec asks for protobuf field presence to be respected before RFC 8785. A JSON card
has no protobuf message behind it, so the rule is applied to the members the JSON
carries, using the declarations in ``a2a.proto``:

* ``signatures`` is removed. Absent or ``null`` members stay absent; nothing is added.
* A REQUIRED field is kept whenever present, even at its default (``"skills": []``).
* A field with presence (``optional`` scalars such as ``capabilities.streaming``,
  singular message fields, oneof members) is kept whenever present, even if ``false``.
* Any other field is dropped at its proto3 default (``""``, ``false``, ``0``, ``[]``,
  ``{}``): ``"tenant": ""``, ``"extensions": []``, ``"required": false``.
* Elements of repeated fields and values of maps are values, not fields: all kept.
* Free-form content (``google.protobuf.Struct``: extension ``params``, header values)
  and members ``a2a.proto`` does not define (card extensions) are kept as served.

This reproduces the spec's worked example and the payload the a2a-python SDK (1.1.x)
signs, whether or not the card is served with its default values spelled out. Where that
SDK drops more than the spec says (empties inside ``params``, an empty scope list, an
empty REQUIRED string), its signatures do not verify here; the tests pin each case.

Trust
-----
Keys come only from the caller (``trusted_keys``, by ``kid``); ``jku``, ``jwk`` and
``x5u`` headers are never fetched or used, since a card naming its own key proves
nothing. Expired or revoked keys must be left out of ``trusted_keys`` (§8.4.3). Weak
Ed25519 keys (small order, torsion, non-canonical) are refused, and EdDSA signatures are
verified strictly (``custodes.ledger.ed25519``).
"""

from __future__ import annotations

import base64
import copy
import json
import re
from collections.abc import Callable, Mapping
from typing import Annotated, Any, NamedTuple, TypeAlias

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, StrictBool, ValidationError
from pydantic.alias_generators import to_camel

from custodes.errors import BadRequest
from custodes.ledger.canonical import canonical_dumps
from custodes.ledger.ed25519 import public_key_problem, verify_strict
from custodes.ledger.errors import EnvelopeError

__all__ = [
    "ALGORITHMS",
    "CORE_BINDINGS",
    "MAX_CARD_BYTES",
    "AgentCapabilities",
    "AgentCard",
    "AgentCardError",
    "AgentCardSignature",
    "AgentExtension",
    "AgentInterface",
    "AgentProvider",
    "AgentSkill",
    "PrivateKey",
    "PublicKey",
    "jwk_from_public_key",
    "parse_agent_card",
    "public_key_from_jwk",
    "registry_fields",
    "sign_agent_card",
    "signing_input",
    "verify_card_signatures",
]

MAX_CARD_BYTES = 256 * 1024
ALGORITHMS = frozenset({"ES256", "ES384", "RS256", "PS256", "EdDSA"})
CORE_BINDINGS = frozenset({"JSONRPC", "GRPC", "HTTP+JSON"})
_MIN_RSA_BITS = 2048  # RFC 7518 §3.3
_EC = {"ES256": ("P-256", 32), "ES384": ("P-384", 48)}
_CURVES: dict[str, type[ec.EllipticCurve]] = {"P-256": ec.SECP256R1, "P-384": ec.SECP384R1}
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "ES256": hashes.SHA256,
    "ES384": hashes.SHA384,
    "RS256": hashes.SHA256,
    "PS256": hashes.SHA256,
}
_KTY = {"ES256": "EC", "ES384": "EC", "RS256": "RSA", "PS256": "RSA", "EdDSA": "OKP"}
_PRIVATE_JWK_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})

PublicKey: TypeAlias = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey | rsa.RSAPublicKey
PrivateKey: TypeAlias = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


class AgentCardError(BadRequest):
    """An AgentCard, one of its signatures, or a key for them is unusable."""

    code = "bad_agent_card"
    status = 422


# ---------------------------------------------------------------------------- the model


class _Part(BaseModel):
    # Cards carry extensions, so unknown members are kept (``model_extra``); known ones
    # are typed. Booleans are strict: JSON "true" or 1 is not a capability flag.
    model_config = ConfigDict(frozen=True, extra="allow", alias_generator=to_camel)


_Text = Annotated[str, Field(min_length=1)]
_JsonObject = dict[str, Any]


class AgentInterface(_Part):
    url: _Text
    # An open string in a2a.proto: custom bindings (e.g. "WEBSOCKET") are valid; the core
    # three are in CORE_BINDINGS.
    protocol_binding: _Text
    protocol_version: _Text
    tenant: str | None = None


class AgentProvider(_Part):
    organization: _Text
    url: str


class AgentExtension(_Part):
    uri: str | None = None
    description: str | None = None
    required: StrictBool | None = None
    params: _JsonObject | None = None


class AgentCapabilities(_Part):
    streaming: StrictBool | None = None
    push_notifications: StrictBool | None = None
    extensions: tuple[AgentExtension, ...] | None = None
    extended_agent_card: StrictBool | None = None


class AgentSkill(_Part):
    id: _Text
    name: _Text
    description: str
    tags: tuple[str, ...]
    examples: tuple[str, ...] | None = None
    input_modes: tuple[str, ...] | None = None
    output_modes: tuple[str, ...] | None = None
    security_requirements: tuple[_JsonObject, ...] | None = None


class AgentCardSignature(_Part):
    protected: _Text
    signature: _Text
    header: _JsonObject | None = None


class AgentCard(_Part):
    """A parsed card. ``source_json`` is the JSON it came from, which signatures cover."""

    name: _Text
    description: str
    supported_interfaces: tuple[AgentInterface, ...] = Field(min_length=1)
    provider: AgentProvider | None = None
    version: _Text
    documentation_url: str | None = None
    capabilities: AgentCapabilities
    security_schemes: dict[str, _JsonObject] | None = None
    security_requirements: tuple[_JsonObject, ...] | None = None
    default_input_modes: tuple[str, ...]
    default_output_modes: tuple[str, ...]
    skills: tuple[AgentSkill, ...]
    signatures: tuple[AgentCardSignature, ...] | None = None
    icon_url: str | None = None
    _source: _JsonObject = PrivateAttr(default_factory=dict)

    @property
    def source_json(self) -> _JsonObject:
        """A copy of the card's JSON as received: pass it to ``verify_card_signatures``."""
        return copy.deepcopy(self._source)


def parse_agent_card(data: bytes) -> AgentCard:
    """Parse and validate a card's JSON bytes; anything malformed is a 422 naming the path."""
    if len(data) > MAX_CARD_BYTES:
        raise AgentCardError(
            f"agent card is {len(data)} bytes; the limit is {MAX_CARD_BYTES} (256 KiB)",
            detail={"size": len(data), "limit": MAX_CARD_BYTES},
        )
    return _validate(_load_json(data))


def _load_json(data: bytes) -> Any:
    try:
        return json.loads(
            data.decode("utf-8"), object_pairs_hook=_unique_members, parse_constant=_no_constant
        )
    except UnicodeDecodeError as exc:
        raise AgentCardError(f"agent card is not UTF-8: {exc}") from exc
    except (ValueError, RecursionError) as exc:
        raise AgentCardError(f"agent card is not valid JSON: {exc}") from exc


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # RFC 8259 leaves duplicates to the parser; two readers of one signed card could then
    # see different values (RFC 7515 §5.2 refuses them in headers for the same reason).
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise ValueError(f"duplicate member name {key!r}")
        obj[key] = value
    return obj


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _validate(card_json: Any) -> AgentCard:
    if not isinstance(card_json, dict):
        raise AgentCardError("agent card must be a JSON object")
    source = copy.deepcopy(card_json)  # the card shares nothing with the caller's dict
    try:
        card = AgentCard.model_validate(source)
    except ValidationError as exc:
        problems = [{"path": _path(err["loc"]), "message": err["msg"]} for err in exc.errors()[:10]]
        first = problems[0]
        raise AgentCardError(
            f"agent card is malformed at {first['path']}: {first['message']}"
            + (f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""),
            detail={"errors": problems},
        ) from exc
    card._source = source
    return card


def _path(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text.lstrip(".") or "(card)"


# ------------------------------------------------------------------ the canonical form


class _F(NamedTuple):
    rule: str  # "required", "presence" or "plain" (see the module docstring)
    shape: str  # "value", "values", "message", "messages", "map", "message_map"
    message: str | None = None


def _req(shape: str, message: str | None = None) -> _F:
    return _F("required", shape, message)


def _has(shape: str, message: str | None = None) -> _F:
    return _F("presence", shape, message)


def _plain(shape: str, message: str | None = None) -> _F:
    return _F("plain", shape, message)


_V, _VS, _M, _MS = "value", "values", "message", "messages"
_FLOWS = ("authorizationCode", "clientCredentials", "implicit", "password", "deviceCode")
_SCHEMES = ("apiKey", "httpAuth", "oauth2", "openIdConnect", "mtls")
_DESCRIBED = {"description": _plain(_V)}
# From a2a.proto (lf.a2a.v1). "value" covers google.protobuf.Struct too: kept as served.
_SCHEMA: dict[str, dict[str, _F]] = {
    "AgentCard": {
        "name": _req(_V),
        "description": _req(_V),
        "supportedInterfaces": _req(_MS, "AgentInterface"),
        "provider": _has(_M, "AgentProvider"),
        "version": _req(_V),
        "documentationUrl": _has(_V),
        "capabilities": _req(_M, "AgentCapabilities"),
        "securitySchemes": _plain("message_map", "SecurityScheme"),
        "securityRequirements": _plain(_MS, "SecurityRequirement"),
        "defaultInputModes": _req(_VS),
        "defaultOutputModes": _req(_VS),
        "skills": _req(_MS, "AgentSkill"),
        "iconUrl": _has(_V),
    },
    "AgentInterface": {
        "url": _req(_V),
        "protocolBinding": _req(_V),
        "tenant": _plain(_V),
        "protocolVersion": _req(_V),
    },
    "AgentProvider": {"url": _req(_V), "organization": _req(_V)},
    "AgentCapabilities": {
        "streaming": _has(_V),
        "pushNotifications": _has(_V),
        "extensions": _plain(_MS, "AgentExtension"),
        "extendedAgentCard": _has(_V),
    },
    "AgentExtension": {
        "uri": _plain(_V),
        "description": _plain(_V),
        "required": _plain(_V),
        "params": _has(_V),
    },
    "AgentSkill": {
        "id": _req(_V),
        "name": _req(_V),
        "description": _req(_V),
        "tags": _req(_VS),
        "examples": _plain(_VS),
        "inputModes": _plain(_VS),
        "outputModes": _plain(_VS),
        "securityRequirements": _plain(_MS, "SecurityRequirement"),
    },
    "SecurityRequirement": {"schemes": _plain("message_map", "StringList")},
    "StringList": {"list": _plain(_VS)},
    "SecurityScheme": {f"{s}SecurityScheme": _has(_M, f"{s}SecurityScheme") for s in _SCHEMES},
    "apiKeySecurityScheme": {**_DESCRIBED, "location": _req(_V), "name": _req(_V)},
    "httpAuthSecurityScheme": {**_DESCRIBED, "scheme": _req(_V), "bearerFormat": _plain(_V)},
    "oauth2SecurityScheme": {
        **_DESCRIBED,
        "flows": _req(_M, "OAuthFlows"),
        "oauth2MetadataUrl": _plain(_V),
    },
    "openIdConnectSecurityScheme": {**_DESCRIBED, "openIdConnectUrl": _req(_V)},
    "mtlsSecurityScheme": dict(_DESCRIBED),
    "OAuthFlows": {flow: _has(_M, flow) for flow in _FLOWS},
    "authorizationCode": {
        "authorizationUrl": _req(_V),
        "tokenUrl": _req(_V),
        "refreshUrl": _plain(_V),
        "scopes": _req("map"),
        "pkceRequired": _plain(_V),
    },
    "clientCredentials": {"tokenUrl": _req(_V), "refreshUrl": _plain(_V), "scopes": _req("map")},
    "implicit": {"authorizationUrl": _plain(_V), "refreshUrl": _plain(_V), "scopes": _plain("map")},
    "password": {"tokenUrl": _plain(_V), "refreshUrl": _plain(_V), "scopes": _plain("map")},
    "deviceCode": {
        "deviceAuthorizationUrl": _req(_V),
        "tokenUrl": _req(_V),
        "refreshUrl": _plain(_V),
        "scopes": _req("map"),
    },
}
_DROP = object()


def signing_input(card_json: Mapping[str, Any]) -> bytes:
    """The JWS payload for a card: its §8.4.1 canonical form (see the module docstring).

    RFC 7515 calls ``protected || "." || BASE64URL(payload)`` the signing input; A2A
    signs exactly these bytes as the payload, so the name follows the brief's API.
    """
    body = {key: value for key, value in card_json.items() if key != "signatures"}
    return _canonical_bytes(_canon_message(body, "AgentCard", ""))


def _canonical_bytes(value: Any) -> bytes:
    try:
        return canonical_dumps(value)
    except (EnvelopeError, TypeError, ValueError) as exc:  # orjson: lone surrogates, ...
        message = exc.message if isinstance(exc, EnvelopeError) else str(exc)
        raise AgentCardError(f"agent card has no RFC 8785 form: {message}") from exc


def _canon_message(obj: Any, message: str, path: str) -> dict[str, Any]:
    if not isinstance(obj, Mapping):
        raise _malformed(path, "expected an object")
    fields = _SCHEMA[message]
    out: dict[str, Any] = {}
    for key, value in obj.items():
        spec = fields.get(key)
        if spec is None:
            out[key] = value  # not an a2a.proto field: kept exactly as served
        elif value is not None:
            kept = _canon_field(value, spec, f"{path}.{key}" if path else key)
            if kept is not _DROP:
                out[key] = kept
    return out


def _canon_field(value: Any, spec: _F, path: str) -> Any:
    kept = _canon_value(value, spec, path)
    if spec.rule == "plain" and _is_default(kept):
        return _DROP
    return kept


def _canon_value(value: Any, spec: _F, path: str) -> Any:
    if spec.shape == "value":
        return value
    if spec.shape in ("values", "messages"):
        if not isinstance(value, list):
            raise _malformed(path, "expected an array")
        if spec.shape == "values":
            return value
        return [_canon_message(v, str(spec.message), f"{path}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, Mapping):
        raise _malformed(path, "expected an object")
    if spec.shape == "message":
        return _canon_message(value, str(spec.message), path)
    if spec.shape == "map":
        return dict(value)
    return {k: _canon_message(v, str(spec.message), f"{path}.{k}") for k, v in value.items()}


def _malformed(path: str, problem: str) -> AgentCardError:
    return AgentCardError(f"agent card is malformed at {path or '(card)'}: {problem}")


def _is_default(value: Any) -> bool:
    if value is False or value == "":
        return True
    if isinstance(value, list | dict):
        return not value
    return type(value) in (int, float) and value == 0


# ------------------------------------------------------------------------- verification


def verify_card_signatures(
    card_json: Mapping[str, Any], trusted_keys: Mapping[str, Mapping[str, Any]]
) -> list[str]:
    """The kids whose signatures on the card verify; ``[]`` for an unsigned card.

    A signature by a trusted kid that fails, or any malformed or ``none``/HS* signature,
    raises ``bad_agent_card_signature``. Signatures by unknown kids are skipped; if none
    is by a trusted kid, ``untrusted_agent_card`` (403). Whether an unsigned card is
    acceptable is the caller's decision.
    """
    card = _validate(dict(card_json))
    if not card.signatures:
        return []
    payload = _b64encode(signing_input(card_json))
    verified: list[str] = []
    for index, entry in enumerate(card.signatures):
        header = _protected_header(entry, index)
        kid, alg = header["kid"], header["alg"]
        if kid not in trusted_keys:
            continue
        key = _trusted_key(kid, trusted_keys[kid], alg, index)
        signed = f"{entry.protected}.{payload}".encode("ascii")
        if not _verifies(key, alg, signed, _b64decode(entry.signature, "signature", index)):
            raise _bad_signature(
                f"signature {index} by trusted key {kid!r} does not verify: the card "
                "changed after signing, or was signed over another canonical form",
                index,
            )
        if kid not in verified:
            verified.append(kid)
    if not verified:
        kids = [_protected_header(entry, i)["kid"] for i, entry in enumerate(card.signatures)]
        raise AgentCardError(
            f"none of the card's {len(kids)} signatures is by a trusted key "
            f"(kids: {', '.join(kids)}); register the provider's key to accept it",
            code="untrusted_agent_card",
            status=403,
            detail={"kids": kids},
        )
    return verified


def _bad_signature(message: str, index: int) -> AgentCardError:
    return AgentCardError(message, code="bad_agent_card_signature", detail={"signature": index})


def _protected_header(entry: AgentCardSignature, index: int) -> dict[str, Any]:
    """Decode and check the protected header (RFC 7515 §5.2 steps 2-5, A2A §8.4.2)."""
    raw = _b64decode(entry.protected, "protected header", index)
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_unique_members)
    except (ValueError, RecursionError) as exc:
        message = f"signature {index}: protected header is not JSON: {exc}"
        raise _bad_signature(message, index) from exc
    if not isinstance(header, dict):
        raise _bad_signature(f"signature {index}: protected header is not an object", index)
    alg, kid = header.get("alg"), header.get("kid")
    if not isinstance(alg, str) or not isinstance(kid, str) or not kid:
        raise _bad_signature(f"signature {index}: protected header needs alg and kid", index)
    if alg.lower() == "none" or alg.upper().startswith("HS"):
        raise _bad_signature(
            f"signature {index}: alg {alg!r} is refused; sign with one of "
            f"{', '.join(sorted(ALGORITHMS))}",
            index,
        )
    if "crit" in header:  # RFC 7515 §4.1.11: we implement no extension it could name
        raise _bad_signature(f"signature {index}: critical header extensions unsupported", index)
    shared = set(header) & set(entry.header or {})
    if shared:  # RFC 7515 §7.2.1: the two header sets must be disjoint
        raise _bad_signature(
            f"signature {index}: {', '.join(sorted(shared))} in both headers", index
        )
    return header


def _verifies(key: PublicKey, alg: str, message: bytes, signature: bytes) -> bool:
    try:
        if isinstance(key, ed25519.Ed25519PublicKey):  # strictly: no second forms
            return verify_strict(key.public_bytes_raw(), signature, message)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            size = _EC[alg][1]
            if len(signature) != 2 * size:  # RFC 7518 §3.4: R || S, each full width
                return False
            r, s = (int.from_bytes(signature[i : i + size], "big") for i in (0, size))
            key.verify(encode_dss_signature(r, s), message, ec.ECDSA(_HASHES[alg]()))
        else:
            key.verify(signature, message, _rsa_padding(alg), _HASHES[alg]())
    except InvalidSignature:
        return False
    return True


def _rsa_padding(alg: str) -> padding.AsymmetricPadding:
    if alg == "PS256":  # RFC 7518 §3.5: MGF1 with SHA-256, salt as long as the hash
        return padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    return padding.PKCS1v15()


# ---------------------------------------------------------------------------- JWK keys


def _trusted_key(kid: str, jwk: Mapping[str, Any], alg: str, index: int) -> PublicKey:
    """The trusted key for a signature, if the signature's alg is one the key may use."""
    if alg not in ALGORITHMS:
        raise _bad_signature(f"signature {index}: alg {alg!r} is not supported", index)
    if not isinstance(jwk, Mapping):
        raise _bad_key(f"trusted key {kid!r} is not a JWK object")
    declared = jwk.get("alg")
    if declared is not None and declared != alg:
        raise _bad_signature(
            f"signature {index}: key {kid!r} is for {declared}, the header claims {alg}", index
        )
    crv = "Ed25519" if alg == "EdDSA" else _EC[alg][0] if alg in _EC else None
    if (jwk.get("kty"), jwk.get("crv")) != (_KTY[alg], crv):
        raise _bad_signature(
            f"signature {index}: key {kid!r} is {jwk.get('kty')}/{jwk.get('crv')}, "
            f"which {alg} cannot use",
            index,
        )
    return public_key_from_jwk(jwk)


def public_key_from_jwk(jwk: Mapping[str, Any]) -> PublicKey:
    """Load a public signing JWK (OKP Ed25519, EC P-256/P-384, RSA ≥ 2048 bits)."""
    if not isinstance(jwk, Mapping):
        raise _bad_key("a JWK must be a JSON object")
    if _PRIVATE_JWK_MEMBERS & set(jwk):
        raise _bad_key("JWK holds private key material; give the public key only")
    ops = jwk.get("key_ops", ["verify"])
    if jwk.get("use", "sig") != "sig" or not isinstance(ops, list) or "verify" not in ops:
        raise _bad_key("JWK is not for verifying signatures (use/key_ops)")
    kty, crv = jwk.get("kty"), jwk.get("crv")
    try:
        if kty == "OKP" and crv == "Ed25519":
            return ed25519.Ed25519PublicKey.from_public_bytes(_ed25519_x(jwk))
        if kty == "EC" and isinstance(crv, str) and crv in _CURVES:
            size = 32 if crv == "P-256" else 48
            x, y = (int.from_bytes(_member(jwk, m, size), "big") for m in ("x", "y"))
            return ec.EllipticCurvePublicNumbers(x, y, _CURVES[crv]()).public_key()
        if kty == "RSA":
            n, e = (int.from_bytes(_member(jwk, m), "big") for m in ("n", "e"))
            if n.bit_length() < _MIN_RSA_BITS:
                raise _bad_key(f"RSA key is {n.bit_length()} bits; JWS needs at least 2048")
            return rsa.RSAPublicNumbers(e, n).public_key()
    except ValueError as exc:  # cryptography: point not on the curve, bad exponent, ...
        raise _bad_key(f"JWK is not a valid key: {exc}") from exc
    raise _bad_key(f"unsupported JWK kty/crv {kty}/{crv}")


def _member(jwk: Mapping[str, Any], name: str, size: int | None = None) -> bytes:
    value = jwk.get(name)
    if not isinstance(value, str):
        raise _bad_key(f"JWK member {name!r} is missing")
    raw = _b64decode(value, f"JWK member {name!r}", 0, error=_bad_key)
    if size is not None and len(raw) != size:  # RFC 7518 §6.2.1.2, RFC 8037 §2
        raise _bad_key(f"JWK member {name!r} is {len(raw)} bytes; expected {size}")
    return raw


def _ed25519_x(jwk: Mapping[str, Any]) -> bytes:
    """The raw key of an Ed25519 JWK; weak keys (small order, torsion) are refused."""
    raw = _member(jwk, "x", 32)
    problem = public_key_problem(raw)
    if problem is not None:
        raise AgentCardError(
            f"the Ed25519 JWK is refused: {problem}; sign with a freshly generated key",
            code="weak_public_key",
            status=400,
        )
    return raw


def _bad_key(message: str) -> AgentCardError:
    return AgentCardError(message, code="bad_agent_card_key")


def jwk_from_public_key(
    public_key: PublicKey, kid: str, *, alg: str | None = None
) -> dict[str, str]:
    """The public JWK for a key, pinned to one alg (RSA defaults to RS256)."""
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        x = _b64encode(public_key.public_bytes_raw())
        jwk = {"kty": "OKP", "crv": "Ed25519", "x": x, "alg": "EdDSA"}
    elif isinstance(public_key, ec.EllipticCurvePublicKey):
        alg_for = {"secp256r1": "ES256", "secp384r1": "ES384"}.get(public_key.curve.name)
        if alg_for is None:
            raise _bad_key(f"EC curve {public_key.curve.name} is not P-256 or P-384")
        crv, size = _EC[alg_for]
        numbers = public_key.public_numbers()
        x, y = (_b64encode(v.to_bytes(size, "big")) for v in (numbers.x, numbers.y))
        jwk = {"kty": "EC", "crv": crv, "x": x, "y": y, "alg": alg_for}
    elif isinstance(public_key, rsa.RSAPublicKey):
        numbers_rsa = public_key.public_numbers()
        n, e = (_b64encode(_min_bytes(v)) for v in (numbers_rsa.n, numbers_rsa.e))
        jwk = {"kty": "RSA", "n": n, "e": e, "alg": "RS256"}
    else:
        raise _bad_key(f"{type(public_key).__name__} keys cannot sign AgentCards")
    if alg is not None:
        if _KTY.get(alg) != jwk["kty"] or (jwk["kty"] != "RSA" and alg != jwk["alg"]):
            raise _bad_key(f"a {jwk['kty']} key cannot sign {alg}")
        jwk["alg"] = alg
    return {**jwk, "kid": kid, "use": "sig"}


def _min_bytes(value: int) -> bytes:
    return value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")


# ------------------------------------------------------------------------------ signing


def sign_agent_card(
    card_json: Mapping[str, Any],
    private_key: PrivateKey,
    kid: str,
    alg: str,
    *,
    jku: str | None = None,
) -> dict[str, Any]:
    """A copy of the card with one more signature, by ``private_key`` under ``kid``."""
    _validate(dict(card_json))
    if not kid:
        raise _bad_key("kid must not be empty: verifiers select the key by it")
    _check_signing_key(private_key, alg)
    header = {"alg": alg, "kid": kid, "typ": "JOSE", **({"jku": jku} if jku else {})}
    protected = _b64encode(_canonical_bytes(header))
    message = f"{protected}.{_b64encode(signing_input(card_json))}".encode("ascii")
    signed = copy.deepcopy(dict(card_json))
    entry = {"protected": protected, "signature": _b64encode(_sign(private_key, alg, message))}
    signed["signatures"] = [*(signed.get("signatures") or []), entry]
    return signed


def _check_signing_key(private_key: PrivateKey, alg: str) -> None:
    if alg not in ALGORITHMS:
        raise _bad_key(f"alg {alg!r} is not one of {', '.join(sorted(ALGORITHMS))}")
    jwk = jwk_from_public_key(private_key.public_key(), "check", alg=alg)
    public_key_from_jwk(jwk)  # refuses short RSA keys


def _sign(private_key: PrivateKey, alg: str, message: bytes) -> bytes:
    if isinstance(private_key, ed25519.Ed25519PrivateKey):
        return private_key.sign(message)
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        r, s = decode_dss_signature(private_key.sign(message, ec.ECDSA(_HASHES[alg]())))
        size = _EC[alg][1]
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")
    return private_key.sign(message, _rsa_padding(alg), _HASHES[alg]())


# ----------------------------------------------------------------------------- base64url

_B64URL = re.compile(r"[A-Za-z0-9_-]*")


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(
    text: str, what: str, index: int, error: Callable[[str], AgentCardError] | None = None
) -> bytes:
    """Strict base64url without padding (RFC 7515 §2): one spelling per byte string."""
    raw = b""
    if _B64URL.fullmatch(text) and len(text) % 4 != 1:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _b64encode(raw) != text:
        message = f"{what} is not unpadded base64url"
        raise error(message) if error else _bad_signature(f"signature {index}: {message}", index)
    return raw


# ------------------------------------------------------------------- registry mapping


def registry_fields(card: AgentCard, card_url: str | None = None) -> dict[str, Any]:
    """The card's contribution to an agent record (``custodes.registry.models``).

    ``provider_name`` is the card's self-declared provider: informative only, since the
    accountable party is the operator record. ``intended_purpose`` is present only when
    the card's description is non-empty; ``aliases`` only when the card's URL is known.
    """
    fields: dict[str, Any] = {
        "name": card.name,
        "version": card.version,
        "skills": [{"id": s.id, "name": s.name, "tags": list(s.tags)} for s in card.skills],
        "interfaces": [
            {"url": i.url, "binding": i.protocol_binding, "version": i.protocol_version}
            for i in card.supported_interfaces
        ],
    }
    if card.description.strip():
        fields["intended_purpose"] = card.description
    if card.provider is not None:
        fields["provider_name"] = card.provider.organization
    if card_url is not None:
        fields["aliases"] = {"a2a_card_url": card_url}
    return fields
