"""Content findings on handmade transcripts (word times known exactly)."""

from __future__ import annotations

from vmgrade.asr.transcribe import Segment, Transcript, Word
from vmgrade.content import analyze
from vmgrade.delivery import DeliveryMetrics


def transcript(text: str, word_s: float = 0.3, gaps: dict[int, float] | None = None) -> Transcript:
    """Words 0.3 s long back to back; ``gaps`` adds silence (s) before word index i."""
    words, t = [], 0.0
    for i, token in enumerate(text.split()):
        t += (gaps or {}).get(i, 0.0)
        words.append(Word(token, t, t + word_s, 0.9))
        t += word_s
    seg = Segment(0.0, t, text, -0.2, 0.01, 1.2, tuple(words))
    return Transcript(text, "en", (seg,), 0.01, "openai-whisper", "base")


STRONG = (
    "Hi Dana, this is Mike Chen with Northwind Analytics. I saw your press release that Summit just "
    "opened a warehouse in Denver. Could you call me back to book fifteen minutes on Thursday? "
    "My number is 415-555-0198. Again, 415-555-0198. That's Mike Chen, Northwind Analytics."
)


def test_detects_identity_prospect_reason_ask_and_number_twice():
    c = analyze(transcript(STRONG))
    assert c.identity.source == "detected"
    assert c.identity.caller_name == "Mike Chen"
    assert c.identity.company == "Northwind Analytics"
    assert c.identity.name_first_s == 1.2  # "Mike" is word 4, after "Hi Dana, this is"
    assert len(c.identity.name_mentions) == 2 and len(c.identity.company_mentions) == 2
    assert c.prospect_name == "Dana"
    assert [e.kind for e in c.specific_reasons] == ["reason"]
    assert c.reason.specificity == "concrete"
    assert {"name", "place"} <= set(c.reason.detail_kinds)  # Summit, Denver
    assert c.ask_count == 1 and c.asks[0].kind in ("callback", "meeting")
    assert c.callback.digits == "4155550198"
    assert c.callback.times_said == 2
    assert all(m.cued for m in c.callback.mentions)
    assert c.callback.matches_expected is None
    assert not c.weak_phrases and not c.generic_phrases


def test_context_names_are_found_even_when_misspelled():
    c = analyze(transcript("Hi it's Pre-ya Patel from Ledgerline calling about invoices"),
                caller_name="Priya Patel", company="Ledgerline Inc")
    assert c.identity.source == "context"
    assert c.identity.name_mentions and c.identity.name_mentions[0].start_s == 0.6
    assert c.identity.company_mentions[0].text == "Ledgerline"


def test_wrong_callback_number_is_flagged():
    c = analyze(transcript(STRONG), callback_number="(415) 555-0199")
    assert c.callback.expected == "4155550199"
    assert c.callback.matches_expected is False
    assert analyze(transcript(STRONG), callback_number="+1 415 555 0198").callback.matches_expected is True


def test_spoken_digits_chunking_and_pace():
    text = "my number is four one five, five five five, zero one nine eight. thanks"
    c = analyze(transcript(text, gaps={6: 0.4, 9: 0.4}))
    (m,) = c.callback.mentions
    assert m.digits == "4155550198"
    assert m.groups == ("415", "555", "0198")
    assert m.chunked and m.cued
    # 10 digits over 10 words of 0.3 s plus two 0.4 s gaps
    assert abs(m.digits_per_s - 10 / 3.8) < 0.01


def test_garbled_repeat_still_counts():
    text = "my number is 415-555-0198. again 41555198. bye"
    c = analyze(transcript(text))
    assert c.callback.times_said == 2
    assert c.callback.mentions[1].garbled
    assert any(e.kind == "callback_number" for e in c.low_confidence)


def test_weak_phrases_generic_pitch_price_dump_and_soft_ask():
    text = (
        "Hey, uh, Jordan, it's Kevin at BrightPath. I was just checking in, just touching base. "
        "We're a leading provider of full service solutions, and we help companies like yours. "
        "We've got a dashboard, mobile apps, support, and integrations. The plan is $49 a month per seat. "
        "Sorry to bother you. Get back to me when you can."
    )
    c = analyze(transcript(text))
    weak = {e.kind for e in c.weak_phrases}
    assert {"just_checking_in", "touching_base", "dump", "sorry_to_bother"} <= weak
    assert "apology" not in weak  # covered by "sorry to bother"
    assert len(c.generic_phrases) >= 1
    assert c.identity.caller_name == "Kevin" and c.identity.company == "BrightPath"
    assert c.soft_asks
    assert not c.specific_reasons
    assert c.callback.digits is None and c.callback.times_said == 0


def test_several_asks_are_counted():
    text = ("Call me back at 415-555-0198. Or reply to my email. You can also visit our website. "
            "Are you free Thursday?")
    c = analyze(transcript(text))
    assert c.ask_count >= 3
    assert {"callback", "email", "other"} <= set(c.ask_kinds)


def test_pause_before_number_from_speech_track():
    text = "call me back. my number is 415-555-0198"
    t = transcript(text, gaps={3: 0.8})
    words = t.words
    track = ((0.0, words[2].end), (words[3].start, words[-1].end))
    metrics = _metrics_with_track(track)
    (m,) = analyze(t, metrics).callback.mentions
    # "my number is" follows the gap, so the number itself starts mid-speech
    assert m.pause_before_ms == 0.0
    assert m.cued


def _metrics_with_track(track) -> DeliveryMetrics:
    import numpy as np

    from vmgrade.audio import Audio, SourceInfo
    from vmgrade.delivery import measure

    sr = 16000
    y = np.zeros(int(track[-1][1] * sr) + sr, np.float32)
    t = np.arange(len(y)) / sr
    for a, b in track:
        sl = slice(int(a * sr), int(b * sr))
        y[sl] = 0.2 * np.sin(2 * np.pi * 150 * t[sl]) * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t[sl]))
    src = SourceInfo("synthetic.wav", "WAV", "FLOAT", sr, 1, len(y) / sr, 0, "soundfile")
    return measure(Audio(samples=y, source=src))


def test_number_that_is_not_phone_shaped_still_counts():
    # tiny.en writes "415-55-0198": not a valid phone number, but clearly the one said
    c = analyze(transcript("my number is 415-55-0198. again 415-55-0198. bye"))
    assert c.callback.digits == "415550198"
    assert c.callback.times_said == 2
    assert all(m.garbled for m in c.callback.mentions)
    assert analyze(transcript("my number is 415-55-0198. bye"),
                   callback_number="415-555-0199").callback.matches_expected is False
