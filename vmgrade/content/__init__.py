"""Content: what was said, by meaning.

The stage splits the transcript into sentences, labels each with the moves
it makes (:mod:`.moves`: sentence embeddings and a trained head, or the
phrase lists when the model is absent), finds who called and whom
(:mod:`.identity`), how specific the reason is (:mod:`.details`), the asks
and the callback number (:mod:`.callback`).  :func:`analyze` returns
:class:`ContentFindings`; the scorer judges them.
"""

from .analyze import analyze, analyze_text
from .callback import REREAD_PAD_S, REREAD_PROMPTS, recheck
from .findings import (
    Callback,
    ContentFindings,
    DetailMention,
    Evidence,
    Identity,
    Mention,
    Move,
    NumberMention,
    Reason,
)
from .moves import ENGINES, MOVES, EngineInfo, classifier

# Bumped when the content stage's findings change meaning (batch resume keys include it).
CONTENT_VERSION = "moves-2"

__all__ = [
    "CONTENT_VERSION", "ENGINES", "MOVES", "REREAD_PAD_S", "REREAD_PROMPTS", "Callback", "ContentFindings",
    "DetailMention", "EngineInfo", "Evidence", "Identity", "Mention", "Move", "NumberMention", "Reason",
    "analyze", "analyze_text", "classifier", "recheck",
]
