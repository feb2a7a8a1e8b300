"""Rewrite context-json examples into the question-first layout of the Qwen configs' JSON routes.

The committed `context_json.*.jsonl` render each prompt as
`Sources:\\n<sources>\\n...\\n</sources>\\n\\nQuestion: {q}` (the layout of
`configs/default.yaml`'s hybrid route). The JSON routes of
`configs/qwen2.5-coder-*.yaml` ask the question before the sources as well
(`Question: {q}\\n\\nSources: ...`), so an adapter for them is trained on that layout.
System prompts, sources and targets are unchanged.

    python adapters/samples/data/question_first.py IN.jsonl OUT.jsonl
"""

from __future__ import annotations

import json
import sys

MARK = "\n\nQuestion: "


def question_first(user: str) -> str:
    """`user` with `Question: {q}\\n\\n` put in front; ValueError when it asks no question."""
    at = user.rfind(MARK)
    if at < 0 or not user.startswith("Sources:"):
        raise ValueError("not a context-json prompt: expected 'Sources:' ... 'Question: '")
    question = user[at + len(MARK):]
    return f"Question: {question}\n\n{user}"


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[-1].strip(), file=sys.stderr)
        return 2
    src, dst = argv
    rows = 0
    with open(src, encoding="utf-8") as fin, open(dst, "w", encoding="utf-8") as fout:
        for line in fin:
            example = json.loads(line)
            for message in example["messages"]:
                if message["role"] == "user":
                    message["content"] = question_first(message["content"])
            fout.write(json.dumps(example, ensure_ascii=False) + "\n")
            rows += 1
    print(f"{rows} examples -> {dst}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
