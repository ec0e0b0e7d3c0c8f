"""
Capturing our loopback traffic with C{tshark} and reading it back with
its DTLS dissector, an independent decoder.
"""

from __future__ import annotations

import subprocess

from tests.features.support import sleep
from tests.peers.process import PeerProcess

#: Any malformed packet, or an expert-info entry of severity error or
#: above (_ws.expert.severity 0x00600000 is "warning"; 0x00800000 "error").
MALFORMED = "_ws.malformed || _ws.expert.severity >= 6291456"


class Capture(PeerProcess):
    """
    C{tshark -i lo -f "udp port PORT" -w FILE}, started by L{start}.
    """

    name = "tshark"

    def __init__(self, port: int, path: str, lifetime: float = 30.0, netns=None):
        """
        @param netns: capture on the loopback of this network namespace.
        """
        self.path = str(path)
        self.port = port
        super().__init__(["tshark", "-q", "-i", "lo", "-f", f"udp port {port}", "-w", self.path], lifetime=lifetime,
                         netns=netns)

    async def started(self) -> None:
        await self.when(r"Capturing on", timeout=10, stream="stderr")
        # The banner comes slightly before the capture filter is live.
        await sleep(0.5)

    async def finish(self) -> None:
        # Let the last datagrams reach the capture before stopping it.
        await sleep(0.3)
        self.stop()

    def read(self, *arguments: str) -> str:
        """Run C{tshark -r} on the capture with the DTLS dissector forced."""
        result = subprocess.run(
            ["timeout", "30", "tshark", "-r", self.path, "-d", f"udp.port=={self.port},dtls", *arguments],
            capture_output=True, text=True, timeout=40,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    def fields(self, *fields: str, display: str = "", options: tuple[str, ...] = ()) -> list[list[str]]:
        arguments = [*options, "-T", "fields", "-E", "occurrence=a", "-E", "separator=|"]
        if display:
            arguments += ["-Y", display]
        for field in fields:
            arguments += ["-e", field]
        return [line.split("|") for line in self.read(*arguments).splitlines()]

    def malformed(self, options: tuple[str, ...] = ()) -> str:
        return self.read(*options, "-Y", MALFORMED)
