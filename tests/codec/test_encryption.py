"""The payload codec: nothing readable in Temporal's history, rotation without losing old payloads."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from codec.encryption import ENCODING, PLAINTEXT, EncryptionCodec, UnknownKey, new_codec_key, parse_keys
from dev.stack import venv_bin
from eventlog import PostgresEventStore
from settings import workflow_id
from tests.workflows.driver import Driver
from workflows.complaint import ComplaintWorkflow


def plain(text: str) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=json.dumps(text).encode())


async def test_a_payload_round_trips_and_is_unreadable_on_the_way() -> None:
    codec = EncryptionCodec(parse_keys(new_codec_key()))
    [sealed] = await codec.encode([plain("siti.rahma@example.co.id")])
    assert sealed.metadata["encoding"] == ENCODING and b"siti" not in sealed.data
    assert (await codec.decode([sealed]))[0] == plain("siti.rahma@example.co.id")


async def test_rotation_seals_with_the_newest_key_and_still_opens_the_old() -> None:
    old, new = new_codec_key(), new_codec_key()
    before = EncryptionCodec(parse_keys(old))
    [sealed_old] = await before.encode([plain("before rotation")])
    after = EncryptionCodec(parse_keys(f"{old},{new}"))
    [sealed_new] = await after.encode([plain("after rotation")])
    assert sealed_new.metadata["encryption-key-id"].decode() == new.split(":")[0]
    assert await after.decode([sealed_old, sealed_new]) == [plain("before rotation"), plain("after rotation")]
    only_new = EncryptionCodec(parse_keys(new))
    with pytest.raises(UnknownKey) as refused:
        await only_new.decode([sealed_old])
    assert refused.value.key_id == old.split(":")[0]


async def test_an_altered_payload_does_not_open() -> None:
    codec = EncryptionCodec(parse_keys(new_codec_key()))
    [sealed] = await codec.encode([plain("x")])
    tampered = Payload(metadata=dict(sealed.metadata), data=sealed.data[:-1] + bytes([sealed.data[-1] ^ 1]))
    with pytest.raises(ValueError, match="does not open"):
        await codec.decode([tampered])


async def test_plain_payloads_from_clients_without_the_codec_pass_through_marked_as_plaintext() -> None:
    codec = EncryptionCodec(parse_keys(new_codec_key()))
    [passed] = await codec.decode([plain("from the temporal CLI")])
    assert passed.data == plain("from the temporal CLI").data and passed.metadata[PLAINTEXT] == b"1"
    assert passed.metadata["encoding"] == b"json/plain"


def test_bad_key_configuration_is_refused_clearly() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        parse_keys("k1:AAAA")
    with pytest.raises(ValueError, match="id:base64key"):
        parse_keys("just-a-key")


@pytest.fixture
def drive(dev_server: WorkflowEnvironment, store: PostgresEventStore, dev_worker: Worker, task_queue: str) -> Driver:
    return Driver(dev_server.client, store, task_queue)


async def test_the_raw_history_holds_no_personal_data_from_the_intake(drive: Driver, intake_data: Any) -> None:
    data = intake_data()
    cid = await drive.submit(data)
    await drive.send(cid, ComplaintWorkflow.log_message, sender="customer", channel="social",
                     text="Nomor saya 0812-5550-1188")
    await drive.send(cid, ComplaintWorkflow.withdraw)
    await drive.finished(cid)
    shown = subprocess.run([str(venv_bin("temporal")), "workflow", "show", "--workflow-id", workflow_id(cid),
                            "--output", "json", "--address", drive.client.service_client.config.target_host],
                           capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    raw = shown.stdout
    assert len(raw) > 5_000  # it is the whole history
    for secret in (data["customer"]["name"], data["contact"]["email"], data["contact"]["handle"],
                   data["description"][:30], "0812-5550-1188"):
        assert secret not in raw, secret
    # ...while a client with the codec reads everything back.
    history = await drive.client.get_workflow_handle(workflow_id(cid)).fetch_history()
    [start] = await drive.client.data_converter.decode(
        history.events[0].workflow_execution_started_event_attributes.input.payloads)
    assert start["customer"]["name"] == data["customer"]["name"]
