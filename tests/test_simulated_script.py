"""The simulated customer's script format."""

from __future__ import annotations

from pathlib import Path

import pytest

from voice.transports.simulated import HangUp, Press, SayText, SayWav, Silence, parse_script


def test_every_kind_of_turn_is_read():
    script = parse_script([
        "# a comment", "", "是的，我是", "turn2.wav", "[silence 2.5]", "[press 1]", "[press #]",
        "[barge 1.5] 不需要", "[hangup]",
    ])
    assert script == [
        SayText("是的，我是"), SayWav(Path("turn2.wav")), Silence(2500.0), Press("1"), Press("#"),
        SayText("不需要", barge_in_ms=1500.0), HangUp(),
    ]


@pytest.mark.parametrize("line", ["[press x]", "[silence]", "[dance 3]", "[barge 2]"])
def test_unreadable_lines_are_named(line):
    with pytest.raises(ValueError, match="script line 2"):
        parse_script(["是的", line])
