"""The answer checks of `serving.answer_checks` from the keywords the LLM replica's tests
name them by."""

from serving.answer_checks import AnswerChecks


def answer_checks(json_answer=False, grounding=None, citation_sources=None,
                  marker_sources=None):
    """`grounding`: (the sources and question, the no-context answer)."""
    return AnswerChecks(grounding_texts=grounding[0] if grounding else None,
                        no_context_answer=grounding[1] if grounding else "",
                        citation_sources=citation_sources, marker_sources=marker_sources,
                        json_answer=json_answer)
