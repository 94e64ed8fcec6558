"""A raw client of Streamlit's websocket protocol (what the browser's frontend speaks),
for tests that do what a browser would not: resume another client's session id, send
forged widget states, send `clear_cache`. Uses the `websockets` package (installed with
Streamlit) and Streamlit's own protobuf messages."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import websockets
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ClientState_pb2 import ClientState, ContextInfo
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState, WidgetStates


@dataclass
class Run:
    """What one script run sent: the messages, and the texts of its elements."""

    messages: list[ForwardMsg] = field(default_factory=list)

    def elements(self) -> list[Any]:
        return [
            m.delta.new_element
            for m in self.messages
            if m.WhichOneof("type") == "delta" and m.delta.HasField("new_element")
        ]

    def texts(self) -> list[str]:
        """Every string field of every element (markdown bodies, alerts, titles, labels)."""
        found: list[str] = []
        for element in self.elements():
            _strings(element, found)
        return found

    def exceptions(self) -> list[Any]:
        return [e.exception for e in self.elements() if e.WhichOneof("type") == "exception"]

    def widgets(self, kind: str) -> list[Any]:
        return [getattr(e, kind) for e in self.elements() if e.WhichOneof("type") == kind]


def _strings(message: Any, found: list[str]) -> None:
    for descriptor, value in message.ListFields():
        if descriptor.type == descriptor.TYPE_STRING:
            found.extend(value if descriptor.is_repeated else [value])
        elif descriptor.type == descriptor.TYPE_MESSAGE:
            for item in value if descriptor.is_repeated else [value]:
                _strings(item, found)


class StreamlitSocket:
    """One websocket connection to a Streamlit server."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.session_id: str | None = None

    @classmethod
    async def open(cls, base_url: str, *, cookie: str | None = None, session_id: str | None = None) -> StreamlitSocket:
        """Connect like the frontend: subprotocols "streamlit", an XSRF token (unused
        here), and the id of a session to resume. Raises websockets' InvalidStatus when
        the handshake is refused."""
        ws_url = base_url.replace("http://", "ws://").rstrip("/") + "/_stcore/stream"
        protocols = ["streamlit", "unused-xsrf", session_id] if session_id else ["streamlit"]
        headers = {"Cookie": cookie} if cookie else {}
        connection = await websockets.connect(
            ws_url, subprotocols=protocols, additional_headers=headers, origin=base_url.rstrip("/"), max_size=None
        )
        return cls(connection)

    async def run(
        self,
        page: str = "",
        widgets: Iterable[WidgetState] = (),
        *,
        query: str = "",
        timeout: float = 60.0,
        page_script_hash: str = "",
    ) -> Run:
        """Ask for a script run of `page` (its url path) with `widgets`, and collect what it
        sends until the run finishes."""
        message = BackMsg()
        message.rerun_script.CopyFrom(
            ClientState(
                query_string=query,
                widget_states=WidgetStates(widgets=list(widgets)),
                page_script_hash=page_script_hash,
                page_name=page,
                context_info=ContextInfo(timezone="UTC", timezone_offset=0, locale="en-US", url=""),
            )
        )
        await self.send(message)
        return await self.collect(timeout)

    async def send(self, message: BackMsg) -> None:
        await self.connection.send(message.SerializeToString())

    async def clear_cache(self) -> None:
        message = BackMsg()
        message.clear_cache = True
        await self.send(message)

    async def collect(self, timeout: float = 60.0) -> Run:
        run = Run()
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise TimeoutError("the script run did not finish")
            data = await asyncio.wait_for(self.connection.recv(), left)
            message = ForwardMsg()
            message.ParseFromString(data)
            kind = message.WhichOneof("type")
            if kind == "new_session":
                self.session_id = message.new_session.initialize.session_id or self.session_id
            run.messages.append(message)
            if kind == "script_finished":
                return run

    async def close(self) -> None:
        await self.connection.close()
