"""Spoken numbers and callback phone numbers (vmgrade.numbers)."""

from __future__ import annotations

import pytest

from vmgrade.asr.transcribe import Word
from vmgrade.numbers import (
    NumberRun,
    find_number_runs,
    find_phone_numbers,
    is_phone_digits,
    normalize_phone,
    same_number,
)

WORD_S = 0.3


def make_words(text: str, gaps: dict[int, float] | None = None, t0: float = 0.0) -> list[Word]:
    """Words of ``text`` (split on spaces), 0.3 s each, back to back.

    ``gaps`` maps a word index to extra silence (s) after that word.
    """
    gaps = gaps or {}
    words, t = [], t0
    for k, token in enumerate(text.split()):
        words.append(Word(token, round(t, 3), round(t + WORD_S, 3), 0.9))
        t += WORD_S + gaps.get(k, 0.0)
    return words


def phones(text: str, gaps: dict[int, float] | None = None, **kw) -> list[str]:
    return [r.digits for r in find_phone_numbers(make_words(text, gaps), **kw)]


def runs(text: str, gaps: dict[int, float] | None = None) -> list[str]:
    return [r.digits for r in find_number_runs(make_words(text, gaps))]


# --------------------------------------------------------------------------
# Shapes of a spoken phone number


@pytest.mark.parametrize(
    "text",
    [
        "my number is four one five five five five zero one nine eight thanks",
        "my number is four one five, five five five, zero one nine eight. Thanks",
        "my number is Four-one-five, five-five-five, zero-one-nine-eight.",
        "my number is 415-555-0198. Thanks",
        "my number is (415) 555-0198, thanks",
        "my number is 415.555.0198 thanks",
        "my number is 4155550198.",
        "my number is 415 555 0198",
        "my number is 415- 555- 0198.",
        "my number is 4-1-5, 5-5-5, 0-1-9-8.",
        "my number is four one five, 555, zero one nine eight.",
        "my number is four one five, five five five, oh one nine eight.",
        "my number is four one five, triple five, zero one nine eight.",
        "my number is four one five, five double five, zero one nine eight.",
        "my number is four fifteen, five fifty-five, oh one ninety-eight.",
        "my number is four one five, five fifty five, zero one ninety eight.",
        "my number is four one five dash five five five dash zero one nine eight",
        "my number is 415 five five five O one nine eight",
    ],
)
def test_phone_shapes_give_the_same_digits(text):
    assert phones(text) == ["4155550198"]


@pytest.mark.parametrize(
    ("text", "digits"),
    [
        ("call 1-800-555-0198 today", "18005550198"),
        ("call one eight hundred, five five five, zero one nine eight", "18005550198"),
        ("call eight hundred, five five five, zero one nine eight", "8005550198"),
        ("call eight hundred five five five zero one nine eight", "8005550198"),
        ("call +1 415 555 0198", "14155550198"),
        ("call five five five, two thousand", "5552000"),
        ("call five five five, oh nine nineteen", "5550919"),
        ("call five five five, zero one two zero now", "5550120"),
        ("call nine one two, five five five, twenty twenty", "9125552020"),
        ("call 555-0198 anytime", "5550198"),
    ],
)
def test_other_phone_shapes(text, digits):
    assert phones(text) == [digits]


def test_local_numbers_can_be_turned_off():
    assert phones("call 555-0198 anytime", allow_local=False) == []
    assert phones("call 415-555-0198 anytime", allow_local=False) == ["4155550198"]


def test_groups_follow_commas_and_pauses():
    (run,) = find_phone_numbers(make_words("it's four one five, five five five, zero one nine eight."))
    assert run.groups == ("415", "555", "0198")
    # No commas, but pauses of 0.3 s between the groups.
    words = make_words("it's four one five five five five zero one nine eight", gaps={3: 0.3, 6: 0.3})
    (run,) = find_phone_numbers(words)
    assert run.groups == ("415", "555", "0198")
    # No commas and no pauses: one group, as spoken.
    (run,) = find_phone_numbers(make_words("it's four one five five five five zero one nine eight"))
    assert run.groups == ("4155550198",)
    # A short gap (< 0.25 s) does not split a group.
    words = make_words("it's four one five five five five zero one nine eight", gaps={3: 0.1, 6: 0.1})
    assert find_phone_numbers(words)[0].groups == ("4155550198",)


