"""The embedded default's broker: kombu's file-system transport, with atomic message writes.

kombu's ``filesystem`` transport writes a message file in place under its final name, and a
consumer polling the directory can pick it up while it is still empty: the worker then dies
with ``JSONDecodeError`` ("Unrecoverable error"). Here a message is written under a name the
consumer ignores and renamed into place, so a consumer only ever sees whole messages.
Selected with the ``broker_transport`` setting (``TRANSPORT`` below).
"""
from __future__ import annotations

import os
import uuid
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps

from celery_chain_lint.load import write_atomically

TRANSPORT = "celery_chain_lint.harness.fstransport:Transport"


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs):
        name = f"{int(round(monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"
        target = os.path.join(self.data_folder_out, name)
        # Not "<anything>.<queue>.msg": no consumer takes it until it is renamed.
        try:
            write_atomically(target, str_to_bytes(dumps(payload)), prefix=".writing-")
        except OSError as exc:
            raise ChannelError(f"Cannot add file {target!r} to directory") from exc


class Transport(filesystem.Transport):
    Channel = Channel
