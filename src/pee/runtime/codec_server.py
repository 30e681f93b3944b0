"""A codec server for the Temporal Web UI and `temporal --codec-endpoint`, following the codec
server protocol as they call it: `POST <endpoint>/decode` and `/encode` with `{"payloads":
[...]}` (Payloads in protobuf JSON), the `X-Namespace` header (one codec serves every namespace),
a CORS preflight from the Web UI.

Large payloads live in the blob store (External Storage, pee.stores.payloads): the history holds
ExternalStorageReference payloads. `/decode` fetches what they refer to through the same
drivers as the workers (so the codec server needs the workers' PEE_ARTIFACT_URL and AWS_*
settings) and then lz4-decodes; with `?preserveStorageRefs=true` (what the Web UI 2.54 sends for
its history view) it leaves references as they are; `/download` always fetches them (the UI
calls it when a person opens one). `/encode` compresses, then stores what is still large.

Built on aiohttp rather than `http.server`: its parser refuses a malformed or negative
Content-Length and caps the body (`client_max_size`) however it is sent, chunked included, so
those cases never reach this code. What is left here is the codec's own rules:

- Only the last path segment names the action (the protocol lets an endpoint be mounted at any
  depth). The segments before it may carry the token: the embedded server's endpoint is
  `http://127.0.0.1:PORT/<token>`, because the Web UI of `temporal server start-dev` cannot send
  an Authorization header; the CLI may send it instead (`--codec-auth <token>`). Missing: 401;
  wrong: 403.
- A request carrying an Origin other than the Web UI's is refused (403), not just left without
  CORS headers: a page elsewhere must not make us do work. Requests without Origin (the CLI,
  scripts) pass.
- Decoding stops at a budget: `MAX_DECODED` bytes in all, and at most `MAX_RATIO` times the
  request body (above `RATIO_FLOOR`), so an lz4 bomb is a 413 after a bounded amount of work.
- Every malformed request is a 4xx with a JSON `{"error": ...}` saying what is wrong.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import json
import re
import threading
from dataclasses import dataclass
from http import HTTPStatus

from aiohttp import web
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.api.sdk.v1 import ExternalStorageReference
from temporalio.converter import (
    ExternalStorage,
    JSONProtoPayloadConverter,
    StorageDriverClaim,
    StorageDriverRetrieveContext,
    StorageDriverSelectContext,
    StorageDriverStoreContext,
)

from pee.runtime.codec import DecodedTooLarge, Lz4Codec, decode_within
from pee.runtime.codec_defaults import DEFAULT_ORIGIN
from pee.stores.payloads import BlobNotFound, external_storage

# one request's body: Temporal refuses payloads over 2 MiB, and the UI and CLI post one event's
# payloads at a time, so this leaves a wide margin
MAX_BODY = 16 * 1024 * 1024
# decoded bytes per request, in all and relative to the body (lz4 reaches ~255:1 on a run of
# one byte; plans and reports compress ~5-20:1)
MAX_DECODED = 64 * 1024 * 1024
MAX_RATIO = 64
RATIO_FLOOR = 1024 * 1024
ACTIONS = ("decode", "encode", "download")
ALLOWED_HEADERS = "Content-Type, X-Namespace, Authorization"


class CodecRequestError(Exception):
    """A request the codec server refuses; `status` is the 4xx it answers with."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class CodecServerConfig:
    origin: str = DEFAULT_ORIGIN
    # None: no token required (the standalone server unless --auth-token is given)
    token: str | None = None
    max_body: int = MAX_BODY
    max_decoded: int = MAX_DECODED
    max_ratio: int = MAX_RATIO
    ratio_floor: int = RATIO_FLOOR
    # None: the External Storage of this process's environment (PEE_ARTIFACT_URL...)
    storage: ExternalStorage | None = None

    def decode_budget(self, body_size: int) -> int:
        return min(self.max_decoded, max(self.ratio_floor, self.max_ratio * body_size))


_REFERENCES = JSONProtoPayloadConverter()
_REFERENCE_TYPE = ExternalStorageReference.DESCRIPTOR.full_name.encode()


def storage_reference(payload: Payload) -> ExternalStorageReference | None:
    """The reference a payload is, recognised by its public protobuf type, or None."""
    if payload.metadata.get("messageType") != _REFERENCE_TYPE:
        return None
    reference = _REFERENCES.from_payload(payload, ExternalStorageReference)
    return reference if isinstance(reference, ExternalStorageReference) else None


