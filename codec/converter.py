"""The SDK's pydantic JSON converter, with one change: a payload that fails validation raises an
ApplicationError naming each field and reason (never echoing the input, which may be personal data).

Raised while decoding a workflow's input, that error fails the workflow at once instead of failing its
task forever; raised while decoding an update's argument, it rejects the update before it reaches
history. Either way the caller (a Go service, the ``temporal`` CLI) reads which fields were wrong."""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter, ValidationError
from temporalio.api.common.v1 import Payload
from temporalio.client import Client
from temporalio.common import HeaderCodecBehavior
from temporalio.contrib.pydantic import PydanticJSONPlainPayloadConverter
from temporalio.converter import (
    CompositePayloadConverter,
    DataConverter,
    DefaultPayloadConverter,
    EncodingPayloadConverter,
    JSONPlainPayloadConverter,
    PayloadCodec,
)
from temporalio.exceptions import ApplicationError
from temporalio.runtime import Runtime

from codec.encryption import PLAINTEXT
from domain.errors import FieldErrorDetails, field_errors, summary, validate_json

INVALID_INPUT = "InvalidInput"


class _FieldErrorsJSONConverter(PydanticJSONPlainPayloadConverter):
    def from_payload(self, payload: Payload, type_hint: type | None = None) -> Any:
        try:
            value = super().from_payload(payload, type_hint)
            if PLAINTEXT in payload.metadata and hasattr(value, "_plaintext"):
                value._plaintext = True  # the workflow refuses personal data that travelled unencrypted
            return value
        except ValidationError as refused:
            error = refused
            if all(e["type"] == "json_invalid" for e in error.errors()):
                try:  # text the fast parser refuses outright: parse it permissively to name the field
                    return validate_json(TypeAdapter(type_hint if type_hint is not None else Any), payload.data)
                except ValidationError as named:
                    error = named
            errors = field_errors(error, root=getattr(type_hint, "error_root", None))
            name = getattr(type_hint, "error_root", None) or getattr(type_hint, "__name__", "input")
            raise ApplicationError(
                f"invalid {name}: {summary(errors)}",
                FieldErrorDetails(errors=errors).model_dump(mode="json"),  # the documented shape (domain.errors)
                type=INVALID_INPUT,
                non_retryable=True,
            ) from None


class SealedPayload(ValueError):
    """An encrypted payload reached a client that has no key for it."""


class _SealedPayloadConverter(EncodingPayloadConverter):
    """Only reached when no codec opened a payload first: say so, instead of "unknown encoding"."""

    @property
    def encoding(self) -> str:
        return "binary/encrypted"

    def to_payload(self, value: Any) -> Payload | None:
        return None

    def from_payload(self, payload: Payload, type_hint: type | None = None) -> Any:
        key_id = payload.metadata.get("encryption-key-id", b"?").decode()
        raise SealedPayload(f"this payload is encrypted (key {key_id}): set COMPLAINTS_CODEC_KEYS to read it "
                            "(`make up` prints the export line)")


class ContractPayloadConverter(CompositePayloadConverter):
    def __init__(self) -> None:
        json_converter = _FieldErrorsJSONConverter()
        super().__init__(*(
            json_converter if isinstance(c, JSONPlainPayloadConverter) else c
            for c in DefaultPayloadConverter.default_encoding_payload_converters
        ), _SealedPayloadConverter())


def data_converter(codec: PayloadCodec | None = None) -> DataConverter:
    return DataConverter(payload_converter_class=ContractPayloadConverter, payload_codec=codec)


def default_codec() -> PayloadCodec | None:
    """The encryption codec from COMPLAINTS_CODEC_KEYS, or None where no keys are configured."""
    from codec.encryption import EncryptionCodec

    return EncryptionCodec.from_env()


_FROM_ENV: Any = object()


async def connect_temporal(address: str, namespace: str = "default", codec: PayloadCodec | None = _FROM_ENV,
                           token: str | None = None, runtime: Runtime | None = None) -> Client:
    """A client that speaks the project's contract, encrypting payloads when keys are configured, and
    presenting the caller's credential (``token``, else COMPLAINTS_TOKEN) on every start and update (every
    client must use this: worker, starter, CLI, auditor)."""
    from identity.client import CredentialInterceptor

    chosen = default_codec() if codec is _FROM_ENV else codec
    # Headers too go through the codec: a caller's token is no more readable in history than its input.
    headers = HeaderCodecBehavior.CODEC if chosen else HeaderCodecBehavior.NO_CODEC
    return await Client.connect(address, namespace=namespace, data_converter=data_converter(chosen),
                                interceptors=[CredentialInterceptor(token)], header_codec_behavior=headers,
                                runtime=runtime)
