"""Query-likelihood reranking: keep the retrieved chunks after which a causal LM finds
the question most likely.

Each candidate is scored by the mean log-probability of the question's tokens after
"Passage: <chunk>\\nPlease write a question based on this passage.\\nQuestion:" (UPR,
Sachan et al. 2022, "Improving Passage Retrieval with Zero-Shot Question Generation").
No training and no extra model to ship: the default scorer is the default LLM,
SmolLM2-135M, run by transformers inside the retriever replica. On the helix sample set
it put a gold document first for 28 of 38 answerable questions against 22 for cosine
similarity (docs/routes.md, "How a retrieval route answers").

Why not in the LLM replica: vLLM 0.32 on CPU fails computing prompt log-probabilities
through its LoRA logits layer when such requests share a batch (vllm#29955), and the
engine dies; here scoring is separate from generation and never touches the engine.

Cost: one forward pass over every candidate (batched, left-padded so the question's
tokens line up at the end and only their logits are computed). About 0.6 s a candidate
on one core of the 2-core VM, float32.
"""

from __future__ import annotations

import functools
import logging
import threading
from typing import Any

__all__ = ["HEAD", "TAIL", "DEFAULT_RERANKER", "rerank_prompts", "keep_reranked",
           "QueryLikelihoodReranker"]

logger = logging.getLogger(__name__)

HEAD = "Passage: "
TAIL = "\nPlease write a question based on this passage.\nQuestion:"
DEFAULT_RERANKER = "builtin:smollm2-135m-instruct"


def rerank_prompts(tokenizer: Any, query: str, texts: list[str], max_len: int
                   ) -> tuple[list[list[int]], int]:
    """Per text, the token ids of "Passage: <text> ... Question: <query>"; and how many
    trailing tokens are the query's (what is scored). The passage part is tokenized as
    one string, as measured; a long passage is cut to fit `max_len`."""
    encode = functools.partial(tokenizer.encode, add_special_tokens=False)
    question = encode(" " + query)[: max(1, max_len // 4)]
    room, tail = max_len - len(question), encode(TAIL)
    prompts = []
    for text in texts:
        prefix = encode(HEAD + text + TAIL)
        if len(prefix) > room:  # cut the passage, keep the instruction after it
            prefix = prefix[: max(room - len(tail), 0)] + tail
        prompts.append(prefix + question)
    return prompts, len(question)


def keep_reranked(hits: list[dict[str, Any]], scores: list[float], top_k: int
                  ) -> list[dict[str, Any]]:
    """The `top_k` hits with the highest rerank scores, in their original order (most
    similar first, as a prompt lists them without reranking); each gets `rerank_score`."""
    best = sorted(range(len(hits)), key=lambda i: -scores[i])[:top_k]
    return [{**hits[i], "rerank_score": scores[i]} for i in sorted(best)]


class QueryLikelihoodReranker:
    """A causal LM (transformers) that scores passages for a question.

    `source`: a builtin model (`builtin:smollm2-135m-instruct`, prepared once like the
    LLM's), a Hugging Face id or a local folder. float32 on CPU (these CPUs have no fast
    bfloat16), the model's own half precision on a GPU.
    """

    def __init__(self, source: str = DEFAULT_RERANKER, *, max_len: int = 512,
                 batch_size: int = 8, device: str | None = None):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from lorag_core.model_source import resolve_model_source

        path = resolve_model_source(source)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        dtype = torch.float32 if self.device == "cpu" else torch.bfloat16
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype).to(self.device)
        self.model.eval()
        self.max_len, self.batch_size = max_len, batch_size
        self.pad_id = self.tokenizer.pad_token_id
        if self.pad_id is None:
            self.pad_id = self.tokenizer.eos_token_id or 0
        self._lock = threading.Lock()
        logger.info("reranker %s loaded on %s", source, self.device)

    def score(self, query: str, texts: list[str]) -> list[float]:
        """Mean log-probability of the query's tokens after each text (higher: better)."""
        if not texts:
            return []
        prompts, n = rerank_prompts(self.tokenizer, query, texts, self.max_len)
        scores: list[float] = []
        with self._lock:
            for i in range(0, len(prompts), self.batch_size):
                scores.extend(self._score_batch(prompts[i:i + self.batch_size], n))
        return scores

    def _score_batch(self, prompts: list[list[int]], n: int) -> list[float]:
        import torch

        width = max(len(p) for p in prompts)
        ids = torch.full((len(prompts), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for row, p in enumerate(prompts):  # left padding: every query ends the row
            ids[row, width - len(p):] = torch.tensor(p)
            mask[row, width - len(p):] = 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        ids, mask, positions = (t.to(self.device) for t in (ids, mask, positions))
        with torch.inference_mode():
            # logits of the n+1 last positions: each predicts the next query token
            logits = self.model(input_ids=ids, attention_mask=mask, position_ids=positions,
                                logits_to_keep=n + 1).logits[:, :-1].float()
            logprobs = torch.log_softmax(logits, dim=-1)
            picked = logprobs.gather(-1, ids[:, -n:, None]).squeeze(-1)
        return picked.mean(dim=-1).tolist()
