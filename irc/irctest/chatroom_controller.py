"""irctest controller for the chatroom demo's IRC face.

irctest loads a controller by module path (``--controller chatroom_controller``,
with this directory on PYTHONPATH) and calls ``get_irctest_controller_class()``.
For every test it calls ``run(hostname, port, ...)``: this controller starts
the demo binary named by $CHATROOM_BIN with its IRC face on 127.0.0.1:PORT,
waits until that port accepts, and stops the process when the test ends
(``kill``, inherited: SIGTERM to the process group, SIGKILL after 5 s).

What the class declares is a claim about our server that changes how tests
end, so keep it true (WHAT-IT-CHECKS.md, "What the controller declares"):

- ``capabilities``: a test that asks for one of these with skip_if_cap_nak
  fails if the server NAKs it; for any other capability it is skipped.
- ``optional_behaviors``: a test that finds one of these missing fails
  (the runner's plugin restores the conftest hook that does this); for any
  other behaviour it is skipped.
- ``isupport``: isupport.py::testValues checks each token's value in 005;
  with an empty dict that test is skipped.

Raising NotImplementedByController in ``run`` skips the test: we do so for
services and WebSocket. A server password is given to the demo as
-irc-password (checked by the hub's auth hook), and irctest's operator
credentials (OPER operuser operpassword) as -irc-oper.
"""

import os
import shlex
from typing import Any, List, Optional, Type

from irctest import patma
from irctest.basecontrollers import BaseServerController, DirectoryBasedController
from irctest.runner import NotImplementedByController
from irctest.specifications import Capabilities, OptionalBehaviors

# irctest's tests expect this exact server name (004, PONG, 312, WHO's 352).
SERVER_NAME = "My.Little.Server"

# The operator credentials irctest's tests use (OPER operuser operpassword).
OPER = "operuser:operpassword"


class ChatroomController(BaseServerController, DirectoryBasedController):
    """Runs ``$CHATROOM_BIN -addr 127.0.0.1:0 -irc 127.0.0.1:PORT
    -irc-name My.Little.Server -irc-oper operuser:operpassword -grace 0s``
    per test (with ``-irc-password PASSWORD`` for the tests that set one),
    plus the words of $CHATROOM_IRCTEST_ARGS (split as a shell would)."""

    software_name = "chatroom"
    _port_wait_interval = 0.01
    supported_sasl_mechanisms: set = set()
    supports_sts = False

    capabilities = frozenset(
        (
            Capabilities.ECHO_MESSAGE,
            Capabilities.MESSAGE_TAGS,
            Capabilities.MULTI_PREFIX,
            Capabilities.SERVER_TIME,
        )
    )

    optional_behaviors = frozenset(
        (
            OptionalBehaviors.CAP_REQ_MINUS,
            OptionalBehaviors.ELIST_M,
            OptionalBehaviors.ELIST_N,
            OptionalBehaviors.ELIST_U,
            OptionalBehaviors.MULTI_JOIN,
            OptionalBehaviors.MULTI_KICK,
            OptionalBehaviors.MULTI_NAMES_COMMAND,
        )
    )

    isupport = {
        "CASEMAPPING": "ascii",
        "CHANTYPES": "#",
        "ELIST": patma.StrRe("[MNU]+"),
        "PREFIX": "(ov)@+",
        "TARGMAX": patma.ANYSTR,
        "WHOX": None,
    }

    def run(
        self,
        hostname: str,
        port: int,
        *,
        password: Optional[str],
        ssl: bool,
        run_services: bool,
        faketime: Optional[str],
        websocket_hostname: Optional[str] = None,
        websocket_port: Optional[int] = None,
    ) -> None:
        if run_services:
            raise NotImplementedByController("services")
        if websocket_hostname is not None or websocket_port is not None:
            raise NotImplementedByController("WebSocket")
        # faketime is left off (self.faketime_enabled stays False): libfaketime
        # hooks libc's clock calls, and a Go binary reads the clock without libc.
        binary = os.environ.get("CHATROOM_BIN")
        if not binary:
            raise RuntimeError("CHATROOM_BIN must name the chatroom demo binary")

        self.create_config()
        assert self.directory
        self.port = port
        args: List[str] = [
            binary,
            "-addr",
            "127.0.0.1:0",  # the text protocol's listener: unused here
            "-irc",
            f"127.0.0.1:{port}",
            "-irc-name",
            SERVER_NAME,
            "-irc-oper",
            OPER,
            "-grace",
            "0s",  # stop at once: irctest's clients are still connected at teardown
        ]
        if password is not None:
            args += ["-irc-password", password]
        if ssl:
            self.gen_ssl()
            args += ["-tls-cert", str(self.pem_path), "-tls-key", str(self.key_path)]
        args += shlex.split(os.environ.get("CHATROOM_IRCTEST_ARGS", ""))

        assert self.proc is None
        # stdout and stderr go to the test's captured output, which pytest
        # prints when the test fails.
        self.proc = self.execute(args, proc_name="chatroom", stdout=None, stderr=None)
        self.wait_for_port()

    def registerUser(self, case: Any, username: str, password: Optional[str] = None) -> None:
        raise NotImplementedByController("account registration (no services)")


def get_irctest_controller_class() -> Type[ChatroomController]:
    """The entry point irctest's conftest.py calls on the --controller module."""
    return ChatroomController
