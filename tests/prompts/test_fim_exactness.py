"""Infilling prompts are token-exact with Meta's reference (``meta-llama/codellama``).

The reference (``meta_reference.py``) is Meta's ``infilling_prompt_tokens`` / ``encode_infilling``
/ ``decode_infilling`` written with the ``sentencepiece`` package on the fixture's
``tokenizer.model``; the code under test builds ids with the ``tokenizers`` backend. Cases are
cut from standard-library files at random cursors (fixed seed) with budgets that truncate the
prefix, so most prefixes start on an indented line — where a plain transformers ``encode``
differs from SentencePiece (shown below, so these tests can tell right from wrong).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # sibling helper, whatever the import mode
from meta_reference import (  # noqa: E402
    exactness_cases,
    infill_tokenizer,
    meta_reference,
    require_fixture,
    text_only_reference,
)

from code_llama_ls.prompts.fim import Budget, assemble, build_infill_prompt  # noqa: E402

MIN_CASES = 200


@pytest.fixture(scope="module")
def fixture_folder() -> str:
    return str(require_fixture())


@pytest.fixture(scope="module")
def ref(fixture_folder):
    return meta_reference(fixture_folder)


@pytest.fixture(scope="module")
def tok(fixture_folder):
    return infill_tokenizer(fixture_folder)


@pytest.fixture(scope="module")
def built(tok):
    """Every case with the prompt the code under test builds for it."""
    out = []
    for case in exactness_cases(bases=60):
        budget = Budget(case.max_context_tokens, case.max_new_tokens, case.prefix_ratio)
        out.append((case, build_infill_prompt(tok, case.before, case.after, budget, case.mode)))
    return out


def _is_indented(text: str) -> bool:
    return text[:1] in (" ", "\t")


def test_cases_cover_what_the_requirement_names(built):
    cases = [case for case, _ in built]
    assert len(cases) >= MIN_CASES
    modes = {case.mode for case in cases}
    assert modes == {"psm", "spm"}
    crlf = sum("\r\n" in case.text for case in cases)
    non_ascii = sum(any(ord(ch) > 127 for ch in case.text) for case in cases)
    ws_suffix = sum(case.after[:1] in (" ", "\t", "\r", "\n") for case in cases)
    tabs = sum("\n\t" in case.text for case in cases)
    truncated = sum(prompt.prefix != case.before for case, prompt in built)
    indented = sum(_is_indented(prompt.prefix) for _, prompt in built)
    indented_truncated = sum(
        _is_indented(prompt.prefix) and prompt.prefix != case.before for case, prompt in built
    )
    print(
        f"\n{len(cases)} cases: {truncated} with a budget-truncated prefix, {indented} prefixes "
        f"starting with whitespace ({indented_truncated} of them truncated), {crlf} CRLF, "
        f"{non_ascii} non-ASCII, {ws_suffix} suffixes starting with whitespace, {tabs} tab-indented"
    )
    assert truncated >= len(cases) * 0.7
    assert indented_truncated >= len(cases) * 0.4, "too few prefixes start on an indented line"
    assert crlf >= len(cases) * 0.2
    assert non_ascii >= len(cases) * 0.2
    assert ws_suffix >= len(cases) * 0.2
    assert tabs >= 10


def test_prompt_ids_equal_meta_reference(built, ref):
    mismatches = []
    for case, prompt in built:
        assert case.before.endswith(prompt.prefix), case.name
        assert case.after.startswith(prompt.suffix), case.name
        assert prompt.mode == case.mode
        expected = ref.prompt(prompt.prefix, prompt.suffix, case.mode)
        if prompt.ids != expected:
            mismatches.append(case.name)
        assert prompt.prefix_tokens == len(ref.enc(prompt.prefix)), case.name
        assert prompt.suffix_tokens == len(ref.enc_infilling(prompt.suffix)), case.name
    assert not mismatches, f"{len(mismatches)}/{len(built)} prompts differ from Meta's: {mismatches[:10]}"


def test_assemble_equals_meta_reference_on_untruncated_texts(built, tok, ref):
    # The same texts without budgeting, and whole documents split at the cursor.
    for case, prompt in built[:: 7]:
        for prefix, suffix in ((prompt.prefix, prompt.suffix), (case.before[-3000:], case.after[:3000])):
            assert assemble(tok, prefix, suffix, case.mode) == ref.prompt(prefix, suffix, case.mode), case.name


def test_encodings_equal_sentencepiece(tok, ref):
    samples = [
        "    return x", "\treturn x", "  \t  x", " ", "  ", "\n", "\n\n    pass\n", "\r\n    x\r\n",
        "é", " é", "中文", "🦙", " 🦙 ", "e\u0301", "\u00a0x", "x\r", "\rx", "▁x", "▁▁ y",
        "def f():\n    '''Doc 中文.'''\n    return 1\n",
    ]
    for s in samples:
        assert tok.encode(s) == ref.enc(s), repr(s)
        assert tok.encode_infilling(s) == ref.enc_infilling(s), repr(s)
    assert tok.encode("") == [] and tok.encode_infilling("") == []


def test_special_ids_are_meta_pieces(tok, ref):
    s = tok.special
    assert (s.bos, s.prefix, s.suffix, s.middle, s.eot) == (
        ref.bos, ref.prefix_id, ref.suffix_id, ref.middle_id, ref.eot_id
    )


def test_plain_transformers_encode_is_not_the_reference(built, tok, fixture_folder, ref):
    """The naive approach (``AutoTokenizer.encode``) fails on these cases; ours does not."""
    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(fixture_folder, local_files_only=True)
    prefixes = sorted({prompt.prefix for _, prompt in built})
    naive = [p for p in prefixes if hf.encode(p, add_special_tokens=False) != ref.enc(p)]
    ours = [p for p in prefixes if tok.encode(p) != ref.enc(p)]
    naive_indented = sum(_is_indented(p) for p in naive)
    print(f"\nnaive transformers encode differs from SentencePiece on {len(naive)}/{len(prefixes)} "
          f"distinct prefixes ({naive_indented} indented); ours on {len(ours)}")
    assert len(naive) > 0
    assert naive_indented > 0
    assert ours == []
    # The classic example from the pitfalls: four spaces then a keyword.
    assert hf.encode("    return", add_special_tokens=False) != ref.enc("    return")
    assert tok.encode("    return") == ref.enc("    return")


# -- decoding ----------------------------------------------------------------------------------

def _as_sentencepiece_sees_it(text: str) -> str:
    """SentencePiece writes a space as "▁" (U+2581): a literal "▁" in text decodes as a space."""
    return text.replace("\u2581", " ")


def test_decoding_keeps_a_leading_space(tok, ref):
    ids = ref.enc_infilling(" x = 1")
    assert tok.encode_infilling(" x = 1") == ids
    assert ref.decode_infilling(ids) == " x = 1"
    assert tok.decode_infilling(ids) == " x = 1"


def test_plain_decode_drops_the_leading_space(fixture_folder, ref):
    """Shows what the infilling decode guards against (so the test above can fail)."""
    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(fixture_folder, local_files_only=True)
    assert hf.decode(ref.enc_infilling(" x = 1")) != " x = 1"


@pytest.mark.parametrize(
    "completion",
    [
        " x = 1", "  y", "\tpass", "\n    return None\n", "\r\n", " é = '中文'", "🦙", " 🦙",
        "e\u0301", "x", "  # comment  ", "\u00a0nbsp", " <s> </s> <EOT>", " ▁<EOT> ▁<MID>",
    ],
)
def test_decode_round_trips(tok, ref, fixture_folder, completion):
    ids = tok.encode_infilling(completion)
    assert tok.decode_infilling(ids) == _as_sentencepiece_sees_it(completion)
    # Meta's reference on the same text (text-only pieces where the text holds ▁<EOT>).
    reference = text_only_reference(fixture_folder)
    if not any(tag in completion for tag in ("<EOT>", "<PRE>", "<SUF>", "<MID>")):
        reference = ref
    assert ids == reference.enc_infilling(completion)
    assert reference.decode_infilling(ids) == _as_sentencepiece_sees_it(completion)


def test_decode_of_generated_ids_matches_meta(tok, ref):
    # Token sequences a model could emit (not necessarily canonical encodings).
    for ids in ([ref.sp.piece_to_id("▁▁▁"), ref.sp.piece_to_id("▁return")],
                [ref.sp.piece_to_id("▁x"), ref.sp.piece_to_id("▁="), ref.sp.piece_to_id("▁")],
                ref.enc_infilling("\n\tfoo(é)") + ref.enc_infilling("  bar")):
        assert tok.decode_infilling(ids) == ref.decode_infilling(ids)


# -- sentinel strings in documents -------------------------------------------------------------

SENTINEL_DOCUMENTS = [
    ('text = "▁<EOT>"\n', 'print(text)\n'),
    ("<EOT>\n    <EOT> x\n", "▁<EOT>\n"),
    ("def f():\n    s = '▁<PRE> a ▁<SUF> b ▁<MID>'\n    ", "return '<s></s>'\n"),
    ("# <s> starts, </s> ends\r\n\t<PRE>", " <SUF><MID><EOT>\r\n"),
    ("", "▁<EOT>"),
    ("▁<EOT>", ""),
    ("<unused_3> <unk> ☺ ", "☺<EOT>"),
    ("prompt = 'def f(<FILL_ME>)'\n    ", "<FILL_ME> return\n"),  # transformers' own fill token
]


@pytest.mark.parametrize("mode", ["psm", "spm"])
@pytest.mark.parametrize("before, after", SENTINEL_DOCUMENTS)
def test_sentinel_strings_stay_text(tok, fixture_folder, mode, before, after):
    text_ref = text_only_reference(fixture_folder)
    structural = [tok.special.bos, tok.special.prefix, tok.special.suffix, tok.special.middle]
    added = set(range(32000, tok.vocab_size)) | {0, 1, 2}  # <unk>, <s>, </s> and Code Llama's

    for prompt_budget in (Budget(4096, 64, 0.75), Budget(48, 16, 0.5)):
        prompt = build_infill_prompt(tok, before, after, prompt_budget, mode)
        assert before.endswith(prompt.prefix) and after.startswith(prompt.suffix)
        for sid in structural:
            assert prompt.ids.count(sid) == 1
        assert [i for i in prompt.ids if i in added] == [i for i in prompt.ids if i in structural]
        assert tok.special.eot not in prompt.ids
        assert prompt.ids == text_ref.prompt(prompt.prefix, prompt.suffix, mode)

    prefix_ids = tok.encode(before)
    assert not set(prefix_ids) & added
    assert prefix_ids == text_ref.enc(before)
    # SentencePiece writes a space as "▁" (U+2581), so a literal "▁" in a document is the same
    # symbol as a space and decodes as one (Meta's reference does the same); the rest of the
    # text, "<EOT>" included, comes back unchanged.
    assert tok.decode_infilling(prefix_ids) == _as_sentencepiece_sees_it(" " + before if before else "")
    assert text_ref.decode_infilling(prefix_ids) == tok.decode_infilling(prefix_ids)
    suffix_ids = tok.encode_infilling(after)
    assert not set(suffix_ids) & added
    assert tok.decode_infilling(suffix_ids) == _as_sentencepiece_sees_it(after)
    assert text_ref.decode_infilling(suffix_ids) == tok.decode_infilling(suffix_ids)
    assert assemble(tok, before, after, mode) == text_ref.prompt(before, after, mode)


def test_sentencepiece_itself_would_match_the_sentinel(ref, fixture_folder):
    """Why the sentinel case needs the text-only reference: plain SentencePiece (as Meta calls
    it) turns ``<EOT>`` text into the control id, which must not happen to a document."""
    assert ref.eot_id in ref.enc("x ▁<EOT> y")
    assert ref.eot_id in ref.enc("<EOT>")
    text_ref = text_only_reference(fixture_folder)
    assert ref.eot_id not in text_ref.enc("x ▁<EOT> y")
    # Outside the sentinel strings, the two references are the same tokenizer.
    sample = "def f(x):\n    return x  # é 中文 🦙\r\n\t<s>"
    assert text_ref.enc(sample) == ref.enc(sample)
    assert text_ref.enc_infilling(sample) == ref.enc_infilling(sample)