async def retrieve(payloads: list[Payload], storage: ExternalStorage) -> list[Payload]:
    """References replaced by the payloads they refer to (through the storage's drivers)."""
    drivers = {driver.name(): driver for driver in storage.drivers}
    out = []
    for payload in payloads:
        reference = storage_reference(payload)
        if reference is None:
            out.append(payload)
            continue
        driver = drivers.get(reference.driver_name)
        if driver is None:
            raise BlobNotFound(
                f"a reference to storage driver {reference.driver_name!r}, which this codec "
                "server does not have"
            )
        claim = StorageDriverClaim(claim_data=dict(reference.claim_data))
        (stored,) = await driver.retrieve(StorageDriverRetrieveContext(), [claim])
        out.append(stored)
    return out


async def store(payloads: list[Payload], storage: ExternalStorage) -> list[Payload]:
    """Payloads at or above the storage's threshold stored, replaced by their references."""
    out = []
    for payload in payloads:
        size = payload.ByteSize()
        selector = storage.driver_selector
        driver = (
            selector(StorageDriverSelectContext(), payload)
            if selector is not None
            else storage.drivers[0]
        )
        if size < storage.payload_size_threshold or driver is None:
            out.append(payload)
            continue
        (claim,) = await driver.store(StorageDriverStoreContext(), [payload])
        reference = _REFERENCES.to_payload(
            ExternalStorageReference(driver_name=driver.name(), claim_data=claim.claim_data)
        )
        assert reference is not None
        reference.external_payloads.add().size_bytes = size
        out.append(reference)
    return out


async def transcode(
    body: bytes, action: str, config: CodecServerConfig, preserve_references: bool = False
) -> bytes:
    """The JSON answer to one /decode, /download or /encode body; CodecRequestError when
    malformed or when a stored payload cannot be read."""
    payloads = Payloads()
    try:
        check_base64(json.loads(body))
        json_format.Parse(body, payloads)
    except (json_format.ParseError, ValueError, TypeError, RecursionError) as err:
        raise CodecRequestError(
            HTTPStatus.BAD_REQUEST,
            f'the body is not Payloads JSON ({{"payloads": [{{"metadata": {{...}}, '
            f'"data": BASE64}}]}}): {err}',
        ) from None
    storage = config.storage or external_storage()
    try:
        if action == "encode":
            result = await store(await Lz4Codec().encode(list(payloads.payloads)), storage)
        else:
            found = list(payloads.payloads)
            if action == "download" or not preserve_references:
                found = await retrieve(found, storage)
            fetched = sum(p.ByteSize() for p in found) - sum(
                p.ByteSize() for p in payloads.payloads
            )
            result = decode_within(found, config.decode_budget(len(body) + max(fetched, 0)))
    except DecodedTooLarge as err:
        raise CodecRequestError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, str(err)) from None
    except BlobNotFound as err:
        raise CodecRequestError(HTTPStatus.NOT_FOUND, str(err)) from None
    except (RuntimeError, ValueError) as err:
        # lz4 reports a corrupt frame as RuntimeError
        raise CodecRequestError(
            HTTPStatus.BAD_REQUEST, f"cannot {action} the payloads: {err}"
        ) from None
    return json_format.MessageToJson(Payloads(payloads=result)).encode()


# standard or URL-safe alphabet, padded or not (protobuf JSON accepts both)
BASE64 = re.compile(r"[A-Za-z0-9+/_-]*={0,2}")


def check_base64(document: object) -> None:
    """protobuf's JSON parser skips characters outside the base64 alphabet, so `"data": "%%%"`
    would decode as empty bytes: refuse it instead (ValueError names the field)."""
    # no payloads at all is `{}` in protobuf JSON: the CLI sends that for a query without args
    if not isinstance(document, dict) or not isinstance(document.get("payloads", []), list):
        raise ValueError('expected an object with a "payloads" list')
    for index, payload in enumerate(document.get("payloads", [])):
        if not isinstance(payload, dict):
            raise ValueError(f"payloads[{index}] is not an object")
        metadata = payload.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise ValueError(f"payloads[{index}].metadata is not an object")
        fields = {
            "data": payload.get("data", ""),
            **{f"metadata.{key}": value for key, value in metadata.items()},
        }
        for name, value in fields.items():
            if not isinstance(value, str) or not BASE64.fullmatch(value):
                raise ValueError(f"payloads[{index}].{name} is not base64")


def split_path(path: str) -> tuple[str, str]:
    """'/<prefix>/decode' -> (prefix, 'decode'); CodecRequestError(404) for other actions."""
    *prefix, action = path.strip("/").split("/")
    if action not in ACTIONS:
        raise CodecRequestError(
            HTTPStatus.NOT_FOUND, "POST <endpoint>/decode, <endpoint>/download or <endpoint>/encode"
        )
    return "/".join(prefix), action


