"""The embedded broker's messages appear whole, and a broken one never stops a worker."""

from __future__ import annotations

from pathlib import Path
from queue import Empty

import pytest
from kombu import Connection

from config import kombu_filesystem


@pytest.fixture
def channel(tmp_path: Path) -> kombu_filesystem.Channel:
    kombu_filesystem.install()
    folder = str(tmp_path)
    options = {"data_folder_in": folder, "data_folder_out": folder, "control_folder": folder}
    connection = Connection("filesystem://", transport_options=options)
    channel = connection.default_channel
    assert isinstance(channel, kombu_filesystem.Channel)
    return channel


def test_a_message_is_renamed_into_place_whole(channel: kombu_filesystem.Channel) -> None:
    channel._put("crm", {"body": "hello"})

    names = [p.name for p in Path(channel.data_folder_in).iterdir()]
    assert len(names) == 1 and names[0].endswith(".crm.msg")
    assert channel._get("crm") == {"body": "hello"}


def test_a_message_still_being_written_is_not_read(channel: kombu_filesystem.Channel) -> None:
    (Path(channel.data_folder_in) / ".1_abc.crm.msg.part").write_bytes(b"")

    with pytest.raises(Empty):
        channel._get("crm")


def test_an_unreadable_message_is_dropped_not_raised(channel: kombu_filesystem.Channel) -> None:
    (Path(channel.data_folder_in) / "1_abc.crm.msg").write_bytes(b"")

    with pytest.raises(Empty):
        channel._get("crm")
    assert list(Path(channel.data_folder_in).iterdir()) == []
