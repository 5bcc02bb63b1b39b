"""One home for each shared constant and check (issue 13 item 3)."""

from __future__ import annotations

import pytest

from semcode.config import model_is_off


@pytest.mark.parametrize("value", ["", "off", "none", None, "OFF", "  None ", "\toff\n"])
def test_model_is_off(value: str | None) -> None:
    assert model_is_off(value)


@pytest.mark.parametrize("value", ["auto", "hf:minishlab/potion-code-16M-v2", "offline.gguf",
                                   "no", "0"])
def test_a_model_setting_that_is_not_off(value: str) -> None:
    assert not model_is_off(value)


def test_states_are_their_wire_strings() -> None:
    import json

    from semcode.states import ModelState, ServeState

    assert [s.value for s in ServeState] == ["starting", "indexing", "embedding", "ready",
                                             "error"]
    assert [s.value for s in ModelState] == ["not loaded", "loading", "loaded", "off",
                                             "missing", "error"]
    assert json.dumps({"state": ServeState.READY}) == '{"state": "ready"}'
    assert f"{ModelState.NOT_LOADED}" == "not loaded"
