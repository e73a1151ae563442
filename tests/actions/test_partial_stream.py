"""PartialStream: deltas at a bounded rate, with a clock the test moves."""

from __future__ import annotations

from code_llama_ls.lsp.actions import PARTIAL_INTERVAL_S, PARTIAL_MAX_WAIT_S, PartialStream

TOKEN = "code-llama-explain-0123"


def stream():
    clock, sent = [0.0], []
    return PartialStream(sent.append, TOKEN, clock=lambda: clock[0]), clock, sent


def test_the_first_text_goes_out_at_once_then_no_more_than_one_message_per_interval():
    partial, clock, sent = stream()
    assert partial.update("It returns the sum of a and b, computed with the plus operator.")
    clock[0] += PARTIAL_INTERVAL_S / 2
    assert not partial.update("It returns the sum of a and b, computed with the plus operator. More text here, "
                              "and more, so the delta outweighs the message around it.")
    assert len(sent) == 1


def test_small_deltas_wait_until_they_outweigh_the_message_or_the_longest_wait():
    partial, clock, sent = stream()
    partial.update("It")
    clock[0] += PARTIAL_INTERVAL_S * 2
    assert not partial.update("It returns")  # 8 more bytes, in a message of about 70
    clock[0] += PARTIAL_MAX_WAIT_S
    assert partial.update("It returns 1")
    assert [m["delta"] for m in sent] == ["It", " returns 1"]


def test_finish_sends_the_rest_marked_done_and_the_deltas_add_up():
    partial, clock, sent = stream()
    partial.update("Adds ")
    clock[0] += PARTIAL_INTERVAL_S
    partial.update("Adds two")
    partial.finish("Adds two numbers.")
    assert "".join(m["delta"] for m in sent) == "Adds two numbers."
    assert [m["done"] for m in sent] == [False, True] and all(m["token"] == TOKEN for m in sent)


def test_a_final_answer_that_lost_trailing_space_adds_nothing():
    partial, _, sent = stream()
    partial.update("Done.\n\n")
    partial.finish("Done.")
    assert sent[-1] == {"token": TOKEN, "delta": "", "done": True}