@pytest.mark.parametrize(
    ("text", "groups"),
    [
        ("415-555-0198", ("415", "555", "0198")),
        ("4-1-5, 5-5-5, 0-1-9-8.", ("415", "555", "0198")),
        ("(415) 555-0198", ("415", "555", "0198")),
        ("415 555 0198", ("415", "555", "0198")),
        ("1-800-555-0198", ("1", "800", "555", "0198")),
        ("eight hundred, double five five, oh one nine eight", ("800", "555", "0198")),
        ("five five five, fifty-five, fifty-five", ("555", "55", "55")),
        ("four one five dash five five five dash zero one nine eight", ("415", "555", "0198")),
    ],
)
def test_groups_of_written_and_spoken_forms(text, groups):
    (run,) = find_phone_numbers(make_words(text))
    assert run.groups == groups
    assert "".join(run.groups) == run.digits


def test_run_spans_the_number_words_and_their_times():
    words = make_words("Hi, call me at four one five, five five five, zero one nine eight. Thanks!")
    (run,) = find_phone_numbers(words)
    assert (run.start_index, run.end_index) == (4, 14)
    assert words[run.start_index].word == "four"
    assert words[run.end_index - 1].word == "eight."
    assert run.start_s == pytest.approx(4 * WORD_S)
    assert run.end_s == pytest.approx(14 * WORD_S)
    assert run.duration_s == pytest.approx(10 * WORD_S)
    assert run.digits_per_second == pytest.approx(10 / (10 * WORD_S))
    assert run.text == "four one five, five five five, zero one nine eight."


def test_written_token_run_spans_one_word():
    words = make_words("reach me at 415-555-0198, thanks")
    (run,) = find_phone_numbers(words)
    assert (run.start_index, run.end_index) == (3, 4)
    assert (run.start_s, run.end_s) == pytest.approx((0.9, 1.2))


# --------------------------------------------------------------------------
# Repetitions


def test_number_said_twice_with_words_between():
    text = (
        "four one five, five five five, zero one nine eight. Again, that's "
        "four one five, five five five, zero one nine eight."
    )
    words = make_words(text)
    found = find_phone_numbers(words)
    assert [r.digits for r in found] == ["4155550198", "4155550198"]
    assert found[0].end_index <= found[1].start_index
    assert words[found[1].start_index - 1].word == "that's"
    assert found[1].groups == ("415", "555", "0198")


def test_number_said_twice_back_to_back_is_split():
    once = "four one five, five five five, zero one nine eight."
    text = f"{once} {once.capitalize()}"
    assert runs(text) == ["41555501984155550198"]  # one run of number words...
    found = find_phone_numbers(make_words(text))
    assert [r.digits for r in found] == ["4155550198", "4155550198"]  # ...two numbers
    assert found[0].end_index == 10 and found[1].start_index == 10
    assert found[1].start_s == pytest.approx(10 * WORD_S)


def test_exact_repetition_without_any_break_is_split():
    text = "four one five five five five zero one nine eight four one five five five five zero one nine eight"
    assert phones(text) == ["4155550198", "4155550198"]
    assert phones("4155550198 4155550198") == ["4155550198", "4155550198"]


def test_full_number_then_local_part():
    text = "four one five, five five five, zero one nine eight, five five five, zero one nine eight"
    assert phones(text) == ["4155550198", "5550198"]


def test_two_different_numbers_split_at_a_clear_break():
    text = "office 415-555-0198. Cell 628-555-0143."
    assert phones(text) == ["4155550198", "6285550143"]
    text = (
        "four one five, five five five, zero one nine eight, "
        "six two eight, five five five, zero one four three"
    )
    assert phones(text) == ["4155550198", "6285550143"]


def test_long_run_without_a_break_is_not_cut_arbitrarily():
    # 20 digits, not a repetition, no commas or pauses: no safe place to cut.
    text = "four one five five five five zero one nine eight six two eight five five five zero one four three"
    assert phones(text) == []


def test_digits_glued_to_a_number_without_a_break_spoil_it():
    # Ten digits plus one more, said in one breath: no safe place to cut.
    assert phones("four one five five five five zero one nine eight two") == []
    assert phones("two four one five five five five zero one nine eight") == []
    # With a break before the extra digit, the number is found.
    assert phones("four one five five five five zero one nine eight, two") == ["4155550198"]


def test_stray_number_before_a_phone_number_is_left_out():
    text = "press two, then four one five, five five five, zero one nine eight"
    assert runs(text) == ["2", "4155550198"]  # "then" ends the first run
    assert phones(text) == ["4155550198"]
    # No word between: "2" and the number share a run, split at the comma.
    assert runs("press two, four one five, five five five, zero one nine eight") == ["24155550198"]
    assert phones("press two, four one five, five five five, zero one nine eight") == ["4155550198"]
    found = find_phone_numbers(make_words("option 2, 415-555-0198"))
    assert [r.digits for r in found] == ["4155550198"]
    assert found[0].start_index == 2