def check_token(config: CodecServerConfig, prefix: str, authorization: str | None) -> None:
    if config.token is None:
        return
    offered = [value for value in (prefix, authorization) if value]
    if not offered:
        raise CodecRequestError(
            HTTPStatus.UNAUTHORIZED,
            "this codec server needs its token: in the endpoint's path "
            "(http://HOST:PORT/<token>) or as the Authorization header (--codec-auth)",
        )
    expected = config.token.encode()
    candidates = [value.removeprefix("Bearer ").encode() for value in offered]
    if not any(hmac.compare_digest(value, expected) for value in candidates):
        raise CodecRequestError(HTTPStatus.FORBIDDEN, "wrong codec server token")


def check_origin(config: CodecServerConfig, origin: str | None) -> None:
    if origin is not None and origin != config.origin:
        raise CodecRequestError(
            HTTPStatus.FORBIDDEN,
            f"origin {origin} may not use this codec server (allowed: {config.origin}; "
            "`codec-server --cors-origin` changes it)",
        )


def cors_headers(config: CodecServerConfig, origin: str | None) -> dict[str, str]:
    if origin != config.origin:
        return {}
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Methods": "POST, OPTIONS",
        "Access-Control-Allow-Headers": ALLOWED_HEADERS,
        "Access-Control-Allow-Credentials": "true",
        "Access-Control-Max-Age": "600",
        "Vary": "Origin",
    }


def error_response(error: CodecRequestError, headers: dict[str, str]) -> web.Response:
    return web.json_response({"error": str(error)}, status=error.status, headers=headers)


def make_app(config: CodecServerConfig) -> web.Application:
    if config.storage is None:
        # built once: the drivers (and an S3 client) serve every request
        config = dataclasses.replace(config, storage=external_storage())

    async def handle(request: web.Request) -> web.Response:
        origin = request.headers.get("Origin")
        headers = cors_headers(config, origin)
        try:
            check_origin(config, origin)
            if request.method == "OPTIONS":
                # a browser's preflight carries no credentials: the token is checked on the POST
                return web.Response(status=HTTPStatus.NO_CONTENT, headers=headers)
            if request.method != "POST":
                raise CodecRequestError(
                    HTTPStatus.METHOD_NOT_ALLOWED, "POST <endpoint>/decode or <endpoint>/encode"
                )
            prefix, action = split_path(request.path)
            check_token(config, prefix, request.headers.get("Authorization"))
            if (
                request.content_length is None
                and "chunked" not in request.headers.get("Transfer-Encoding", "").lower()
            ):
                raise CodecRequestError(
                    HTTPStatus.LENGTH_REQUIRED, "send the body with a Content-Length"
                )
            if (request.content_length or 0) > config.max_body:
                raise CodecRequestError(
                    HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"the body is over {config.max_body} bytes"
                )
            try:
                body = await request.read()
            except web.HTTPRequestEntityTooLarge:
                raise CodecRequestError(
                    HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"the body is over {config.max_body} bytes"
                ) from None
            # one request at a time does the work (in the loop), so memory stays bounded by one
            # request's budget however many arrive
            preserve = request.query.get("preserveStorageRefs", "").lower() == "true"
            answer = await transcode(body, action, config, preserve)
        except CodecRequestError as error:
            return error_response(error, headers)
        return web.Response(body=answer, content_type="application/json", headers=headers)

    app = web.Application(client_max_size=config.max_body)
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


def run(config: CodecServerConfig, host: str, port: int) -> None:
    """Serve until SIGINT or SIGTERM (aiohttp's run_app handles both and exits cleanly)."""
    web.run_app(
        make_app(config), host=host, port=port, print=None, access_log=None, handle_signals=True
    )


class BackgroundCodecServer:
    """The server on its own event loop in a thread (tests, embedding): start() binds and
    returns the port (0 = a free one), stop() shuts it down."""

    def __init__(self, config: CodecServerConfig, host: str = "127.0.0.1", port: int = 0):
        self.config, self.host, self.port = config, host, port
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> BackgroundCodecServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=30)
        return self

    async def _start(self) -> None:
        self._runner = web.AppRunner(make_app(self.config), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        # the port the system gave (self.port may be 0): the runner's bound addresses
        self.port = int(self._runner.addresses[0][1])

    async def _shutdown(self) -> None:
        assert self._runner is not None
        await self._runner.cleanup()
        # connections the server refused before a handler ran leave their tasks behind
        current = asyncio.current_task()
        leftover = [task for task in asyncio.all_tasks() if task is not current]
        for task in leftover:
            task.cancel()
        await asyncio.gather(*leftover, return_exceptions=True)

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)
        self._loop.close()
