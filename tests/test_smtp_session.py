"""One SMTP connection for a delivery round's emails (alerts.senders.SmtpSession), against
a real SMTP server on loopback: a cascade's alerts share one connection, and a kept
connection the server closed meanwhile is replaced, the email still delivered."""

from __future__ import annotations

from typing import Any

from alerts.senders import SmtpSession, send_email
from config.settings import EmailConfig
from tests.helpers import Inbox, SmtpServer, free_port


class PeerInbox(Inbox):
    """Also notes the client's port of each message: one port, one connection."""

    def __init__(self) -> None:
        super().__init__()
        self.peers: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.peers.append(session.peer)
        return await super().handle_DATA(server, session, envelope)


def _server() -> SmtpServer:
    server = SmtpServer(free_port())
    server.inbox = PeerInbox()
    server.start()
    return server


def _send(config: EmailConfig, n: int, session: SmtpSession | None) -> None:
    send_email(config, ["desk@example.org"], f"alert {n}", f"text {n}", f"<p>html {n}</p>", session=session)


def test_a_round_s_emails_share_one_connection_and_survive_a_server_restart() -> None:
    server = _server()
    config = EmailConfig(host="127.0.0.1", port=server.port, security="none", to=["desk@example.org"])
    session = SmtpSession()
    try:
        for n in range(3):
            _send(config, n, session)
        assert [m["Subject"] for m in server.inbox.messages] == ["alert 0", "alert 1", "alert 2"]
        assert len(set(server.inbox.peers)) == 1  # one connection for the three
        server.stop()  # the kept connection dies with the server
        restarted = SmtpServer(server.port)
        restarted.inbox = PeerInbox()
        restarted.start()
        try:
            _send(config, 3, session)
            assert [m["Subject"] for m in restarted.inbox.messages] == ["alert 3"]
        finally:
            session.close()
            restarted.stop()
    finally:
        server.stop()
    # without a session, a connection per email (as before)
    single = _server()
    try:
        plain = EmailConfig(host="127.0.0.1", port=single.port, security="none", to=["desk@example.org"])
        _send(plain, 0, None)
        _send(plain, 1, None)
        assert len(set(single.inbox.peers)) == 2
    finally:
        single.stop()