def test_long_pause_ends_a_run():
    words = make_words("four one five five five five zero one nine eight", gaps={2: 2.0})
    assert [r.digits for r in find_number_runs(words)] == ["415", "5550198"]
    assert [r.digits for r in find_phone_numbers(words)] == ["5550198"]
    assert [r.digits for r in find_number_runs(words, max_gap_s=3.0)] == ["4155550198"]


# --------------------------------------------------------------------------
# What is not a phone number


@pytest.mark.parametrize(
    "text",
    [
        "we saved them 20 percent last quarter",
        "we saved them twenty percent last quarter",
        "it takes 30 seconds",
        "book fifteen minutes this Thursday",
        "twenty four seven support",
        "forty nine dollars a month per seat, or three ninety nine for enterprise",
        "we have $500 and 2,000,000 invoices",
        "we processed two million invoices in 2023",
        "one more thing: Oh, and one two three",
        "a 4.5 star rating at 2:30 on the 21st",
        "four one five five five five zero one nine",  # nine digits: incomplete
    ],
)
def test_non_phone_numbers_are_not_reported(text):
    assert phones(text) == []


def test_oh_is_zero_only_inside_numbers():
    assert runs("Oh, hi Dana, it's Mike") == []
    assert runs("oh well") == []
    assert runs("room oh nine please") == ["09"]
    assert runs("five five five oh one nine eight") == ["5550198"]
    # "Oh," after a number is an interjection, not a trailing zero.
    assert runs("five five five, zero one nine eight. Oh, and") == ["5550198"]


def test_amounts_and_counts_are_runs_but_not_phones():
    assert runs("we saved them 20 percent in 30 seconds") == ["20", "30"]
    assert runs("three ninety nine for enterprise") == ["399"]
    assert runs("five hundred fifty dollars") == ["550"]
    assert runs("two thousand five hundred seats") == ["2500"]
    assert runs("it costs $500 a month") == []


def test_double_and_triple():
    assert runs("double five") == ["55"]
    assert runs("triple seven") == ["777"]
    assert runs("double oh seven") == ["007"]
    assert runs("double 5") == ["55"]
    assert runs("a double espresso") == []
    assert runs("double, five") == ["5"]  # not "double five"


def test_scale_words_need_a_number_before_them():
    assert runs("a hundred times") == []
    assert runs("hundreds of teams") == []


def test_tens_take_a_following_unit_but_not_zero():
    assert runs("fifty five") == ["55"]
    assert runs("fifty-five") == ["55"]
    assert runs("twenty") == ["20"]
    assert runs("twenty oh one") == ["2001"]
    assert runs("twenty, five") == ["205"]
    assert runs("twenty zero five") == ["2005"]  # "zero" is a digit of its own


# --------------------------------------------------------------------------
# Helpers


@pytest.mark.parametrize(
    ("text", "digits"),
    [
        ("+1 (415) 555-0198", "4155550198"),
        ("415.555.0198", "4155550198"),
        ("1-415-555-0198", "4155550198"),
        ("4155550198", "4155550198"),
        ("555-0198", "5550198"),
        ("four one five five five five zero one nine eight", "4155550198"),
        ("", ""),
        ("n/a", ""),
    ],
)
def test_normalize_phone(text, digits):
    assert normalize_phone(text) == digits


def test_same_number():
    assert same_number("+1 (415) 555-0198", "415-555-0198")
    assert same_number("4155550198", "14155550198")
    assert same_number("555-0198", "(415) 555-0198")
    assert not same_number("415-555-0198", "415-555-0199")
    assert not same_number("555-0198", "555-0199")
    assert not same_number("", "")
    assert not same_number("0198", "415-555-0198")


@pytest.mark.parametrize(
    ("digits", "ok"),
    [
        ("4155550198", True),
        ("14155550198", True),
        ("5550198", True),
        ("0155550198", False),  # area codes never start with 0 or 1
        ("4151550198", False),  # nor do exchanges
        ("24155550198", False),
        ("415555019", False),
        ("41555501a8", False),
    ],
)
def test_is_phone_digits(digits, ok):
    assert is_phone_digits(digits) is ok


def test_number_run_is_frozen():
    (run,) = find_number_runs(make_words("five five five"))
    assert isinstance(run, NumberRun)
    with pytest.raises(AttributeError):
        run.digits = "1"  # type: ignore[misc]
